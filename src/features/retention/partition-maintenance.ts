import type { Logger } from 'pino';
import { DAY_MS, dayStart, type PartitionsRepository } from '../../db/partitions.js';

export interface PartitionMaintenanceOptions {
  /** retention.partitions_ahead_days: days after today that get their partitions now. */
  aheadDays: number;
}

/**
 * Creates the day-partitions of the repository's tables (telemetry's points, logs and events)
 * ahead of time, so ingest around midnight never waits on a CREATE TABLE (the writer still
 * creates a missing one on demand). Yesterday is included for the writer's late arrivals just
 * after midnight. Idempotent.
 */
export class PartitionMaintenance<T extends string = string> {
  constructor(
    private readonly partitions: Pick<PartitionsRepository<T>, 'ensure' | 'partitionedTables'>,
    private readonly o: PartitionMaintenanceOptions,
    private readonly logger: Logger,
  ) {}

  async run(now = Date.now()): Promise<{ created: string[] }> {
    const today = dayStart(now);
    const days: number[] = [];
    for (let i = -1; i <= this.o.aheadDays; i++) days.push(today + i * DAY_MS);
    const created: string[] = [];
    for (const table of this.partitions.partitionedTables) created.push(...(await this.partitions.ensure(table, days)));
    this.logger.info({ job: 'partitions', created: created.length }, 'partition maintenance finished');
    return { created };
  }
}
