import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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
  /** Registers the process metrics (CPU, memory, event loop, GC) once; later calls do nothing. */
  collectDefault: () => void;
}

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
  };
  if (opts.defaultMetrics !== false) collectDefault();

  return { registry, requestDuration: (method, route, status) => duration.labels(method, route, String(status)), inFlight, window: new HttpWindow(), collectDefault };
}
