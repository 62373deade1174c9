import { randomUUID } from 'node:crypto';
import cors from '@koa/cors';
import type { Context, Middleware, Next, ParameterizedContext } from 'koa';
import type { Logger } from 'pino';
import type { Actor } from '../core/actor.js';
import { rateLimitError, type RateLimiter } from '../core/rate-limiter.js';
import type { RouteTag } from './context.js';
import type { HttpMetrics } from './metrics.js';
import type { ProblemAnswerer } from './problem.js';

export const REQUEST_ID_HEADER = 'X-Request-Id';
const SANE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Path segments that are credentials (the heartbeat ping's token, POST /api/v1/heartbeats/{token}):
 * a request no route took (a GET there, a trailing segment) has its raw path logged, minus these.
 */
const CREDENTIAL_IN_PATH = /(\/heartbeats\/)[^/]+/g;

/** The tag of requests no route took: raw paths as labels would explode the metrics' cardinality. */
export const UNMATCHED: RouteTag = { template: 'unmatched' };

// API answers are JSON and never need to load anything; pages (Swagger UI) set DOCS_CSP themselves.
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/**
 * For HTML pages and their assets. Swagger UI renders with inline style attributes, hence
 * 'unsafe-inline' for styles only; scripts come from our own files, never inline.
 */
export const DOCS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
  ['Referrer-Policy', 'no-referrer'],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['Content-Security-Policy', API_CSP],
];
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * Per-request state. The child logger carrying request_id is made on first use: most requests
 * only write the access line, which has its own per-route logger.
 */
class RequestState {
  private child: Logger | undefined;
  route: RouteTag | undefined = undefined;
  actor: Actor | undefined = undefined;
  rateLimiter: string | undefined = undefined;
  constructor(
    private readonly root: Logger,
    readonly requestId: string,
  ) {}
  get log(): Logger {
    return (this.child ??= this.root.child({ request_id: this.requestId }));
  }
}

/** Who made the request, for the access line: ids only, never a token or key secret. */
function actorLabel(actor: Actor | undefined): string | undefined {
  if (!actor) return undefined;
  if (actor.kind === 'user') return `user:${actor.userId}`;
  if (actor.kind === 'apikey') return `apikey:${actor.keyId}`;
  return undefined;
}

interface Observer {
  observe(seconds: number): void;
}

/** What the frame keeps per (route, method): made on the first request, reused by every later one. */
interface RouteRecord {
  /** The access logger with `method` and `route` bound: pino serializes bindings once, not per line. */
  log: Logger;
  durations: Map<number, Observer>;
}

export interface FrameOptions {
  logger: Logger;
  metrics: HttpMetrics;
  problems: ProblemAnswerer;
  /** Browser origins allowed to read answers (config http.cors_origins). */
  corsOrigins: readonly string[];
  /** Per-client-IP limit on /api/ paths; absent: no limit. */
  apiRateLimiter?: RateLimiter;
  /**
   * Whether a path counts against the per-IP limit. Built from the route declarations when the
   * routes are registered (RouteDef.rateLimit), so nothing here names a path.
   */
  rateLimited?: (path: string) => boolean;
  /** Send HSTS on requests that arrived over TLS (ctx.secure, which honours http.trust_proxy). */
  hsts?: boolean;
}

/**
 * Everything every request gets, in one middleware: the request id, security headers, CORS, the
 * per-IP limit, problem+json for whatever is thrown (and for the router's bare 404/405/501),
 * the duration metric and one access line. One function instead of seven: each Koa layer costs
 * a closure, a promise and a dispatch, and the per-route parts (labels, the access logger's
 * bindings, histogram children) are made once per route instead of once per request.
 *
 * The access line holds the method, route template (the raw path only when no route matched:
 * matched paths can carry credentials, like POST /heartbeats/{token}), status, duration, the
 * client address (ctx.ip: X-Forwarded-For only as far as http.trust_proxy/proxy_hops allow) and
 * the actor's id; never the query string, headers or bodies. Access lines skip the redaction pass,
 * the costliest part of logging, because they hold nothing else.
 */
export function frameMiddleware(opts: FrameOptions): Middleware {
  const { logger, metrics, problems, apiRateLimiter: limiter } = opts;
  const rateLimited = opts.rateLimited ?? ((path: string) => path.startsWith('/api/'));
  const windowSeconds = limiter ? Math.round(limiter.windowMs / 1000) : 0;
  const corsHandler = opts.corsOrigins.length > 0 ? corsMiddleware(opts.corsOrigins) : null;
  const hsts = opts.hsts !== false;

  let records = new Map<RouteTag, Map<string, RouteRecord>>();
  // Per-route loggers copy the root's level when made; SIGHUP may change it, and then they are re-made.
  let level = logger.level;
  const recordOf = (tag: RouteTag, method: string): RouteRecord => {
    if (logger.level !== level) {
      level = logger.level;
      records = new Map();
    }
    let byMethod = records.get(tag);
    if (!byMethod) records.set(tag, (byMethod = new Map()));
    let record = byMethod.get(method);
    if (!record) {
      record = { log: logger.child({ method, route: tag.template }, { redact: [] }), durations: new Map() };
      byMethod.set(method, record);
    }
    return record;
  };

  return async (koaCtx, next) => {
    const started = performance.now();
    const ctx = koaCtx as unknown as ParameterizedContext<RequestState>;
    const res = ctx.res;
    const incoming = ctx.req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const state = new RequestState(logger, requestId);
    ctx.state = state;
    // Straight onto the Node response: Koa's ctx.set adds nothing for fixed string values. Set
    // before anything can fail, and problem answers never clear headers, so errors carry them too.
    res.setHeader(REQUEST_ID_HEADER, requestId);
    for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value);
    if (hsts && ctx.secure) res.setHeader('Strict-Transport-Security', HSTS);

    metrics.inFlight.count++;
    try {
      const inner: Next = limiter ? () => limitThenNext(ctx, next, limiter, rateLimited, windowSeconds) : next;
      if (!corsHandler) await inner();
      else if (ctx.req.headers.origin) await corsHandler(koaCtx, inner);
      else {
        // Agents, collectors and scripts send no Origin: they only need the Vary header that
        // keeps a cache from serving their answer to a browser.
        res.setHeader('Vary', 'Origin');
        await inner();
      }
      problems.settle(koaCtx);
    } catch (err) {
      problems.answer(koaCtx, err);
    } finally {
      metrics.inFlight.count--;
      const elapsed = performance.now() - started;
      const status = ctx.status;
      const tag = state.route ?? UNMATCHED;
      const record = recordOf(tag, ctx.method);
      let duration = record.durations.get(status);
      if (!duration) record.durations.set(status, (duration = metrics.requestDuration(ctx.method, tag.template, status)));
      duration.observe(elapsed / 1000);
      metrics.window.record(status, elapsed);
      if (status === 429) metrics.rateLimited(state.rateLimiter);
      const line: Record<string, unknown> = { request_id: requestId, status, duration_ms: Math.round(elapsed * 1000) / 1000, ip: ctx.ip };
      const actor = actorLabel(state.actor);
      if (actor) line.actor = actor;
      if (tag === UNMATCHED) line.path = ctx.path.replace(CREDENTIAL_IN_PATH, '$1{token}');
      if (status >= 500) record.log.warn(line, 'request');
      else record.log.info(line, 'request');
    }
  };
}

/**
 * The per-IP limit runs before routing and before the body is read: a client over it costs one
 * map lookup. Health probes and ingest are left out by their route declarations (a busy load
 * balancer must not lock itself out; ingest has per-organization token buckets).
 */
function limitThenNext(ctx: Context, next: Next, limiter: RateLimiter, rateLimited: (path: string) => boolean, windowSeconds: number): Promise<void> {
  const path = ctx.path;
  if (!rateLimited(path)) return next();
  const d = limiter.hit(ctx.ip || 'unknown');
  const res = ctx.res;
  res.setHeader('RateLimit-Limit', String(d.limit));
  res.setHeader('RateLimit-Remaining', String(d.remaining));
  res.setHeader('RateLimit-Reset', String(d.resetSeconds));
  if (!d.allowed) throw rateLimitError(d, `rate limit of ${d.limit} requests per ${windowSeconds} s exceeded`, 'api');
  return next();
}

/**
 * An allow-list: the Origin is echoed back only when configured ("*" admits any origin); for any
 * other origin no Access-Control-Allow-Origin is sent and the browser blocks the read. Bearer
 * tokens, not cookies, so no credentials mode. The frame calls it only for requests with an Origin.
 */
export function corsMiddleware(origins: readonly string[]): Middleware {
  const allowAny = origins.includes('*');
  const allowed = new Set(origins);
  return cors({
    origin: (ctx: Context) => {
      const origin = ctx.get('Origin');
      if (!origin) return '';
      return allowAny || allowed.has(origin) ? origin : '';
    },
    allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ['Authorization', 'Content-Type', 'Content-Encoding', 'X-Request-Id'],
    exposeHeaders: ['X-Request-Id', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Location'],
    maxAge: 600,
  });
}

