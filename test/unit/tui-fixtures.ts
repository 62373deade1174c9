import type { AdminStatus } from '../../src/core/status.js';

/** The instant the fixtures are relative to; the dashboard tests render with this `now`. */
export const NOW = Date.parse('2026-11-30T10:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

/** A healthy daemon: traffic, ingest with a rising history, no alerts, every job fine, a verified backup. */
export function healthyStatus(): AdminStatus {
  return {
    version: '7.3.1',
    generated_at: ago(0),
    started_at: ago(3 * 3600 + 12 * 60),
    uptime_seconds: 3 * 3600 + 12 * 60,
    pid: 4242,
    hostname: 'mon-01',
    database: {
      mode: 'embedded',
      server_version: '17.5',
      size_bytes: 48 * 1024 * 1024,
      pools: [
        { name: 'sentinel', max: 10, in_use: 3, idle: 5, waiting: 0 },
        { name: 'sentinel-query', max: 5, in_use: 1, idle: 1, waiting: 0 },
      ],
      migrations: { current: '20261101000000_create_alerts', pending: 0 },
    },
    http: { window_seconds: 60, requests_per_second: 37.5, p50_ms: 4.2, p99_ms: 87, status_4xx: 12, status_5xx: 0, in_flight: 2 },
    ingest: {
      window_seconds: 60,
      points_per_second: 1530,
      logs_per_second: 48,
      events_per_second: 0.5,
      rejected: [],
      writer: { queue_depth: 17, batch_rows_avg: 230, commit_ms_p99: 6.5 },
      active_series: 9876,
      history: Array.from({ length: 12 }, (_, i) => ({ ts: ago((12 - i) * 10), points_per_second: i * 100, logs_per_second: 10 })),
    },
    alerts: { firing: { critical: 0, error: 0, warning: 0, info: 0 }, pending: { critical: 0, error: 0, warning: 0, info: 0 }, newest: [] },
    jobs: [
      {
        name: 'backup',
        schedule: '0 6 * * *',
        enabled: true,
        running: false,
        last_run: { started_at: ago(4 * 3600), finished_at: ago(4 * 3600 - 20), outcome: 'ok', duration_ms: 20_000, error: null },
        next_run: new Date(NOW + 20 * 3600 * 1000).toISOString(),
      },
      {
        name: 'retention',
        schedule: '*/15 * * * *',
        enabled: true,
        running: false,
        last_run: { started_at: ago(300), finished_at: ago(298), outcome: 'ok', duration_ms: 2000, error: null },
        next_run: new Date(NOW + 600 * 1000).toISOString(),
      },
    ],
    backups: { count: 4, newest: { id: 'bk-20261130', created_at: ago(4 * 3600), size_bytes: Math.round(12.5 * 1024 * 1024), verified_at: ago(3600), verify_ok: true } },
    heartbeats: { late: 0, items: [] },
  };
}

/** Two firing alerts (critical, warning) and one pending, newest first. */
export function firingStatus(): AdminStatus {
  const s = healthyStatus();
  s.alerts = {
    firing: { critical: 1, error: 0, warning: 1, info: 0 },
    pending: { critical: 0, error: 0, warning: 0, info: 1 },
    newest: [
      { id: 'a1', org: 'acme', rule: 'cpu-high', severity: 'critical', state: 'firing', since: ago(180), summary: 'cpu above 95%' },
      { id: 'a2', org: 'acme', rule: 'disk-filling', severity: 'warning', state: 'firing', since: ago(900), summary: null },
      { id: 'a3', org: 'globex', rule: 'slow-queries', severity: 'info', state: 'pending', since: ago(30), summary: null },
    ],
  };
  return s;
}

/** The retention job failed with an error; a heartbeat is late. */
export function failedJobStatus(): AdminStatus {
  const s = healthyStatus();
  s.jobs.push({
    name: 'compaction',
    schedule: '*/5 * * * *',
    enabled: true,
    running: false,
    last_run: { started_at: ago(125), finished_at: ago(120), outcome: 'failed', duration_ms: 5000, error: 'disk full' },
    next_run: new Date(NOW + 180 * 1000).toISOString(),
  });
  s.heartbeats = { late: 1, items: [{ org: 'acme', name: 'nightly-etl', last_ping_at: ago(90_000), due_at: ago(3600) }] };
  return s;
}
