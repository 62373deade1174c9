import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import pg from 'pg';
import { pino } from 'pino';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { migratorConfig } from '../../src/db/migration-source.js';
import { removeRunScratchDir } from './scratch.js';

/**
 * Once per test run: a PostgreSQL (the embedded one, or SENTINEL_TEST_DATABASE_URL) and a
 * migrated template database that every test file clones (see db.ts).
 */
let embedded: EmbeddedPostgres | null = null;
let dataDir: string | null = null;

export const TEMPLATE_ENV = 'SENTINEL_TEST_TEMPLATE_DB';
export const ADMIN_ENV = 'SENTINEL_TEST_ADMIN_URL';

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function mochaGlobalSetup(): Promise<void> {
  let adminUrl = process.env.SENTINEL_TEST_DATABASE_URL;
  if (!adminUrl) {
    dataDir = mkdtempSync(join(tmpdir(), 'sentinel-test-'));
    chmodSync(dataDir, 0o755);
    embedded = new EmbeddedPostgres({ dataDir, port: 0, osUser: 'sentinel', logger: pino({ level: 'warn' }), supervise: false });
    adminUrl = withDatabase(await embedded.start(), 'postgres');
  }
  const template = `sentinel_tpl_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${template}`);
  await admin.query(`create database ${template}`);
  await admin.end();
  const knex = knexFactory({ client: 'pg', connection: withDatabase(adminUrl, template) });
  try {
    await knex.migrate.latest(migratorConfig());
  } finally {
    await knex.destroy();
  }
  process.env[ADMIN_ENV] = adminUrl;
  process.env[TEMPLATE_ENV] = template;
  console.log(`  test database: ${embedded ? 'embedded PostgreSQL' : 'SENTINEL_TEST_DATABASE_URL'} (template ${template})`);
}

export async function mochaGlobalTeardown(): Promise<void> {
  try {
    const adminUrl = process.env[ADMIN_ENV];
    if (adminUrl) {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      const { rows } = await admin.query<{ datname: string }>(`select datname from pg_database where datname like 't\\_${process.pid}\\_%' or datname = $1`, [process.env[TEMPLATE_ENV]]);
      for (const r of rows) await admin.query(`drop database if exists ${r.datname} with (force)`);
      await admin.end();
    }
    if (embedded) await embedded.stop();
  } finally {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    removeRunScratchDir();
  }
}
