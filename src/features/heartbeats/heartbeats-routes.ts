import { actorOf, metaOf, type HttpContext } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import { OrgParams, PageQuerySchema, orgParamsWith, pageOf, uuid } from '../../http/schemas.js';
import { CreateHeartbeatBody, HeartbeatSchema, PingAnswerSchema, PingParams, UpdateHeartbeatBody } from './heartbeats-schemas.js';
import type { HeartbeatsService } from './heartbeats-service.js';

const TAGS = ['heartbeats'];
const IdParams = orgParamsWith({ id: uuid('The heartbeat id.') });
const NOT_FOUND = { description: 'No such organization or heartbeat (or not yours).' };
const FORBIDDEN = { description: 'Role or scope too low.' };
// Answers carry the ping token: not for caches.
const noStore = (ctx: HttpContext) => ctx.set('Cache-Control', 'no-store');

export function registerHeartbeatRoutes(registry: ApiRegistry, heartbeats: HeartbeatsService): void {
  registry.route({
    method: 'get',
    path: '/organizations/{org}/heartbeats',
    operationId: 'listHeartbeats',
    summary: "The organization's heartbeats, oldest first (viewers and above; API keys with the read scope)",
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: OrgParams,
    query: PageQuerySchema,
    responses: { 200: { description: 'One page of heartbeats.', schema: pageOf(HeartbeatSchema) }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      ctx.body = await heartbeats.list(actorOf(ctx), params.org, query);
      noStore(ctx);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/heartbeats',
    operationId: 'createHeartbeat',
    summary: 'Create a heartbeat (a dead-man\'s switch): missed when no ping comes within period + grace (editors and above; API keys with the write scope)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: OrgParams,
    body: CreateHeartbeatBody,
    responses: { 201: { description: 'Created; ping_url is where to ping.', schema: HeartbeatSchema }, 403: FORBIDDEN, 404: NOT_FOUND, 409: { description: 'The name is taken.' } },
    handler: async (ctx, { params, body }) => {
      ctx.body = await heartbeats.create(actorOf(ctx), params.org, body, metaOf(ctx));
      ctx.status = 201;
      noStore(ctx);
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/heartbeats/{id}',
    operationId: 'getHeartbeat',
    summary: 'One heartbeat (viewers and above; API keys with the read scope)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: IdParams,
    responses: { 200: { description: 'The heartbeat.', schema: HeartbeatSchema }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      ctx.body = await heartbeats.get(actorOf(ctx), params.org, params.id);
      noStore(ctx);
    },
  });

  registry.route({
    method: 'patch',
    path: '/organizations/{org}/heartbeats/{id}',
    operationId: 'updateHeartbeat',
    summary: 'Change a heartbeat; a new period or grace moves due_at (counted from the last ping) (editors and above; API keys with the write scope)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: IdParams,
    body: UpdateHeartbeatBody,
    responses: { 200: { description: 'The heartbeat as changed.', schema: HeartbeatSchema }, 403: FORBIDDEN, 404: NOT_FOUND, 409: { description: 'The name is taken.' } },
    handler: async (ctx, { params, body }) => {
      ctx.body = await heartbeats.update(actorOf(ctx), params.org, params.id, body, metaOf(ctx));
      noStore(ctx);
    },
  });

  registry.route({
    method: 'delete',
    path: '/organizations/{org}/heartbeats/{id}',
    operationId: 'deleteHeartbeat',
    summary: 'Delete a heartbeat; its alert, if firing, is resolved (editors and above; API keys with the write scope)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: IdParams,
    responses: { 204: { description: 'Deleted.' }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      await heartbeats.delete(actorOf(ctx), params.org, params.id, metaOf(ctx));
      ctx.status = 204;
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/heartbeats/{id}/rotate-token',
    operationId: 'rotateHeartbeatToken',
    summary: 'Give a heartbeat a new ping token; the old one is refused (404) from now on (editors and above; API keys with the write scope)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: IdParams,
    responses: { 200: { description: 'The heartbeat with its new token and ping_url.', schema: HeartbeatSchema }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      ctx.body = await heartbeats.rotateToken(actorOf(ctx), params.org, params.id, metaOf(ctx));
      noStore(ctx);
    },
  });

  registry.route({
    method: 'post',
    path: '/heartbeats/{token}',
    operationId: 'pingHeartbeat',
    summary: 'Ping a heartbeat (no other credential: the token is one); a ping of a missed heartbeat resolves its alert',
    description: 'At most one ping per second per heartbeat, sustained (429 with Retry-After beyond), besides the per-IP API limit. A body, if any, is ignored.',
    tags: TAGS,
    auth: 'none',
    rateLimit: 'api',
    params: PingParams,
    responses: {
      200: { description: 'Recorded.', schema: PingAnswerSchema },
      404: { description: 'No heartbeat has this token.' },
      429: { description: 'Pinged more than once a second.' },
    },
    handler: async (ctx, { params }) => {
      ctx.body = await heartbeats.ping(params.token);
    },
  });
}
