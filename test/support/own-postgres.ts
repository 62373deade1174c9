import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import { pino } from 'pino';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { migratorConfig } from '../../src/db/migration-source.js';

/** A temporary data directory the embedded server's unprivileged user can enter. */
export function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-pg-'));
  chmodSync(dir, 0o755);
  return dir;
}

export interface OwnPostgres {
  server: EmbeddedPostgres;
  url: string;
  /** Stops the server and removes its directory. */
  remove(): Promise<void>;
}

/**
 * A PostgreSQL of the test's own (not the shared test server), migrated, for tests that stop
 * and start the database under a running app.
 */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = tempDataDir();
  const server = new EmbeddedPostgres({ dataDir: dir, port: 0, osUser: 'sentinel', logger: pino({ level: 'silent' }) });
  const url = await server.start();
  const knex = knexFactory({ client: 'pg', connection: url });
  try {
    await knex.migrate.latest(migratorConfig());
  } finally {
    await knex.destroy();
  }
  return {
    server,
    url,
    remove: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
