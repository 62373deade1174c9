/*
 * What `GET /api/v1/admin/status` answers and `sentinel status` shows (DESIGN §5, §6). The schema
 * lives in core because the terminal dashboard (src/tui) may import core only: the daemon
 * validates its answer against it and the dashboard reads the same type.
 *
 * Each section is produced by the part of the app that owns the figures (HTTP kit, database,
 * telemetry, alerts, jobs kit, backups, heartbeats); the sources below are the small interfaces
 * the status route collects them through. The answer must stay cheap: it is fetched once a second.
 */
import { Type, type Static } from '@sinclair/typebox';

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const count = (description?: string) => Type.Integer({ minimum: 0, ...(description ? { description } : {}) });
const rfc3339 = (description?: string) => Type.String({ format: 'date-time', ...(description ? { description } : {}) });

export const SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
const BySeverity = Type.Object({
  critical: count(),
  error: count(),
  warning: count(),
  info: count(),
});

export const PoolStatusSchema = Type.Object({
  name: Type.String({ description: "The pool's application_name in pg_stat_activity (sentinel, sentinel-query, sentinel jobs)." }),
  max: count(),
  in_use: count(),
  idle: count(),
  waiting: count('Queries waiting for a connection.'),
});

export const DatabaseStatusSchema = Type.Object({
  mode: Type.Union([Type.Literal('embedded'), Type.Literal('external')]),
  /** PostgreSQL's server_version. */
  server_version: Type.String(),
  size_bytes: nullable(count('pg_database_size of the database, read at most every 30 s.')),
  pools: Type.Array(PoolStatusSchema),
  migrations: Type.Object({
    current: nullable(Type.String({ description: 'Newest migration applied.' })),
    pending: count(),
  }),
});

export const HttpStatusSchema = Type.Object({
  window_seconds: count('The figures below cover this many seconds up to now.'),
  requests_per_second: Type.Number({ minimum: 0 }),
  p50_ms: nullable(Type.Number({ minimum: 0 })),
  p99_ms: nullable(Type.Number({ minimum: 0 })),
  status_4xx: count(),
  status_5xx: count(),
  in_flight: count(),
});

export const IngestRatePointSchema = Type.Object({
  ts: rfc3339('Start of a 10 s slot.'),
  points_per_second: Type.Number({ minimum: 0 }),
  logs_per_second: Type.Number({ minimum: 0 }),
});

export const IngestStatusSchema = Type.Object({
  window_seconds: count('The rates and writer figures cover this many seconds up to now: the current 10 s slot counted whole and the five before it (51–60 s), or the time since the start when shorter.'),
  points_per_second: Type.Number({ minimum: 0 }),
  logs_per_second: Type.Number({ minimum: 0 }),
  events_per_second: Type.Number({ minimum: 0 }),
  /** Items refused since start, by signal and reason (the `reason` of the ingest rejection metrics). */
  rejected: Type.Array(Type.Object({ signal: Type.String(), reason: Type.String(), items: count() }), {
    description: 'Items refused since this process started (totals, not rates over window_seconds), by signal and reason.',
  }),
  writer: Type.Object({
    queue_depth: count('Rows waiting for the next group commit.'),
    batch_rows_avg: nullable(Type.Number({ minimum: 0, description: 'Mean rows per commit over the window.' })),
    commit_ms_p99: nullable(Type.Number({ minimum: 0 })),
  }),
  active_series: nullable(count('Series known to this process (series id cache).')),
  /** Oldest first, one entry per 10 s slot, the last 10 minutes: what the sparkline draws. */
  history: Type.Array(IngestRatePointSchema),
});

export const AlertSummarySchema = Type.Object({
  id: Type.String(),
  org: Type.String({ description: 'Organization slug.' }),
  rule: Type.String(),
  severity: Type.String(),
  state: Type.String(),
  since: rfc3339('When it entered that state.'),
  summary: nullable(Type.String()),
});

export const AlertsStatusSchema = Type.Object({
  firing: BySeverity,
  pending: BySeverity,
  /** The ten most recent firing or pending alerts, newest first. */
  newest: Type.Array(AlertSummarySchema),
});

export const JobStatusLineSchema = Type.Object({
  name: Type.String(),
  schedule: nullable(Type.String()),
  enabled: Type.Boolean(),
  running: Type.Boolean(),
  last_run: nullable(
    Type.Object({
      started_at: rfc3339(),
      finished_at: nullable(rfc3339()),
      outcome: nullable(Type.String({ description: 'ok, failed, skipped, timeout; null while running.' })),
      duration_ms: nullable(count()),
      error: nullable(Type.String()),
    }),
  ),
  next_run: nullable(rfc3339()),
});

export const BackupsStatusSchema = Type.Object({
  count: count(),
  newest: nullable(
    Type.Object({
      id: Type.String(),
      created_at: rfc3339(),
      size_bytes: count(),
      verified_at: nullable(rfc3339()),
      verify_ok: nullable(Type.Boolean()),
    }),
  ),
});

export const HeartbeatsStatusSchema = Type.Object({
  late: count(),
  /** At most ten, the longest overdue first. */
  items: Type.Array(Type.Object({ org: Type.String(), name: Type.String(), last_ping_at: nullable(rfc3339()), due_at: rfc3339() })),
});

export const AdminStatusSchema = Type.Object({
  version: Type.String(),
  generated_at: rfc3339(),
  started_at: rfc3339(),
  uptime_seconds: Type.Number({ minimum: 0 }),
  pid: count(),
  hostname: Type.String(),
  database: DatabaseStatusSchema,
  http: HttpStatusSchema,
  ingest: IngestStatusSchema,
  alerts: AlertsStatusSchema,
  jobs: Type.Array(JobStatusLineSchema),
  backups: BackupsStatusSchema,
  heartbeats: HeartbeatsStatusSchema,
});

export type AdminStatus = Static<typeof AdminStatusSchema>;
export type DatabaseStatus = Static<typeof DatabaseStatusSchema>;
export type HttpStatus = Static<typeof HttpStatusSchema>;
export type IngestStatus = Static<typeof IngestStatusSchema>;
export type AlertsStatus = Static<typeof AlertsStatusSchema>;
export type JobStatusLine = Static<typeof JobStatusLineSchema>;
export type BackupsStatus = Static<typeof BackupsStatusSchema>;
export type HeartbeatsStatus = Static<typeof HeartbeatsStatusSchema>;

/*
 * Sources: each owner provides its section through one of these (as `provides` of its module,
 * or from a kit in the composition root). Synchronous ones read in-memory counters only.
 */
export interface IngestStatusSource {
  ingestStatus(): IngestStatus;
}
export interface AlertsStatusSource {
  alertsStatus(): Promise<AlertsStatus>;
}
export interface BackupsStatusSource {
  backupsStatus(): Promise<BackupsStatus>;
}
export interface HeartbeatsStatusSource {
  heartbeatsStatus(): Promise<HeartbeatsStatus>;
}
