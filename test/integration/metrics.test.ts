import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { buildApp, type App } from '../../src/app/build-app.js';
import { startApp } from '../../src/app/lifecycle.js';
import { createLogger } from '../../src/app/logger.js';
import { VERSION } from '../../src/app/version.js';
import { packageRoot } from '../../src/config/paths.js';
import { RATE_LIMITERS } from '../../src/core/rate-limiter.js';
import { LogCapture } from '../support/capture.js';
import { testConfig } from '../support/config.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { ApiClient } from '../support/http.js';
import { parsePrometheusText, sampleValue, type Family } from '../support/prom-text.js';
import { findPrometheus } from '../support/prometheus-binaries.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { scratchDir } from '../support/scratch.js';

/**
 * /metrics over real HTTP on a real PostgreSQL: each Sentinel metric is read before and after the
 * traffic that should move it (the scrape parsed as the text format, not grepped), then
 * `promtool check metrics` (Debian's prometheus package) on a scrape taken after traffic of
 * every kind must be silent, and the README's table must name exactly the families served.
 */

type Families = Map<string, Family>;

const ENV = {
  // Alerts evaluated in the background (a rule fires on its own), notifications to 127.0.0.1.
  SENTINEL_ALERTS_ENABLED: 'true',
  SENTINEL_ALERTS_TICK_MS: '100',
  SENTINEL_NOTIFICATIONS_ALLOW_PRIVATE_NETWORKS: 'true',
  SENTINEL_QUEUE_POLL_INTERVAL_MS: '50',
  SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000',
  SENTINEL_RATE_LIMITS_AUTH_FAILURES_PER_MINUTE_PER_IP: '3',
  // Long enough for a scrape to see rows waiting for the group commit.
  SENTINEL_INGEST_FLUSH_INTERVAL_MS: '300',
};

const nowNs = (ms = Date.now()) => `${BigInt(ms) * 1_000_000n}`;

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await read();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
    last = await read();
  }
  return last;
}

async function scrapeOf(api: ApiClient): Promise<{ text: string; families: Families }> {
  const res = await api.raw('GET', '/metrics');
  expect(res.status, res.text).to.equal(200);
  expect(res.contentType).to.match(/^text\/plain; version=0\.0\.4/);
  return { text: res.text, families: parsePrometheusText(res.text) };
}

/** The sample's value; fails when the series is not served at all (a missing series is not a zero). */
function value(f: Families, name: string, labels: Record<string, string> = {}): number {
  const v = sampleValue(f, name, labels);
  expect(v, `${name}${JSON.stringify(labels)} in /metrics`).to.not.equal(undefined);
  return v!;
}

/** The sentinel_* family names listed in README's /metrics table. */
function readmeMetricNames(): string[] {
  const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Metrics'), readme.indexOf('\n## ', readme.indexOf('### Metrics')));
  return [...new Set([...section.matchAll(/^\| `(sentinel_[a-z_]+)/gm)].map((m) => m[1]))];
}

/** `promtool check metrics` on a scrape: its exit status and everything it printed. */
function promtoolCheck(text: string): { status: number | null; output: string } {
  let promtool: string;
  try {
    promtool = findPrometheus(() => undefined).promtool;
  } catch (err) {
    throw new Error(`promtool check metrics cannot run: ${(err as Error).message}`);
  }
  const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`${promtool} check metrics did not run: ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('/metrics', function () {
  this.timeout(120_000);
  let url: string;
  let t: TestApp;
  let backupsDir: string;
  const receiver = new WebhookReceiver();
  let root: string;
  let admin: string;
  let slug: string;
  let key: string;
  const scrape = () => scrapeOf(t.api).then((s) => s.families);

  before(async () => {
    url = await cloneDatabase();
    backupsDir = scratchDir('sentinel-metrics-backups-');
    await receiver.start();
    t = await startTestApp(url, { ...ENV, SENTINEL_BACKUPS_DIR: backupsDir });
    const s = t.app.services;
    const su = await createUser(s, { superadmin: true });
    root = (await t.api.login(su.email, su.password)).access_token;
    const org = await createOrg(s);
    slug = org.slug;
    const a = await createUser(s, { org: slug, role: 'admin' });
    admin = (await t.api.login(a.email, a.password)).access_token;
    key = (await createApiKey(s, slug)).secret;
  });

  after(async () => {
    await t?.stop();
    await receiver.stop();
    if (backupsDir) rmSync(backupsDir, { recursive: true, force: true });
    if (url) await dropDatabase(url);
  });

  it('sentinel_build_info: 1, labelled with the version and the Node.js version', async () => {
    const f = await scrape();
    const info = f.get('sentinel_build_info')!;
    expect(info.type).to.equal('gauge');
    expect(info.samples).to.deep.equal([{ name: 'sentinel_build_info', labels: { version: VERSION, node_version: process.versions.node }, value: 1 }]);
  });

  it('native ingest: items stored per signal, one group commit (rows, duration), new series active', async () => {
    const before = await scrape();
    const ts = Date.now();
    const res = await t.api.post('/telemetry', key, {
      metrics: [
        { name: 'm_native', value: 1, ts, labels: { host: 'a' } },
        { name: 'm_native', value: 1e308, ts, labels: { host: 'b' } },
        // A NUL byte in a label is stored (replaced), so it counts as stored.
        { name: 'm_native', value: -0.5, ts, labels: { host: 'c\u0000d' } },
      ],
      logs: [
        { ts, level: 'info', message: 'one' },
        { ts, level: 'error', message: 'two' },
      ],
      events: [{ ts, type: 'deploy', title: 'v1' }],
    });
    expect(res.status, res.text).to.equal(202);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(delta('sentinel_ingest_items_total', { signal: 'metrics' })).to.equal(3);
    expect(delta('sentinel_ingest_items_total', { signal: 'logs' })).to.equal(2);
    expect(delta('sentinel_ingest_items_total', { signal: 'events' })).to.equal(1);
    expect(delta('sentinel_ingest_commit_rows_count')).to.equal(1);
    expect(delta('sentinel_ingest_commit_rows_sum')).to.equal(6);
    expect(delta('sentinel_ingest_commit_rows_bucket', { le: '1' })).to.equal(0);
    expect(delta('sentinel_ingest_commit_rows_bucket', { le: '10' })).to.equal(1);
    expect(delta('sentinel_ingest_commit_duration_seconds_count')).to.equal(1);
    expect(delta('sentinel_ingest_commit_duration_seconds_sum')).to.be.greaterThan(0).and.lessThan(10);
    expect(delta('sentinel_series_active')).to.equal(3);
    expect(after.get('sentinel_ingest_commit_rows')!.type).to.equal('histogram');
    expect(after.get('sentinel_ingest_items_total')!.type).to.equal('counter');
  });

  it('OTLP/HTTP ingest (JSON): data points and log records count as stored metrics and logs', async () => {
    const before = await scrape();
    const metrics = await t.api.raw('POST', '/v1/metrics', {
      token: key,
      body: { resourceMetrics: [{ resource: { attributes: [] }, scopeMetrics: [{ scope: {}, metrics: [{ name: 'm_otlp', gauge: { dataPoints: [{ timeUnixNano: nowNs(), asDouble: 1 }, { timeUnixNano: nowNs(), asDouble: 2, attributes: [{ key: 'k', value: { stringValue: 'v' } }] }] } }] }] }] },
    });
    expect(metrics.status, metrics.text).to.equal(200);
    const logs = await t.api.raw('POST', '/v1/logs', {
      token: key,
      body: { resourceLogs: [{ resource: { attributes: [] }, scopeLogs: [{ scope: {}, logRecords: [{ timeUnixNano: nowNs(), severityNumber: 9, body: { stringValue: 'otlp' } }] }] }] },
    });
    expect(logs.status, logs.text).to.equal(200);
    const after = await scrape();
    expect(value(after, 'sentinel_ingest_items_total', { signal: 'metrics' }) - value(before, 'sentinel_ingest_items_total', { signal: 'metrics' })).to.equal(2);
    expect(value(after, 'sentinel_ingest_items_total', { signal: 'logs' }) - value(before, 'sentinel_ingest_items_total', { signal: 'logs' })).to.equal(1);
    expect(value(after, 'sentinel_ingest_commit_rows_count') - value(before, 'sentinel_ingest_commit_rows_count')).to.equal(2);
  });

  it('refused items by signal and reason: a native batch outside the time window (400, nothing stored), OTLP points dropped (200)', async () => {
    const before = await scrape();
    const old = Date.now() - 30 * 86_400_000;
    const res = await t.api.post('/telemetry', key, {
      metrics: [
        { name: 'm_old', value: 1, ts: old },
        { name: 'm_old', value: 2, ts: old - 1000 },
        { name: 'm_new', value: 3, ts: Date.now() },
      ],
      logs: [{ ts: old, level: 'info', message: 'old' }],
    });
    expect(res.status, res.text).to.equal(400);
    const otlp = await t.api.raw('POST', '/v1/metrics', {
      token: key,
      body: { resourceMetrics: [{ resource: { attributes: [] }, scopeMetrics: [{ scope: {}, metrics: [{ name: 'm_otlp_old', gauge: { dataPoints: [{ timeUnixNano: nowNs(old), asDouble: 1 }, { timeUnixNano: nowNs(), asDouble: 2 }] } }] }] }] },
    });
    expect(otlp.status, otlp.text).to.equal(200);
    // int64 is a decimal string in OTLP's JSON mapping, which is what Sentinel answers a JSON request with.
    expect((JSON.parse(otlp.text) as { partialSuccess?: { rejectedDataPoints?: unknown } }).partialSuccess?.rejectedDataPoints).to.equal('1');
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => value(after, name, labels) - (sampleValue(before, name, labels) ?? 0);
    expect(delta('sentinel_ingest_rejected_items_total', { signal: 'metrics', reason: 'outside_time_window' })).to.equal(2);
    expect(delta('sentinel_ingest_rejected_items_total', { signal: 'logs', reason: 'outside_time_window' })).to.equal(1);
    expect(sampleValue(after, 'sentinel_ingest_rejected_items_total', { signal: 'events', reason: 'outside_time_window' }), 'no event was refused').to.equal(undefined);
    expect(delta('sentinel_ingest_rejected_items_total', { signal: 'metrics', reason: 'dropped_outside_time_window' })).to.equal(1);
    // Only the OTLP request's fresh point was stored: the native batch is all or nothing.
    expect(delta('sentinel_ingest_items_total', { signal: 'metrics' })).to.equal(1);
    expect(delta('sentinel_ingest_items_total', { signal: 'logs' })).to.equal(0);
  });

  it('sentinel_ingest_queue_rows: the rows of a request waiting for its group commit, 0 once committed', async () => {
    expect(value(await scrape(), 'sentinel_ingest_queue_rows')).to.equal(0);
    const ts = Date.now();
    const pending = t.api.post('/telemetry', key, { metrics: Array.from({ length: 7 }, (_, i) => ({ name: 'm_queue', value: i, ts: ts - i })) });
    // The writer waits ingest.flush_interval_ms (300 ms here) for others to join the group.
    await until('7 rows queued', async () => value(await scrape(), 'sentinel_ingest_queue_rows'), (n) => n === 7, 5_000, 10);
    expect((await pending).status).to.equal(202);
    expect(value(await scrape(), 'sentinel_ingest_queue_rows')).to.equal(0);
  });

  it('sentinel_rate_limited_total{limiter="ingest"} and the rate_limited refusals: an organization over its ingest rate gets a 429', async () => {
    const before = await scrape();
    for (const limiter of RATE_LIMITERS) expect(value(before, 'sentinel_rate_limited_total', { limiter }), limiter).to.be.at.least(0);
    const patched = await t.api.call('PATCH', `/organizations/${slug}`, admin, { limits: { ingest_points_per_second: 1 } });
    expect(patched.status, patched.text).to.equal(200);
    try {
      const ts = Date.now();
      // The first takes the bucket into debt; the second is refused.
      expect((await t.api.post('/telemetry', key, { metrics: [{ name: 'm_rl', value: 1, ts }] })).status).to.equal(202);
      const refused = await t.api.post('/telemetry', key, { metrics: [{ name: 'm_rl', value: 2, ts }, { name: 'm_rl', value: 3, ts: ts - 1 }], logs: [{ ts, level: 'info', message: 'x' }] });
      expect(refused.status, refused.text).to.equal(429);
    } finally {
      expect((await t.api.call('PATCH', `/organizations/${slug}`, admin, { limits: { ingest_points_per_second: null } })).status).to.equal(200);
    }
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => value(after, name, labels) - (sampleValue(before, name, labels) ?? 0);
    expect(delta('sentinel_rate_limited_total', { limiter: 'ingest' })).to.equal(1);
    expect(delta('sentinel_rate_limited_total', { limiter: 'api' })).to.equal(0);
    expect(delta('sentinel_ingest_rejected_items_total', { signal: 'metrics', reason: 'rate_limited' })).to.equal(2);
    expect(delta('sentinel_ingest_rejected_items_total', { signal: 'logs', reason: 'rate_limited' })).to.equal(1);
  });

  it('a job run: sentinel_job_last_success_timestamp_seconds and sentinel_job_duration_seconds of that job', async () => {
    const before = await scrape();
    const started = Date.now() / 1000;
    expect(value(before, 'sentinel_job_last_success_timestamp_seconds', { job: 'partitions' })).to.be.lessThan(started);
    const res = await t.api.post('/admin/jobs/partitions/run', root);
    expect(res.status, res.text).to.equal(202);
    const after = await until(
      'the partitions job to succeed',
      scrape,
      (f) => value(f, 'sentinel_job_last_success_timestamp_seconds', { job: 'partitions' }) >= Math.floor(started),
    );
    expect(value(after, 'sentinel_job_last_success_timestamp_seconds', { job: 'partitions' })).to.be.at.most(Date.now() / 1000);
    expect(value(after, 'sentinel_job_duration_seconds', { job: 'partitions' })).to.be.at.least(0).and.lessThan(60);
  });

  it('a job run that fails: sentinel_job_failures_total of that job (a restore drill with no backup to verify)', async () => {
    const before = await scrape();
    const failures = (f: Families) => value(f, 'sentinel_job_failures_total', { job: 'restore-drill' });
    const res = await t.api.post('/admin/jobs/restore-drill/run', root);
    expect(res.status, res.text).to.equal(202);
    const after = await until('the drill to fail', scrape, (f) => failures(f) === failures(before) + 1);
    expect(value(after, 'sentinel_restore_drill_failures_total') - value(before, 'sentinel_restore_drill_failures_total')).to.equal(1);
    expect(value(after, 'sentinel_job_failures_total', { job: 'partitions' })).to.equal(value(before, 'sentinel_job_failures_total', { job: 'partitions' }));
    expect(value(after, 'sentinel_job_last_success_timestamp_seconds', { job: 'restore-drill' }), 'never succeeded').to.equal(0);
  });

  it('a backup: sentinel_backup_last_success_timestamp_seconds, _size_bytes and _age_seconds follow the newest', async () => {
    const before = await scrape();
    expect(value(before, 'sentinel_backup_last_success_timestamp_seconds')).to.equal(0);
    expect(value(before, 'sentinel_backup_age_seconds')).to.equal(Infinity);
    const res = await t.api.post<{ id: string; status: string }>('/admin/backups', root);
    expect(res.status, res.text).to.equal(201);
    const after = await scrape();
    expect(value(after, 'sentinel_backup_last_success_timestamp_seconds')).to.be.within(Date.now() / 1000 - 60, Date.now() / 1000);
    expect(value(after, 'sentinel_backup_size_bytes')).to.be.greaterThan(0);
    expect(value(after, 'sentinel_backup_age_seconds')).to.be.within(0, 60);
  });

  it('an alert that fires and its notification: sentinel_alerts{state}, evaluations, sentinel_notification_deliveries_total{channel_type,outcome}', async () => {
    const before = await scrape();
    const channel = await t.api.post<{ id: string }>(`/organizations/${slug}/channels`, admin, { name: 'metrics-hook', type: 'webhook', config: { url: receiver.url } });
    expect(channel.status, channel.text).to.equal(201);
    const rule = await t.api.post(`/organizations/${slug}/alert-rules`, admin, {
      name: 'metrics-test-high',
      kind: 'threshold',
      query: { name: 'm_alert', agg: 'max', window: '1m' },
      op: '>',
      threshold: 90,
      interval: 1,
      for: 0,
      group_wait: 0,
      group_interval: 1,
      repeat_interval: '1h',
      severity: 'critical',
      channels: [channel.body.id],
    });
    expect(rule.status, rule.text).to.equal(201);
    expect((await t.api.post('/telemetry', key, { metrics: [{ name: 'm_alert', value: 95, ts: Date.now() }] })).status).to.equal(202);
    const firing = (f: Families) => value(f, 'sentinel_alerts', { state: 'firing' });
    const sent = (f: Families) => sampleValue(f, 'sentinel_notification_deliveries_total', { channel_type: 'webhook', outcome: 'sent' }) ?? 0;
    const after = await until('the alert to fire and its notification to be sent', scrape, (f) => firing(f) === firing(before) + 1 && sent(f) === sent(before) + 1);
    expect(receiver.hits).to.have.length(1);
    expect(receiver.hits[0].body).to.include({ status: 'firing' });
    const ok = (f: Families) => sampleValue(f, 'sentinel_alert_evaluations_total', { outcome: 'ok' }) ?? 0;
    expect(ok(after)).to.be.greaterThan(ok(before));
    expect(sampleValue(after, 'sentinel_notification_deliveries_total', { channel_type: 'webhook', outcome: 'failed' })).to.equal(undefined);
  });

  it('no embedded PostgreSQL series on an external database', async () => {
    const f = await scrape();
    expect(f.has('sentinel_embedded_postgres_up')).to.equal(false);
    expect(f.has('sentinel_embedded_postgres_restarts_total')).to.equal(false);
  });

  // Last of the traffic: once over the limit, every credential from this address is refused for a minute.
  it('sentinel_rate_limited_total{limiter="auth_failures_ip"}: refused credentials from one address until 429', async () => {
    const before = await scrape();
    let status = 0;
    let tries = 0;
    while (status !== 429 && tries < 10) {
      tries++;
      status = (await t.api.get(`/organizations/${slug}`, `not-a-token-${tries}`)).status;
      if (status !== 429) expect(status).to.equal(401);
    }
    expect(status).to.equal(429);
    const after = await scrape();
    expect(value(after, 'sentinel_rate_limited_total', { limiter: 'auth_failures_ip' }) - value(before, 'sentinel_rate_limited_total', { limiter: 'auth_failures_ip' })).to.equal(1);
    expect(value(after, 'sentinel_rate_limited_total', { limiter: 'ingest' })).to.equal(value(before, 'sentinel_rate_limited_total', { limiter: 'ingest' }));
  });

  it('promtool check metrics is silent on a scrape taken after traffic of every kind', async () => {
    const { text, families } = await scrapeOf(t.api);
    // The traffic above left its mark: the check covers series of every kind, not empty families.
    expect(value(families, 'sentinel_ingest_items_total', { signal: 'logs' })).to.be.greaterThan(0);
    expect(value(families, 'sentinel_ingest_rejected_items_total', { signal: 'metrics', reason: 'dropped_outside_time_window' })).to.be.greaterThan(0);
    expect(value(families, 'sentinel_rate_limited_total', { limiter: 'auth_failures_ip' })).to.be.greaterThan(0);
    expect(value(families, 'sentinel_backup_size_bytes')).to.be.greaterThan(0);
    expect(value(families, 'sentinel_alerts', { state: 'firing' })).to.be.greaterThan(0);
    expect(value(families, 'sentinel_notification_deliveries_total', { channel_type: 'webhook', outcome: 'sent' })).to.be.greaterThan(0);
    expect(value(families, 'sentinel_http_request_duration_seconds_count', { route: '/v1/metrics', method: 'POST', status: '200' })).to.be.greaterThan(0);
    const { status, output } = promtoolCheck(text);
    expect(output, 'promtool check metrics output').to.equal('');
    expect(status, 'promtool check metrics exit status').to.equal(0);
  });

  it('promtool check metrics is not silent on what it must flag (the check can fail)', () => {
    const bad = '# HELP x_active_total A gauge named like a counter.\n# TYPE x_active_total gauge\nx_active_total 1\n';
    const { status, output } = promtoolCheck(bad);
    expect(status).to.not.equal(0);
    expect(output).to.contain('x_active_total');
  });

  it("README's /metrics table names every sentinel_* family served, and nothing that is not", async () => {
    const served = [...(await scrape()).keys()].filter((n) => n.startsWith('sentinel_'));
    // Served only on the embedded database (the describe below checks them there).
    const embeddedOnly = ['sentinel_embedded_postgres_up', 'sentinel_embedded_postgres_restarts_total'];
    const documented = readmeMetricNames();
    expect(served.filter((n) => !documented.includes(n)), 'served but not in README').to.deep.equal([]);
    expect(documented.filter((n) => !served.includes(n) && !embeddedOnly.includes(n)), 'in README but not served').to.deep.equal([]);
    expect(documented).to.include.members(embeddedOnly);
  });
});

describe('/metrics on the embedded PostgreSQL', function () {
  this.timeout(180_000);
  let app: App;
  let api: ApiClient;
  let dataDir: string;

  before(async () => {
    const config = testConfig('', { SENTINEL_LOG_LEVEL: 'warn' });
    dataDir = config.data_dir;
    app = await buildApp(config, createLogger(config.log.level, new LogCapture()), { role: 'daemon', http: true });
    const addr = await startApp(app, { migrate: true });
    api = new ApiClient(`http://127.0.0.1:${addr.port}`);
  });

  after(async () => {
    await app?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('sentinel_embedded_postgres_up goes 1 → 0 → 1 and _restarts_total counts the supervisor bringing it back', async () => {
    const up = async () => value((await scrapeOf(api)).families, 'sentinel_embedded_postgres_up');
    const restarts = async () => value((await scrapeOf(api)).families, 'sentinel_embedded_postgres_restarts_total');
    expect(await up()).to.equal(1);
    expect(await restarts()).to.equal(0);
    const pid = app.db.embedded!.postmasterPid();
    expect(pid).to.be.a('number');
    process.kill(pid!, 'SIGKILL');
    // The supervisor waits a second before the first restart: the scrape sees it down meanwhile.
    await until('the server to be seen down', up, (v) => v === 0, 5_000, 20);
    await until('the supervisor to restart it', async () => [await up(), await restarts()], ([u, r]) => u === 1 && r === 1, 90_000, 200);
    const { text } = await scrapeOf(api);
    expect(promtoolCheck(text)).to.deep.equal({ status: 0, output: '' });
  });
});
