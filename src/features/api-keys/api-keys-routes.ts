import { actorOf, metaOf, type HttpContext } from '../../http/context.js';
import { OrgParams, PageQuerySchema, orgParamsWith, pageOf, uuid } from '../../http/schemas.js';
import type { ApiRegistry } from '../../http/registry.js';
import { ApiKeySchema, ApiKeyWithSecretSchema, CreateApiKeyBody } from './api-keys-schemas.js';
import type { ApiKeysService } from './api-keys-service.js';

const TAGS = ['api-keys'];
const KeyParams = orgParamsWith({ id: uuid('API key id.') });
const NOT_FOUND = { description: 'No such organization or key, or not visible to the caller.' };
const FORBIDDEN = { description: "The caller's role or the key's scopes do not allow it." };

// A secret in a response must not linger in caches.
const noStore = (ctx: HttpContext) => ctx.set('Cache-Control', 'no-store');

/**
 * Listing accepts API keys (`admin` scope), so automation can audit its org's keys. Creating,
 * rotating and revoking need a user token (role admin or owner): a leaked key must not be able
 * to mint or keep renewing keys.
 */
export function registerApiKeyRoutes(registry: ApiRegistry, apiKeys: ApiKeysService): void {
  registry.route({
    method: 'get',
    path: '/organizations/{org}/api-keys',
    operationId: 'listApiKeys',
    summary: "List the organization's live API keys (never their secrets)",
    tags: TAGS,
    auth: 'any',
    permission: 'apikey.read',
    params: OrgParams,
    query: PageQuerySchema,
    responses: { 200: { description: 'A page of keys.', schema: pageOf(ApiKeySchema) }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      ctx.body = await apiKeys.list(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/api-keys',
    operationId: 'createApiKey',
    summary: 'Create an API key; the answer holds its secret, shown this once',
    tags: TAGS,
    auth: 'user',
    params: OrgParams,
    body: CreateApiKeyBody,
    responses: { 201: { description: 'The key with its secret.', schema: ApiKeyWithSecretSchema }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, body }) => {
      const created = await apiKeys.create(actorOf(ctx), params.org, body, metaOf(ctx));
      noStore(ctx);
      ctx.status = 201;
      ctx.body = created;
    },
  });

  registry.route({
    method: 'delete',
    path: '/organizations/{org}/api-keys/{id}',
    operationId: 'revokeApiKey',
    summary: 'Revoke an API key (refused from its next request on)',
    tags: TAGS,
    auth: 'user',
    params: KeyParams,
    responses: { 204: { description: 'Revoked.' }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      await apiKeys.revoke(actorOf(ctx), params.org, params.id, metaOf(ctx));
      ctx.status = 204;
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/api-keys/{id}/rotate',
    operationId: 'rotateApiKey',
    summary: 'Give an API key a new secret; the old one keeps working for auth.api_key_rotation_grace',
    tags: TAGS,
    auth: 'user',
    params: KeyParams,
    responses: {
      200: { description: 'The key with its new secret; previous_valid_until says when the old one stops.', schema: ApiKeyWithSecretSchema },
      403: FORBIDDEN,
      404: NOT_FOUND,
      409: { description: 'The key has expired.' },
    },
    handler: async (ctx, { params }) => {
      const rotated = await apiKeys.rotate(actorOf(ctx), params.org, params.id, metaOf(ctx));
      noStore(ctx);
      ctx.body = rotated;
    },
  });
}
