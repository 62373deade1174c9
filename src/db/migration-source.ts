import { readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import { packageRoot } from '../config/paths.js';

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
