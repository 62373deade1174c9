import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RATE_LIMITERS } from '../core/rate-limiter.js';
import { HttpWindow } from './http-window.js';

export interface HttpMetrics {
  /** Per-app registry (no process-wide default registry), so several apps in one process never clash. */
  registry: Registry;
  /**
   * The duration histogram's child for one label set. The frame middleware keeps what it gets per
   * route and status, so no request hashes labels; routes are templates, so the set is bounded.
   */
  requestDuration(method: string, route: string, status: number): { observe(seconds: number): void };
  /** Requests being processed: a plain counter the frame adjusts and the gauge reads at scrape time. */
  inFlight: { count: number };
  /** The last minute's requests (rate, quantiles, 4xx/5xx) for the admin status; the frame records each. */
  window: HttpWindow;
  /** Counts one 429 answer under the limit that refused it (`other` when none is named). */
  rateLimited(limiter: string | undefined): void;
  /** Registers the process metrics (CPU, memory, event loop, GC) once; later calls do nothing. */
  collectDefault: () => void;
}

/**
 * prom-client defaults that `promtool check metrics` flags: gauges named `_total` (sums of the
 * `nodejs_active_*` gauges beside them, which stay).
 */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

export interface HttpMetricsOptions {
  /** Call collectDefault() right away (default true). */
  defaultMetrics?: boolean;
}

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
  const inFlight = { count: 0 };
  new Gauge({
    name: 'sentinel_http_requests_in_flight',
    help: 'HTTP requests being processed.',
    registers: [registry],
    collect() {
      this.set(inFlight.count);
    },
  });

  let defaultsCollected = false;
  const collectDefault = (): void => {
    if (defaultsCollected) return;
    defaultsCollected = true;
    collectDefaultMetrics({ register: registry });
    for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  };
  if (opts.defaultMetrics !== false) collectDefault();

  const rateLimited = new Counter({
    name: 'sentinel_rate_limited_total',
    help: 'Requests answered 429, by the limit that refused them (see RATE_LIMITERS).',
    labelNames: ['limiter'] as const,
    registers: [registry],
  });
  // Every limit shows from the start, so a rate() over it needs no first 429.
  for (const limiter of RATE_LIMITERS) rateLimited.inc({ limiter }, 0);

  return { registry, requestDuration: (method, route, status) => duration.labels(method, route, String(status)), inFlight, window: new HttpWindow(), rateLimited: (limiter) => rateLimited.inc({ limiter: limiter ?? 'other' }), collectDefault };
}
