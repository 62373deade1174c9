import { readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import { packageRoot } from '../config/paths.js';
import { SQLSTATE, sqlState } from './pg-errors.js';

const here = fileURLToPath(import.meta.url);
/** Compiled code runs from dist/ and loads dist/migrations/*.js; tests (tsx) load migrations/*.ts. */
export function migrationsDir(): string {
  const root = packageRoot();
  return here.includes(`${join(root, 'dist')}/`) ? join(root, 'dist', 'migrations') : join(root, 'migrations');
}

interface MigrationFile {
  name: string;
  path: string;
}

/**
 * knex migration source over the compiled migrations folder. Names are recorded without their
 * extension so that the same database is "current" for both the .ts and the compiled .js files.
 */
export class FolderMigrationSource implements Knex.MigrationSource<MigrationFile> {
  constructor(private readonly dir: string = migrationsDir()) {}

  async getMigrations(): Promise<MigrationFile[]> {
    return readdirSync(this.dir)
      .filter((f) => /^\d{14}_[a-z0-9_]+\.(js|ts)$/.test(f) && !f.endsWith('.d.ts'))
      .sort()
      .map((f) => ({ name: basename(f, extname(f)), path: join(this.dir, f) }));
  }

  getMigrationName(m: MigrationFile): string {
    return m.name;
  }

  async getMigration(m: MigrationFile): Promise<Knex.Migration> {
    return (await import(pathToFileURL(m.path).href)) as Knex.Migration;
  }
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

export function migratorConfig(): Knex.MigratorConfig {
  return { migrationSource: new FolderMigrationSource(), tableName: 'knex_migrations' };
}

export async function migrationStatus(knex: Knex): Promise<MigrationStatus> {
  const [done, pending] = (await knex.migrate.list(migratorConfig())) as [{ name: string }[], MigrationFile[]];
  return { applied: done.map((d) => d.name), pending: pending.map((p) => p.name) };
}

/** What `migrate rollback` would undo, measured before anything is dropped. */
export interface RollbackPlan {
  /** Migrations to undo, in the order they are undone (newest first). */
  migrations: string[];
  /** True when the first batch (an install's base schema) is among them. */
  firstBatch: boolean;
  /** Tables the down migrations drop (partitions not listed); null when the dry run failed. */
  tables: string[] | null;
  /** Why the tables could not be listed. */
  dryRunError?: string;
}

class DryRunDone extends Error {}

/*
 * The dry run's DROPs take ACCESS EXCLUSIVE locks held until its rollback, and a lock it waits
 * for queues every later query on that table behind it: against a running daemon, the preview
 * that is meant to be safe would stall it. So the dry run waits for no lock more than a blink
 * and runs no statement long; when either fires it gives up and says the tables could not be
 * listed (the migrations still are).
 */
const DRY_RUN_LOCK_TIMEOUT = '100ms';
const DRY_RUN_STATEMENT_TIMEOUT = '2s';

async function tableNames(db: Knex | Knex.Transaction): Promise<string[]> {
  const { rows } = (await db.raw(
    "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = current_schema() and c.relkind in ('r', 'p') and not c.relispartition order by 1",
  )) as { rows: { relname: string }[] };
  return rows.map((r) => r.relname);
}

/**
 * The migrations knex's rollback would undo (the last batch, or all) and the tables their down
 * functions drop. The tables are found by running those down functions in a transaction that is
 * then rolled back (PostgreSQL DDL is transactional), so the list is what would really go, not
 * a guess; short lock and statement timeouts keep it from stalling a running daemon.
 */
export async function rollbackPlan(knex: Knex, all: boolean): Promise<RollbackPlan> {
  if (!(await knex.schema.hasTable('knex_migrations'))) return { migrations: [], firstBatch: false, tables: [] };
  const applied = (await knex('knex_migrations').select('name', 'batch').orderBy('id', 'desc')) as { name: string; batch: number }[];
  if (applied.length === 0) return { migrations: [], firstBatch: false, tables: [] };
  const batches = applied.map((m) => m.batch);
  const last = Math.max(...batches);
  const first = Math.min(...batches);
  const undo = all ? applied : applied.filter((m) => m.batch === last);
  const plan: RollbackPlan = { migrations: undo.map((m) => m.name), firstBatch: all || last === first, tables: null };
  const source = new FolderMigrationSource();
  const files = new Map((await source.getMigrations()).map((f) => [f.name, f]));
  try {
    await knex.transaction(async (trx) => {
      await trx.raw(`set local lock_timeout = '${DRY_RUN_LOCK_TIMEOUT}'`);
      await trx.raw(`set local statement_timeout = '${DRY_RUN_STATEMENT_TIMEOUT}'`);
      const before = await tableNames(trx);
      for (const m of undo) {
        const file = files.get(m.name);
        if (!file) throw new Error(`the file of applied migration ${m.name} is missing`);
        const migration = await source.getMigration(file);
        if (!migration.down) throw new Error(`migration ${m.name} has no down function`);
        await migration.down(trx);
      }
      const after = new Set(await tableNames(trx));
      plan.tables = before.filter((t) => !after.has(t));
      throw new DryRunDone();
    });
  } catch (err) {
    if (!(err instanceof DryRunDone)) {
      const code = sqlState(err);
      plan.dryRunError =
        code === SQLSTATE.lockNotAvailable || code === SQLSTATE.queryCanceled
          ? `a table it drops is in use, e.g. by a running daemon, or a down migration copies more rows than the dry run waits for; the dry run gave up rather than block it (${(err as Error).message})`
          : (err as Error).message;
    }
  }
  return plan;
}
