import type { Knex } from 'knex';
import { SQLSTATE, sqlState } from './pg-errors.js';

/*
 * Day (or window) partitions of range-partitioned tables: naming, creating ahead, listing, dropping. Which
 * tables are partitioned is the owning feature's knowledge (telemetry's points, logs, events):
 * it hands its list to the repository, so this kit never names a feature's table.
 */

export const DAY_MS = 86_400_000;

/** Start of the UTC day holding `ms`. */
export const dayStart = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

/**
 * `points_p20261128` for the UTC day starting at `day`; with `leaf`, a window of that day for a
 * table split into windows (PartitionsRepository's `windows`): `points_p20261128_w04` for the
 * window starting at 04:00.
 */
export function partitionName(table: string, day: number, leaf?: string): string {
  return `${table}_p${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}${leaf ? `_${leaf}` : ''}`;
}

/** The name suffix of the window starting at `windowStart` (`w04`). */
export const windowLeaf = (windowStart: number): string => `w${String(new Date(windowStart).getUTCHours()).padStart(2, '0')}`;

const NAME = /^[a-z][a-z0-9_]*_p(\d{4})(\d{2})(\d{2})(?:_w(\d{2}))?$/;

/** The UTC day of a NAME match. */
const matchedDay = (m: RegExpExecArray): number => Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));

/** The UTC day a partition name stands for (a day's or one of its windows'), or null for a name that is not ours. */
export function partitionDay(name: string): number | null {
  const m = NAME.exec(name);
  return m ? matchedDay(m) : null;
}

/** The partition's name, after checking it is exactly ours (it is put into SQL as an identifier). */
export function checkedPartitionName(info: PartitionInfo): string {
  const leaf = info.windowStart === undefined ? undefined : windowLeaf(info.windowStart);
  if (partitionName(info.table, info.day, leaf) !== info.name || (info.windowStart !== undefined && dayStart(info.windowStart) !== info.day)) {
    throw new Error(`not a partition name: ${info.name}`);
  }
  return info.name;
}

export interface PartitionInfo<T extends string = string> {
  table: T;
  name: string;
  /** Start of its UTC day (epoch ms). */
  day: number;
  /** A window's partition (a table split into windows): the window's start and length (epoch ms, ms). */
  windowStart?: number;
  windowMs?: number;
}

/** First ms a partition holds. */
export const partitionStart = (p: PartitionInfo): number => p.windowStart ?? p.day;
/** First ms after what a partition holds. */
export const partitionEnd = (p: PartitionInfo): number => (p.windowStart !== undefined ? p.windowStart + (p.windowMs as number) : p.day + DAY_MS);

export interface PartitionStatistics {
  name: string;
  /** The planner's row estimate; -1 before the table was first analyzed or vacuumed. */
  reltuples: number;
  /** Rows inserted, updated or deleted since the last analyze. */
  modified: number;
  /** Analyzed at least once (ANALYZE or autovacuum's analyze). */
  analyzed: boolean;
}

/**
 * The statements making one partition (a day's or a window's), to run in one transaction: a table
 * of the parent's shape, then attached (PartitionsRepository.ensure says why not `PARTITION OF`).
 */
export function createPartitionSql(p: PartitionInfo): [string, string] {
  const name = checkedPartitionName(p);
  const from = new Date(partitionStart(p)).toISOString();
  const to = new Date(partitionEnd(p)).toISOString();
  return [
    `create table ${name} (like ${p.table} including defaults including constraints)`,
    `alter table ${p.table} attach partition ${name} for values from ('${from}') to ('${to}')`,
  ];
}

/** How long an on-demand creation (the writer's missing partition) waits for the parent's lock by default. */
export const WRITER_LOCK_TIMEOUT_MS = 10_000;

export interface EnsureOptions {
  /** Longest wait for the parent table's lock per partition attached (default WRITER_LOCK_TIMEOUT_MS). */
  lockTimeoutMs?: number;
  /** On lock timeout, list the partition as deferred instead of throwing. */
  deferWhenBusy?: boolean;
  /**
   * Only the partitions holding the times given (the writer's rows), not every partition of their
   * days: the same for a table kept in day partitions.
   */
  exact?: boolean;
  /** For a table split into windows: only windows ending after this (a window already past is made only when a row comes for it). */
  notBefore?: number;
}

export interface EnsureResult {
  created: string[];
  /** Not created: the parent stayed locked past the lock timeout (deferWhenBusy only). */
  deferred: string[];
}

/**
 * `T`: the names of the partitioned tables this repository manages. `plainTables`: tables that are
 * not partitioned whose planner statistics it may also be asked to keep (`analyzeTable`), named
 * by their feature like the partitioned ones. `windows`: the tables partitioned by windows of that
 * many ms (whole hours dividing a day) instead of by day (`points_p20261128_w04`), so that a
 * window can be emptied by dropping its partition (compaction does). Their days created before
 * they were split stay day partitions, which hold those days' rows.
 */
export class PartitionsRepository<T extends string = string> {
  constructor(
    private readonly knex: Knex,
    private readonly tables: readonly T[],
    private readonly plain: readonly string[] = [],
    private readonly windows: Partial<Record<T, number>> = {},
  ) {
    for (const [table, ms] of Object.entries(windows) as [string, number][]) {
      if (!Number.isInteger(ms) || ms <= 0 || DAY_MS % ms !== 0 || ms % 3_600_000 !== 0) throw new Error(`${table}: a window must be whole hours dividing a day`);
    }
  }

  /** The partitioned tables this repository manages. */
  get partitionedTables(): readonly T[] {
    return this.tables;
  }

  /** The tables that are not partitioned whose statistics `analyzeTable` keeps. */
  get plainTables(): readonly string[] {
    return this.plain;
  }

  /** The span of one partition of `table`: its window, or a day. */
  unitMs(table: T): number {
    return this.windows[table] ?? DAY_MS;
  }

  /** The partition holding time `t` of `table` (whether it exists or not): its window's, or its day's. */
  partitionAt(table: T, t: number): PartitionInfo<T> {
    const windowMs = this.windows[table];
    const day = dayStart(t);
    if (!windowMs) return { table, day, name: partitionName(table, day) };
    const windowStart = Math.floor(t / windowMs) * windowMs;
    return { table, day, name: partitionName(table, day, windowLeaf(windowStart)), windowStart, windowMs };
  }

  /**
   * The partitions holding a day's rows, whether they exist or not: the day's, and for a table
   * split into windows each of its windows' too (a day created before the split is one
   * partition). What the analyzer keeps statistics of.
   */
  rowPartitions(table: T, day: number): PartitionInfo<T>[] {
    const out: PartitionInfo<T>[] = [{ table, day, name: partitionName(table, day) }];
    const windowMs = this.windows[table];
    if (windowMs) for (let w = day; w < day + DAY_MS; w += windowMs) out.push(this.partitionAt(table, w));
    return out;
  }

  /**
   * Creates the partitions of the days of `times` (with `exact`, only those holding the times)
   * that do not exist yet. A window of a day that exists as one day partition (made before its table
   * was split) is not created: the day's partition holds its rows. Safe to run from several
   * processes at once: a partition another session created between our check and our CREATE is fine.
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
  async ensure(table: T, times: Iterable<number>, opts: EnsureOptions = {}): Promise<EnsureResult> {
    if (!this.tables.includes(table)) throw new Error(`not a partitioned table of this repository: ${table}`);
    const lockTimeoutMs = Math.max(1, Math.trunc(opts.lockTimeoutMs ?? WRITER_LOCK_TIMEOUT_MS));
    const unit = this.unitMs(table);
    const starts = new Set<number>();
    for (const t of times) {
      if (opts.exact) starts.add(Math.floor(t / unit) * unit);
      else for (let u = dayStart(t); u < dayStart(t) + DAY_MS; u += unit) if (!this.windows[table] || opts.notBefore === undefined || u + unit > opts.notBefore) starts.add(u);
    }
    const result: EnsureResult = { created: [], deferred: [] };
    for (const start of [...starts].sort((a, b) => a - b)) {
      const p = this.partitionAt(table, start);
      // The parent just stayed locked: its other missing partitions would only wait as long again.
      const busy = result.deferred.length > 0;
      try {
        const exists = await this.knex.raw<{ rows: unknown[] }>("select 1 from pg_class where relname = any(?) and relkind = 'r'", [[p.name, partitionName(table, p.day)]]);
        if (exists.rows.length) continue;
        if (busy) {
          result.deferred.push(p.name);
          continue;
        }
        await this.knex.transaction(async (trx) => {
          await trx.raw(`set local lock_timeout = ${lockTimeoutMs}`);
          for (const sql of createPartitionSql(p)) await trx.raw(sql);
        });
        result.created.push(p.name);
      } catch (err) {
        // 42P07 duplicate table / 23505 on pg_type: a concurrent creator won the race.
        const code = sqlState(err);
        if (code === SQLSTATE.lockNotAvailable && opts.deferWhenBusy) {
          result.deferred.push(p.name);
          continue;
        }
        if (code !== '42P07' && code !== '23505') throw err;
      }
    }
    return result;
  }

  /** The partitions (days, and windows of a table split into windows), by name. */
  async list(table?: T): Promise<PartitionInfo<T>[]> {
    const { rows } = await this.knex.raw<{ rows: { parent: string; name: string }[] }>(
      `select p.relname as parent, c.relname as name
         from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
        where p.relname = any(?) order by c.relname`,
      [table ? [table] : [...this.tables]],
    );
    const out: PartitionInfo<T>[] = [];
    for (const r of rows) {
      const m = NAME.exec(r.name);
      if (!m) continue;
      const day = matchedDay(m);
      const parent = r.parent as T;
      if (m[4] === undefined) {
        if (partitionName(parent, day) === r.name) out.push({ table: parent, name: r.name, day });
        continue;
      }
      const windowMs = this.windows[parent];
      if (!windowMs) throw new Error(`${r.name} is a window of ${parent}, but this repository was not told ${parent}'s window`);
      const p = this.partitionAt(parent, day + Number(m[4]) * 3_600_000);
      if (p.name === r.name) out.push(p);
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
      if (sqlState(err) === SQLSTATE.lockNotAvailable) return false;
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
