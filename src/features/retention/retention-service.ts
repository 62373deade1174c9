import type { Logger } from 'pino';
import { isGoneTable } from '../../db/pg-errors.js';
import { DAY_MS, partitionEnd, partitionStart, type PartitionInfo, type PartitionsRepository } from '../../db/partitions.js';
import { ROW_SPAN_MS, type RetainedTable } from './retained-tables.js';
import type { RetentionRepository, RowKey } from './retention-repository.js';

/** The kinds of telemetry an org's retention is set for (organizations.limits.retention_days). */
export type RetentionKind = 'metrics' | 'logs' | 'events';
export type RetentionDays = Record<RetentionKind, number>;

/** Which retention applies to which day-partitioned table. */
const TABLE_KIND: Record<RetainedTable, RetentionKind> = { points: 'metrics', point_chunks: 'metrics', logs: 'logs', events: 'events' };
const TABLES = Object.keys(TABLE_KIND) as RetainedTable[];

/**
 * Every existing org with its effective retention (its own limits over the config defaults).
 * Supplied by the composition root: the orgs feature owns the rows.
 */
export interface RetentionPolicySource {
  retentionDays(): Promise<{ orgId: string; days: RetentionDays }[]>;
}

export interface RetentionOptions {
  /** The config's retention.*_days: decide which partitions may go when there are no orgs at all. */
  defaults: RetentionDays;
  /** retention.delete_batch_size: rows per DELETE statement. */
  deleteBatchSize: number;
  /** ingest.idempotency_ttl in ms. */
  idempotencyTtlMs: number;
  /** How long a partition drop waits for its lock before it is left for the next run (default 5 s). */
  dropLockTimeoutMs?: number;
}

export interface RetentionReport {
  /** The reference time the cutoffs were computed from (RFC 3339). */
  now: string;
  /** Whole day-partitions dropped: every org's retention had passed them. */
  dropped_partitions: string[];
  /** Partitions due to be dropped whose lock was busy; the next run retries them. */
  deferred_partitions: string[];
  /** Rows removed by per-org batched deletes, per table. */
  rows_deleted: Record<RetainedTable, number>;
  /** Orgs that no longer exist whose leftover rows were removed. */
  deleted_orgs_swept: number;
  series_removed: number;
  idempotency_keys_removed: number;
  duration_ms: number;
}

/**
 * How long dropping a partition waits for its lock (ACCESS EXCLUSIVE on the parent): inserts and
 * queries of that table queue behind the request meanwhile, so it is kept as short as compaction's
 * (a busy table's drop is left for the next run). A backup holds every table for its whole run.
 */
export const DEFAULT_DROP_LOCK_TIMEOUT_MS = 100;

/**
 * Enforces telemetry retention (DESIGN §7): whole day-partitions are dropped once every org's
 * retention has passed them, which costs nothing per row; in a day that some orgs still keep,
 * the rows of the orgs whose retention has passed are deleted in small batches. Safe to run
 * again at any time: a second run with the same `now` finds nothing to do.
 */
export class RetentionService {
  private readonly lockTimeoutMs: number;

  constructor(
    private readonly repo: RetentionRepository,
    private readonly partitions: Pick<PartitionsRepository<RetainedTable>, 'list'>,
    private readonly policies: RetentionPolicySource,
    private readonly o: RetentionOptions,
    private readonly logger: Logger,
  ) {
    if (!(o.deleteBatchSize >= 1)) throw new Error('deleteBatchSize must be at least 1');
    this.lockTimeoutMs = o.dropLockTimeoutMs ?? DEFAULT_DROP_LOCK_TIMEOUT_MS;
  }

  /**
   * `signal` (the job's timeout, shutdown) is checked between steps: each partition, each org's
   * batch of deletes, each batch; an aborted run throws its reason, leaving what is done done (a
   * later run carries on).
   */
  async run(now = Date.now(), signal?: AbortSignal): Promise<RetentionReport> {
    const started = Date.now();
    const { repo, partitions, logger } = this;
    const report: RetentionReport = {
      now: new Date(now).toISOString(),
      dropped_partitions: [],
      deferred_partitions: [],
      rows_deleted: { points: 0, point_chunks: 0, logs: 0, events: 0 },
      deleted_orgs_swept: 0,
      series_removed: 0,
      idempotency_keys_removed: 0,
      duration_ms: 0,
    };
    const orgs = await this.policies.retentionDays();
    const known = new Map(orgs.map((p) => [p.orgId, p.days]));
    // Rows of orgs missing from the list: deleted orgs, or orgs created after we read it.
    const unknown: { p: PartitionInfo<RetainedTable>; orgId: string }[] = [];

    for (const table of TABLES) {
      const kind = TABLE_KIND[table];
      const cutoffOf = (days: RetentionDays) => now - days[kind] * DAY_MS;
      // Rows whose ts is before this hold nothing the org keeps: a chunk goes once its whole
      // window has passed the cutoff (ts + span <= cutoff), a point once it has.
      const rowsBefore = (days: RetentionDays) => cutoffOf(days) - Math.max(0, ROW_SPAN_MS[table] - 1);
      // Orgs that were deleted need no say here: their rows may go whenever the living orgs' may.
      // A chunk window never crosses midnight, so a partition (a day, or a window of points) that
      // ends by the cutoff holds no later data.
      const dropBefore = orgs.reduce((min, p) => Math.min(min, cutoffOf(p.days)), orgs.length ? Infinity : cutoffOf(this.o.defaults));
      for (const p of await partitions.list(table)) {
        signal?.throwIfAborted();
        if (partitionEnd(p) <= dropBefore) {
          if (await repo.dropPartition(p, this.lockTimeoutMs)) report.dropped_partitions.push(p.name);
          else report.deferred_partitions.push(p.name);
          continue;
        }
        try {
          // Only the orgs that have rows in this day: one cheap query instead of one per org.
          for (const orgId of await repo.orgsInPartition(p)) {
            const days = known.get(orgId);
            if (!days) unknown.push({ p, orgId });
            else if (rowsBefore(days) > partitionStart(p)) report.rows_deleted[table] += await this.deleteRows(p, orgId, new Date(rowsBefore(days)), signal);
          }
        } catch (err) {
          // A window of points compaction dropped since the listing: its rows went into chunks.
          if (!isGoneTable(err)) throw err;
        }
      }
    }

    if (unknown.length) {
      // Asked again after the rows were seen: an org absent now is gone for good (ids are never
      // reused), while one created since the first answer shows up here and keeps its data.
      const alive = new Set((await this.policies.retentionDays()).map((p) => p.orgId));
      const swept = new Set<string>();
      for (const { p, orgId } of unknown) {
        signal?.throwIfAborted();
        if (alive.has(orgId)) continue;
        swept.add(orgId);
        try {
          report.rows_deleted[p.table] += await this.deleteRows(p, orgId, null, signal);
        } catch (err) {
          // Dropped by compaction since (a window of points): the next run sweeps its chunks.
          if (!isGoneTable(err)) throw err;
        }
      }
      report.deleted_orgs_swept = swept.size;
    }

    // After the points: a series goes only when none of its points is retained any more.
    for (const p of orgs) {
      signal?.throwIfAborted();
      const before = new Date(now - p.days.metrics * DAY_MS);
      report.series_removed += await this.drain((n) => repo.deleteStaleSeries(p.orgId, before, n), signal);
    }
    const keysBefore = new Date(now - this.o.idempotencyTtlMs);
    report.idempotency_keys_removed = await this.drain((n) => repo.deleteIdempotencyKeys(keysBefore, n), signal);

    report.duration_ms = Date.now() - started;
    // Counts and partition names only: never org data.
    logger.info(
      {
        job: 'retention',
        dropped: report.dropped_partitions.length,
        deferred: report.deferred_partitions.length,
        rows_deleted: report.rows_deleted,
        deleted_orgs_swept: report.deleted_orgs_swept,
        series_removed: report.series_removed,
        idempotency_keys_removed: report.idempotency_keys_removed,
        duration_ms: report.duration_ms,
      },
      'retention run finished',
    );
    if (report.deferred_partitions.length) logger.warn({ job: 'retention', deferred: report.deferred_partitions }, 'partition drop deferred: its table was busy');
    return report;
  }

  /** One org's rows before `before` (all of them for null) in one partition, batch after batch. */
  private async deleteRows(p: PartitionInfo<RetainedTable>, orgId: string, before: Date | null, signal?: AbortSignal): Promise<number> {
    let total = 0;
    for (let after: RowKey | null = null; ; ) {
      signal?.throwIfAborted();
      const b = await this.repo.deleteOrgRows(p, orgId, before, this.o.deleteBatchSize, after);
      total += b.deleted;
      if (b.seen < this.o.deleteBatchSize) return total;
      after = b.last;
    }
  }

  /** Repeats one batched delete until a batch comes back short; returns the total. */
  private async drain(batch: (limit: number) => Promise<number>, signal?: AbortSignal): Promise<number> {
    const limit = this.o.deleteBatchSize;
    let total = 0;
    for (;;) {
      signal?.throwIfAborted();
      const n = await batch(limit);
      total += n;
      if (n < limit) return total;
    }
  }
}
