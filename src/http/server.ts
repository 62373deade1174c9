import { createReadStream, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { Router } from '@koa/router';
import Koa, { type Middleware } from 'koa';
import type { Logger } from 'pino';
import getAbsoluteFSPath from 'swagger-ui-dist/absolute-path.js';
import type { Config } from '../config/schema.js';
import type { DomainError } from '../core/errors.js';
import type { HttpMetrics } from './metrics.js';
import type { RateLimiter } from '../core/rate-limiter.js';
import type { RouteTag } from './context.js';
import { DOCS_CSP, frameMiddleware } from './middleware.js';
import { problemAnswerer } from './problem.js';
import { API_PREFIX, type ApiRegistry, type OpenApiInfo } from './registry.js';

export interface HttpServerOptions {
  config: Config;
  logger: Logger;
  registry: ApiRegistry;
  metrics: HttpMetrics;
  classifyError?: (err: unknown) => DomainError | null;
  openapiInfo?: OpenApiInfo;
  /**
   * Per-IP API rate limiter (runs before the body is parsed). Which paths it counts follows the
   * routes' `rateLimit` declarations (registry.rateLimited()).
   */
  apiRateLimiter?: RateLimiter;
}

export interface HttpServer {
  app: Koa;
  /** The bare request handler (no connection tracking): for embedding or in-process tests. */
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  listen(): Promise<{ port: number; host: string }>;
  /** Stops accepting, lets in-flight requests finish for up to graceMs, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

// Longer than nginx's default upstream keepalive_timeout (60 s) so the proxy, not us, closes an
// idle connection: otherwise it may reuse a socket we are closing and answer 502.
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
// Slowloris guards: headers must arrive within 15 s, the whole request (10 MiB body) within 120 s.
const HEADERS_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 120_000;

const DOCS_TYPES: Record<string, string> = { '.js': 'application/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png' };
// Our own page and initializer replace these (the shipped initializer points at the petstore demo).
const DOCS_EXCLUDED = new Set(['index.js', 'absolute-path.js', 'swagger-initializer.js']);

const DOCS_HTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sentinel API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="stylesheet" href="/docs/index.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-initializer.js"></script>
</body>
</html>
`;

const DOCS_INITIALIZER = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '${API_PREFIX}/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout'
  });
});
`;

// ReDoc's standalone bundle reads the document itself from the custom element's spec-url: no
// inline script, so the pages' script-src 'self' holds. Search runs in the page (no worker).
const REDOC_HTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sentinel API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<redoc spec-url="${API_PREFIX}/openapi.json" disable-search="true" hide-download-button="false"></redoc>
<script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
`;
const REDOC_BUNDLE = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');
// The bundle's menu footer shows a logo fetched from Redocly's CDN: the pages' CSP would refuse it,
// but the reader's browser would still try. Nothing of the docs leaves the machine.
const REDOC_CDN_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg';

/** The bundle as served: read once, on the first request for it, with the CDN reference removed. */
function redocBundle(): () => Buffer {
  let bundle: Buffer | undefined;
  return () => (bundle ??= Buffer.from(readFileSync(REDOC_BUNDLE, 'utf8').replaceAll(REDOC_CDN_LOGO, 'data:,'), 'utf8'));
}

function docsAssets(): Map<string, string> {
  const dir = getAbsoluteFSPath();
  const files = new Map<string, string>();
  // A fixed allow-list read once: request paths are looked up, never joined onto the directory.
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && DOCS_TYPES[extname(entry.name)] && !DOCS_EXCLUDED.has(entry.name)) {
      files.set(entry.name, join(dir, entry.name));
    }
  }
  return files;
}

/** Tags the built-in routes' requests with their path, as the registry does for its routes. */
function tagged(template: string, handler: Middleware): Middleware {
  const tag: RouteTag = { template };
  return (ctx, next) => {
    (ctx.state as { route?: RouteTag }).route = tag;
    return handler(ctx, next);
  };
}

/** Pages and their assets get a policy that lets them load our own scripts and styles (the frame sets the API's). */
function page(template: string, handler: Middleware): Middleware {
  return tagged(template, (ctx, next) => {
    ctx.res.setHeader('Content-Security-Policy', DOCS_CSP);
    return handler(ctx, next);
  });
}

function builtinRoutes(router: Router, opts: HttpServerOptions): void {
  const { metrics, registry } = opts;
  router.get('/metrics', tagged('/metrics', async (ctx) => {
    ctx.body = await metrics.registry.metrics();
    ctx.set('Content-Type', metrics.registry.contentType);
  }));

  let openapi: string | undefined;
  router.get(`${API_PREFIX}/openapi.json`, tagged(`${API_PREFIX}/openapi.json`, (ctx) => {
    // Built on first use: by then the composition root has registered every feature's routes.
    openapi ??= JSON.stringify(registry.openapi(opts.openapiInfo ?? { title: 'Sentinel API', version: '0.0.0' }));
    ctx.type = 'application/json';
    ctx.body = openapi;
  }));

  const assets = docsAssets();
  router.get(['/docs', '/docs/'], page('/docs', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = DOCS_HTML;
  }));
  router.get('/docs/swagger-initializer.js', page('/docs/swagger-initializer.js', (ctx) => {
    ctx.type = DOCS_TYPES['.js'];
    ctx.body = DOCS_INITIALIZER;
  }));
  router.get(['/redoc', '/redoc/'], page('/redoc', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = REDOC_HTML;
  }));
  const redoc = redocBundle();
  router.get('/redoc/redoc.standalone.js', page('/redoc/redoc.standalone.js', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.type = DOCS_TYPES['.js'];
    ctx.body = redoc();
  }));
  router.get('/docs/:file', page('/docs/:file', (ctx) => {
    const file = assets.get(ctx.params.file);
    if (!file) return; // left as 404: the frame answers it as a problem
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = createReadStream(file);
    ctx.type = DOCS_TYPES[extname(file)];
  }));
}

/** A middleware made on the first request, when every route is registered. */
function lazy(make: () => Middleware): Middleware {
  let mw: Middleware | undefined;
  return (ctx, next) => (mw ??= make())(ctx, next);
}

function lazyPolicy(make: () => (path: string) => boolean): (path: string) => boolean {
  let policy: ((path: string) => boolean) | undefined;
  return (path) => (policy ??= make())(path);
}

export function createHttpServer(opts: HttpServerOptions): HttpServer {
  const { config, logger, metrics } = opts;
  // Behind proxies, X-Forwarded-For is "<what the client wrote>, …, <what each proxy appended>":
  // only the last proxy_hops entries are believed, so a client cannot choose its own address.
  const app = new Koa({ proxy: config.http.trust_proxy, maxIpsCount: config.http.proxy_hops });
  // Having a listener replaces Koa's console.error default; such errors escaped the problem layer.
  app.on('error', (err: unknown) => logger.error({ err }, 'koa error'));

  const router = new Router();
  builtinRoutes(router, opts);

  // One frame around everything: its headers are set before any route runs, so the 400/413 of
  // a body and the 429 of a limit carry them too (a browser must be able to read a 413 problem
  // from an allowed origin).
  app.use(
    frameMiddleware({
      logger,
      metrics,
      problems: problemAnswerer({ logger, classify: opts.classifyError }),
      corsOrigins: config.http.cors_origins,
      apiRateLimiter: opts.apiRateLimiter,
      // Built lazily: the composition root may register routes after making the server.
      rateLimited: lazyPolicy(() => opts.registry.rateLimited()),
    }),
  );
  // API routes read their JSON bodies themselves, after authentication and with their own limit;
  // raw routes (OTLP takes protobuf too and answers errors in its own format) read theirs, and
  // classify errors as the problem layer does. The registry comes first: nearly every request is
  // one of its routes.
  app.use(
    lazy(() =>
      opts.registry.middleware({ bodyLimitBytes: config.http.api_body_limit_bytes, bulkBodyLimitBytes: config.http.body_limit_bytes, classifyError: opts.classifyError }),
    ),
  );
  app.use(router.routes());
  app.use(router.allowedMethods());

  let server: Server | null = null;
  /** A listen under way: a close meanwhile waits for it (see close). */
  let binding: Promise<void> | null = null;
  let closing: Promise<void> | null = null;
  let draining = false;
  const inFlight = new Set<ServerResponse>();

  const listen = async (): Promise<{ port: number; host: string }> => {
    if (server || binding) throw new Error('HTTP server already listening');
    const handle = app.callback();
    const s = createServer((req, res) => {
      inFlight.add(res);
      // Draining: this connection must not be reused once the answer is out.
      if (draining) res.setHeader('Connection', 'close');
      res.on('close', () => {
        inFlight.delete(res);
        // Its keep-alive socket has just become idle; close it so server.close() can complete.
        if (draining) setImmediate(() => s.closeIdleConnections());
      });
      void handle(req, res);
    });
    s.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    s.headersTimeout = HEADERS_TIMEOUT_MS;
    s.requestTimeout = REQUEST_TIMEOUT_MS;
    binding = new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(config.http.port, config.http.host, () => {
        s.off('error', reject);
        // Before the listen promise settles, so a close that waited for it finds the server.
        server = s;
        resolve();
      });
    });
    try {
      await binding;
    } finally {
      binding = null;
    }
    const addr = s.address() as AddressInfo;
    logger.info({ host: addr.address, port: addr.port }, 'HTTP server listening');
    return { port: addr.port, host: addr.address };
  };

  const close = async (graceMs: number): Promise<void> => {
    // Closing while a listen is under way: without waiting, there is nothing to close yet, this
    // would return at once, and the server would then start listening after it "closed".
    if (binding) await binding.catch(() => undefined);
    const s = server;
    if (!s) return;
    closing ??= new Promise<void>((resolve) => {
      draining = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
      const force = setTimeout(() => {
        logger.warn({ in_flight: inFlight.size, grace_ms: graceMs }, 'grace period over; closing remaining connections');
        s.closeAllConnections();
      }, graceMs);
      s.close(() => {
        clearTimeout(force);
        server = null;
        closing = null;
        draining = false;
        logger.info('HTTP server closed');
        resolve();
      });
      s.closeIdleConnections();
    });
    return closing;
  };

  return { app, callback: () => app.callback(), listen, close };
}
