import type { ParameterizedContext } from 'koa';
import type { Logger } from 'pino';
import type { Actor, RequestMeta } from '../core/actor.js';
import { DomainError } from '../core/errors.js';

/**
 * What the kit's middleware puts on `ctx.state`. Features that add their own state (the auth
 * feature's actor, say) extend this interface by module augmentation instead of casting:
 *
 *   declare module '../../http/context.js' { interface HttpState { actor?: Actor } }
 */
export interface HttpState {
  /** Set by the frame middleware before anything else runs. */
  requestId: string;
  /** Child logger carrying request_id; use it instead of the root logger inside a request. */
  log: Logger;
  /** The matched route (made when it was registered): its template labels metrics and the access line. */
  route?: RouteTag;
  /** Set by the authenticator for every route that is not public; the access line names its id. */
  actor?: Actor;
  /** The limit that refused the request (a 429), for sentinel_rate_limited_total. */
  rateLimiter?: string;
}

/** A route as metrics and the access log name it, e.g. "/organizations/{org}": never the raw path. */
export interface RouteTag {
  readonly template: string;
}

export type HttpContext = ParameterizedContext<HttpState>;

/** The authenticated actor of a request. */
export function actorOf(ctx: HttpContext): Actor {
  const actor = ctx.state.actor;
  if (!actor) throw new DomainError('unauthenticated', 'authentication required');
  return actor;
}

/** Client address (X-Forwarded-For only with http.trust_proxy) and user agent, for the audit log. */
export const metaOf = (ctx: HttpContext): RequestMeta => ({ ip: ctx.ip || null, userAgent: ctx.get('User-Agent') || null });
