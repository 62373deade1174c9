import type { Knex } from 'knex';
import { Gauge, type Registry } from 'prom-client';

/** One connection pool as the status answer and /metrics show it. */
export interface PoolStats {
  /** The pool's application_name in pg_stat_activity. */
  name: string;
  max: number;
  in_use: number;
  idle: number;
  /** Acquires waiting for a connection. */
  waiting: number;
}

/** What tarn (knex's pool) tells about itself; undefined once the knex is destroyed. */
interface TarnLike {
  max: number;
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/**
 * The app's connection pools by name (the main one, the telemetry query pool, the jobs kit's):
 * whoever opens a pool adds it here, and the status answer and the pool gauges read the figures
 * tarn keeps in memory (no query). One per app, handed around with the database.
 */
export class PoolRegistry {
  readonly #pools = new Map<string, Knex>();

  /** Adds `knex`'s pool under `name`; a later pool of the same name replaces it. */
  add(name: string, knex: Knex): Knex {
    this.#pools.set(name, knex);
    return knex;
  }

  /** Every pool still open, in the order they were added. */
  stats(): PoolStats[] {
    const out: PoolStats[] = [];
    for (const [name, knex] of this.#pools) {
      const pool = (knex.client as { pool?: TarnLike }).pool;
      if (!pool) continue;
      out.push({ name, max: pool.max, in_use: pool.numUsed(), idle: pool.numFree(), waiting: pool.numPendingAcquires() });
    }
    return out;
  }
}

/**
 * `sentinel_db_pool_connections{pool,state="in_use|idle"}` and `sentinel_db_pool_waiting{pool}`,
 * read from the pools at scrape time (nothing is counted per query).
 */
export function registerPoolMetrics(registry: Registry, pools: PoolRegistry): void {
  new Gauge({
    name: 'sentinel_db_pool_connections',
    help: 'Connections of each database pool by state: in_use (lent to a query or transaction) or idle.',
    labelNames: ['pool', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of pools.stats()) {
        this.set({ pool: p.name, state: 'in_use' }, p.in_use);
        this.set({ pool: p.name, state: 'idle' }, p.idle);
      }
    },
  });
  new Gauge({
    name: 'sentinel_db_pool_waiting',
    help: 'Acquires of each database pool waiting for a connection.',
    labelNames: ['pool'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of pools.stats()) this.set({ pool: p.name }, p.waiting);
    },
  });
}
