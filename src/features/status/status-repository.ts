import type { Knex } from 'knex';
import { migrationStatus } from '../../db/migration-source.js';

export interface ServerFacts {
  server_version: string;
  /** Null when PostgreSQL refuses to tell (no CONNECT privilege on the database). */
  size_bytes: number | null;
}

export interface MigrationFacts {
  current: string | null;
  pending: number;
}

/** The database's own figures for the admin status (the server, the schema). */
export class StatusRepository {
  constructor(private readonly knex: Knex) {}

  /** server_version and pg_database_size (which walks the database's files: the caller caches it). */
  async serverFacts(): Promise<ServerFacts> {
    const { rows } = await this.knex.raw<{ rows: { server_version: string; size_bytes: number | null }[] }>(
      `select current_setting('server_version') as server_version,
              case when has_database_privilege(current_database(), 'CONNECT') then pg_database_size(current_database()) end as size_bytes`,
    );
    return { server_version: rows[0].server_version, size_bytes: rows[0].size_bytes === null ? null : Number(rows[0].size_bytes) };
  }

  /** The newest migration applied and how many of the code's are not. */
  async migrations(): Promise<MigrationFacts> {
    const { applied, pending } = await migrationStatus(this.knex);
    return { current: applied.at(-1) ?? null, pending: pending.length };
  }
}
