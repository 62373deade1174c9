import { Counter, Gauge, type Registry } from 'prom-client';

/** The names of the process-level metrics, in one place. */
export const PROCESS_METRICS = {
  buildInfo: 'sentinel_build_info',
  embeddedUp: 'sentinel_embedded_postgres_up',
  embeddedRestarts: 'sentinel_embedded_postgres_restarts_total',
} as const;

/** What the embedded PostgreSQL's supervisor tells (src/db/embedded-postgres.ts). */
export interface EmbeddedPostgresHealth {
  readonly running: boolean;
  readonly restarts: number;
}

/**
 * The daemon's own metrics beside the HTTP kit's and the modules': which build runs (an info
 * metric, joined on in queries: `* on(instance) group_left(version) sentinel_build_info`) and,
 * on the embedded database only, whether its server is up and how often the supervisor had to
 * bring it back. With an external database those two are absent (its exporter says more).
 */
export function registerProcessMetrics(registry: Registry, opts: { version: string; embedded: EmbeddedPostgresHealth | null }): void {
  new Gauge({
    name: PROCESS_METRICS.buildInfo,
    help: 'Always 1: the running Sentinel version and the Node.js version it runs on.',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  }).set({ version: opts.version, node_version: process.versions.node }, 1);

  const embedded = opts.embedded;
  if (!embedded) return;
  new Gauge({
    name: PROCESS_METRICS.embeddedUp,
    help: "1 while the embedded PostgreSQL's server process runs, 0 while it is down (the supervisor restarts it).",
    registers: [registry],
    collect() {
      this.set(embedded.running ? 1 : 0);
    },
  });
  new Counter({
    name: PROCESS_METRICS.embeddedRestarts,
    help: 'Times this process restarted the embedded PostgreSQL after it exited unexpectedly.',
    registers: [registry],
    collect() {
      // The supervisor keeps the count (it only ever grows); the counter shows it.
      this.reset();
      this.inc(embedded.restarts);
    },
  });
}
