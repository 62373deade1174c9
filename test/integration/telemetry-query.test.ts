import { createHash } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { SYSTEM_ACTOR, type Actor } from '../../src/core/actor.js';
import { DomainError } from '../../src/core/errors.js';
import { PartitionsRepository, DAY_MS } from '../../src/db/partitions.js';
import { QueryRepository } from '../../src/features/telemetry/query-repository.js';
import { POINT_WINDOWS, TELEMETRY_TABLES } from '../../src/features/telemetry/telemetry-tables.js';
import { QueryService, type MetricQueryInput, type MetricSeries, type QueryOptions } from '../../src/features/telemetry/query-service.js';
import type { LimitDefaults, OrgDirectory, OrgLimitOverrides } from '../../src/features/telemetry/telemetry-limits-source.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { AGGS, expectedPoints, HOUR, iso, MIN, querySeries, type Pt } from '../support/telemetry-fixtures.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import type { Answer, Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The telemetry query API against real PostgreSQL: exact aggregates (expected values computed
 * in test/support/telemetry-fixtures.ts, independently of SQL), bucket alignment, grouping, label matchers, limits, logs and
 * events filters and paging, usage, and tenant isolation over HTTP.
 */

const MANY = { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '1000' };

// ---------------------------------------------------------------------------------------------
// Expected values, computed without SQL

function expectClose(actual: [string, number | null][], expected: [string, number][], what: string): void {
  expect(actual.map((p) => p[0]), `${what}: bucket labels`).to.deep.equal(expected.map((p) => p[0]));
  actual.forEach(([, v], i) => expect(v, `${what} @ ${expected[i][0]}`).to.be.closeTo(expected[i][1], 1e-9 * Math.max(1, Math.abs(expected[i][1]))));
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
interface LogItem {
  ts: string;
  level: string;
  severity_number: number;
  body: string;
  attributes: Record<string, unknown>;
}
interface EventItem {
  id: string;
  ts: string;
  type: string;
  title: string;
  tags: string[];
}

type Params = Record<string, string | number | (string | number)[] | undefined>;

function qs(params: Params): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) u.append(k, String(x));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

// ---------------------------------------------------------------------------------------------

describe('telemetry query API', function () {
  this.timeout(120_000);

  let url: string;
  let t: TestApp;
  let knex: Knex;
  /** The query pool, as in production its own: the repository sets its sessions' statement timeout. */
  let reads: Knex;
  let orgA: { id: string; slug: string };
  let orgB: { id: string; slug: string };
  let viewerAId: string;
  let viewerBId: string;
  const tokens: Record<string, string> = {};

  /** Hour-aligned, a few hours ago, so every point is in the past whatever "now" the app sees. */
  const B = Math.floor((Date.now() - 3 * HOUR) / HOUR) * HOUR;
  const W = { start: B, end: B + 10 * MIN };
  const data: Record<string, { labels: Record<string, string>; points: Pt[] }> = {};
  const DEFAULTS: LimitDefaults = { pointsPerSecond: 1234, maxSeries: 777, retentionDays: { metrics: 30, logs: 14, events: 90 } };

  const directory: OrgDirectory = {
    overrides: async (id) => (await knex('organizations').where({ id }).first<{ limits: OrgLimitOverrides } | undefined>())?.limits,
    all: async () => [],
  };
  const service = (o: Partial<QueryOptions> = {}) =>
    new QueryService(new QueryRepository(knex, reads), t.app.services.orgGuard, directory, {
      maxSeries: 1000,
      maxBuckets: 11_000,
      maxPoints: 1_000_000,
      statementTimeoutMs: 10_000,
      limitDefaults: DEFAULTS,
      ...o,
    });
  const q = (input: Partial<MetricQueryInput>, o: Partial<QueryOptions> = {}, actor: Actor = SYSTEM_ACTOR, slug = orgA.slug) =>
    service(o).query(actor, slug, { name: 'req', start: String(W.start), end: String(W.end), ...input });

  async function fails(p: Promise<unknown>): Promise<DomainError> {
    try {
      await p;
    } catch (err) {
      if (err instanceof DomainError) return err;
      throw err;
    }
    throw new Error('expected a DomainError');
  }

  const call = <T = unknown>(path: string, token: string | null, params: Params = {}): Promise<Answer<T>> => t.api.get<T>(`${path}${qs(params)}`, token);

  const login = async (email: string, password: string): Promise<string> => (await t.api.login(email, password)).access_token;

  async function insertSeries(orgId: string, name: string, labels: Record<string, string>): Promise<number> {
    const canon = JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))));
    const hash = createHash('sha256').update(`${name}\u0000${canon}`).digest();
    const { rows } = await knex.raw<{ rows: { id: number }[] }>('insert into series (org_id, name, labels, labels_hash) values (?, ?, ?::jsonb, ?) returning id', [orgId, name, canon, hash]);
    return Number(rows[0].id);
  }

  async function insertPoints(orgId: string, seriesId: number, points: Pt[]): Promise<void> {
    await knex.raw('insert into points (org_id, series_id, ts, value) select ?, ?, u.ts, u.v from unnest(?::timestamptz[], ?::float8[]) as u(ts, v)', [
      orgId,
      seriesId,
      points.map(([ts]) => iso(ts)),
      points.map(([, v]) => v),
    ]);
  }

  async function metric(org: { id: string }, key: string, name: string, labels: Record<string, string>, points: Pt[]): Promise<void> {
    const id = await insertSeries(org.id, name, labels);
    await insertPoints(org.id, id, points);
    if (org === orgA) data[key] = { labels, points };
  }

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, MANY);
    knex = t.app.db.knex;
    reads = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
    const s = t.app.services;
    orgA = await createOrg(s);
    orgB = await createOrg(s);
    const viewerA = await createUser(s, { org: orgA.slug, role: 'viewer' });
    const viewerB = await createUser(s, { org: orgB.slug, role: 'viewer' });
    viewerAId = viewerA.id;
    viewerBId = viewerB.id;
    tokens.viewerA = await login(viewerA.email, viewerA.password);
    tokens.viewerB = await login(viewerB.email, viewerB.password);
    tokens.readA = (await createApiKey(s, orgA.slug, ['read'])).secret;
    tokens.ingestA = (await createApiKey(s, orgA.slug, ['ingest'])).secret;
    tokens.readB = (await createApiKey(s, orgB.slug, ['read'])).secret;

    const parts = new PartitionsRepository(knex, TELEMETRY_TABLES, [], POINT_WINDOWS);
    const days = [B - DAY_MS, B, B + DAY_MS, Date.now(), Date.now() + DAY_MS];
    for (const table of TELEMETRY_TABLES) await parts.ensure(table, days);

    // s1 (every 30 s, irregular values, and a point outside the window on each side), s2 (every 60 s), s3 (every 120 s), s4 (one point).
    for (const [key, x] of Object.entries(querySeries(B))) await metric(orgA, key, 'req', x.labels, x.points);
    await metric(orgA, 'cs', 'cpu.system', {}, [[B, 1]]);
    await metric(orgA, 'cu', 'cpu.user', { core: '0' }, [[B, 2]]);
    // Another org with the same metric name and label values: must never show up in A's answers.
    await metric(orgB, 'b1', 'req', { host: 'a', env: 'prod', tenant: 'B' }, Array.from({ length: 10 }, (_, i): Pt => [B + i * MIN, 1e6]));
    // Enough points that a 1 ms statement timeout cannot be met.
    const bigId = await insertSeries(orgA.id, 'big', { k: 'v' });
    await knex.raw(`insert into points (org_id, series_id, ts, value) select ?, ?, ?::timestamptz + g * interval '10 milliseconds', g from generate_series(0, 299999) g`, [
      orgA.id,
      bigId,
      iso(B),
    ]);
    await knex.raw('analyze points');
    await s.orgs.update(SYSTEM_ACTOR, orgA.slug, { limits: { max_series: 5000, retention_days: { logs: 3 } } });
  });

  after(async () => {
    await reads?.destroy();
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  const canon = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort(([x], [y]) => (x < y ? -1 : 1)));
  const byLabels = (series: MetricSeries[], labels: Record<string, string>) => series.find((s) => canon(s.labels) === canon(labels));

  describe('metric queries (service)', () => {
    it('every aggregation gives the exact value of each bucket, per stored series', async () => {
      for (const agg of AGGS) {
        const res = await q({ step: '5m', agg });
        expect(res.series.map((s) => s.labels.host), agg).to.deep.equal(['c', 'a', 'b', 'd']); // sorted by labels: env first
        for (const key of ['s1', 's2', 's3', 's4']) {
          const got = byLabels(res.series, data[key].labels);
          expect(got, `${agg} ${key}`).to.not.equal(undefined);
          expectClose(got!.points, expectedPoints(data[key].points, W.start, W.end, 5 * MIN, agg), `${agg} ${key}`);
        }
      }
    });

    it('answer series are sorted by their labels and carry all of them', async () => {
      const res = await q({ step: '10m' });
      expect(res.series.map((s) => s.labels)).to.deep.equal([{ env: 'dev', host: 'c' }, { env: 'prod', host: 'a', region: 'eu' }, { env: 'prod', host: 'b', region: 'us' }, { host: 'd' }]);
    });

    it('buckets are aligned to start, labelled by their start; a point at start + step opens the next bucket', async () => {
      const start = B + 17_000;
      const res = await q({ start: String(start), step: '60s', agg: 'count', filter: 'host=a' });
      expect(res.series).to.have.length(1);
      expect(res.series[0].points[0][0]).to.equal(iso(start));
      expectClose(res.series[0].points, expectedPoints(data.s1.points, start, W.end, MIN, 'count'), 'aligned');
      for (const [ts] of res.series[0].points) expect((Date.parse(ts) - start) % MIN).to.equal(0);

      // step 30 s from B + 30 s: every s1 point sits exactly on a bucket start, one per bucket.
      const exact = await q({ start: String(B + 30_000), step: '30', agg: 'max', filter: 'host=a' });
      expect(exact.series[0].points).to.deep.equal(data.s1.points.filter(([ts]) => ts >= B + 30_000 && ts < W.end).map(([ts, v]) => [iso(ts), v]));
    });

    it('empty buckets are left out; start is inclusive and end exclusive', async () => {
      const res = await q({ step: '1m', agg: 'count', filter: 'host=d' });
      // Series written without a descriptor (as before kinds were recorded): kind unknown.
      expect(res.series).to.deep.equal([{ labels: { host: 'd' }, kind: 'unknown', temporality: null, unit: '', points: [[iso(B + MIN), 1]] }]);
      const all = await q({ start: String(B), end: String(B + 10 * MIN), step: '10m', agg: 'max', filter: 'host=a' });
      expect(all.series[0].points).to.deep.equal([[iso(B), Math.max(...data.s1.points.filter(([ts]) => ts >= B && ts < B + 10 * MIN).map(([, v]) => v))]]);
    });

    it('end defaults to now and start to an hour before', async () => {
      const now = B + 10 * MIN;
      const res = await service({ now: () => now }).query(SYSTEM_ACTOR, orgA.slug, { name: 'req', step: '1h', agg: 'count', filter: 'host=a' });
      // [now - 1 h, now): the 20 regular points and the fence point at B - 1 s, not the one at B + 10 min.
      expect(res.series[0].points).to.deep.equal([[iso(now - HOUR), 21]]);
    });

    it('by one label: one answer series per value, aggregating all raw points of the group (not a mean of means)', async () => {
      for (const agg of AGGS) {
        const res = await q({ step: '5m', agg, by: 'env' });
        // Sorted by the JSON of the label entries, so the group without the label comes last.
        expect(res.series.map((s) => s.labels), agg).to.deep.equal([{ env: 'dev' }, { env: 'prod' }, {}]);
        const prod = [...data.s1.points, ...data.s2.points];
        expectClose(res.series[0].points, expectedPoints(data.s3.points, W.start, W.end, 5 * MIN, agg), `${agg} dev`);
        expectClose(res.series[1].points, expectedPoints(prod, W.start, W.end, 5 * MIN, agg), `${agg} prod`);
        expectClose(res.series[2].points, expectedPoints(data.s4.points, W.start, W.end, 5 * MIN, agg), `${agg} no env`);
      }
      // The distinction matters here: s1 has 10 points per bucket and s2 5.
      const prodAvg = (await q({ step: '5m', by: 'env', filter: 'env=prod' })).series[0].points[0][1]!;
      const s1 = expectedPoints(data.s1.points, W.start, W.end, 5 * MIN, 'avg')[0][1];
      const s2 = expectedPoints(data.s2.points, W.start, W.end, 5 * MIN, 'avg')[0][1];
      expect(prodAvg).to.not.be.closeTo((s1 + s2) / 2, 1e-6);
    });

    it('by two labels: groups by both values, labels the group lacks are left out', async () => {
      const res = await q({ step: '10m', agg: 'sum', by: 'env,region' });
      expect(res.series.map((s) => s.labels)).to.deep.equal([{ env: 'dev' }, { env: 'prod', region: 'eu' }, { env: 'prod', region: 'us' }, {}]);
      expectClose(res.series[1].points, expectedPoints(data.s1.points, W.start, W.end, 10 * MIN, 'sum'), 'prod/eu');
      // Repeated by parameters and spaces work like one comma-separated list.
      const again = await q({ step: '10m', agg: 'sum', by: ['env', ' region'] });
      expect(again).to.deep.equal(res);
    });

    it('filters: =, !=, =~, !~ with Prometheus semantics (anchored; a missing label reads as "")', async () => {
      const hosts = async (filter: string | string[]) => (await q({ step: '10m', filter })).series.map((s) => s.labels.host).sort();
      expect(await hosts('env=prod')).to.deep.equal(['a', 'b']);
      expect(await hosts('env!=prod')).to.deep.equal(['c', 'd']);
      expect(await hosts('region=~e.*')).to.deep.equal(['a']);
      expect(await hosts('region!~e.*')).to.deep.equal(['b', 'c', 'd']);
      expect(await hosts('env=~pro')).to.deep.equal([]); // anchored: no partial match
      expect(await hosts('env=~prod|dev')).to.deep.equal(['a', 'b', 'c']);
      expect(await hosts('env=')).to.deep.equal(['d']);
      expect(await hosts('host=~(?i)A|B')).to.deep.equal(['a', 'b']);
      expect(await hosts('env=prod,region!=us')).to.deep.equal(['a']);
      expect(await hosts(['env=prod', 'region!=us'])).to.deep.equal(['a']);
      expect(await hosts('host=~[a-c]{1,3},env!=dev')).to.deep.equal(['a', 'b']);
      expect(await hosts('nosuch=x')).to.deep.equal([]);
    });

    it('an invalid regex or a malformed filter is a 400 naming it', async () => {
      const bad = await fails(q({ filter: 'env=prod,region=~(eu' }));
      expect(bad.code).to.equal('validation_failed');
      expect(bad.details.errors?.[0].path).to.equal('query/filter');
      expect(bad.message).to.contain('region=~(eu');
      const malformed = await fails(q({ filter: 'env' }));
      expect(malformed.code).to.equal('validation_failed');
      expect(malformed.message).to.contain("'env'");
    });

    it('bad parameters are 400 with the parameter named', async () => {
      const cases: [Partial<MetricQueryInput>, string][] = [
        [{ step: '0' }, 'query/step'],
        [{ step: 'soon' }, 'query/step'],
        [{ start: 'yesterday' }, 'query/start'],
        [{ end: '2026-13-01T00:00:00Z' }, 'query/end'],
        [{ start: String(W.end), end: String(W.start) }, 'query/start'],
        [{ agg: 'median' }, 'query/agg'],
        [{ by: 'a=b' }, 'query/by'],
        [{ name: '' }, 'query/name'],
      ];
      for (const [input, path] of cases) {
        const err = await fails(q(input));
        expect(err.code, JSON.stringify(input)).to.equal('validation_failed');
        expect(err.details.errors?.[0].path, JSON.stringify(input)).to.equal(path);
      }
    });

    it('more buckets than query.max_buckets is a 422 naming the limit', async () => {
      const err = await fails(q({ start: String(B), end: String(B + 120 * MIN), step: '1m' }, { maxBuckets: 100 }));
      expect(err.code).to.equal('limit_exceeded');
      expect(err.message).to.contain('the query spans 120 buckets; query.max_buckets is 100');
      // ceil: 100 buckets and a bit is 101.
      expect((await fails(q({ start: String(B), end: String(B + 100 * MIN + 1), step: '1m' }, { maxBuckets: 100 }))).message).to.contain('101 buckets');
      expect((await q({ start: String(B), end: String(B + 100 * MIN), step: '1m' }, { maxBuckets: 100 })).series).to.have.length(4);
    });

    it('an answer that could hold more than query.max_points points is a 422 naming the limit; at the limit it answers', async () => {
      // 4 series × 10 one-minute buckets = 40 points; grouped into fewer answer series it fits in less.
      const err = await fails(q({ step: '1m' }, { maxPoints: 39 }));
      expect(err.code).to.equal('limit_exceeded');
      expect(err.message).to.contain('4 series × 10 buckets = 40 points; query.max_points is 39');
      expect((await q({ step: '1m' }, { maxPoints: 40 })).series).to.have.length(4);
    });

    it('more series than query.max_series is a 422 naming the limit; at the limit it answers', async () => {
      const err = await fails(q({}, { maxSeries: 3 }));
      expect(err.code).to.equal('limit_exceeded');
      expect(err.message).to.contain('query.max_series is 3');
      expect((await q({}, { maxSeries: 4 })).series).to.have.length(4);
    });

    it('a query running past query.statement_timeout_ms is a 422 naming the limit, and the pool stays usable', async () => {
      const err = await fails(q({ name: 'big', start: String(B), end: String(B + HOUR), step: '1m', agg: 'p99' }, { statementTimeoutMs: 1 }));
      expect(err.code).to.equal('limit_exceeded');
      expect(err.message).to.contain('query.statement_timeout_ms');
      // The same query with the normal timeout counts all 300 000 points.
      const ok = await q({ name: 'big', start: String(B), end: String(B + HOUR), step: '1h', agg: 'count' });
      expect(ok.series[0].points).to.deep.equal([[iso(B), 300_000]]);
    });

    it('a regex can never reach another org: A sees only its series, B only its own', async () => {
      const a = await q({ step: '10m', filter: 'host=~.*' });
      expect(a.series).to.have.length(4);
      for (const s of a.series) {
        expect(s.labels).to.not.have.property('tenant');
        for (const [, v] of s.points) expect(v).to.not.equal(1e6);
      }
      const b = await q({ step: '10m', filter: 'host=~.*' }, {}, SYSTEM_ACTOR, orgB.slug);
      expect(b.series.map((s) => s.labels)).to.deep.equal([{ env: 'prod', host: 'a', tenant: 'B' }]);
    });

    it("org B's viewer gets not_found for org A; A's viewer may read", async () => {
      const userB: Actor = { kind: 'user', userId: viewerBId, superadmin: false };
      const userA: Actor = { kind: 'user', userId: viewerAId, superadmin: false };
      expect((await fails(q({}, {}, userB))).code).to.equal('not_found');
      expect((await fails(service().logs(userB, orgA.slug))).code).to.equal('not_found');
      expect((await fails(service().usage(userB, orgA.slug))).code).to.equal('not_found');
      expect((await q({}, {}, userA)).series).to.have.length(4);
    });
  });

  /** A name whose series were all written without a descriptor (before kinds were recorded): kind and types say unknown. */
  const legacyName = (name: string, label_keys: string[], series: number) => ({
    name,
    kind: 'unknown',
    label_keys,
    series,
    types: [{ kind: 'unknown', temporality: null, monotonic: false, unit: '', description: '', series }],
  });

  describe('metric names (service)', () => {
    it('lists names with sorted label keys and series counts, paged by name, filtered by prefix', async () => {
      const svc = service();
      const p1 = await svc.listMetrics(SYSTEM_ACTOR, orgA.slug, { limit: 2 });
      expect(p1.items).to.deep.equal([legacyName('big', ['k'], 1), legacyName('cpu.system', [], 1)]);
      const p2 = await svc.listMetrics(SYSTEM_ACTOR, orgA.slug, { limit: 2, cursor: p1.next_cursor! });
      expect(p2.items).to.deep.equal([legacyName('cpu.user', ['core'], 1), legacyName('req', ['env', 'host', 'region'], 4)]);
      expect(p2.next_cursor).to.equal(null);
      expect((await svc.listMetrics(SYSTEM_ACTOR, orgA.slug, { prefix: 'cpu.' })).items.map((i) => i.name)).to.deep.equal(['cpu.system', 'cpu.user']);
      // B's "req" has a tenant label; A's listing never counts it.
      expect((await svc.listMetrics(SYSTEM_ACTOR, orgB.slug)).items).to.deep.equal([legacyName('req', ['env', 'host', 'tenant'], 1)]);
    });
  });

  describe('logs and events', () => {
    // ids follow insertion order, so L4 (same ts as L3, inserted after it) sorts before L3.
    const L = [
      { key: 'L1', at: 1, sev: 9, text: 'INFO', body: 'Disk 95% full', attributes: { service: 'api', code: 500 } },
      { key: 'L2', at: 2, sev: 13, text: 'WARN', body: 'disk 95x full', attributes: { service: 'api' } },
      { key: 'L3', at: 3, sev: 17, text: 'ERROR', body: 'DISK_USAGE high', attributes: { service: 'web' } },
      { key: 'L4', at: 3, sev: 5, text: 'DEBUG', body: 'cache miss', attributes: {} },
      { key: 'L5', at: 4, sev: 21, text: 'FATAL', body: 'crash', attributes: { service: 'api', code: 500 } },
      { key: 'L6', at: 5, sev: 0, text: '', body: 'plain', attributes: {} },
      { key: 'L7', at: 6, sev: 1, text: 'TRACE', body: 'trace me', attributes: {} },
    ];
    const bodyOf = Object.fromEntries(L.map((l) => [l.body, l.key]));
    const keys = (items: { body: string }[]) => items.map((i) => bodyOf[i.body] ?? i.body);

    before(async () => {
      for (const l of L) {
        await knex.raw('insert into logs (org_id, ts, severity_number, severity_text, body, attributes) values (?, ?, ?, ?, ?, ?::jsonb)', [
          orgA.id,
          iso(B + l.at * MIN),
          l.sev,
          l.text,
          l.body,
          JSON.stringify(l.attributes),
        ]);
      }
      await knex.raw('insert into logs (org_id, ts, severity_number, severity_text, body, attributes) values (?, ?, 9, ?, ?, ?::jsonb)', [
        orgB.id,
        iso(B + MIN),
        'INFO',
        'Disk 95% full (org B)',
        JSON.stringify({ service: 'api', code: 500 }),
      ]);
      const E = [
        { at: 1, type: 'deploy', title: 'E1', tags: ['prod', 'api'] },
        { at: 2, type: 'deploy', title: 'E2', tags: ['staging'] },
        { at: 3, type: 'incident', title: 'E3', tags: ['prod'] },
      ];
      for (const e of E) await knex.raw('insert into events (org_id, ts, type, title, tags) values (?, ?, ?, ?, ?::jsonb)', [orgA.id, iso(B + e.at * MIN), e.type, e.title, JSON.stringify(e.tags)]);
      await knex.raw('insert into events (org_id, ts, type, title, tags) values (?, ?, ?, ?, ?::jsonb)', [orgB.id, iso(B + MIN), 'deploy', 'B1', JSON.stringify(['prod'])]);
    });

    const logs = (input: Parameters<QueryService['logs']>[2] = {}) => service().logs(SYSTEM_ACTOR, orgA.slug, { start: String(B), end: String(B + HOUR), ...input });
    const events = (input: Parameters<QueryService['events']>[2] = {}) => service().events(SYSTEM_ACTOR, orgA.slug, { start: String(B), end: String(B + HOUR), ...input });

    it('newest first (ts desc, id desc) with levels named from severity numbers', async () => {
      const page = await logs();
      expect(keys(page.items)).to.deep.equal(['L7', 'L6', 'L5', 'L4', 'L3', 'L2', 'L1']);
      expect(page.items.map((i) => i.level)).to.deep.equal(['trace', 'info', 'fatal', 'debug', 'error', 'warn', 'info']);
      expect(page.items[6]).to.deep.include({ ts: iso(B + MIN), severity_number: 9, severity_text: 'INFO', body: 'Disk 95% full', trace_id: null, span_id: null });
      expect(page.items[6].attributes).to.deep.equal({ service: 'api', code: 500 });
      expect(page.next_cursor).to.equal(null);
    });

    it('level is a minimum (unspecified severity 0 reads as info)', async () => {
      expect(keys((await logs({ level: 'warn' })).items)).to.deep.equal(['L5', 'L3', 'L2']);
      expect(keys((await logs({ level: 'info' })).items)).to.deep.equal(['L6', 'L5', 'L3', 'L2', 'L1']);
      expect(keys((await logs({ level: 'fatal' })).items)).to.deep.equal(['L5']);
      expect((await logs({ level: 'trace' })).items).to.have.length(7);
      expect((await fails(logs({ level: 'loud' }))).details.errors?.[0].path).to.equal('query/level');
    });

    it('q is a case-insensitive substring with %, _ and \\ taken literally', async () => {
      expect(keys((await logs({ q: 'disk' })).items)).to.deep.equal(['L3', 'L2', 'L1']);
      expect(keys((await logs({ q: '95%' })).items)).to.deep.equal(['L1']);
      expect(keys((await logs({ q: '95_' })).items)).to.deep.equal([]);
      expect(keys((await logs({ q: 'k_u' })).items)).to.deep.equal(['L3']);
      expect(keys((await logs({ q: '\\' })).items)).to.deep.equal([]);
    });

    it('attribute filters: equality on the text of the value; several values of one key mean any of them', async () => {
      expect(keys((await logs({ attributes: { service: 'api' } })).items)).to.deep.equal(['L5', 'L2', 'L1']);
      expect(keys((await logs({ attributes: { code: '500' } })).items)).to.deep.equal(['L5', 'L1']);
      expect(keys((await logs({ attributes: { service: 'api', code: '500' }, level: 'error' })).items)).to.deep.equal(['L5']);
      expect(keys((await logs({ attributes: { service: ['api', 'web'] } })).items)).to.deep.equal(['L5', 'L3', 'L2', 'L1']);
    });

    it('pages by (ts, id) without gaps or repeats, including rows sharing a timestamp', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await logs({ limit: 3, cursor });
        seen.push(...keys(page.items));
        cursor = page.next_cursor ?? undefined;
        pages++;
      } while (cursor);
      expect(pages).to.equal(3);
      expect(seen).to.deep.equal(['L7', 'L6', 'L5', 'L4', 'L3', 'L2', 'L1']);
      expect((await fails(logs({ cursor: 'bm9wZQ' }))).details.errors?.[0].path).to.equal('query/cursor');
    });

    it('the time range is [start, end) and defaults to the last hour', async () => {
      expect(keys((await logs({ start: String(B + 3 * MIN), end: String(B + 5 * MIN) })).items)).to.deep.equal(['L5', 'L4', 'L3']);
      const now = B + 4 * MIN;
      const dflt = await service({ now: () => now }).logs(SYSTEM_ACTOR, orgA.slug, {});
      expect(keys(dflt.items)).to.deep.equal(['L4', 'L3', 'L2', 'L1']);
    });

    it('events: newest first, by type (any of) and tags (all of), paged', async () => {
      const titles = (p: { items: { title: string }[] }) => p.items.map((e) => e.title);
      expect(titles(await events())).to.deep.equal(['E3', 'E2', 'E1']);
      expect(titles(await events({ type: 'deploy' }))).to.deep.equal(['E2', 'E1']);
      expect(titles(await events({ type: ['deploy', 'incident'] }))).to.deep.equal(['E3', 'E2', 'E1']);
      expect(titles(await events({ tag: 'prod' }))).to.deep.equal(['E3', 'E1']);
      expect(titles(await events({ tag: ['prod', 'api'] }))).to.deep.equal(['E1']);
      const p1 = await events({ limit: 2 });
      expect(titles(p1)).to.deep.equal(['E3', 'E2']);
      const p2 = await events({ limit: 2, cursor: p1.next_cursor! });
      expect(titles(p2)).to.deep.equal(['E1']);
      expect(p2.next_cursor).to.equal(null);
      const e1 = p2.items[0];
      expect(e1).to.deep.include({ ts: iso(B + MIN), type: 'deploy', text: null, tags: ['prod', 'api'] });
      expect(e1.id).to.match(/^\d+$/);
    });
  });

  describe('usage (service)', () => {
    const NOW = Date.UTC(2026, 10, 15, 12);
    before(async () => {
      const rows = [
        { org_id: orgA.id, day: '2026-11-15', points: 100, logs: 10, events: 1 },
        { org_id: orgA.id, day: '2026-11-14', points: 50, logs: 5, events: 2 },
        { org_id: orgA.id, day: '2026-11-01', points: 7, logs: 0, events: 0 },
        { org_id: orgA.id, day: '2026-10-31', points: 1000, logs: 1000, events: 1000 },
        { org_id: orgA.id, day: '2026-11-16', points: 9000, logs: 9000, events: 9000 },
        { org_id: orgB.id, day: '2026-11-15', points: 999, logs: 999, events: 999 },
      ];
      await knex('usage_daily').insert(rows);
    });
    after(() => knex('usage_daily').whereIn('day', ['2026-11-15', '2026-11-14', '2026-11-01', '2026-10-31', '2026-11-16']).delete());

    it('counts today and this month (UTC) from usage_daily, series in use, and effective limits', async () => {
      const u = await service({ now: () => NOW }).usage(SYSTEM_ACTOR, orgA.slug);
      expect(u).to.deep.equal({
        today: { metrics: 100, logs: 10, events: 1 },
        month: { metrics: 157, logs: 15, events: 3 },
        active_series: 7,
        limits: { ingest_points_per_second: 1234, max_series: 5000, retention_days: { metrics: 30, logs: 3, events: 90 } },
      });
    });
  });

  describe('over HTTP', () => {
    before(function () {
      if (!t.app.registry?.routes().some((r) => r.operationId === 'queryMetric')) {
        throw new Error('registerQueryRoutes is not wired into build-app.ts yet');
      }
    });

    const metricQuery = (token: string | null, params: Params, slug = orgA.slug) =>
      call<{ series: MetricSeries[] } & Problem>(`/organizations/${slug}/metrics/query`, token, { name: 'req', start: iso(W.start), end: W.end, ...params });

    it('answers a grouped query for a viewer and for a read-scoped API key, with RFC 3339 timestamps', async () => {
      for (const token of [tokens.viewerA, tokens.readA]) {
        const res = await metricQuery(token, { step: '5m', agg: 'p95', by: 'env', filter: ['env!=dev', 'host=~a|b|d'] });
        expect(res.status, JSON.stringify(res.body)).to.equal(200);
        expect(res.body.series.map((s) => s.labels)).to.deep.equal([{ env: 'prod' }, {}]);
        expectClose(res.body.series[0].points, expectedPoints([...data.s1.points, ...data.s2.points], W.start, W.end, 5 * MIN, 'p95'), 'http p95');
        expect(res.body.series[0].points[0][0]).to.equal(iso(W.start));
      }
    });

    it("a metric answer's bytes are JSON.stringify of the service's answer object, typed and sized as JSON; HEAD has the same length", async () => {
      // Labels beyond ASCII (stored strings never hold NUL: ingest stores it as U+FFFD), in an org of their own.
      const orgC = await createOrg(t.app.services);
      const readC = (await createApiKey(t.app.services, orgC.slug, ['read'])).secret;
      const odd = { 'höst': 'ä😀\uFFFD"\\\n</', 'z\u2028': '\u00e9' };
      await metric(orgC, 'uni', 'req', odd, [
        [W.start, 1.5],
        [W.start + MIN, -0],
        [W.start + 2 * MIN, 1e-310],
        [W.start + 3 * MIN, 123456789.123456789],
      ]);
      await metric(orgC, 'uni2', 'req', { 'höst': 'b' }, [[W.start, 2]]);
      // [org, token, parameters, whether the answer has series]
      const cases: [{ slug: string }, string, Params, boolean][] = [
        [orgA, tokens.readA, { step: '1m' }, true],
        [orgA, tokens.viewerA, { step: '5m', agg: 'p95', by: 'env', filter: ['env!=dev', 'host=~a|b|d'] }, true],
        [orgA, tokens.readA, { step: '2m', agg: 'rate' }, true],
        [orgA, tokens.readA, { step: '1m', agg: 'increase', by: 'host' }, true],
        [orgA, tokens.readA, { step: '1m', agg: 'p50' }, true],
        [orgA, tokens.readA, { step: '10m', agg: 'count', filter: 'host=nope' }, false],
        [orgC, readC, { step: '1m' }, true],
        [orgC, readC, { step: '1m', by: 'höst' }, true],
      ];
      for (const [org, token, params, some] of cases) {
        const search = qs({ name: 'req', start: String(W.start), end: String(W.end), ...params });
        const path = `${t.baseUrl}/api/v1/organizations/${org.slug}/metrics/query${search}`;
        const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
        const bytes = Buffer.from(await res.arrayBuffer());
        expect(res.status, search).to.equal(200);
        const sp = new URLSearchParams(search.slice(1));
        const input = { ...Object.fromEntries(sp.entries()), filter: sp.getAll('filter') } as MetricQueryInput;
        const answer = await service().query(SYSTEM_ACTOR, org.slug, input);
        expect(answer.series.length > 0, search).to.equal(some);
        expect(bytes.toString('utf8'), search).to.equal(JSON.stringify(answer));
        expect(bytes.equals(Buffer.from(JSON.stringify(answer))), search).to.equal(true);
        expect(res.headers.get('content-type')).to.equal('application/json; charset=utf-8');
        expect(res.headers.get('content-length')).to.equal(String(bytes.length));
        const head = await fetch(path, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
        expect(head.status).to.equal(200);
        expect(head.headers.get('content-type')).to.equal('application/json; charset=utf-8');
        expect(head.headers.get('content-length')).to.equal(String(bytes.length));
        expect((await head.arrayBuffer()).byteLength).to.equal(0);
      }
      const uni = await call<{ series: MetricSeries[] }>(`/organizations/${orgC.slug}/metrics/query`, readC, { name: 'req', start: W.start, end: W.end });
      // Sorted by labels: 'b' before 'ä'.
      expect(uni.body.series.map((s) => s.labels)).to.deep.equal([{ 'höst': 'b' }, odd]);
      expect(uni.body.series[1].points).to.deep.equal([
        [iso(W.start), 1.5],
        [iso(W.start + MIN), 0],
        [iso(W.start + 2 * MIN), 1e-310],
        [iso(W.start + 3 * MIN), 123456789.123456789],
      ]);
    });

    it('bad parameters are 400 problem documents naming the parameter', async () => {
      const cases: [Params, string][] = [
        [{ step: '0' }, 'query/step'],
        [{ start: 'last tuesday' }, 'query/start'],
        [{ agg: 'median' }, 'query/agg'],
        [{ filter: 'host' }, 'query/filter'],
        [{ filter: 'host=~(' }, 'query/filter'],
        [{ name: undefined }, 'query/name'],
        [{ unknown: 1 }, 'query/unknown'],
      ];
      for (const [params, path] of cases) {
        const res = await metricQuery(tokens.viewerA, params);
        expect(res.status, JSON.stringify(params)).to.equal(400);
        expect(res.body.type).to.match(/validation_failed$/);
        expect(res.body.errors?.map((e) => e.path), JSON.stringify(params)).to.include(path);
      }
      const regex = await metricQuery(tokens.viewerA, { filter: 'host=~(' });
      expect(regex.body.detail).to.contain('host=~(');
    });

    it('a query over query.max_buckets is a 422 naming the limit', async () => {
      const res = await metricQuery(tokens.viewerA, { start: W.start, end: W.start + 20_000 * MIN, step: 60 });
      expect(res.status).to.equal(422);
      expect(res.body.detail).to.contain(`the query spans 20000 buckets; query.max_buckets is ${t.app.config.query.max_buckets}`);
    });

    it('metric names, logs, events and usage answer with their documented shapes', async () => {
      const names = await call<Page<{ name: string }>>(`/organizations/${orgA.slug}/metrics`, tokens.readA, { limit: 3 });
      expect(names.status).to.equal(200);
      expect(names.body.items.map((i) => i.name)).to.deep.equal(['big', 'cpu.system', 'cpu.user']);
      const next = await call<Page<{ name: string }>>(`/organizations/${orgA.slug}/metrics`, tokens.readA, { limit: 3, cursor: names.body.next_cursor! });
      expect(next.body).to.deep.equal({ items: [legacyName('req', ['env', 'host', 'region'], 4)], next_cursor: null });

      const logs = await call<Page<LogItem>>(`/organizations/${orgA.slug}/logs`, tokens.viewerA, {
        start: iso(B),
        end: B + HOUR,
        level: 'info',
        q: 'DISK',
        'attr.service': 'api',
        'attr.code': 500,
      });
      expect(logs.status, JSON.stringify(logs.body)).to.equal(200);
      expect(logs.body.items.map((i) => i.body)).to.deep.equal(['Disk 95% full']);
      expect(logs.body.items[0]).to.deep.include({ ts: iso(B + MIN), level: 'info', severity_number: 9 });
      const badAttr = await call<Problem>(`/organizations/${orgA.slug}/logs`, tokens.viewerA, { attrs: 'x' });
      expect(badAttr.status).to.equal(400);

      const events = await call<Page<EventItem>>(`/organizations/${orgA.slug}/events`, tokens.readA, { start: B, end: iso(B + HOUR), tag: ['prod', 'api'] });
      expect(events.status).to.equal(200);
      expect(events.body.items.map((e) => e.title)).to.deep.equal(['E1']);

      const today = new Date().toISOString().slice(0, 10);
      await knex('usage_daily').insert({ org_id: orgA.id, day: today, points: 11, logs: 12, events: 13 });
      const usage = await call<{ today: Record<string, number>; active_series: number; limits: unknown }>(`/organizations/${orgA.slug}/usage`, tokens.viewerA);
      expect(usage.status).to.equal(200);
      expect(usage.body.today).to.deep.equal({ metrics: 11, logs: 12, events: 13 });
      expect(usage.body.active_series).to.equal(7);
      const c = t.app.config;
      expect(usage.body.limits).to.deep.equal({
        ingest_points_per_second: c.ingest.points_per_second,
        max_series: 5000,
        retention_days: { metrics: c.retention.metrics_days, logs: 3, events: c.retention.events_days },
      });
    });

    it("tenant isolation: org B's viewer and API key get 404 for every org A endpoint; an ingest-only key gets 403; no token 401", async () => {
      const paths = ['/metrics', '/metrics/query?name=req', '/logs', '/events', '/usage'];
      for (const p of paths) {
        const [path, search] = p.split('?');
        const params = Object.fromEntries(new URLSearchParams(search ?? ''));
        for (const token of [tokens.viewerB, tokens.readB]) {
          const res = await call<Problem>(`/organizations/${orgA.slug}${path}`, token, params);
          expect(res.status, `${p} as B`).to.equal(404);
          expect(JSON.stringify(res.body)).to.not.contain(orgA.id);
        }
        expect((await call(`/organizations/${orgA.slug}${path}`, tokens.ingestA, params)).status, `${p} ingest key`).to.equal(403);
        expect((await call(`/organizations/${orgA.slug}${path}`, null, params)).status, `${p} anonymous`).to.equal(401);
        expect((await call(`/organizations/${orgA.slug}${path}`, tokens.readA, params)).status, `${p} A's read key`).to.equal(200);
      }
      // A nonexistent org looks exactly like someone else's.
      expect((await metricQuery(tokens.viewerB, {}, 'no-such-org')).status).to.equal(404);
    });

    it("regex filters never reach another org's series, and B's own queries see only B", async () => {
      const a = await metricQuery(tokens.readA, { step: '10m', filter: 'host=~.*' });
      expect(a.body.series).to.have.length(4);
      expect(JSON.stringify(a.body)).to.not.contain('tenant');
      const b = await metricQuery(tokens.readB, { step: '10m', filter: 'host=~.*,tenant=~.*' }, orgB.slug);
      expect(b.status).to.equal(200);
      expect(b.body.series.map((s) => s.labels)).to.deep.equal([{ env: 'prod', host: 'a', tenant: 'B' }]);
      const bLogs = await call<Page<LogItem>>(`/organizations/${orgB.slug}/logs`, tokens.readB, { start: B, end: B + HOUR, q: '%' });
      expect(bLogs.body.items.map((i) => i.body)).to.deep.equal(['Disk 95% full (org B)']);
      const bEvents = await call<Page<EventItem>>(`/organizations/${orgB.slug}/events`, tokens.viewerB, { start: B, end: B + HOUR });
      expect(bEvents.body.items.map((e) => e.title)).to.deep.equal(['B1']);
    });

    it('OpenAPI documents the five operations with their parameters', async () => {
      const doc = (await t.api.get<{ paths: Record<string, Record<string, { operationId: string }>> }>('/openapi.json')).body;
      const ops = ['/organizations/{org}/metrics', '/organizations/{org}/metrics/query', '/organizations/{org}/logs', '/organizations/{org}/events', '/organizations/{org}/usage'].map(
        (p) => doc.paths[p]?.get?.operationId,
      );
      expect(ops).to.deep.equal(['listMetrics', 'queryMetric', 'listLogs', 'listEvents', 'getUsage']);
    });
  });
});
