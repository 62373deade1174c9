import { actorOf, metaOf } from '../../http/context.js';
import { OrgParams, orgParamsWith, pageOf, uuid } from '../../http/schemas.js';
import type { ApiRegistry } from '../../http/registry.js';
import { CreateSilenceBody, SilenceListQuery, SilenceSchema, UpdateSilenceBody } from './silences-schemas.js';
import type { SilencesService } from './silences-service.js';

const TAGS = ['silences'];
const SilenceParams = orgParamsWith({ id: uuid('Silence id.') });
const NOT_FOUND = { description: 'No such organization or silence, or not visible to the caller.' };
const FORBIDDEN = { description: "The caller's role or the key's scopes do not allow it." };
const INVALID = { description: 'Invalid input; `errors` names each field (e.g. body/matchers/0/value).' };

/** Reading needs alert.read (viewer, read scope); creating, changing and expiring alert.write (editor, write scope). */
export function registerSilenceRoutes(registry: ApiRegistry, silences: SilencesService): void {
  registry.route({
    method: 'get',
    path: '/organizations/{org}/silences',
    operationId: 'listSilences',
    summary: 'List silences, oldest first (expired ones included unless filtered by state)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: OrgParams,
    query: SilenceListQuery,
    responses: { 200: { description: 'A page of silences.', schema: pageOf(SilenceSchema) }, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      ctx.body = await silences.list(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/silences',
    operationId: 'createSilence',
    summary: 'Silence the alerts that match: they still change state, but are not notified until it ends',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: OrgParams,
    body: CreateSilenceBody,
    responses: { 201: { description: 'The silence.', schema: SilenceSchema }, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, body }) => {
      ctx.status = 201;
      ctx.body = await silences.create(actorOf(ctx), params.org, body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/silences/{id}',
    operationId: 'getSilence',
    summary: 'One silence',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: SilenceParams,
    responses: { 200: { description: 'The silence.', schema: SilenceSchema }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      ctx.body = await silences.get(actorOf(ctx), params.org, params.id);
    },
  });

  registry.route({
    method: 'patch',
    path: '/organizations/{org}/silences/{id}',
    operationId: 'updateSilence',
    summary: 'Change a pending or active silence (its matchers, times, comment)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: SilenceParams,
    body: UpdateSilenceBody,
    responses: {
      200: { description: 'The silence.', schema: SilenceSchema },
      400: INVALID,
      403: FORBIDDEN,
      404: NOT_FOUND,
      409: { description: 'The silence has expired (create a new one).' },
    },
    handler: async (ctx, { params, body }) => {
      ctx.body = await silences.update(actorOf(ctx), params.org, params.id, body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'delete',
    path: '/organizations/{org}/silences/{id}',
    operationId: 'expireSilence',
    summary: 'Expire a silence now (it stays listed, as expired)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: SilenceParams,
    responses: { 204: { description: 'Expired.' }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      await silences.expire(actorOf(ctx), params.org, params.id, metaOf(ctx));
      ctx.status = 204;
    },
  });
}
