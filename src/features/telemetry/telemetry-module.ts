import type { OrgAccess } from '../../core/authorize.js';
import type { TelemetryStats } from '../../core/telemetry-stats.js';
import type { IngestStatusSource } from '../../core/status.js';
import { configuredMs } from '../../core/duration.js';
import { TokenBuckets } from '../../core/token-bucket.js';
import { createKnex } from '../../db/database.js';
import { PartitionsRepository } from '../../db/partitions.js';
import { defineModule, type JobSpec } from '../feature-module.js';
import type { AlertQuerySource } from '../../core/alerting.js';
import { AlertQuery } from './alert-query.js';
import { CompactionRepository } from './compaction-repository.js';
import { CompactionService, type CompactionReport } from './compaction-service.js';
import { GroupCommitWriter } from './group-commit-writer.js';
import { IngestRepository } from './ingest-repository.js';
import { IngestStats } from './ingest-stats.js';
import { registerOtlpRoutes } from './otlp-routes.js';
import { QueryRepository } from './query-repository.js';
import { registerQueryRoutes } from './query-routes.js';
import { QueryService } from './query-service.js';
import { RejectionCounter } from './rejection-counter.js';
import { SeriesRepository } from './series-repository.js';
import { SeriesStore } from './series-store.js';
import { StatsRepository } from './stats-repository.js';
import { effectiveLimits, type LimitDefaults, type OrgDirectory, type OrgLimitOverrides } from './telemetry-limits-source.js';
import { registerTelemetryRoutes } from './telemetry-routes.js';
import { TelemetryService } from './telemetry-service.js';
import { POINT_WINDOWS, TELEMETRY_TABLES } from './telemetry-tables.js';

/** Organizations' stored limit overrides (the orgs feature keeps and validates them). */
export interface OrgLimitsSource {
  overrides(orgId: string): Promise<object | undefined>;
  all(): Promise<{ id: string; slug: string; limits: object }[]>;
}

/** Every org with its effective retention, for the retention feature. */
export interface RetentionPolicies {
  retentionDays(): Promise<{ orgId: string; days: Record<'metrics' | 'logs' | 'events', number> }[]>;
}


const ms = configuredMs;

interface TelemetryServices {
  telemetry: TelemetryService;
  query: QueryService;
  rejections: RejectionCounter;
  compaction: CompactionService;
}

const compactionJob: JobSpec<TelemetryServices, CompactionReport> = {
  name: 'compaction',
  description: 'rewrite the points of every 2-hour window older than storage.compact_after into one chunk per series (late points merged)',
  defaultSchedule: '*/10 * * * *',
  // Each window (on a whole-day partition or a window over 1 GiB, each batch) is its own transaction: past this the run stops, the one in flight is rolled back, and the next run goes on.
  timeoutMs: 30 * 60_000,
  run: (s, signal) => s.compaction.run(Date.now(), signal),
  print: (r) =>
    `compaction finished in ${r.duration_ms} ms (windows ending by ${r.horizon})\n` +
    `points compacted: ${r.points_compacted}\n` +
    `chunks written: ${r.chunks_written} (${r.chunks_merged} merged with late points)\n` +
    `batches: ${r.batches}\n` +
    (r.partitions_emptied.length ? `partitions emptied (space returned): ${r.partitions_emptied.join(', ')}\n` : '') +
    (r.partitions_vacuumed.length ? `partitions vacuumed: ${r.partitions_vacuumed.join(', ')}\n` : '') +
    (r.windows_dropped.length ? `window partitions dropped (space returned): ${r.windows_dropped.length}\n` : '') +
    (r.windows_deleted.length ? `window partitions emptied by deletes (dropped by a later run): ${r.windows_deleted.join(', ')}\n` : '') +
    (r.windows_in_batches.length ? `window partitions too large for one transaction, moved out batch by batch: ${r.windows_in_batches.join(', ')}\n` : ''),
};

/** Ingest (native and OTLP/HTTP, group commit) and queries over metrics, logs and events. */
export const telemetryModule = defineModule({
  name: 'telemetry',
  requires: ['orgAccess', 'orgLimits'],
  provides: ['retentionPolicies', 'telemetryStats', 'alertQuery', 'ingestStatus'],
  jobs: [compactionJob],
  build(kits, needs: { orgAccess: OrgAccess; orgLimits: OrgLimitsSource }) {
    const { config, logger, db } = kits;
    const knex = db.knex;
    // The orgs feature owns the limits and validated them when they were stored.
    const directory: OrgDirectory = {
      overrides: async (orgId) => (await needs.orgLimits.overrides(orgId)) as OrgLimitOverrides | undefined,
      all: async () => (await needs.orgLimits.all()) as { id: string; slug: string; limits: OrgLimitOverrides }[],
    };
    const limitDefaults: LimitDefaults = {
      pointsPerSecond: config.ingest.points_per_second,
      maxSeries: config.ingest.max_series,
      retentionDays: { metrics: config.retention.metrics_days, logs: config.retention.logs_days, events: config.retention.events_days },
    };
    const ingestRepo = new IngestRepository(knex);
    const stats = new StatsRepository(knex);
    const series = new SeriesStore(new SeriesRepository(knex), { cacheSize: config.ingest.series_cache_size });
    // Read lazily: the writer is built next, fed by these statistics.
    let writer: GroupCommitWriter | null = null;
    const ingestStats = new IngestStats(kits.metrics, { queueDepth: () => writer?.queuedRows ?? 0, activeSeries: () => series.cachedSeries });
    writer = new GroupCommitWriter(
      ingestRepo,
      new PartitionsRepository(knex, TELEMETRY_TABLES, [], POINT_WINDOWS),
      { flushIntervalMs: config.ingest.flush_interval_ms, flushMinItems: config.ingest.flush_min_items, maxFlushItems: config.ingest.max_flush_items, connections: config.ingest.writer_connections },
      logger,
      ingestStats,
    );
    const rejections = new RejectionCounter(stats, logger);
    const telemetry = new TelemetryService({
      orgs: needs.orgAccess,
      directory,
      series,
      writer,
      repo: ingestRepo,
      buckets: new TokenBuckets(),
      limitDefaults,
      maxAgeMs: ms(config.ingest.max_age),
      maxFutureMs: ms(config.ingest.max_future),
      rejections,
      stats: ingestStats,
    });
    // Queries get a pool of their own: their sessions carry query.statement_timeout_ms.
    const queryKnex = db.pools.add('sentinel-query', createKnex(db.url, config, logger, { max: Math.max(2, Math.ceil(config.database.pool_max / 2)), applicationName: 'sentinel-query' }));
    // compact_after tells metric reads which tier their range is in (fresh-first and chunks-first statements).
    const queryRepo = new QueryRepository(knex, queryKnex, { compactAfterMs: ms(config.storage.compact_after) });
    const query = new QueryService(queryRepo, needs.orgAccess, directory, {
      maxSeries: config.query.max_series,
      maxBuckets: config.query.max_buckets,
      maxPoints: config.query.max_points,
      statementTimeoutMs: config.query.statement_timeout_ms,
      limitDefaults,
    });
    // Alert rules read under the same limits as the query API.
    const alertQuery: AlertQuerySource = new AlertQuery(queryRepo, {
      maxSeries: config.query.max_series,
      maxBuckets: config.query.max_buckets,
      maxPoints: config.query.max_points,
      statementTimeoutMs: config.query.statement_timeout_ms,
    });
    const compaction = new CompactionService(
      new CompactionRepository(knex),
      { compactAfterMs: ms(config.storage.compact_after), batchSeries: config.storage.compact_batch_series },
      logger,
    );
    const retentionPolicies: RetentionPolicies = {
      retentionDays: async () => (await directory.all()).map((o) => ({ orgId: o.id, days: effectiveLimits(o.limits, limitDefaults).retention_days })),
    };
    const services: TelemetryServices = { telemetry, query, rejections, compaction };
    return {
      provides: { retentionPolicies, telemetryStats: stats as TelemetryStats, alertQuery, ingestStatus: ingestStats as IngestStatusSource },
      services,
      routes: (registry) => {
        registerTelemetryRoutes(registry, telemetry);
        registerQueryRoutes(registry, query);
        // OTLP/HTTP at the spec's paths, outside /api/v1: served and documented by the registry.
        registerOtlpRoutes(registry, { ingest: telemetry, bodyLimitBytes: config.http.body_limit_bytes });
      },
      // After the HTTP server has drained (stop runs in reverse): requests still waiting on a commit finish first.
      stop: [
        { name: 'telemetry writer', timeoutMs: config.shutdown.grace_ms, run: () => writer.stop() },
        { name: 'telemetry query pool', timeoutMs: 5000, run: () => queryKnex.destroy() },
        // Refused-ingest counts still in memory: written before the database closes.
        { name: 'telemetry refused-ingest counts', timeoutMs: 5000, run: () => rejections.stop() },
      ],
    };
  },
});
