import { randomUUID } from 'node:crypto';
import cors from '@koa/cors';
import type { Context, Middleware, ParameterizedContext } from 'koa';
import type { Logger } from 'pino';
import { rateLimitError, type RateLimiter } from '../core/rate-limiter.js';
import type { HttpState } from './context.js';
import { setRateLimitHeaders } from './problem.js';
import { UNMATCHED_ROUTE, routeLabel } from './metrics.js';

export const REQUEST_ID_HEADER = 'X-Request-Id';
const SANE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

type StateCtx = ParameterizedContext<Partial<HttpState>>;

/**
 * Reuses the caller's X-Request-Id (so a proxy's id threads through our logs) only when it is
 * short and plain; anything else could inject into logs or headers, so it is replaced. The header
 * is set before anything else runs, and the problem middleware never clears headers, so error
 * answers carry it too.
 */
export function requestIdMiddleware(): Middleware {
  return async (koaCtx, next) => {
    const ctx = koaCtx as StateCtx;
    const incoming = ctx.get(REQUEST_ID_HEADER);
    const id = SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = id;
    ctx.set(REQUEST_ID_HEADER, id);
    await next();
  };
}

/**
 * Gives each request a child logger and writes one access line when it ends. Never the query
 * string (it may hold tokens), headers (Authorization) or bodies (passwords).
 */
/** Per-request state whose child logger is made on first use: most requests only write the access line. */
class RequestState {
  private child: Logger | undefined;
  constructor(
    private readonly root: Logger,
    readonly requestId: string,
  ) {}
  get log(): Logger {
    return (this.child ??= this.root.child({ request_id: this.requestId }));
  }
}

export function accessLogMiddleware(logger: Logger): Middleware {
  // Access lines hold only method, route template, status and timing, so they skip the redaction
  // pass (the costliest part of logging). Re-made when SIGHUP changes the root logger's level.
  let access = logger.child({}, { redact: [] });
  const accessLog = () => (access.level === logger.level ? access : (access = logger.child({}, { redact: [] })));
  return async (koaCtx, next) => {
    const ctx = koaCtx as StateCtx;
    const started = performance.now();
    const requestId = ctx.state.requestId as string;
    ctx.state = new RequestState(logger, requestId) as unknown as Partial<HttpState>;
    let failed = false;
    try {
      await next();
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      const status = failed ? 500 : ctx.status;
      const route = routeLabel(ctx);
      const line = {
        request_id: requestId,
        method: ctx.method,
        route,
        // Matched paths can carry credentials (POST /heartbeats/{token}); the template says enough.
        ...(route === UNMATCHED_ROUTE ? { path: ctx.path } : {}),
        status,
        duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
      };
      if (status >= 500) accessLog().warn(line, 'request');
      else accessLog().info(line, 'request');
    }
  };
}

// API answers are JSON and never need to load anything; only Swagger UI gets a page-shaped policy.
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
// Swagger UI renders with inline style attributes, hence 'unsafe-inline' for styles only; scripts
// come from our own files (the initializer is a file too), never inline.
const DOCS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export function securityHeadersMiddleware(opts: { docsPrefix?: string } = {}): Middleware {
  const docs = opts.docsPrefix ?? '/docs';
  return async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    const isDocs = ctx.path === docs || ctx.path.startsWith(`${docs}/`);
    ctx.set('Content-Security-Policy', isDocs ? DOCS_CSP : API_CSP);
    // ctx.secure honours X-Forwarded-Proto only when app.proxy (http.trust_proxy) is on.
    if (ctx.secure) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    await next();
  };
}

/**
 * An allow-list: the Origin is echoed back only when configured ("*" admits any origin); for any
 * other origin no Access-Control-Allow-Origin is sent and the browser blocks the read. Bearer
 * tokens, not cookies, so no credentials mode.
 */
export function corsMiddleware(origins: readonly string[]): Middleware {
  const allowAny = origins.includes('*');
  const allowed = new Set(origins);
  const handle = cors({
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
  // Most requests (agents, collectors, scripts) send no Origin: they only need the Vary header
  // that keeps a cache from serving their answer to a browser.
  return (ctx, next) => {
    if (ctx.get('Origin')) return handle(ctx, next);
    ctx.vary('Origin');
    return next();
  };
}

/**
 * Per-client-IP request limit on the API. The client IP is Koa's ctx.ip, which honours
 * X-Forwarded-For only when http.trust_proxy is set. Health probes and /metrics are exempt so a
 * busy load balancer or scraper cannot lock itself out, and so are the paths `exempt` matches
 * (ingest, which has per-organization token buckets of its own).
 */
export function rateLimitMiddleware(limiter: RateLimiter, exempt?: RegExp): Middleware {
  return async (ctx, next) => {
    if (!ctx.path.startsWith('/api/') || ctx.path.startsWith('/api/v1/health') || exempt?.test(ctx.path)) return next();
    const d = limiter.hit(ctx.ip || 'unknown');
    if (!d.allowed) throw rateLimitError(d, `rate limit of ${d.limit} requests per ${Math.round(limiter.windowMs / 1000)} s exceeded`);
    setRateLimitHeaders(ctx, { limit: d.limit, remaining: d.remaining, reset: d.resetSeconds });
    await next();
  };
}
