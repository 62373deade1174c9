import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ADMIN_ENV, TEMPLATE_ENV, withDatabase } from './global-setup.js';

export function adminUrl(): string {
  const url = process.env[ADMIN_ENV];
  if (!url) throw new Error('the test database is not set up (run through mocha with .mocharc.json)');
  return url;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: adminUrl() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A new database cloned from the migrated template; returns its URL. */
export async function cloneDatabase(): Promise<string> {
  const name = `t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`create database ${name} template ${process.env[TEMPLATE_ENV]}`));
  return withDatabase(adminUrl(), name);
}

/** An empty database (no migrations), for migration tests. */
export async function emptyDatabase(): Promise<string> {
  const name = `t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`create database ${name}`));
  return withDatabase(adminUrl(), name);
}

export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await admin((c) => c.query(`drop database if exists ${name} with (force)`));
}

/** Rows of one SQL statement on the given database (a short-lived connection). */
export async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/**
 * Another session on `url` holding `lock` (a LOCK TABLE statement) in an open transaction until
 * `release()` (idempotent: call it early and again in a finally).
 */
export async function holdingLock(url: string, lock: string): Promise<{ release: () => Promise<void> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  let open = true;
  const release = async () => {
    if (!open) return;
    open = false;
    await c.query('commit').catch(() => undefined);
    await c.end();
  };
  try {
    await c.query('begin');
    await c.query(lock);
  } catch (err) {
    await release();
    throw err;
  }
  return { release };
}
