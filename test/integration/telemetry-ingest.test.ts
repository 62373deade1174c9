import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import knexFactory from 'knex';
import { pino } from 'pino';
import { RejectionCounter } from '../../src/features/telemetry/rejection-counter.js';
import { StatsRepository } from '../../src/features/telemetry/stats-repository.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { expectProblem, type Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const count = async (url: string, sql: string, params: unknown[] = []) => Number((await query<{ n: string }>(url, sql, params))[0].n);

describe('telemetry ingest (native JSON)', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let orgA: { id: string; slug: string };
  let orgB: { id: string; slug: string };
  let keyA: string;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { SENTINEL_HTTP_BODY_LIMIT_BYTES: '262144', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '1000' });
    orgA = await createOrg(t.app.services);
    orgB = await createOrg(t.app.services);
    keyA = (await createApiKey(t.app.services, orgA.slug, ['ingest'])).secret;
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  it('stores metrics, logs and events and answers 202 with the counts only after commit', async () => {
    const ts = Date.now() - 60_000;
    const res = await t.api.post('/telemetry', keyA, {
      org: orgB.slug, // ignored: the key decides
      metrics: [
        { name: 'cpu.usage', value: 0.5, ts, labels: { host: 'a', core: '0' } },
        { name: 'cpu.usage', value: 0.75, ts: new Date(ts + 1000).toISOString(), labels: { core: '0', host: 'a' } },
        { name: 'up', value: 1 },
      ],
      logs: [{ level: 'warn', message: 'disk\tnearly\nfull \\ 95%', attributes: { mount: '/var', pct: 95, ok: false } }],
      events: [{ type: 'deploy', title: 'v1.2.3', text: 'rolled out', tags: ['prod', 'api'] }],
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    expect(res.body).to.deep.equal({ accepted: { metrics: 3, logs: 1, events: 1 } });

    const series = await query<{ name: string; labels: Record<string, string> }>(url, 'select name, labels from series where org_id = $1 order by name', [orgA.id]);
    expect(series).to.deep.equal([
      { name: 'cpu.usage', labels: { core: '0', host: 'a' } },
      { name: 'up', labels: {} },
    ]);
    const points = await query<{ value: number; ms: string }>(
      url,
      `select p.value, (extract(epoch from p.ts) * 1000)::bigint as ms from points p join series s on s.org_id = p.org_id and s.id = p.series_id where p.org_id = $1 and s.name = 'cpu.usage' order by p.ts`,
      [orgA.id],
    );
    expect(points.map((p) => [Number(p.ms), p.value])).to.deep.equal([
      [ts, 0.5],
      [ts + 1000, 0.75],
    ]);
    const logs = await query(url, 'select severity_number, severity_text, body, attributes from logs where org_id = $1', [orgA.id]);
    expect(logs).to.deep.equal([{ severity_number: 13, severity_text: 'warn', body: 'disk\tnearly\nfull \\ 95%', attributes: { mount: '/var', pct: 95, ok: false } }]);
    const events = await query(url, 'select type, title, text, tags from events where org_id = $1', [orgA.id]);
    expect(events).to.deep.equal([{ type: 'deploy', title: 'v1.2.3', text: 'rolled out', tags: ['prod', 'api'] }]);
    expect(await count(url, 'select count(*) as n from points where org_id = $1', [orgB.id])).to.equal(0);
    const usage = await query<{ points: number; logs: number; events: number }>(url, 'select sum(points)::int as points, sum(logs)::int as logs, sum(events)::int as events from usage_daily where org_id = $1', [orgA.id]);
    expect(usage).to.deep.equal([{ points: 3, logs: 1, events: 1 }]);
  });

  it('replaces NUL characters and lone surrogates instead of failing the commit', async () => {
    const res = await t.api.post('/telemetry', keyA, { logs: [{ level: 'info', message: 'a\u0000b', attributes: { k: 'x\u0000y' } }], metrics: [{ name: 'nul', value: 1, labels: { k: 'v\ud800' } }] });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    const [log] = await query<{ body: string; attributes: { k: string } }>(url, "select body, attributes from logs where org_id = $1 and body like 'a%b'", [orgA.id]);
    expect(log).to.deep.equal({ body: 'a\ufffdb', attributes: { k: 'x\ufffdy' } });
  });

  it('stores label values that differ only in what cannot be stored (a NUL, a lone surrogate, U+FFFD) as one series, new or known', async () => {
    const org = await createOrg(t.app.services);
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    const ts = Date.now() - 1000;
    const sent = (values: string[], from: number) => ({ metrics: values.map((v, i) => ({ name: 'clean.me', value: from + i, ts: ts + from + i, labels: { host: v, dc: 'eu' } })) });
    // One batch, the series new: three spellings of one stored label set.
    expect((await t.api.post('/telemetry', key, sent(['a\u0000b', 'a\ufffdb', 'a\ud800b'], 0))).status).to.equal(202);
    // Again, the series known (the cache has the spellings of the first batch; here one more order).
    const again = { metrics: [{ name: 'clean.me', value: 3, ts: ts + 3, labels: { dc: 'eu', host: 'a\u0000b' } }, ...sent(['a\udc00b'], 4).metrics] };
    expect((await t.api.post('/telemetry', key, again)).status).to.equal(202);
    const series = await query<{ id: string; labels: Record<string, string> }>(url, 'select id, labels from series where org_id = $1', [org.id]);
    expect(series.map((s) => s.labels)).to.deep.equal([{ dc: 'eu', host: 'a\ufffdb' }]);
    const points = await query<{ series_id: string; value: number }>(url, 'select series_id, value from points where org_id = $1 order by value', [org.id]);
    expect(points).to.deep.equal([0, 1, 2, 3, 4].map((value) => ({ series_id: series[0].id, value })));
  });

  it('accepts gzip bodies and answers 413 for a gzip bomb, storing nothing', async () => {
    const before = await count(url, 'select count(*) as n from points where org_id = $1', [orgA.id]);
    const ok = await t.api.post('/telemetry', keyA, gzipSync(JSON.stringify({ metrics: [{ name: 'gz', value: 2 }] })), { 'content-encoding': 'gzip' });
    expect(ok.status, JSON.stringify(ok.body)).to.equal(202);
    // ~10 MiB of spaces compresses to ~10 KiB: small on the wire, far over the 256 KiB limit once inflated.
    const bomb = gzipSync(Buffer.from(`{"metrics":[${' '.repeat(10 * 1024 * 1024)}]}`));
    expect(bomb.length).to.be.below(64 * 1024);
    const res = await t.api.post<Problem>('/telemetry', keyA, bomb, { 'content-encoding': 'gzip' });
    expect(res.status).to.equal(413);
    expect(await count(url, 'select count(*) as n from points where org_id = $1', [orgA.id])).to.equal(before + 1);
  });

  it('answers the status matrix: 400 invalid items (all listed, nothing stored), 401, 403, 404, 413, 415', async () => {
    const before = await count(url, 'select count(*) as n from points where org_id = $1', [orgA.id]);
    const bad = await t.api.post<Problem>('/telemetry', keyA, {
      metrics: [{ name: 'ok', value: 1 }, { name: '9bad', value: 1 }, { name: 'x', value: 'high' }, { name: 'y', value: 1, ts: 'yesterday' }, { name: 'z', value: 1, ts: Date.now() - 30 * 86_400_000 }],
      logs: [{ level: 'loud', message: 'x' }],
    });
    expect(bad.status).to.equal(400);
    const paths = (bad.body.errors ?? []).map((e) => e.path);
    expect(paths).to.include.members(['body/metrics/1/name', 'body/metrics/2/value', 'body/logs/0/level']);
    expect(await count(url, 'select count(*) as n from points where org_id = $1', [orgA.id])).to.equal(before);
    // Items that pass the schema but not the service's checks are listed the same way.
    const late = await t.api.post<Problem>('/telemetry', keyA, {
      metrics: [{ name: 'ok', value: 1 }, { name: 'y', value: 1, ts: 'yesterday' }, { name: 'z', value: 1, ts: Date.now() - 30 * 86_400_000 }, { name: 'f', value: 1, ts: '2026-02-30T00:00:00Z' }],
    });
    expect(late.status).to.equal(400);
    expect(late.body.errors!.map((e) => e.path)).to.deep.equal(['body/metrics/1/ts', 'body/metrics/3/ts']);
    const old = await t.api.post<Problem>('/telemetry', keyA, { metrics: [{ name: 'ok', value: 1 }, { name: 'z', value: 1, ts: Date.now() - 30 * 86_400_000 }] });
    expect(old.status).to.equal(400);
    expect(old.body.errors!.map((e) => e.path)).to.deep.equal(['body/metrics/1/ts']);
    expect(await count(url, 'select count(*) as n from points where org_id = $1', [orgA.id])).to.equal(before);

    expect((await t.api.post('/telemetry', null, { metrics: [] })).status).to.equal(401);
    expect((await t.api.post('/telemetry', 'snt_' + 'x'.repeat(32), { metrics: [] })).status).to.equal(401);
    const readKey = (await createApiKey(t.app.services, orgA.slug, ['read'])).secret;
    expect((await t.api.post('/telemetry', readKey, { metrics: [{ name: 'a', value: 1 }] })).status).to.equal(403);
    // A key of A addressing B's org path: not found, never forbidden.
    expect((await t.api.post(`/organizations/${orgB.slug}/telemetry`, keyA, { metrics: [{ name: 'a', value: 1 }] })).status).to.equal(404);
    expect((await t.api.post('/telemetry', keyA, 'x'.repeat(300_000))).status).to.equal(413);
    // More than 10,000 items in all (README "Status codes": 413), in a body well under the byte
    // limit, so that only the item count can be refused.
    const tooManyItems = { metrics: Array.from({ length: 6000 }, () => ({ name: 'm', value: 1 })), events: Array.from({ length: 4001 }, () => ({ type: 't', title: 'x' })) };
    expect(JSON.stringify(tooManyItems).length).to.be.below(250_000);
    const tooMany = await t.api.post<Problem>('/telemetry', keyA, tooManyItems);
    expectProblem(tooMany, 413, '10,001 items');
    expect(tooMany.body.detail).to.match(/10,?001 items/);
    // And in one list: the schema's per-list bound answers the same status, naming the list.
    const oneList = await t.api.post<Problem>('/telemetry', keyA, { metrics: Array.from({ length: 10_001 }, () => ({ name: 'm', value: 1 })) });
    expectProblem(oneList, 413, '10,001 metrics');
    expect(oneList.body.detail).to.match(/^body\/metrics: .*10000/);
    expect((await t.api.post('/telemetry', keyA, 'name=x', { 'content-type': 'text/plain' })).status).to.equal(415);
    expect((await t.api.post('/telemetry', keyA, '{"metrics": [')).status).to.equal(400);
    expect(await count(url, 'select count(*) as n from points where org_id = $1', [orgA.id])).to.equal(before);
  });

  it('lets editors send to their org path and refuses viewers (403) and strangers (404)', async () => {
    const editor = await createUser(t.app.services, { org: orgA.slug, role: 'editor' });
    const viewer = await createUser(t.app.services, { org: orgA.slug, role: 'viewer' });
    const stranger = await createUser(t.app.services, { org: orgB.slug, role: 'owner' });
    const token = async (u: { email: string; password: string }) => {
      const r = await t.api.post<{ access_token: string }>('/auth/login', null, { email: u.email, password: u.password });
      return r.body.access_token;
    };
    const body = { events: [{ type: 'note', title: 'from a user' }] };
    expect((await t.api.post(`/organizations/${orgA.slug}/telemetry`, await token(editor), body)).status).to.equal(202);
    expect((await t.api.post(`/organizations/${orgA.slug}/telemetry`, await token(viewer), body)).status).to.equal(403);
    expect((await t.api.post(`/organizations/${orgA.slug}/telemetry`, await token(stranger), body)).status).to.equal(404);
    // A user token cannot use the key-decides-the-org path.
    expect((await t.api.post('/telemetry', await token(editor), body)).status).to.equal(400);
  });

  it('stores a batch retried with the same Idempotency-Key once and answers it the same', async () => {
    const body = { metrics: [{ name: 'idem', value: 7 }], events: [{ type: 'x', title: 'y' }] };
    const headers = { 'idempotency-key': 'batch-0001' };
    const answers = await Promise.all([t.api.post('/telemetry', keyA, body, headers), t.api.post('/telemetry', keyA, body, headers)]);
    const third = await t.api.post('/telemetry', keyA, body, headers);
    for (const a of [...answers, third]) {
      expect(a.status).to.equal(202);
      expect(a.body).to.deep.equal({ accepted: { metrics: 1, logs: 0, events: 1 } });
    }
    expect(await count(url, "select count(*) as n from points p join series s on s.org_id = p.org_id and s.id = p.series_id where p.org_id = $1 and s.name = 'idem'", [orgA.id])).to.equal(1);
    const other = await t.api.post<Problem>('/telemetry', keyA, { metrics: [{ name: 'idem', value: 8 }] }, headers);
    expect(other.status).to.equal(409);
    // Keys are per organization: B may use the same key for its own batch.
    const keyB = (await createApiKey(t.app.services, orgB.slug, ['ingest'])).secret;
    expect((await t.api.post('/telemetry', keyB, body, headers)).status).to.equal(202);
    expect(await count(url, "select count(*) as n from points p join series s on s.org_id = p.org_id and s.id = p.series_id where s.name = 'idem'")).to.equal(2);
  });

  it('limits the ingest rate per organization with 429 and Retry-After', async () => {
    const org = await createOrg(t.app.services);
    await t.app.services.orgs.update({ kind: 'system' }, org.slug, { limits: { ingest_points_per_second: 100 } });
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    const batch = { metrics: Array.from({ length: 100 }, (_, i) => ({ name: 'rate', value: i, labels: { i: String(i % 3) } })) };
    expect((await t.api.post('/telemetry', key, batch)).status).to.equal(202);
    const res = await t.api.post<Problem>('/telemetry', key, batch);
    expect(res.status).to.equal(429);
    expect(Number(res.headers.get('retry-after'))).to.be.within(1, 2);
    expect(await count(url, 'select count(*) as n from points where org_id = $1', [org.id])).to.equal(100);
    // Another org is not affected.
    expect((await t.api.post('/telemetry', keyA, { metrics: [{ name: 'other', value: 1 }] })).status).to.equal(202);
  });

  it('counts a refusal in memory (record() is synchronous) and writes the counts on flush', async () => {
    const org = await createOrg(t.app.services);
    await t.app.services.orgs.update({ kind: 'system' }, org.slug, { limits: { ingest_points_per_second: 10 } });
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    const batch = { metrics: Array.from({ length: 20 }, (_, i) => ({ name: 'rate', value: i })) };
    expect((await t.api.post('/telemetry', key, batch)).status).to.equal(202);
    expect((await t.api.post('/telemetry', key, batch)).status).to.equal(429);
    const stored = () => query<{ requests: number; items: number }>(url, 'select requests, items from ingest_rejections where org_id = $1', [org.id]);
    // The 429 was answered before its count was written; the flush writes it.
    expect(await stored()).to.deep.equal([]);
    await t.app.services.rejections.flush();
    expect(await stored()).to.deep.equal([{ requests: 1, items: 20 }]);

    // A database that cannot be reached: record() still returns at once, the failed write keeps
    // the counts for the next one (here: a counter whose pool points at a dead port).
    const dead = knexFactory({ client: 'pg', connection: 'postgres://sentinel@127.0.0.1:1/none', pool: { min: 0, max: 1 }, acquireConnectionTimeout: 2000, log: { warn: () => {}, error: () => {}, debug: () => {}, deprecate: () => {} } });
    try {
      const counter = new RejectionCounter(new StatsRepository(dead), pino({ level: 'silent' }), { flushIntervalMs: 60_000 });
      const started = performance.now();
      const returned: unknown = counter.record(org.id, 'rate_limited', 5);
      counter.record(org.id, 'rate_limited', 7);
      expect(returned).to.equal(undefined);
      expect(performance.now() - started).to.be.below(50);
      expect(counter.pending).to.equal(1);
      await counter.flush(); // fails (logged), never throws
      expect(counter.pending).to.equal(1);
      // The kept counts are the same ones: written by a counter on the live database they sum up.
      const live = new RejectionCounter(new StatsRepository(t.app.db.knex), pino({ level: 'silent' }));
      live.record(org.id, 'rate_limited', 5);
      await live.stop();
      expect(await stored()).to.deep.equal([{ requests: 2, items: 25 }]);
    } finally {
      await dead.destroy();
    }
  });

  it('refuses new series beyond max_series (400, nothing stored) while existing series keep flowing', async () => {
    const org = await createOrg(t.app.services);
    await t.app.services.orgs.update({ kind: 'system' }, org.slug, { limits: { max_series: 2 } });
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    expect((await t.api.post('/telemetry', key, { metrics: [{ name: 'a', value: 1 }, { name: 'b', value: 1 }] })).status).to.equal(202);
    const res = await t.api.post<Problem>('/telemetry', key, { metrics: [{ name: 'a', value: 2 }, { name: 'c', value: 1 }] });
    expect(res.status).to.equal(400);
    expect(res.body.errors!.map((e) => e.path)).to.deep.equal(['body/metrics/1/name']);
    expect((await t.api.post('/telemetry', key, { metrics: [{ name: 'a', value: 3 }, { name: 'b', value: 3 }] })).status).to.equal(202);
    expect(await count(url, 'select count(*) as n from series where org_id = $1', [org.id])).to.equal(2);
    expect(await count(url, 'select count(*) as n from points where org_id = $1', [org.id])).to.equal(4);
  });

  it('refuses a native point under a name that OTLP writes as a counter (400 naming the item), creating no series of the batch', async () => {
    const org = await createOrg(t.app.services);
    const counter = { kind: 'counter' as const, temporality: 'cumulative' as const, monotonic: true, unit: '', description: '' };
    const otlp = await t.app.services.telemetry.ingest({ kind: 'system' }, org.slug, { points: [{ name: 'jobs_total', labels: {}, ts: Date.now(), value: 5, meta: counter, point: 1 }], logs: [], events: [] }, { partial: true });
    expect(otlp.rejected.metrics).to.equal(0);
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    const res = await t.api.post<Problem>('/telemetry', key, { metrics: [{ name: 'fresh', value: 1 }, { name: 'jobs_total', value: 2 }] });
    expect(res.status, res.text).to.equal(400);
    expect(res.body.errors).to.deep.equal([{ path: 'body/metrics/1/name', message: 'metric "jobs_total" has series of kind counter; a gauge of the same name is refused' }]);
    // All or nothing: not even the new series of the batch's other point was created.
    expect(await query<{ name: string; kind: string }>(url, 'select name, kind from series where org_id = $1', [org.id])).to.deep.equal([{ name: 'jobs_total', kind: 'counter' }]);
  });

  it('streams a large group commit in chunks and stores every row exactly', async () => {
    const org = await createOrg(t.app.services);
    const ts = Date.now() - 5000;
    const metrics = Array.from({ length: 8000 }, (_, i) => ({ name: 'big', value: i + 0.25, ts: ts + (i % 7), labels: { s: String(i % 500) } }));
    const logs = Array.from({ length: 2000 }, (_, i) => ({ level: 'info' as const, message: `line ${i} ${'x'.repeat(200)}\t\\end`, ts }));
    const res = await t.app.services.telemetry.ingestNative({ kind: 'system' }, org.slug, { metrics, logs });
    expect(res).to.deep.equal({ accepted: { metrics: 8000, logs: 2000, events: 0 } });
    const [p] = await query<{ n: string; sum: number }>(url, 'select count(*) as n, sum(value) as sum from points where org_id = $1', [org.id]);
    expect(Number(p.n)).to.equal(8000);
    expect(p.sum).to.equal(metrics.reduce((a, m) => a + m.value, 0));
    const [l] = await query<{ n: string; bodies: string }>(url, 'select count(*) as n, count(*) filter (where right(body, 5) = $2) as bodies from logs where org_id = $1', [org.id, '\t\\end']);
    expect([Number(l.n), Number(l.bodies)]).to.deep.equal([2000, 2000]);
  });

  it('creates a missing partition on demand (a window of points two days ago)', async () => {
    const twoDaysAgo = Date.now() - 2 * 86_400_000;
    const window = `points_p${new Date(twoDaysAgo).toISOString().slice(0, 10).replaceAll('-', '')}_w${String(Math.floor(new Date(twoDaysAgo).getUTCHours() / 2) * 2).padStart(2, '0')}`;
    await query(url, `drop table if exists ${window}`);
    const res = await t.api.post('/telemetry', keyA, { metrics: [{ name: 'old', value: 1, ts: twoDaysAgo }] });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    expect(await count(url, `select count(*) as n from ${window}`)).to.equal(1);
  });
});
