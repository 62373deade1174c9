import { createSecretKey } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import knexFactory from 'knex';
import { Registry } from 'prom-client';
import { declaredJobs } from '../../src/app/build-app.js';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import { LOCAL_ADMIN_AUDIENCE, LOCAL_ADMIN_SUBJECT, mintLocalAdminToken } from '../../src/core/local-admin-token.js';
import type { AdminStatus } from '../../src/core/status.js';
import { PoolRegistry, registerPoolMetrics } from '../../src/db/pool-stats.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { expectProblem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/*
 * GET /api/v1/admin/status against the whole app on a real PostgreSQL: who may read it (a
 * superadmin, the local admin token on this route only), and figures that follow the traffic and
 * the state the test makes (requests and errors, ingest, alerts, jobs, backups, heartbeats, pools).
 * Every answer is validated against AdminStatusSchema by the shared client (the OpenAPI document).
 */

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The requests the window counted: its rate times its length (both in the answer). */
const counted = (s: AdminStatus) => Math.round(s.http.requests_per_second * s.http.window_seconds);

describe('GET /admin/status', function () {
  this.timeout(90_000);
  let url: string;
  let t: TestApp;
  let root: string;
  let owner: string;
  let slug: string;

  const status = async (token: string = root): Promise<AdminStatus> => {
    const res = await t.api.get<AdminStatus>('/admin/status', token);
    expect(res.status, res.text).to.equal(200);
    return res.body;
  };

  before(async () => {
    url = await cloneDatabase();
    // Every job off (as in every test) but two, on schedules that never come during a test: their
    // next_run is a date the test works out by hand.
    const jobs = Object.fromEntries(declaredJobs().map((j) => [j.name, { enabled: false }]));
    t = await startTestApp(url, {
      SENTINEL_JOBS: JSON.stringify({ ...jobs, 'daily-report': { enabled: true, schedule: '0 3 1 1 *' }, analyze: { enabled: true, schedule: '30 2 29 2 *' } }),
    });
    const s = t.app.services;
    const su = await createUser(s, { superadmin: true });
    root = (await t.api.login(su.email, su.password)).access_token;
    slug = (await createOrg(s)).slug;
    const o = await createUser(s, { org: slug, role: 'owner' });
    owner = (await t.api.login(o.email, o.password)).access_token;
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  // First, while the app is younger than the 60 s window: every request it answered is in it.
  it('counts the requests, 4xx and 5xx of the last minute and the one in flight', async () => {
    // Every request's time as the client saw it: the server's duration of it is at most that.
    let slowest = 0;
    const timed = async <T>(send: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      const r = await send();
      slowest = Math.max(slowest, performance.now() - t0);
      return r;
    };
    const a = await timed(() => status());
    for (let i = 0; i < 7; i++) expect((await timed(() => t.api.get('/health'))).status).to.equal(200);
    for (let i = 0; i < 3; i++) expectProblem(await timed(() => t.api.get('/no-such-route')), 404, 'unknown route');
    for (let i = 0; i < 2; i++) expectProblem(await timed(() => t.api.get('/admin/status')), 401, 'no token');
    const b = await status();
    expect(b.http.window_seconds, 'the test ran within the window (else earlier requests left it)').to.be.below(60);
    // 7 + 3 + 2, and the first status request itself (counted once answered).
    expect(counted(b) - counted(a)).to.equal(13);
    expect(b.http.status_4xx - a.http.status_4xx).to.equal(5);
    expect(b.http.status_5xx - a.http.status_5xx).to.equal(0);
    expect(b.http.in_flight, 'the status request itself').to.equal(1);
    // Requests answered before this app's first status call (none but the test's logins) are in
    // the window too: the quantiles are bounded by what this test timed, within the histogram's 12.5 %.
    expect(b.http.p50_ms).to.be.a('number').and.greaterThan(0).and.at.most(slowest * 1.125);
    // p99 may be a login (bcrypt, untimed here): bounded below by the median only.
    expect(b.http.p99_ms).to.be.a('number').and.at.least(b.http.p50_ms!);
  });

  describe('who may read it', () => {
    it('a superadmin and the local admin token: 200', async () => {
      await status(root);
      const local = await status(mintLocalAdminToken(t.app.config.auth.jwt_secret));
      expect(local.pid).to.equal(process.pid);
    });

    it('a local admin token signed with another key, expired, or with a lifetime past the bound: 401', async () => {
      const other = mintLocalAdminToken('another-secret-entirely-0123456789abcdef');
      expectProblem(await t.api.get('/admin/status', other), 401, 'another key');
      const key = createSecretKey(Buffer.from(t.app.config.auth.jwt_secret, 'utf8'));
      const sign = (claims: object, expiresIn: number) => jwt.sign(claims, key, { algorithm: 'HS256', subject: LOCAL_ADMIN_SUBJECT, issuer: 'sentinel', audience: LOCAL_ADMIN_AUDIENCE, expiresIn });
      expectProblem(await t.api.get('/admin/status', sign({}, 3600)), 401, 'a lifetime of an hour');
      expectProblem(await t.api.get('/admin/status', sign({ iat: Math.floor(Date.now() / 1000) - 120 }, 60)), 401, 'expired');
      expectProblem(await t.api.get('/admin/status', 'not-a-token'), 401, 'garbage');
      expectProblem(await t.api.get('/admin/status', 'x'.repeat(8000)), 401, 'an 8000-character token');
      const local = mintLocalAdminToken(t.app.config.auth.jwt_secret);
      expectProblem(await t.api.get('/admin/status', `${local}.x`), 401, 'a local admin token with a fourth part');
      expectProblem(await t.api.raw('GET', '/api/v1/admin/status', { headers: { authorization: `Bearer ${local} extra` } }), 401, 'a malformed header');
      expectProblem(await t.api.raw('GET', '/api/v1/admin/status', { headers: { authorization: `Basic ${local}` } }), 401, 'another scheme');
    });

    it('input it does not take is refused as on every route: NUL bytes and credentials in the query string', async () => {
      expectProblem(await t.api.get('/admin/status?x=%00', root), 400, 'a NUL byte in the query');
      const local = mintLocalAdminToken(t.app.config.auth.jwt_secret);
      expectProblem(await t.api.get(`/admin/status?token=${local}`), 401, 'the local admin token in the query string');
    });

    it('a non-superadmin user 403, an API key 403, no token 401', async () => {
      expectProblem(await t.api.get('/admin/status', owner), 403, 'an org owner');
      const key = await createApiKey(t.app.services, slug, ['admin', 'read', 'write', 'ingest']);
      expectProblem(await t.api.get('/admin/status', key.secret), 403, 'an API key of every scope');
      expectProblem(await t.api.get('/admin/status'), 401, 'no token');
    });

    it('the local admin token opens no other route', async () => {
      const local = mintLocalAdminToken(t.app.config.auth.jwt_secret);
      for (const path of ['/admin/jobs', '/admin/backups', '/auth/me', '/users', '/organizations', `/organizations/${slug}`]) {
        expectProblem(await t.api.get(path, local), 401, `GET ${path} with the local admin token`);
      }
    });
  });

  it('process and database: version, pid, server version, size, migrations, the three pools', async () => {
    const uptimeBefore = process.uptime();
    const askedAt = Date.now();
    const s = await status();
    const uptimeAfter = process.uptime();
    const answeredAt = Date.now();
    expect(s.version).to.equal((await t.api.get<{ version: string }>('/health')).body.version);
    expect(s.pid).to.equal(process.pid);
    // The app runs in this process: its start and uptime are this process's.
    expect(Date.parse(s.started_at)).to.be.closeTo(answeredAt - uptimeAfter * 1000, 50);
    expect(s.uptime_seconds).to.be.within(uptimeBefore - 0.05, uptimeAfter + 0.05);
    expect(Date.parse(s.generated_at)).to.be.within(askedAt, answeredAt);
    expect(s.database.mode).to.equal('external');
    const [{ server_version }] = await query<{ server_version: string }>(url, 'show server_version');
    expect(s.database.server_version).to.equal(server_version);
    const [{ size }] = await query<{ size: number }>(url, 'select pg_database_size(current_database())::float8 as size');
    // Read at most every 30 s: within a few MB of now.
    expect(s.database.size_bytes).to.be.a('number').and.closeTo(size, 16 * 1024 * 1024);
    const applied = await query<{ name: string }>(url, 'select name from knex_migrations order by id desc limit 1');
    expect(s.database.migrations).to.deep.equal({ current: applied[0].name, pending: 0 });
    const pools = new Map(s.database.pools.map((p) => [p.name, p]));
    expect([...pools.keys()].sort()).to.deep.equal(['sentinel', 'sentinel jobs', 'sentinel-query']);
    expect(pools.get('sentinel')!.max).to.equal(t.app.config.database.pool_max);
    expect(pools.get('sentinel jobs')!.max).to.equal(t.app.config.queue.concurrency + 2);

    // A transaction holding a connection of the main pool shows as in use, here and in /metrics.
    const trx = await t.app.db.knex.transaction();
    try {
      await trx.raw('select 1');
      const held = await status();
      expect(held.database.pools.find((p) => p.name === 'sentinel')!.in_use).to.be.at.least(1);
      const metrics = await t.api.raw('GET', '/metrics');
      const inUse = /^sentinel_db_pool_connections\{pool="sentinel",state="in_use"\} (\d+)$/m.exec(metrics.text);
      expect(inUse, metrics.text.slice(0, 500)).to.not.equal(null);
      expect(Number(inUse![1])).to.be.at.least(1);
      expect(metrics.text).to.match(/^sentinel_db_pool_waiting\{pool="sentinel-query"\} 0$/m);
      expect(metrics.text).to.match(/^sentinel_db_pool_connections\{pool="sentinel jobs",state="idle"\} \d+$/m);
    } finally {
      await trx.commit();
    }
  });

  it('pool gauges count acquires waiting for a connection', async () => {
    const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
    const pools = new PoolRegistry();
    pools.add('tiny', knex);
    const registry = new Registry();
    registerPoolMetrics(registry, pools);
    const trx = await knex.transaction();
    // Started now (a knex query runs when it is awaited or then-ed).
    const waiting = knex.raw('select 1').then(() => undefined);
    try {
      await until('a waiting acquire', async () => pools.stats(), (p) => p[0].waiting === 1, 5000);
      expect(pools.stats()).to.deep.equal([{ name: 'tiny', max: 1, in_use: 1, idle: 0, waiting: 1 }]);
      const text = await registry.metrics();
      expect(text).to.match(/^sentinel_db_pool_waiting\{pool="tiny"\} 1$/m);
      expect(text).to.match(/^sentinel_db_pool_connections\{pool="tiny",state="in_use"\} 1$/m);
    } finally {
      await trx.commit();
      await waiting;
    }
    expect(pools.stats()).to.deep.equal([{ name: 'tiny', max: 1, in_use: 0, idle: 1, waiting: 0 }]);
    await knex.destroy();
    expect(pools.stats(), 'a destroyed pool is left out').to.deep.equal([]);
  });

  it('ingest: points and logs per second and refused items follow what was sent', async () => {
    const before = await status();
    const refusedBefore = before.ingest.rejected.filter((r) => r.signal === 'metrics').reduce((n, r) => n + r.items, 0);
    // Sent well inside one 10 s slot (the history's), so the slot it lands in is known.
    if (Date.now() % 10_000 > 7_000) await new Promise((r) => setTimeout(r, 10_000 - (Date.now() % 10_000) + 50));
    const now = Date.now();
    const sentFrom = Date.now();
    const sent = await t.api.post(`/organizations/${slug}/telemetry`, owner, {
      metrics: Array.from({ length: 20 }, (_, i) => ({ name: 'status.test', value: i, ts: now - i * 1000 })),
      logs: [{ level: 'info', message: 'one' }, { level: 'error', message: 'two' }],
    });
    expect(sent.status, sent.text).to.equal(202);
    const sentBy = Date.now();
    const old = await t.api.post(`/organizations/${slug}/telemetry`, owner, { metrics: [{ name: 'status.test', value: 1, ts: now - 60 * 86_400_000 }] });
    expect(old.status, old.text).to.equal(400);
    const s = await status();
    // The only telemetry this app has taken (the tests before sent none), all within the window:
    // the rates times the window the answer names are the items sent, and the one request was one
    // group commit of its 20 points and 2 log records.
    expect(s.ingest.points_per_second * s.ingest.window_seconds).to.be.closeTo(20, 1e-9);
    expect(s.ingest.logs_per_second * s.ingest.window_seconds).to.be.closeTo(2, 1e-9);
    expect(s.ingest.events_per_second).to.equal(0);
    expect(s.ingest.writer.batch_rows_avg).to.equal(22);
    expect(s.ingest.writer.queue_depth).to.equal(0);
    // The history (the sparkline): one 10 s slot with points, the one the request was stored in.
    const slotOf = (ms: number) => new Date(Math.floor(ms / 10_000) * 10_000).toISOString();
    const inHistory = s.ingest.history.filter((p) => p.points_per_second > 0);
    expect(inHistory).to.have.length(1);
    expect(slotOf(sentBy), 'the request stayed inside one slot').to.equal(slotOf(sentFrom));
    expect(inHistory[0].ts).to.equal(slotOf(sentFrom));
    const refused = s.ingest.rejected.filter((r) => r.signal === 'metrics').reduce((n, r) => n + r.items, 0);
    expect(refused - refusedBefore).to.equal(1);
  });

  it('alerts: firing and pending by severity, the newest with org, rule and severity', async () => {
    const empty = await status();
    expect(empty.alerts).to.deep.equal({ firing: { critical: 0, error: 0, warning: 0, info: 0 }, pending: { critical: 0, error: 0, warning: 0, info: 0 }, newest: [] });
    const at = (p: string) => `/organizations/${slug}${p}`;
    expect((await t.api.post(at('/telemetry'), owner, { metrics: [{ name: 'cpu.load', value: 5 }] })).status).to.equal(202);
    const rule = (name: string, severity: string, extra: object = {}) =>
      t.api.post(at('/alert-rules'), owner, { name, kind: 'threshold', query: { name: 'cpu.load', agg: 'max', window: '1h' }, op: '>', threshold: 1, interval: '1m', severity, ...extra });
    expect((await rule('load high', 'warning', { annotations: { summary: 'the load is high' } })).status).to.equal(201);
    expect((await rule('load high for long', 'critical', { for: '1h' })).status).to.equal(201);
    await t.app.services.alertEngine.tick(new Date(Date.now() + 61_000));
    // The database-backed sections are assembled at most once a second: the next assembly has them.
    const s = await until('the alerts of the tick', status, (x) => x.alerts.newest.length === 2, 5_000);
    expect(s.alerts.firing).to.deep.equal({ critical: 0, error: 0, warning: 1, info: 0 });
    expect(s.alerts.pending).to.deep.equal({ critical: 1, error: 0, warning: 0, info: 0 });
    const byRule = [...s.alerts.newest].sort((x, y) => x.rule.localeCompare(y.rule));
    expect(byRule.map((a) => [a.org, a.rule, a.severity, a.state])).to.deep.equal([
      [slug, 'load high', 'warning', 'firing'],
      [slug, 'load high for long', 'critical', 'pending'],
    ]);
    expect(s.alerts.newest.find((a) => a.state === 'firing')!.summary).to.equal('the load is high');
  });

  it('jobs and backups: each job with its last run and outcome; the newest backup, its size and its verification', async () => {
    const first = await status();
    expect(first.jobs.map((j) => j.name)).to.deep.equal(declaredJobs().map((j) => j.name));
    expect(first.backups).to.deep.equal({ count: 0, newest: null });
    const run = async (job: string) => {
      const res = await t.api.post<{ id: string }>(`/admin/jobs/${job}/run`, root);
      expect(res.status, res.text).to.equal(202);
    };
    // No backup yet: the restore drill fails, and says why.
    const queuedAt = Date.now();
    await run('restore-drill');
    const failed = await until('the failed drill', status, (s) => s.jobs.find((j) => j.name === 'restore-drill')!.last_run?.outcome === 'failed');
    const seenAt = Date.now();
    const drill = failed.jobs.find((j) => j.name === 'restore-drill')!.last_run!;
    expect(drill.error).to.contain('no complete backup');
    // It ran between the test queuing it and the test seeing it done.
    expect(Date.parse(drill.started_at)).to.be.within(queuedAt - 1000, seenAt);
    expect(Date.parse(drill.finished_at!)).to.be.within(queuedAt - 1000, seenAt);
    expect(drill.duration_ms).to.be.within(0, seenAt - queuedAt);

    const backup = await t.app.services.backups.create(SYSTEM_ACTOR);
    const withBackup = await until('the backup', status, (s) => s.backups.newest?.id === backup.id);
    expect(withBackup.backups.count).to.equal(1);
    expect(withBackup.backups.newest).to.deep.equal({ id: backup.id, created_at: new Date(backup.finished_at!).toISOString(), size_bytes: backup.bytes, verified_at: null, verify_ok: null });

    const verifyQueuedAt = Date.now();
    await run('restore-drill');
    const verified = await until('the verification', status, (s) => s.backups.newest?.verified_at != null, 60_000);
    const verifiedSeenAt = Date.now();
    expect(verified.backups.newest!.verify_ok).to.equal(true);
    const ok = verified.jobs.find((j) => j.name === 'restore-drill')!;
    expect(ok.last_run!.outcome).to.equal('ok');
    expect(ok.last_run!.error).to.equal(null);
    // Verified by this run: after the test queued it, before the test saw it.
    expect(Date.parse(verified.backups.newest!.verified_at!)).to.be.within(verifyQueuedAt - 1000, verifiedSeenAt);
  });

  it('jobs: a scheduled job\'s next run is its schedule\'s next slot; a disabled job has none', async () => {
    const now = new Date();
    const y = now.getUTCFullYear();
    // '0 3 1 1 *': 1 January, 03:00 UTC.
    const jan1 = Date.UTC(y, 0, 1, 3, 0) > now.getTime() ? Date.UTC(y, 0, 1, 3, 0) : Date.UTC(y + 1, 0, 1, 3, 0);
    // '30 2 29 2 *': 29 February, 02:30 UTC, of the next leap year that has it still to come.
    let leap = y;
    while (!(new Date(Date.UTC(leap, 1, 29)).getUTCMonth() === 1 && Date.UTC(leap, 1, 29, 2, 30) > now.getTime())) leap++;
    const s = await status();
    const byName = new Map(s.jobs.map((j) => [j.name, j]));
    expect(byName.get('daily-report')).to.deep.include({ schedule: '0 3 1 1 *', enabled: true, next_run: new Date(jan1).toISOString() });
    expect(byName.get('analyze')).to.deep.include({ schedule: '30 2 29 2 *', enabled: true, next_run: new Date(Date.UTC(leap, 1, 29, 2, 30)).toISOString() });
    expect(byName.get('backup')).to.deep.include({ enabled: false, next_run: null });
  });

  it('heartbeats: the late ones counted, the longest overdue first', async () => {
    expect((await status()).heartbeats).to.deep.equal({ late: 0, items: [] });
    const at = (p: string) => `/organizations/${slug}${p}`;
    expect((await t.api.post(at('/heartbeats'), owner, { name: 'nightly', period: '1d', grace: '1h' })).status).to.equal(201);
    const createdFrom = Date.now();
    expect((await t.api.post(at('/heartbeats'), owner, { name: 'every-second', period: '1s', grace: '1s' })).status).to.equal(201);
    const createdBy = Date.now();
    const late = await until('a late heartbeat', status, (s) => s.heartbeats.late > 0, 10_000);
    expect(late.heartbeats.late).to.equal(1);
    expect(late.heartbeats.items.map((h) => [h.org, h.name, h.last_ping_at])).to.deep.equal([[slug, 'every-second', null]]);
    // Never pinged: due its period and grace (2 s) after it was created.
    expect(Date.parse(late.heartbeats.items[0].due_at)).to.be.within(createdFrom + 2000, createdBy + 2000);
  });
});
