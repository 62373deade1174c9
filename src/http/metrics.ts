import type { Middleware, ParameterizedContext } from 'koa';
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HttpState } from './context.js';

export interface HttpMetrics {
  /** Per-app registry (no process-wide default registry), so several apps in one process never clash. */
  registry: Registry;
  middleware: Middleware;
  /** Registers the process metrics (CPU, memory, event loop, GC) once; later calls do nothing. */
  collectDefault: () => void;
}

export interface HttpMetricsOptions {
  /** Call collectDefault() right away (default true). */
  defaultMetrics?: boolean;
}

/** Label used for requests no route matched: raw paths as labels would explode cardinality. */
export const UNMATCHED_ROUTE = 'unmatched';

export function createHttpMetrics(opts: HttpMetricsOptions = {}): HttpMetrics {
  const registry = new Registry();
  const duration = new Histogram({
    name: 'sentinel_http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  // A plain counter read at scrape time: per-request Gauge.inc/dec would hash labels twice.
  let inFlightCount = 0;
  new Gauge({
    name: 'sentinel_http_requests_in_flight',
    help: 'HTTP requests being processed.',
    registers: [registry],
    collect() {
      this.set(inFlightCount);
    },
  });
  // One labelled child per (method, route template, status), looked up by a string key instead
  // of prom-client hashing a label object on every request. Bounded: routes are templates.
  const children = new Map<string, { observe(value: number): void }>();
  const observe = (method: string, route: string, status: string, seconds: number): void => {
    const key = `${method} ${route} ${status}`;
    let child = children.get(key);
    if (!child) {
      child = duration.labels(method, route, status);
      children.set(key, child);
    }
    child.observe(seconds);
  };

  let defaultsCollected = false;
  const collectDefault = (): void => {
    if (defaultsCollected) return;
    defaultsCollected = true;
    collectDefaultMetrics({ register: registry });
  };
  if (opts.defaultMetrics !== false) collectDefault();

  const middleware: Middleware = async (koaCtx, next) => {
    const ctx = koaCtx as ParameterizedContext<Partial<HttpState>>;
    const started = performance.now();
    inFlightCount++;
    let failed = false;
    try {
      await next();
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      inFlightCount--;
      observe(ctx.method, routeLabel(ctx), String(failed ? 500 : ctx.status), (performance.now() - started) / 1000);
    }
  };

  return { registry, middleware, collectDefault };
}

/**
 * The registry sets the OpenAPI template; routes added outside it (/metrics, /docs, extraRoutes)
 * fall back to the router's matched pattern, which is still a template and never the raw path.
 */
export function routeLabel(ctx: ParameterizedContext<Partial<HttpState>>): string {
  if (ctx.state.routeTemplate) return ctx.state.routeTemplate;
  const matched = (ctx as unknown as { _matchedRoute?: unknown })._matchedRoute;
  return typeof matched === 'string' ? matched : UNMATCHED_ROUTE;
}
