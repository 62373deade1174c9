import type { Logger } from 'pino';
import { DAY_MS, dayStart, type PartitionsRepository } from '../../db/partitions.js';

export interface PartitionMaintenanceOptions {
  /** retention.partitions_ahead_days: days after today that get their partitions now. */
  aheadDays: number;
  /** How long each CREATE waits for its parent's lock before the day is left to the next run (default 2 s). */
  lockTimeoutMs?: number;
}

export const DEFAULT_CREATE_LOCK_TIMEOUT_MS = 2000;

export interface PartitionMaintenanceReport {
  created: string[];
  /** Partitions whose parent stayed locked (a long query, a backup): the next hourly run retries. */
  deferred: string[];
}

/**
 * Creates the day-partitions of the repository's tables (telemetry's points, logs and events)
 * ahead of time, so ingest around midnight never waits on a CREATE TABLE (the writer still
 * creates a missing one on demand). Yesterday is included for the writer's late arrivals just
 * after midnight. Idempotent. A CREATE waits at most `lockTimeoutMs` for its parent's lock (so
 * a long backup does not make every insert queue behind it); a busy day is deferred to the next
 * run, the days-ahead margin covering it.
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
    const opts = { lockTimeoutMs: this.o.lockTimeoutMs ?? DEFAULT_CREATE_LOCK_TIMEOUT_MS, deferWhenBusy: true };
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
