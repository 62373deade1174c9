import { configuredMs } from '../../core/duration.js';
import { PartitionsRepository } from '../../db/partitions.js';
import { defineModule, type JobSpec } from '../feature-module.js';
import { PartitionAnalyzer, PartitionMaintenance, type PartitionAnalyzeReport, type PartitionMaintenanceReport } from './partition-maintenance.js';
import { RETAINED_TABLES, SPLIT_TABLES } from './retained-tables.js';
import { RetentionRepository } from './retention-repository.js';
import { RetentionService, type RetentionPolicySource, type RetentionReport } from './retention-service.js';

interface RetentionServices {
  retention: RetentionService;
  partitions: PartitionMaintenance;
  analyzer: PartitionAnalyzer;
}

/** The day-partitioned tables (point_chunks among them) whose fresh partitions the analyze job keeps planned. */
const ANALYZED_TABLES = RETAINED_TABLES;

/**
 * Tables that are not partitioned which the analyze job keeps planned by the same rule: series,
 * which every metric read looks up by labels (its index choice depends on the statistics) and
 * which fills by thousands at once when a deployment or a bulk load brings new series.
 */
const ANALYZED_PLAIN_TABLES: readonly string[] = ['series'];

const list = (names: string[]) => (names.length ? `: ${names.join(', ')}` : '');

function printRetention(r: RetentionReport): string {
  const rows = r.rows_deleted;
  return [
    `retention finished in ${r.duration_ms} ms (cutoffs from ${r.now})\n`,
    `partitions dropped: ${r.dropped_partitions.length}${list(r.dropped_partitions)}\n`,
    r.deferred_partitions.length ? `partitions deferred (table busy, retried next run): ${r.deferred_partitions.length}${list(r.deferred_partitions)}\n` : '',
    `rows deleted: points ${rows.points}, point chunks ${rows.point_chunks}, logs ${rows.logs}, events ${rows.events}\n`,
    r.deleted_orgs_swept ? `deleted organizations swept: ${r.deleted_orgs_swept}\n` : '',
    `series removed: ${r.series_removed}\n`,
    `idempotency keys removed: ${r.idempotency_keys_removed}\n`,
  ].join('');
}

const retentionJob: JobSpec<RetentionServices, RetentionReport> = {
  name: 'retention',
  description: 'drop expired day-partitions, delete expired rows per org, stale series and idempotency keys',
  // Hourly (issue 9): an org's lowered retention takes effect within the hour.
  defaultSchedule: '15 * * * *',
  // Batched deletes after a retention cut can take long; past this the run stops between batches.
  timeoutMs: 30 * 60_000,
  run: (s, signal) => s.retention.run(Date.now(), signal),
  print: printRetention,
};

const printPartitions = (r: PartitionMaintenanceReport): string =>
  (r.created.length ? `created ${r.created.length} partitions${list(r.created)}\n` : 'no partitions created: all exist\n') +
  (r.deferred.length ? `partitions deferred (table busy, retried next run): ${r.deferred.length}${list(r.deferred)}\n` : '');

const partitionsJob: JobSpec<RetentionServices, PartitionMaintenanceReport> = {
  name: 'partitions',
  description: 'create the day-partitions of yesterday through the coming days (retention.partitions_ahead_days)',
  defaultSchedule: '5 * * * *',
  timeoutMs: 5 * 60_000,
  run: (s, signal) => s.partitions.run(Date.now(), signal),
  print: printPartitions,
};

const printAnalyze = (r: PartitionAnalyzeReport): string =>
  (r.analyzed.length ? `analyzed ${r.analyzed.length} partitions${list(r.analyzed)}\n` : 'no partition changed enough since its last analyze\n') +
  (r.deferred.length ? `partitions deferred (locked by a vacuum, retried next run): ${r.deferred.length}${list(r.deferred)}\n` : '') +
  (r.tables_analyzed.length ? `analyzed tables${list(r.tables_analyzed)}\n` : '') +
  (r.tables_deferred.length ? `tables deferred (locked by a vacuum, retried next run)${list(r.tables_deferred)}\n` : '');

const analyzeJob: JobSpec<RetentionServices, PartitionAnalyzeReport> = {
  name: 'analyze',
  description:
    "ANALYZE today's and yesterday's day-partitions, and the series table, where 1,000 rows plus 10% changed since their last analyze, so fresh partitions and new series have planner statistics",
  // Fresh partitions must not wait for autovacuum's analyze (a plan without statistics sorts a whole day of logs).
  defaultSchedule: '*/5 * * * *',
  timeoutMs: 4 * 60_000,
  run: (s, signal) => s.analyzer.run(Date.now(), signal),
  print: printAnalyze,
};

/** Telemetry retention and the day-partitions it drops and creates ahead. */
export const retentionModule = defineModule({
  name: 'retention',
  requires: ['retentionPolicies'],
  provides: [],
  jobs: [retentionJob, partitionsJob, analyzeJob],
  build(kits, needs: { retentionPolicies: RetentionPolicySource }) {
    const { config, logger } = kits;
    const knex = kits.db.knex;
    const partitions = new PartitionsRepository(knex, RETAINED_TABLES, [], SPLIT_TABLES);
    const retention = new RetentionService(
      new RetentionRepository(knex),
      partitions,
      needs.retentionPolicies,
      {
        defaults: { metrics: config.retention.metrics_days, logs: config.retention.logs_days, events: config.retention.events_days },
        deleteBatchSize: config.retention.delete_batch_size,
        idempotencyTtlMs: configuredMs(config.ingest.idempotency_ttl),
      },
      logger,
    );
    const maintenance = new PartitionMaintenance(partitions, { aheadDays: config.retention.partitions_ahead_days }, logger);
    const analyzer = new PartitionAnalyzer(new PartitionsRepository(knex, ANALYZED_TABLES, ANALYZED_PLAIN_TABLES, SPLIT_TABLES), {}, logger);
    const services: RetentionServices = { retention, partitions: maintenance, analyzer };

    // The `partitions` job (hourly) keeps the days ahead; at start too, since the tables exist
    // only once migrations have run (hence a start hook) and the daemon may have been down past
    // the days it had made. The writer still creates a missing day on demand, so a failure here
    // is a warning, not a reason to refuse to start.
    return {
      provides: {},
      services,
      start: [
        {
          name: 'partitions ahead',
          timeoutMs: 60_000,
          run: async () => {
            await maintenance.run().catch((err: unknown) => logger.warn({ err }, 'creating telemetry partitions ahead failed'));
          },
        },
      ],
    };
  },
});
