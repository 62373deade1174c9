import type { Knex } from 'knex';

/*
 * Day partitions of range-partitioned tables: naming, creating ahead, listing, dropping. Which
 * tables are partitioned is the owning feature's knowledge (telemetry's points, logs, events):
 * it hands its list to the repository, so this kit never names a feature's table.
 */

export const DAY_MS = 86_400_000;

/** Start of the UTC day holding `ms`. */
export const dayStart = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

/** `points_p20261128` for the UTC day starting at `day`. */
export function partitionName(table: string, day: number): string {
  return `${table}_p${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

const NAME = /^[a-z][a-z0-9_]*_p(\d{4})(\d{2})(\d{2})$/;

/** The UTC day a partition name stands for, or null for a name that is not ours. */
export function partitionDay(name: string): number | null {
  const m = NAME.exec(name);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : null;
}

/** The partition's name, after checking it is exactly ours (it is put into SQL as an identifier). */
export function checkedPartitionName(info: PartitionInfo): string {
  if (partitionName(info.table, info.day) !== info.name) throw new Error(`not a partition name: ${info.name}`);
  return info.name;
}

export interface PartitionInfo<T extends string = string> {
  table: T;
  name: string;
  /** Start of its UTC day (epoch ms). */
  day: number;
}

export interface PartitionStatistics {
  name: string;
  /** The planner's row estimate; -1 before the table was first analyzed or vacuumed. */
  reltuples: number;
  /** Rows inserted, updated or deleted since the last analyze. */
  modified: number;
  /** Analyzed at least once (ANALYZE or autovacuum's analyze). */
  analyzed: boolean;
}

/** SQLSTATE lock_not_available: `lock_timeout` expired. */
const LOCK_NOT_AVAILABLE = '55P03';

/** How long an on-demand creation (the writer's missing day) waits for the parent's lock by default. */
export const WRITER_LOCK_TIMEOUT_MS = 10_000;

export interface EnsureOptions {
  /** Longest wait for the parent table's lock per partition attached (default WRITER_LOCK_TIMEOUT_MS). */
  lockTimeoutMs?: number;
  /** On lock timeout, list the partition as deferred instead of throwing. */
  deferWhenBusy?: boolean;
}

export interface EnsureResult {
  created: string[];
  /** Not created: the parent stayed locked past the lock timeout (deferWhenBusy only). */
  deferred: string[];
}

/**
 * `T`: the names of the partitioned tables this repository manages. `plainTables`: tables that are
 * not partitioned whose planner statistics it may also be asked to keep (`analyzeTable`), named
 * by their feature like the partitioned ones.
 */
export class PartitionsRepository<T extends string = string> {
  constructor(
    private readonly knex: Knex,
    private readonly tables: readonly T[],
    private readonly plain: readonly string[] = [],
  ) {}

  /** The partitioned tables this repository manages. */
  get partitionedTables(): readonly T[] {
    return this.tables;
  }

  /** The tables that are not partitioned whose statistics `analyzeTable` keeps. */
  get plainTables(): readonly string[] {
    return this.plain;
  }

  /**
   * Creates the partitions of `days` that do not exist yet. Safe to run from several processes at
   * once: a partition another session created between our check and our CREATE is fine.
   *
   * A partition is made as a table of the parent's shape (`CREATE TABLE … (LIKE parent INCLUDING
   * DEFAULTS INCLUDING CONSTRAINTS)`) and then attached (`ALTER TABLE parent ATTACH PARTITION`),
   * in one transaction: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which inserts, queries
   * and a backup's snapshot (ACCESS SHARE on every table) do not conflict with, so neither waits
   * for them nor queues them behind its request; `CREATE TABLE … PARTITION OF` takes ACCESS
   * EXCLUSIVE, which both do. The parent's indexes and foreign keys are created on the new table
   * by the ATTACH (instantly: it is empty). What can still hold the lock is another ATTACH, an
   * ANALYZE of the parent, DDL, or a DROP of a partition queued behind a long query or a backup:
   * each attach waits at most `lockTimeoutMs` (`SET LOCAL lock_timeout`); then it is deferred
   * (`deferWhenBusy`, for the job creating days ahead, whose next run retries) or the lock error
   * (SQLSTATE 55P03) is thrown (the writer, which needs the day now and answers 503 to retry).
   */
  async ensure(table: T, days: Iterable<number>, opts: EnsureOptions = {}): Promise<EnsureResult> {
    if (!this.tables.includes(table)) throw new Error(`not a partitioned table of this repository: ${table}`);
    const lockTimeoutMs = Math.max(1, Math.trunc(opts.lockTimeoutMs ?? WRITER_LOCK_TIMEOUT_MS));
    const result: EnsureResult = { created: [], deferred: [] };
    for (const day of new Set([...days].map(dayStart))) {
      const name = partitionName(table, day);
      // The parent just stayed locked: its other missing days would only wait as long again.
      const busy = result.deferred.length > 0;
      const from = new Date(day).toISOString();
      const to = new Date(day + DAY_MS).toISOString();
      try {
        const exists = await this.knex.raw<{ rows: unknown[] }>('select 1 from pg_class where relname = ? and relkind = ?', [name, 'r']);
        if (exists.rows.length) continue;
        if (busy) {
          result.deferred.push(name);
          continue;
        }
        await this.knex.transaction(async (trx) => {
          await trx.raw(`set local lock_timeout = ${lockTimeoutMs}`);
          await trx.raw(`create table ${name} (like ${table} including defaults including constraints)`);
          await trx.raw(`alter table ${table} attach partition ${name} for values from ('${from}') to ('${to}')`);
        });
        result.created.push(name);
      } catch (err) {
        // 42P07 duplicate table / 23505 on pg_type: a concurrent creator won the race.
        const code = (err as { code?: string }).code;
        if (code === LOCK_NOT_AVAILABLE && opts.deferWhenBusy) {
          result.deferred.push(name);
          continue;
        }
        if (code !== '42P07' && code !== '23505') throw err;
      }
    }
    return result;
  }

  async list(table?: T): Promise<PartitionInfo<T>[]> {
    const { rows } = await this.knex.raw<{ rows: { parent: string; name: string }[] }>(
      `select p.relname as parent, c.relname as name
         from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
        where p.relname = any(?) order by c.relname`,
      [table ? [table] : [...this.tables]],
    );
    const out: PartitionInfo<T>[] = [];
    for (const r of rows) {
      const day = partitionDay(r.name);
      if (day !== null && partitionName(r.parent, day) === r.name) out.push({ table: r.parent as T, name: r.name, day });
    }
    return out;
  }

  /**
   * Planner-statistics state of the named tables that exist: their row estimate (`reltuples`, -1
   * before the first ANALYZE or VACUUM), the rows inserted, updated or deleted since their last
   * analyze (`n_mod_since_analyze`; the statistics collector reports it within seconds), and
   * whether they were ever analyzed (by hand, by a job, or by autovacuum).
   */
  async statistics(names: readonly string[]): Promise<PartitionStatistics[]> {
    const { rows } = await this.knex.raw<{ rows: PartitionStatistics[] }>(
      `select c.relname as name, c.reltuples::float8 as reltuples, coalesce(s.n_mod_since_analyze, 0)::float8 as modified,
              (s.last_analyze is not null or s.last_autoanalyze is not null) as analyzed
         from pg_class c left join pg_stat_user_tables s on s.relid = c.oid
        where c.relname = any(?) and c.relkind = 'r' and pg_table_is_visible(c.oid) order by c.relname`,
      [[...names]],
    );
    return rows;
  }

  /**
   * ANALYZE one partition (it samples a bounded number of rows however large the table is; reads
   * and writes go on meanwhile). Waits at most `lockTimeoutMs` for the partition's lock (a VACUUM
   * holds it): false when it stayed busy.
   */
  async analyze(info: PartitionInfo, lockTimeoutMs: number): Promise<boolean> {
    return this.analyzeNamed(checkedPartitionName(info), lockTimeoutMs);
  }

  /**
   * ANALYZE one of the `plainTables` (not partitioned), with the same bounded wait for its lock as
   * `analyze`: false when a VACUUM (or another ANALYZE) held it past `lockTimeoutMs`.
   */
  async analyzeTable(name: string, lockTimeoutMs: number): Promise<boolean> {
    if (!this.plain.includes(name) || !/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`not a table of this repository: ${name}`);
    return this.analyzeNamed(name, lockTimeoutMs);
  }

  private async analyzeNamed(name: string, lockTimeoutMs: number): Promise<boolean> {
    try {
      await this.knex.transaction(async (trx) => {
        await trx.raw(`set local lock_timeout = ${Math.max(1, Math.trunc(lockTimeoutMs))}`);
        await trx.raw(`analyze ${name}`);
      });
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === LOCK_NOT_AVAILABLE) return false;
      throw err;
    }
  }

  /**
   * The distinct orgs with rows in one partition. A loose index scan (one index descent per org
   * over the org_id-leading index every partitioned table has) instead of `select distinct`,
   * which would read every row of a day.
   */
  async orgsIn(info: PartitionInfo<T>): Promise<string[]> {
    const name = checkedPartitionName(info);
    const { rows } = await this.knex.raw<{ rows: { org_id: string }[] }>(
      `with recursive o(org_id) as (
         (select org_id from ?? order by org_id limit 1)
         union all
         select (select t.org_id from ?? t where t.org_id > o.org_id order by t.org_id limit 1) from o where o.org_id is not null
       )
       select org_id from o where org_id is not null`,
      [name, name],
    );
    return rows.map((r) => r.org_id);
  }

  async drop(info: PartitionInfo): Promise<void> {
    await this.knex.raw(`drop table if exists ${checkedPartitionName(info)}`);
  }
}
