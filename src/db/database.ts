import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { EmbeddedPostgres } from './embedded-postgres.js';
import { PoolRegistry } from './pool-stats.js';

// int8 (count(*), bigint ids) as JS numbers: every value we store fits in 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export type Role = 'daemon' | 'cli';

export interface Database {
  knex: Knex;
  /** Connection URL in use (contains a password: never log it). */
  url: string;
  embedded: EmbeddedPostgres | null;
  /** The app's connection pools (this one as 'sentinel'); who opens another adds it (status, /metrics). */
  pools: PoolRegistry;
  /** Round trip to PostgreSQL; throws when it is not reachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A pool of its own (e.g. for telemetry queries): its size and the application_name it shows in pg_stat_activity. */
export interface PoolOptions {
  max: number;
  applicationName: string;
}

export function createKnex(url: string, config: Config, logger: Logger, pool: PoolOptions = { max: config.database.pool_max, applicationName: 'sentinel' }): Knex {
  const knex = knexFactory({
    client: 'pg',
    connection: {
      connectionString: url,
      connectionTimeoutMillis: config.database.connect_timeout_ms,
      statement_timeout: config.database.statement_timeout_ms,
      application_name: pool.applicationName,
    },
    pool: {
      min: 0,
      max: pool.max,
      // A dead server must turn into a fast 503, not a queue of waiting requests.
      acquireTimeoutMillis: config.database.connect_timeout_ms + 500,
      createTimeoutMillis: config.database.connect_timeout_ms,
      idleTimeoutMillis: 30_000,
      propagateCreateError: true,
    },
    acquireConnectionTimeout: config.database.connect_timeout_ms + 1000,
    log: {
      warn: (m: unknown) => logger.warn({ knex: m }, 'knex warning'),
      error: (m: unknown) => logger.error({ knex: m }, 'knex error'),
      deprecate: (m: unknown) => logger.debug({ knex: m }, 'knex deprecation'),
      debug: () => undefined,
    },
  });
  return knex;
}

/**
 * Runs `fn` with one connection of `knex`'s pool, node-postgres's own client (for what knex does
 * not do: COPY, several statements in one simple query, statements outside a transaction, session
 * settings), and gives it back to the pool after, however `fn` ended. `C`: the part of the client
 * the caller uses (node-postgres's Client unless it says otherwise). Session settings stay on the
 * connection: a caller on a pool others use restores them, or ends the connection (`end()`, the
 * pool then discards it) when it cannot; a pool of the caller's own may keep its settings.
 */
export async function withPooledConnection<T, C = pg.Client>(knex: Knex, fn: (conn: C) => Promise<T>): Promise<T> {
  const client = knex.client as { acquireConnection(): Promise<C>; releaseConnection(conn: C): Promise<unknown> };
  const conn = await client.acquireConnection();
  try {
    return await fn(conn);
  } finally {
    await client.releaseConnection(conn);
  }
}

/**
 * Open the configured database: an external server from database.url, or the embedded
 * default (started, or joined when another Sentinel process already runs it).
 */
export async function openDatabase(config: Config, logger: Logger, role: Role): Promise<Database> {
  let embedded: EmbeddedPostgres | null = null;
  let url = config.database.url;
  if (!url) {
    embedded = new EmbeddedPostgres({
      dataDir: config.data_dir,
      port: config.database.embedded.port,
      osUser: config.database.embedded.os_user,
      logger,
      supervise: role === 'daemon',
      adoptOrphan: role === 'daemon',
    });
    url = await embedded.start();
  }
  const knex = createKnex(url, config, logger);
  const pools = new PoolRegistry();
  pools.add('sentinel', knex);
  return {
    knex,
    url,
    embedded,
    pools,
    async ping() {
      await knex.raw('select 1');
    },
    async close() {
      await knex.destroy();
      if (embedded) await embedded.stop();
    },
  };
}
