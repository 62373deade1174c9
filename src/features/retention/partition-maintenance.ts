import type { Logger } from 'pino';
import { isGoneTable } from '../../db/pg-errors.js';
import { DAY_MS, dayStart, type PartitionsRepository } from '../../db/partitions.js';

export interface PartitionMaintenanceOptions {
  /** retention.partitions_ahead_days: days after today that get their partitions now. */
  aheadDays: number;
  /** How long each partition's ATTACH waits for its parent's lock before the day is left to the next run (default 2 s). */
  lockTimeoutMs?: number;
}

export const DEFAULT_CREATE_LOCK_TIMEOUT_MS = 2000;

export interface PartitionMaintenanceReport {
  created: string[];
  /** Partitions whose parent stayed locked (an ANALYZE of it, another ATTACH, DDL, a DROP waiting behind a backup): the next hourly run retries. */
  deferred: string[];
}

/**
 * Creates the day-partitions of the repository's tables (telemetry's points, logs and events;
 * the window partitions of points) ahead of time, so ingest around midnight never waits on a
 * partition being made (the writer still creates a missing one on demand). Yesterday is included
 * for the writer's late arrivals just after midnight (for points, only the windows from now on:
 * a past window is made by the writer when a late point comes for it). Idempotent. Each partition is attached (PartitionsRepository.ensure), which
 * neither waits for inserts, queries or a backup nor holds them up; it waits at most
 * `lockTimeoutMs` for a conflicting lock, and a busy day is deferred to the next run, the
 * days-ahead margin covering it.
 */
export class PartitionMaintenance<T extends string = string> {
  constructor(
    private readonly partitions: Pick<PartitionsRepository<T>, 'ensure' | 'partitionedTables'>,
    private readonly o: PartitionMaintenanceOptions,
    private readonly logger: Logger,
  ) {}

  /** `signal` (the job's timeout, shutdown) is checked before each table: an aborted run throws its reason. */
  async run(now = Date.now(), signal?: AbortSignal): Promise<PartitionMaintenanceReport> {
    const today = dayStart(now);
    const days: number[] = [];
    for (let i = -1; i <= this.o.aheadDays; i++) days.push(today + i * DAY_MS);
    const report: PartitionMaintenanceReport = { created: [], deferred: [] };
    // Every partition of those days; of a table split into windows, the windows from now on (a
    // past window, compacted and dropped, is made again only when a late row needs it).
    const opts = { lockTimeoutMs: this.o.lockTimeoutMs ?? DEFAULT_CREATE_LOCK_TIMEOUT_MS, deferWhenBusy: true, notBefore: now };
    for (const table of this.partitions.partitionedTables) {
      signal?.throwIfAborted();
      const r = await this.partitions.ensure(table, days, opts);
      report.created.push(...r.created);
      report.deferred.push(...r.deferred);
    }
    if (report.deferred.length) {
      this.logger.warn({ job: 'partitions', deferred: report.deferred }, 'partitions deferred: their table stayed locked; the next run retries');
    }
    this.logger.info({ job: 'partitions', created: report.created.length, deferred: report.deferred.length }, 'partition maintenance finished');
    return report;
  }
}

export interface PartitionAnalyzeOptions {
  /** Rows changed since the last analyze below which a partition is left alone (default 1,000). */
  minRows?: number;
  /** …plus this fraction of the rows it had then (default 0.1, autovacuum's own default scale). */
  fraction?: number;
  /** How long each ANALYZE waits for the partition's lock (a VACUUM of it) before it is left to the next run. */
  lockTimeoutMs?: number;
}

export const DEFAULT_ANALYZE_MIN_ROWS = 1000;
export const DEFAULT_ANALYZE_FRACTION = 0.1;

export interface PartitionAnalyzeReport {
  analyzed: string[];
  /** Changed enough, but a VACUUM held the partition past the lock timeout: the next run retries. */
  deferred: string[];
  /** Tables that are not partitioned (the series table) analyzed by the same rule. */
  tables_analyzed: string[];
  /** …and those a VACUUM held past the lock timeout: the next run retries. */
  tables_deferred: string[];
}

/**
 * Planner statistics for the partitions being written: today's and yesterday's day-partitions
 * (of a day split into windows, its leaves) of each table that changed by at least `minRows + fraction × rows at the last analyze` since
 * then (or were never analyzed) are ANALYZEd. A fresh day partition has no statistics until
 * someone analyzes it; without them PostgreSQL assumes a range of `ts` for one org holds a
 * handful of rows and plans "read them all, then sort" for the newest logs, where the index
 * gives them in order (measured: 1.2 s instead of 9 ms on a million rows). Autovacuum would get
 * there eventually, but only on its rounds and when a worker is free (long VACUUMs of the big
 * partitions compaction and retention empty keep them busy). ANALYZE samples at most 30,000 rows
 * (default_statistics_target 100), so a run costs a fraction of a second per partition.
 *
 * The repository's plain tables (not partitioned: the series table) follow the same rule. Every
 * metric read looks its series up there, by labels: without statistics (thousands of series
 * created at once by a new deployment, a bulk load) PostgreSQL filters all of a metric's series
 * through the (org_id, name, labels_hash) index instead of asking the GIN index on labels
 * (measured for one series among 10,000: the read's statements 5.3 ms at the median instead of 2.9).
 */
export class PartitionAnalyzer<T extends string = string> {
  constructor(
    private readonly partitions: Pick<PartitionsRepository<T>, 'statistics' | 'analyze' | 'analyzeTable' | 'partitionedTables' | 'plainTables' | 'rowPartitions'>,
    private readonly o: PartitionAnalyzeOptions,
    private readonly logger: Logger,
  ) {}

  /** Whether a partition with these statistics is due for ANALYZE. */
  due(s: { reltuples: number; modified: number; analyzed: boolean }): boolean {
    const minRows = this.o.minRows ?? DEFAULT_ANALYZE_MIN_ROWS;
    const fraction = this.o.fraction ?? DEFAULT_ANALYZE_FRACTION;
    const base = s.analyzed ? Math.max(0, s.reltuples) : 0;
    return s.modified >= minRows + fraction * base;
  }

  async run(now = Date.now(), signal?: AbortSignal): Promise<PartitionAnalyzeReport> {
    // An aborted run (timeout, shutdown) stops with its reason, also when nothing is due.
    signal?.throwIfAborted();
    const today = dayStart(now);
    // A day split into windows has its rows (and the planner its statistics) in the leaves.
    const infos = this.partitions.partitionedTables.flatMap((table) => [today, today - DAY_MS].flatMap((day) => this.partitions.rowPartitions(table, day)));
    const byName = new Map(infos.map((i) => [i.name, i]));
    const plain = new Set(this.partitions.plainTables);
    const stats = await this.partitions.statistics([...infos.map((i) => i.name), ...plain]);
    const report: PartitionAnalyzeReport = { analyzed: [], deferred: [], tables_analyzed: [], tables_deferred: [] };
    const lockTimeoutMs = this.o.lockTimeoutMs ?? DEFAULT_CREATE_LOCK_TIMEOUT_MS;
    for (const s of stats) {
      const info = byName.get(s.name);
      if ((!info && !plain.has(s.name)) || !this.due(s)) continue;
      signal?.throwIfAborted();
      if (info) {
        let analyzed: boolean;
        try {
          analyzed = await this.partitions.analyze(info, lockTimeoutMs);
        } catch (err) {
          // A window of points compaction dropped since the statistics were read: nothing to plan.
          if (isGoneTable(err)) continue;
          throw err;
        }
        if (analyzed) report.analyzed.push(s.name);
        else report.deferred.push(s.name);
      } else if (await this.partitions.analyzeTable(s.name, lockTimeoutMs)) report.tables_analyzed.push(s.name);
      else report.tables_deferred.push(s.name);
    }
    const deferred = [...report.deferred, ...report.tables_deferred];
    if (deferred.length) this.logger.warn({ job: 'analyze', deferred }, 'analyze deferred: the table stayed locked; the next run retries');
    this.logger.info(
      { job: 'analyze', analyzed: report.analyzed.length, deferred: report.deferred.length, tables_analyzed: report.tables_analyzed, tables_deferred: report.tables_deferred },
      'fresh partitions analyzed',
    );
    return report;
  }
}
