import type { Readable, Writable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { SESSION_SETTINGS } from './backup-format.js';

/*
 * All of the backup feature's SQL. It works on plain pg connections rather than the app's knex
 * pool: a backup is one long transaction on one connection (the pool's statement_timeout would
 * cut a large COPY short, and a pool would hand later statements to other connections outside
 * the snapshot), and a restore or verify talks to a database other than the app's.
 */

/** Tables whose rows belong to the migrator, not to the data: a restore migrates instead. */
const MIGRATOR_TABLES = ['knex_migrations', 'knex_migrations_lock'];

/**
 * Not a relation an extension created (pg_depend deptype 'e', e.g. PostGIS's spatial_ref_sys in
 * public): its rows are the extension's, which recreates them, and the migrator does not create
 * it, so backing it up would make every restore fail. `c` is the pg_class row.
 */
const NOT_EXTENSION_MEMBER = `not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')`;

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

export interface TableInfo {
  name: string;
  /** Stored columns (generated ones are computed again on load), in table order. */
  columns: string[];
  partitions: { name: string; bound: string }[];
}

export interface SequenceInfo {
  name: string;
  last_value: string;
  is_called: boolean;
}

/** One connection with the settings COPY text depends on (backup-format.ts). */
export class BackupSession {
  /** The server process of this session (pg_backend_pid), for terminate(). */
  private pid: number | null = null;

  private constructor(
    readonly client: pg.Client,
    private readonly url: string,
  ) {}

  static async open(url: string): Promise<BackupSession> {
    const client = new pg.Client({ connectionString: url, application_name: 'sentinel-backup' });
    await client.connect();
    // A dropped connection would otherwise be an unhandled 'error' event that ends the process.
    client.on('error', () => undefined);
    const s = new BackupSession(client, url);
    try {
      for (const [k, v] of Object.entries(SESSION_SETTINGS)) await client.query(`select set_config($1, $2, false)`, [k, v]);
      s.pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  /**
   * Ends the session from outside (an abort): a backend blocked in a COPY, or waiting for a lock,
   * does not read its socket, so closing the connection alone would leave it running until then.
   * pg_terminate_backend on a connection of its own (a role may end its own sessions), then close.
   */
  async terminate(): Promise<void> {
    if (this.pid !== null) {
      const killer = new pg.Client({ connectionString: this.url, application_name: 'sentinel-backup' });
      killer.on('error', () => undefined);
      try {
        await killer.connect();
        await killer.query('select pg_terminate_backend($1)', [this.pid]);
      } catch {
        // Best effort: the close below still ends our side.
      } finally {
        await killer.end().catch(() => undefined);
      }
    }
    await this.close();
  }

  query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
    return this.client.query<T>(sql, params);
  }

  /**
   * The snapshot every later statement of this session reads, until commit or rollback. Every
   * table it will read (a partitioned one with all its partitions) is locked ACCESS SHARE first,
   * before the snapshot is taken, and held to the end (pg_dump holds the same locks). TRUNCATE and
   * DROP are not MVCC-safe: one committed after the snapshot but before the table is read would
   * make rows the snapshot should see vanish from the backup (compaction empties a partition whose
   * points it moved into chunks, chunks this snapshot does not see: those points would be in
   * neither file). The locks make such a TRUNCATE wait or give up instead (compaction's waits at
   * most 50 ms, and a later run does it). Inserts, updates and deletes go on meanwhile.
   */
  async beginSnapshot(): Promise<void> {
    const names = await this.tableNames();
    await this.query('begin isolation level repeatable read read only');
    // LOCK takes no snapshot: the first statement after it does.
    if (names.length) await this.query(`lock table ${names.map(quoteIdent).join(', ')} in access share mode`);
    // The snapshot is taken by the first statement, not by BEGIN: take it now, before the
    // caller records the start time, so nothing committed after the start is in the backup.
    await this.query('select 1');
  }

  async serverVersion(): Promise<string> {
    return (await this.query<{ v: string }>("select current_setting('server_version') as v")).rows[0].v;
  }

  /** The latest applied migration, or null on a database knex never migrated. */
  async schemaVersion(): Promise<string | null> {
    const exists = await this.query<{ t: string | null }>("select to_regclass('knex_migrations')::text as t");
    if (!exists.rows[0].t) return null;
    return (await this.query<{ name: string | null }>('select max(name) as name from knex_migrations')).rows[0].name;
  }

  async appliedMigrations(): Promise<string[]> {
    const exists = await this.query<{ t: string | null }>("select to_regclass('knex_migrations')::text as t");
    if (!exists.rows[0].t) return [];
    return (await this.query<{ name: string }>('select name from knex_migrations order by name')).rows.map((r) => r.name);
  }

  /** The names of the schema's tables that hold data (not partitions, not the migrator's or an extension's), in name order. */
  private async tableNames(): Promise<string[]> {
    const { rows } = await this.query<{ name: string }>(
      `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p') and not c.relispartition
          and c.relname <> all($1) and ${NOT_EXTENSION_MEMBER} order by 1`,
      [MIGRATOR_TABLES],
    );
    return rows.map((r) => r.name);
  }

  /**
   * The schema's tables that hold data, with their partitions. A partitioned table is copied
   * through its parent (`select * from parent` reads every partition), so a restore needs only
   * the partitions to exist, recreated from the bounds recorded here.
   */
  async tables(): Promise<TableInfo[]> {
    const names = await this.tableNames();
    const parts = await this.query<{ parent: string; name: string; bound: string }>(
      `select p.relname as parent, c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
         from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
         join pg_namespace n on n.oid = p.relnamespace
        where n.nspname = current_schema() and c.relispartition order by 2`,
    );
    const cols = await this.query<{ table: string; column: string }>(
      `select c.relname as table, a.attname as column from pg_attribute a join pg_class c on c.oid = a.attrelid
         join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
        order by c.relname, a.attnum`,
    );
    return names.map((name) => ({ name, columns: cols.rows.filter((c) => c.table === name).map((c) => c.column), partitions: parts.rows.filter((p) => p.parent === name).map((p) => ({ name: p.name, bound: p.bound })) }));
  }

  async sequences(): Promise<SequenceInfo[]> {
    const { rows } = await this.query<{ name: string }>(
      `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind = 'S' and c.relname not like 'knex\\_migrations%' and ${NOT_EXTENSION_MEMBER} order by 1`,
    );
    const out: SequenceInfo[] = [];
    for (const { name } of rows) {
      const r = await this.query<{ last_value: string; is_called: boolean }>(`select last_value::text as last_value, is_called from ${quoteIdent(name)}`);
      out.push({ name, ...r.rows[0] });
    }
    return out;
  }

  copyOut(table: string, columns: string[]): Readable {
    return this.client.query(copyTo(`COPY (SELECT ${columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(table)}) TO STDOUT`));
  }

  copyIn(table: string, columns: string[]): Writable & { rowCount: number } {
    return this.client.query(copyFrom(`COPY ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN`)) as Writable & { rowCount: number };
  }

  /** Tables of the schema (migrator's aside) that have at least one row. */
  async nonEmptyTables(): Promise<string[]> {
    const tables = await this.tables();
    const out: string[] = [];
    for (const t of tables) {
      const r = await this.query(`select 1 from ${quoteIdent(t.name)} limit 1`);
      if (r.rowCount) out.push(t.name);
    }
    return out;
  }

  /** Table names with the tables each references by foreign key (self-references left out). */
  async foreignKeys(): Promise<Map<string, string[]>> {
    const { rows } = await this.query<{ child: string; parent: string }>(
      `select distinct c.relname as child, p.relname as parent from pg_constraint k
         join pg_class c on c.oid = k.conrelid join pg_class p on p.oid = k.confrelid
         join pg_namespace n on n.oid = c.relnamespace
        where k.contype = 'f' and n.nspname = current_schema() and not c.relispartition and c.oid <> p.oid`,
    );
    const deps = new Map<string, string[]>();
    for (const r of rows) deps.set(r.child, [...(deps.get(r.child) ?? []), r.parent]);
    return deps;
  }

  async createPartition(parent: string, name: string, bound: string): Promise<void> {
    // The bound is PostgreSQL's own pg_get_expr text from the manifest, whose checksum is verified.
    await this.query(`create table if not exists ${quoteIdent(name)} partition of ${quoteIdent(parent)} ${bound}`);
  }

  async setSequence(s: SequenceInfo): Promise<void> {
    await this.query('select setval($1::regclass, $2::bigint, $3)', [quoteIdent(s.name), s.last_value, s.is_called]);
  }

  async createDatabase(name: string): Promise<void> {
    await this.query(`create database ${quoteIdent(name)}`);
  }

  async dropDatabase(name: string): Promise<void> {
    await this.query(`drop database if exists ${quoteIdent(name)} with (force)`);
  }

  /** Databases on this server whose name starts with `prefix`. */
  async databasesLike(prefix: string): Promise<string[]> {
    const { rows } = await this.query<{ name: string }>(`select datname as name from pg_database where starts_with(datname, $1) order by 1`, [prefix]);
    return rows.map((r) => r.name);
  }

  /** Drops it unless someone is connected (then PostgreSQL refuses and this returns false). */
  async dropIdleDatabase(name: string): Promise<boolean> {
    try {
      await this.query(`drop database if exists ${quoteIdent(name)}`);
      return true;
    } catch {
      return false;
    }
  }
}

/** The same server's URL with another database name. */
export function withDatabaseName(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}
