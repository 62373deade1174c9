import { Type } from '@sinclair/typebox';
import { SYSTEM_ACTOR, type Actor } from '../../core/actor.js';
import { DomainError } from '../../core/errors.js';
import { rateLimitError, type RateLimiter } from '../../core/rate-limiter.js';
import { actorOf, metaOf, type HttpContext } from '../../http/context.js';
import type { ApiRegistry, Authenticator } from '../../http/registry.js';
import { LoginBodySchema, TokenPairSchema } from './auth-schemas.js';
import { API_KEY_PREFIX, type AuthService } from './auth-service.js';

// Credentials in URLs end up in proxy logs and browser history.
const QUERY_CREDENTIALS = ['access_token', 'token', 'api_key', 'apikey', 'key'];

function unauthenticated(ctx: HttpContext, message: string): DomainError {
  ctx.set('WWW-Authenticate', 'Bearer realm="sentinel"');
  return new DomainError('unauthenticated', message);
}

/**
 * Bearer tokens → actor, for the registry: `user` routes take access tokens, `any` routes API keys too.
 * `failuresPerIp` (rate_limits.auth_failures_per_minute_per_ip) counts credentials refused per
 * client address on every route, ingest and OTLP included (those are exempt from the per-IP
 * request limit): without it any made-up `snt_…` key costs a database lookup, unlimited. Over the
 * limit, a presented credential is refused with 429 before it is looked up. Checked before and
 * counted after the lookup, so requests already in flight when the limit is reached still finish:
 * an overshoot bounded by one client's concurrent requests, in exchange for valid credentials
 * never being refused for a burst of their own successes. `isLocalAdmin` recognizes the local
 * admin token, taken only on routes that declare `localAdmin`.
 */
export function createAuthenticator(auth: AuthService, failuresPerIp: RateLimiter, isLocalAdmin: (token: string) => boolean = () => false): Authenticator {
  return async (ctx, route) => {
    if (route.auth === 'none') return;
    if (QUERY_CREDENTIALS.some((k) => ctx.query[k] !== undefined)) {
      throw unauthenticated(ctx, 'credentials in the query string are refused; send Authorization: Bearer <token>');
    }
    const header = ctx.get('Authorization');
    // RFC 7235 §2.1: the auth scheme is case-insensitive ("bearer", "BEARER" are Bearer).
    const m = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(header);
    if (!m) throw unauthenticated(ctx, header ? 'malformed Authorization header' : 'authentication required');
    const token = m[1];
    // 403, not 401: the client did present a credential, of a kind this route never accepts;
    // a 401 would tell it to authenticate again with the same key, forever.
    if (route.auth === 'user' && token.startsWith(API_KEY_PREFIX)) throw new DomainError('forbidden', 'this endpoint needs a user token, not an API key');
    const client = ctx.ip || 'unknown';
    const seen = failuresPerIp.peek(client);
    if (seen.remaining === 0) throw rateLimitError(seen, 'too many failed authentications from this address', 'auth_failures_ip');
    // Only where the route says so (GET /admin/status): anywhere else it is an invalid token (401).
    if (route.localAdmin && isLocalAdmin(token)) {
      ctx.state.actor = SYSTEM_ACTOR;
      return;
    }
    try {
      ctx.state.actor = await auth.authenticate(token, ctx.ip || null);
    } catch (err) {
      if (err instanceof DomainError && err.code === 'unauthenticated') {
        failuresPerIp.hit(client);
        throw unauthenticated(ctx, err.message);
      }
      throw err;
    }
  };
}


export interface AuthRouteDeps {
  auth: AuthService;
  /** GET /auth/me: the caller's profile (the users feature presents it). */
  profile(actor: Actor): Promise<unknown>;
  profileSchema: ReturnType<typeof Type.Object>;
}

export function registerAuthRoutes(registry: ApiRegistry, deps: AuthRouteDeps): void {
  const { auth } = deps;
  registry.route({
    method: 'post',
    path: '/auth/login',
    operationId: 'login',
    summary: 'Exchange email and password (and a 2FA code when enabled) for tokens',
    tags: ['auth'],
    auth: 'none',
    body: LoginBodySchema,
    responses: { 200: { description: 'Tokens.', schema: TokenPairSchema }, 401: { description: 'Invalid credentials or 2FA code.' }, 429: { description: 'Too many attempts.' } },
    handler: async (ctx, { body }) => {
      ctx.body = await auth.login(body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'post',
    path: '/auth/refresh',
    operationId: 'refreshToken',
    summary: 'Exchange a refresh token for a new pair (the old one is spent; reusing it revokes the session)',
    tags: ['auth'],
    auth: 'none',
    body: Type.Object({ refresh_token: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
    responses: { 200: { description: 'New tokens.', schema: TokenPairSchema }, 401: { description: 'Invalid, expired or reused refresh token.' } },
    handler: async (ctx, { body }) => {
      ctx.body = await auth.refresh(body.refresh_token, metaOf(ctx));
    },
  });

  registry.route({
    method: 'post',
    path: '/auth/logout',
    operationId: 'logout',
    summary: 'Revoke the current session (its access and refresh tokens stop working)',
    tags: ['auth'],
    auth: 'user',
    responses: { 204: { description: 'Signed out.' } },
    handler: async (ctx) => {
      await auth.logout(actorOf(ctx), metaOf(ctx));
      ctx.status = 204;
    },
  });

  registry.route({
    method: 'get',
    path: '/auth/me',
    operationId: 'me',
    summary: 'The signed-in user with their memberships',
    tags: ['auth'],
    auth: 'user',
    responses: { 200: { description: 'The user.', schema: deps.profileSchema } },
    handler: async (ctx) => {
      ctx.body = await deps.profile(actorOf(ctx));
    },
  });
}
