import type { ParameterizedContext } from 'koa';
import type { Logger } from 'pino';

/**
 * What the kit's middleware puts on `ctx.state`. Features that add their own state (the auth
 * feature's actor, say) extend this interface by module augmentation instead of casting:
 *
 *   declare module '../../http/context.js' { interface HttpState { actor?: Actor } }
 */
export interface HttpState {
  /** Set by the request-id middleware before anything else runs. */
  requestId: string;
  /** Child logger carrying request_id; use it instead of the root logger inside a request. */
  log: Logger;
  /** OpenAPI path of the matched registry route, e.g. "/organizations/{org}" (metrics label). */
  routeTemplate?: string;
}

export type HttpContext = ParameterizedContext<HttpState>;
