import { createHash } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { DomainError } from '../../src/core/errors.js';
import { PartitionsRepository, DAY_MS } from '../../src/db/partitions.js';
import { RULE_RECORD_FINGERPRINT } from '../../src/features/alerts/rule-evaluation.js';
import { readMetric } from '../../src/features/telemetry/metric-read.js';
import { QueryRepository } from '../../src/features/telemetry/query-repository.js';
import { canonicalLabels, seriesIdentity } from '../../src/features/telemetry/series-store.js';
import { POINT_WINDOWS, TELEMETRY_TABLES } from '../../src/features/telemetry/telemetry-tables.js';
import type { SeriesMeta, Temporality } from '../../src/features/telemetry/telemetry-types.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { asPoints, HOUR, increaseSeries, iso, MIN, refIncrease, SEC, sumMaps, type Pt, type StoredSeries } from '../support/telemetry-fixtures.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { expectProblem, type Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Temporality in queries, against real PostgreSQL over HTTP (every answer is validated against
 * the OpenAPI document): agg=increase and agg=rate compared with a reference implementation of
 * their definition (test/support/telemetry-fixtures.ts: per series, consecutive points in time order; a drop is a
 * counter reset; a delta series' values are summed; the base of the range's first point is the
 * series' last point in the 5 minutes, or one step when longer, before start, and only without
 * one does the first point merely set the base), plus a few buckets worked out by hand, among them
 * the lookback's edges; grouping sums per-series increases; the descriptors
 * (kind, temporality, unit) on answer series and in the list of metric names; an alert rule
 * reading agg=rate.
 */


function expectClose(actual: [string, number | null][], expected: [string, number][], what: string): void {
  expect(actual.map((p) => p[0]), `${what}: bucket starts`).to.deep.equal(expected.map((p) => p[0]));
  actual.forEach(([, v], i) => expect(v, `${what} @ ${expected[i][0]}`).to.be.closeTo(expected[i][1], 1e-9 * Math.max(1, Math.abs(expected[i][1]))));
}

// ---------------------------------------------------------------------------------------------

interface AnswerSeries {
  labels: Record<string, string>;
  kind?: string;
  temporality?: string | null;
  unit?: string;
  points: [string, number | null][];
}
interface MetricItem {
  name: string;
  kind: string;
  label_keys: string[];
  series: number;
  types: { kind: string; temporality: string | null; monotonic: boolean; unit: string; description: string; series: number }[];
}

describe('telemetry increase and rate', function () {
  this.timeout(120_000);

  let url: string;
  let t: TestApp;
  let knex: Knex;
  let orgA: { id: string; slug: string };
  let orgB: { id: string; slug: string };
  let readA: string;
  let editorA: string;

  /** Hour-aligned, a few hours ago: every point is in the past. */
  const B = Math.floor((Date.now() - 3 * HOUR) / HOUR) * HOUR;
  const at = (s: number) => B + s * SEC;
  const W = { start: B, end: B + 10 * MIN };

  const counter = (temporality: Temporality, unit = '1'): SeriesMeta => ({ kind: 'counter', temporality, monotonic: true, unit, description: 'Requests served' });

  // The series and their stories: test/support/telemetry-fixtures.ts (increaseSeries).
  const { cumA, deltaA, cumB, temp, legacy, sparse, queue } = increaseSeries(B);

  async function insertSeries(orgId: string, name: string, labels: Record<string, string>, meta: SeriesMeta | null): Promise<number> {
    const canon = canonicalLabels(labels);
    if (meta === null) {
      // As the series table held them before descriptors: the defaults (kind unknown), hashed on the labels alone.
      const hash = createHash('sha256').update(canon).digest();
      const { rows } = await knex.raw<{ rows: { id: string }[] }>('insert into series (org_id, name, labels, labels_hash) values (?, ?, ?::jsonb, ?) returning id', [orgId, name, canon, hash]);
      return Number(rows[0].id);
    }
    const hash = createHash('sha256').update(seriesIdentity(canon, meta)).digest();
    const { rows } = await knex.raw<{ rows: { id: string }[] }>(
      `insert into series (org_id, name, labels, labels_hash, kind, temporality, monotonic, unit, description)
       values (?, ?, ?::jsonb, ?, ?, ?, ?, ?, ?) returning id`,
      [orgId, name, canon, hash, meta.kind, meta.temporality, meta.monotonic, meta.unit, meta.description],
    );
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

  async function store(orgId: string, name: string, s: StoredSeries, meta: SeriesMeta | null): Promise<void> {
    await insertPoints(orgId, await insertSeries(orgId, name, s.labels, meta), s.points);
  }

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '1000' });
    knex = t.app.db.knex;
    const s = t.app.services;
    orgA = await createOrg(s);
    orgB = await createOrg(s);
    readA = (await createApiKey(s, orgA.slug, ['read'])).secret;
    const editor = await createUser(s, { org: orgA.slug, role: 'editor' });
    editorA = (await t.api.login(editor.email, editor.password)).access_token;
    const parts = new PartitionsRepository(knex, TELEMETRY_TABLES, [], POINT_WINDOWS);
    for (const table of TELEMETRY_TABLES) await parts.ensure(table, [B - DAY_MS, B, B + DAY_MS, Date.now(), Date.now() + DAY_MS]);

    await store(orgA.id, 'http_requests_total', cumA, counter('cumulative'));
    await store(orgA.id, 'http_requests_total', deltaA, counter('delta'));
    await store(orgA.id, 'http_requests_total', cumB, counter('cumulative'));
    await store(orgA.id, 'temp', temp, { kind: 'gauge', temporality: null, monotonic: false, unit: 'Cel', description: 'Room temperature' });
    await store(orgA.id, 'legacy_total', legacy, null);
    await store(orgA.id, 'sparse_total', sparse, counter('cumulative'));
    await store(orgA.id, 'queue_length', queue, { kind: 'updowncounter', temporality: 'cumulative', monotonic: false, unit: '{item}', description: 'Items queued' });
    // A name whose older series predate kinds: its kind is the newer series'.
    await store(orgA.id, 'mixed_total', { labels: { v: '1' }, temporality: null, points: [[at(0), 1]] }, null);
    await store(orgA.id, 'mixed_total', { labels: { v: '2' }, temporality: 'delta', points: [[at(0), 1]] }, counter('delta', 'By'));
    await store(orgA.id, 'mixed_total', { labels: { v: '3' }, temporality: 'delta', points: [[at(0), 1]] }, counter('delta', 'By'));
    // Another org, same name and labels, huge values: must never reach A's answers.
    await store(orgB.id, 'http_requests_total', { ...cumA, points: cumA.points.map(([ts, v]): Pt => [ts, v * 1e6 + 7]) }, counter('cumulative'));
    await knex.raw('analyze points');
  });

  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  type Params = Record<string, string | number | undefined>;
  async function query(params: Params, token = readA): Promise<AnswerSeries[]> {
    const res = await t.api.get<{ series: AnswerSeries[] }>(`/organizations/${orgA.slug}/metrics/query?${qs({ start: W.start, end: W.end, ...params })}`, token);
    expect(res.status, res.text).to.equal(200);
    return res.body.series;
  }
  function qs(params: Params): string {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) u.append(k, String(v));
    return u.toString();
  }
  const same = (a: Record<string, string>, b: Record<string, string>) => canonicalLabels(a) === canonicalLabels(b);

  describe('one series', () => {
    it('cumulative: resets on a bucket start and inside a bucket, empty buckets left out (worked out by hand)', async () => {
      const series = await query({ name: 'http_requests_total', agg: 'increase', step: '1m', filter: 'instance=a' });
      const cum = series.find((s) => s.temporality === 'cumulative');
      expect(cum, JSON.stringify(series)).to.not.equal(undefined);
      // [0,60): 10 (100−90: the point at -5 s, 5 s before start, is the base) +10+15+5 · [60,120): 5 (the reset at
      // 60 s) +15+2+3 (the reset at 105 s) · [120,180): 7+0+30 · [180,240): 1 · nothing in [240,360) · [360,420): 9+2
      // (reset) · [420,480): 7 · [480,540): 3 · [540,600): 18+1. The point at 600 s is outside.
      // (Without the lookback, [0,60) would be 30: the point at 0 s only setting the base.)
      expect(cum!.points).to.deep.equal(
        (
          [
            [0, 40],
            [1, 25],
            [2, 37],
            [3, 1],
            [6, 11],
            [7, 7],
            [8, 3],
            [9, 19],
          ] as Pt[]
        ).map(([m, v]) => [iso(B + m * MIN), v]),
      );
      expectClose(cum!.points, asPoints(refIncrease(cumA.points, 'cumulative', W.start, W.end, MIN), 'increase', MIN), 'reference');
    });

    it('delta: the values of each bucket summed (a bucket of zeros is 0), points before start never count', async () => {
      const series = await query({ name: 'http_requests_total', agg: 'increase', step: '1m', filter: 'instance=a' });
      const delta = series.find((s) => s.temporality === 'delta');
      // [0,60): 3+4+0 — the 50 at -1 s is within the lookback, yet a delta series takes no base (it would make 57).
      expect(delta!.points).to.deep.equal(
        (
          [
            [0, 7],
            [1, 7],
            [2, 0],
            [6, 5],
            [9, 2],
          ] as Pt[]
        ).map(([m, v]) => [iso(B + m * MIN), v]),
      );
      expectClose(delta!.points, asPoints(refIncrease(deltaA.points, 'delta', W.start, W.end, MIN), 'increase', MIN), 'reference');
    });

    it('increase and rate equal the reference for every series and several steps', async () => {
      const all: [string, StoredSeries][] = [
        ['http_requests_total', cumA],
        ['http_requests_total', deltaA],
        ['http_requests_total', cumB],
        ['temp', temp],
        ['legacy_total', legacy],
        ['sparse_total', sparse],
      ];
      for (const step of [5 * SEC, 30 * SEC, MIN, 2 * MIN, 3 * MIN, 10 * MIN]) {
        for (const agg of ['increase', 'rate'] as const) {
          for (const name of ['http_requests_total', 'temp', 'legacy_total', 'sparse_total']) {
            const series = await query({ name, agg, step: step / 1000 });
            const stored = all.filter(([n]) => n === name).map(([, s]) => s);
            expect(series, `${name} ${agg} ${step}`).to.have.length(stored.filter((s) => refIncrease(s.points, s.temporality, W.start, W.end, step).size > 0).length);
            for (const s of stored) {
              const temporality = s.temporality;
              const got = series.find((x) => same(x.labels, s.labels) && (x.temporality ?? null) === temporality);
              const expected = asPoints(refIncrease(s.points, temporality, W.start, W.end, step), agg, step);
              expect(got, `${name} ${JSON.stringify(s.labels)} ${temporality} ${agg} ${step}`).to.not.equal(undefined);
              expectClose(got!.points, expected, `${name} ${JSON.stringify(s.labels)} ${temporality} ${agg} step ${step}`);
            }
          }
        }
      }
    });

    it('a gauge and a series of unknown kind are read like cumulative counters (a drop is a reset)', async () => {
      const [g] = await query({ name: 'temp', agg: 'increase', step: '1m' });
      // [0,60): 22-20 · [60,120): 19 (dropped: a reset) + 6
      expect(g.points).to.deep.equal([
        [iso(B), 2],
        [iso(B + MIN), 25],
      ]);
      const [l] = await query({ name: 'legacy_total', agg: 'rate', step: '1m' });
      expect(l.points).to.deep.equal([[iso(B), (3 + 2 + 4) / 60]]);
    });

    it('an up-down counter has no resets: a bucket\'s increase is its net change, negative when it went down', async () => {
      const [q] = await query({ name: 'queue_length', agg: 'increase', step: '1m' });
      // Worked out by hand: [0,60): (3-5) + (0-3) = -5 · [60,120): (4-0) + (1-4) = 1
      expect(q.points).to.deep.equal([
        [iso(B), -5],
        [iso(B + MIN), 1],
      ]);
      const [r] = await query({ name: 'queue_length', agg: 'rate', step: '2m' });
      expect(r.points).to.deep.equal([[iso(B), -4 / 120]]);
    });

    it('the step: not dividing the range (a short last bucket, still divided by the step), smaller than the point spacing, the whole range', async () => {
      const [cum3] = (await query({ name: 'http_requests_total', agg: 'rate', step: '3m', filter: 'instance=b' })).filter((s) => s.temporality === 'cumulative');
      expect(cum3.points.map((p) => p[0])).to.deep.equal([0, 3, 6, 9].map((m) => iso(B + m * MIN)));
      expectClose(cum3.points, asPoints(refIncrease(cumB.points, 'cumulative', W.start, W.end, 3 * MIN), 'rate', 3 * MIN), 'step 3m');
      // [540,600) holds the deltas at 540 s and 570 s (the point at 600 s is outside): 20 / 180 s.
      expect(cum3.points[3][1]).to.be.closeTo(20 / 180, 1e-12);

      const fine = (await query({ name: 'http_requests_total', agg: 'rate', step: '5s', filter: 'instance=a' })).find((s) => s.temporality === 'cumulative')!;
      // One point per non-empty bucket; the lookback is 5 minutes (longer than the step), so the point at -5 s is the
      // base of the one at 0 s and the first bucket is 0 s: (100−90) / 5 s. Every point of [0 s, 600 s) has a bucket:
      // 18 (without the lookback the first would be 15 s, and 17 buckets).
      expect(fine.points[0]).to.deep.equal([iso(at(0)), 2]);
      expect(fine.points).to.have.length(18);
      expect(fine.points).to.have.length(cumA.points.filter(([ts]) => ts >= W.start && ts < W.end).length);

      const whole = (await query({ name: 'http_requests_total', agg: 'increase', step: '10m', filter: 'instance=a' })).find((s) => s.temporality === 'cumulative')!;
      // The 1m buckets above summed; a 10m step looks back 10 minutes, and the point at -5 s is the base either way.
      expect(whole.points).to.deep.equal([[iso(B), 40 + 25 + 37 + 1 + 11 + 7 + 3 + 19]]);
    });

    it('the range start: the last point before it (within the lookback) is the base of a point on it; an unaligned start aligns the buckets to itself', async () => {
      const from60 = (await query({ name: 'http_requests_total', agg: 'increase', step: '1m', start: at(60), filter: 'instance=a' })).find((s) => s.temporality === 'cumulative')!;
      // 130 at 45 s is the base: 5 at 60 s is a reset (5), then 15+2+3 in [60,120) — 25 (20 if 60 s only set the base).
      expect(from60.points[0]).to.deep.equal([iso(at(60)), 25]);
      const unaligned = (await query({ name: 'http_requests_total', agg: 'increase', step: '1m', start: at(7), filter: 'instance=a' })).find((s) => s.temporality === 'cumulative')!;
      expectClose(unaligned.points, asPoints(refIncrease(cumA.points, 'cumulative', at(7), W.end, MIN), 'increase', MIN), 'start +7 s');
      // 100 at 0 s is the base: [7 s, 67 s) holds 10 (15 s) + 15 (30 s) + 5 (45 s) + 5 (60 s, a reset) — 35 (25 if
      // 15 s only set the base).
      expect(unaligned.points[0]).to.deep.equal([iso(at(7)), 35]);
    });

    it('the lookback: 5 minutes (its edge included), or one step when longer; a point earlier is no base', async () => {
      const read = async (params: Params) => (await query({ name: 'sparse_total', agg: 'increase', ...params })).map((s) => s.points);
      // Step 1m: the point at -360 s is 6 minutes before start, beyond the lookback, so 10 at 0 s only sets the base:
      // [0,60): 16−10 · [360,420): 20−16 (400 s; inside the range the previous point is the base, however far) ·
      // [420,480): 3 (a reset). (A base taken from any earlier point would make [0,60) 3+6 = 9.)
      expect(await read({ step: '1m' })).to.deep.equal([
        [
          [iso(B), 6],
          [iso(at(360)), 4],
          [iso(at(420)), 3],
        ],
      ]);
      // Step 10m: the lookback is one step, so -360 s is the base: (10−7) + 6 + 4 + 3 — 16 (13 with no lookback, or
      // with a lookback held at 5 minutes).
      expect(await read({ step: '10m' })).to.deep.equal([[[iso(B), 3 + 6 + 4 + 3]]]);
      // Start 330 s: 16 at 30 s is exactly 5 minutes before it, the base of 20 at 400 s: [330,390) is empty,
      // [390,450): 4 + 3 (a reset) — 7 (3 if 400 s only set the base).
      expect(await read({ step: '1m', start: at(330) })).to.deep.equal([[[iso(at(390)), 4 + 3]]]);
      // Start 331 s: 30 s is now 5 min 1 s before it, no base: only the reset at 420 s counts.
      expect(await read({ step: '1m', start: at(331) })).to.deep.equal([[[iso(at(391)), 3]]]);
      for (const [start, step] of [[W.start, MIN], [W.start, 10 * MIN], [at(330), MIN], [at(331), MIN]]) {
        expect(await read({ step: step / 1000, start }), `start ${iso(start)} step ${step}`).to.deep.equal([asPoints(refIncrease(sparse.points, 'cumulative', start, W.end, step), 'increase', step)]);
      }
    });

    it('a range holding one point: a cumulative point answers its growth from a base within the lookback, nothing without one; a delta point its value', async () => {
      const temporalities = (series: AnswerSeries[]) => Object.fromEntries(series.map((s) => [s.temporality, s.points]));
      // [170 s, 200 s): 41 at 180 s, its base 40 at 150 s (20 s before start): 1. deltaA has no point there.
      expect(temporalities(await query({ name: 'http_requests_total', agg: 'increase', step: '10s', start: at(170), end: at(200), filter: 'instance=a' }))).to.deep.equal({
        cumulative: [[iso(at(180)), 1]],
      });
      // [0 s, 10 s): cumA's 100 at 0 s over its base 90 at -5 s: 10; deltaA's 3 at 0 s, its 50 at -1 s not counted.
      expect(temporalities(await query({ name: 'http_requests_total', agg: 'increase', step: '10s', start: at(0), end: at(10), filter: 'instance=a' }))).to.deep.equal({
        cumulative: [[iso(B), 10]],
        delta: [[iso(B), 3]],
      });
      // [390 s, 410 s): sparse's 20 at 400 s, its previous point (30 s) 6 minutes before start: no base, no series.
      expect(await query({ name: 'sparse_total', agg: 'increase', step: '10s', start: at(390), end: at(410) })).to.deep.equal([]);
      // No point in the range: no series, whatever lies before it.
      expect(await query({ name: 'http_requests_total', agg: 'rate', step: '1m', start: at(200), end: at(350), filter: 'instance=a' })).to.deep.equal([]);
    });
  });

  describe('answer series', () => {
    it('ungrouped: each series carries kind, temporality and unit, so streams of the same labels are told apart', async () => {
      const series = await query({ name: 'http_requests_total', agg: 'increase', step: '10m' });
      expect(series.map(({ labels, kind, temporality, unit }) => ({ labels, kind, temporality, unit }))).to.deep.equal([
        { labels: { instance: 'a', job: 'api' }, kind: 'counter', temporality: 'cumulative', unit: '1' },
        { labels: { instance: 'a', job: 'api' }, kind: 'counter', temporality: 'delta', unit: '1' },
        { labels: { instance: 'b', job: 'api' }, kind: 'counter', temporality: 'cumulative', unit: '1' },
      ]);
      // Other aggregations too; the unknown kind's temporality is null.
      const [g] = await query({ name: 'temp', agg: 'avg', step: '10m' });
      expect(g).to.deep.equal({ labels: { room: 'x' }, kind: 'gauge', temporality: null, unit: 'Cel', points: [[iso(B), (20 + 22 + 19 + 25) / 4]] });
      const [l] = await query({ name: 'legacy_total', agg: 'max', step: '10m' });
      expect(l).to.deep.equal({ labels: {}, kind: 'unknown', temporality: null, unit: '', points: [[iso(B), 8]] });
    });

    it('grouped: no descriptor (a group may mix them)', async () => {
      const series = await query({ name: 'http_requests_total', agg: 'sum', step: '10m', by: 'job' });
      expect(series).to.have.length(1);
      expect(Object.keys(series[0]).sort()).to.deep.equal(['labels', 'points']);
    });
  });

  describe('by', () => {
    it("sums the group's per-series increases, cumulative and delta alike", async () => {
      for (const step of [MIN, 3 * MIN]) {
        for (const agg of ['increase', 'rate'] as const) {
          const series = await query({ name: 'http_requests_total', agg, step: step / 1000, by: 'job' });
          expect(series.map((s) => s.labels)).to.deep.equal([{ job: 'api' }]);
          const perSeries = [cumA, deltaA, cumB].map((s) => refIncrease(s.points, s.temporality, W.start, W.end, step));
          expectClose(series[0].points, asPoints(sumMaps(perSeries), agg, step), `by job ${agg} ${step}`);
        }
      }
      const byInstance = await query({ name: 'http_requests_total', agg: 'increase', step: '10m', by: 'instance' });
      expect(byInstance.map((s) => [s.labels, s.points])).to.deep.equal([
        // cumA's 143 (its point at -5 s the base, within the 10-minute lookback) + deltaA's 3+4+0 · 7 · 0 · 5 · 2.
        [{ instance: 'a' }, [[iso(B), 143 + 7 + 7 + 0 + 5 + 2]]],
        [{ instance: 'b' }, [[iso(B), [...refIncrease(cumB.points, 'cumulative', W.start, W.end, 10 * MIN).values()][0]]]],
      ]);
    });

    it('is not the increase of the raw points of the group interleaved (that would subtract one process from another)', async () => {
      const [group] = await query({ name: 'http_requests_total', agg: 'increase', step: '10m', by: 'job' });
      const interleaved = refIncrease([...cumA.points, ...deltaA.points, ...cumB.points], 'cumulative', W.start, W.end, 10 * MIN);
      expect(group.points[0][1]).to.not.be.closeTo([...interleaved.values()][0], 1);
    });
  });

  describe('bad input', () => {
    it('an unknown agg is a 400 naming query/agg', async () => {
      for (const agg of ['increases', 'Rate', 'irate', '']) {
        const res = await t.api.get<Problem>(`/organizations/${orgA.slug}/metrics/query?${qs({ name: 'http_requests_total', agg })}`, readA);
        expectProblem(res, 400, `agg=${agg}`);
        expect(res.body.errors?.[0].path, res.text).to.equal('query/agg');
      }
    });

    it('the series and answer-size limits hold for increase and rate, grouped or not', async () => {
      const reads = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
      try {
        const repo = new QueryRepository(knex, reads);
        const read = (agg: 'increase' | 'rate', by: string[], maxSeries: number, maxPoints: number) =>
          readMetric(repo, orgA.id, { name: 'http_requests_total', matchers: [], by, startMs: W.start, endMs: W.end, stepMs: MIN, agg, buckets: 10 }, { maxSeries, maxPoints, statementTimeoutMs: 10_000 });
        const refused = async (p: Promise<unknown>) => {
          const err = await p.then(
            () => null,
            (e: unknown) => e,
          );
          expect(err).to.be.instanceOf(DomainError);
          return (err as DomainError).message;
        };
        for (const agg of ['increase', 'rate'] as const) {
          expect(await refused(read(agg, [], 2, 1000))).to.contain('more than 2 series');
          expect(await refused(read(agg, [], 3, 29))).to.contain('3 series × 10 buckets = 30 points');
          expect(await refused(read(agg, ['job'], 3, 9))).to.contain('1 series × 10 buckets = 10 points');
          expect(await read(agg, [], 3, 30)).to.have.length(3);
          expect(await read(agg, ['job'], 3, 10)).to.have.length(1);
        }
      } finally {
        await reads.destroy();
      }
    });

    it('a step longer than the range or of zero stays a 400 at query/step', async () => {
      for (const step of ['0', '11m']) {
        const res = await t.api.get<Problem>(`/organizations/${orgA.slug}/metrics/query?${qs({ name: 'http_requests_total', agg: 'rate', step, start: W.start, end: W.end })}`, readA);
        expectProblem(res, 400, `step=${step}`);
        expect(res.body.errors?.[0].path, res.text).to.equal('query/step');
      }
    });
  });

  describe('GET …/metrics', () => {
    it('shows each name’s kind and its distinct descriptors (temporality, monotonic, unit, description) with series counts', async () => {
      const res = await t.api.get<{ items: MetricItem[] }>(`/organizations/${orgA.slug}/metrics`, readA);
      expect(res.status, res.text).to.equal(200);
      const by = Object.fromEntries(res.body.items.map((i) => [i.name, i]));
      expect(Object.keys(by)).to.deep.equal(['http_requests_total', 'legacy_total', 'mixed_total', 'queue_length', 'sparse_total', 'temp']);
      expect(by.http_requests_total).to.deep.equal({
        name: 'http_requests_total',
        kind: 'counter',
        label_keys: ['instance', 'job'],
        series: 3,
        types: [
          { kind: 'counter', temporality: 'cumulative', monotonic: true, unit: '1', description: 'Requests served', series: 2 },
          { kind: 'counter', temporality: 'delta', monotonic: true, unit: '1', description: 'Requests served', series: 1 },
        ],
      });
      expect(by.temp).to.deep.include({ kind: 'gauge', types: [{ kind: 'gauge', temporality: null, monotonic: false, unit: 'Cel', description: 'Room temperature', series: 1 }] });
      expect(by.legacy_total).to.deep.include({ kind: 'unknown', types: [{ kind: 'unknown', temporality: null, monotonic: false, unit: '', description: '', series: 1 }] });
      expect(by.mixed_total.kind).to.equal('counter');
      expect(by.mixed_total.types).to.deep.equal([
        { kind: 'counter', temporality: 'delta', monotonic: true, unit: 'By', description: 'Requests served', series: 2 },
        { kind: 'unknown', temporality: null, monotonic: false, unit: '', description: '', series: 1 },
      ]);
      expect(by.mixed_total.series).to.equal(3);
    });
  });

  describe('alert rules with agg=rate', () => {
    const path = () => `/organizations/${orgA.slug}/alert-rules`;

    it('a threshold rule on the rate of a counter fires and resolves where the reference rate crosses the threshold', async () => {
      const create = await t.api.post<{ id: string; query: { agg: string } }>(path(), editorA, {
        name: 'request burst',
        kind: 'threshold',
        query: { name: 'http_requests_total', filter: { instance: 'b' }, agg: 'rate', window: '1m' },
        op: '>',
        threshold: 1,
        interval: '1m',
        severity: 'warning',
      });
      expect(create.status, create.text).to.equal(201);
      expect(create.body.query.agg).to.equal('rate');
      const res = await t.api.post<{ evaluations: number; transitions: { at: string; state: string; labels: Record<string, string>; value: number | null }[] }>(
        `${path()}/${create.body.id}/preview?start=${at(60)}&end=${at(600)}`,
        editorA,
      );
      expect(res.status, res.text).to.equal(200);
      expect(res.body.evaluations).to.equal(10);
      // The evaluator reads (now − 1 m, now] as one bucket: the reference rate of that window.
      const rateAt = (now: number) => {
        const m = refIncrease(cumB.points, 'cumulative', now - MIN + 1, now + 1, MIN);
        return m.size ? [...m.values()][0] / 60 : null;
      };
      const expected: { at: string; state: string; value: number }[] = [];
      let firing = false;
      for (let now = at(60); now <= at(600); now += MIN) {
        const v = rateAt(now);
        expect(v, iso(now)).to.not.equal(null);
        if (v! > 1 && !firing) expected.push({ at: iso(now), state: 'firing', value: v! });
        if (!(v! > 1) && firing) expected.push({ at: iso(now), state: 'resolved', value: v! });
        firing = v! > 1;
      }
      expect(expected.length, 'the data crosses the threshold').to.be.at.least(2);
      expect(res.body.transitions.map((x) => ({ at: x.at, state: x.state }))).to.deep.equal(expected.map((x) => ({ at: x.at, state: x.state })));
      res.body.transitions.forEach((x, i) => expect(x.value).to.be.closeTo(expected[i].value, 1e-9));
      expect(res.body.transitions[0].labels).to.deep.equal({ job: 'api', instance: 'b', alertname: 'request burst', severity: 'warning' });
    });

    it('an evaluation: streams of one label set (cumulative and delta) are one alert instance, their increases summed', async () => {
      const create = await t.api.post<{ id: string }>(path(), editorA, {
        name: 'requests on a',
        kind: 'threshold',
        query: { name: 'http_requests_total', filter: { instance: 'a' }, agg: 'increase', window: '10m' },
        op: '>',
        threshold: 100,
        interval: '1m',
        severity: 'critical',
      });
      expect(create.status, create.text).to.equal(201);
      const [rule] = await knex('alert_rules').where({ id: create.body.id });
      // (now − 10 m, now] with now at 599 s: from −1 s exclusive, so deltaA's −1 s point is out (and, a delta
      // series, it is no base); cumA's point at −5 s is the base (the lookback is 10 minutes), so cumA grows
      // 10 + 133: 143 (133 if 0 s only set the base). deltaA: 3+4+0+7+0+5+2 = 21.
      const now = at(599);
      const outcome = await t.app.services.alertEngine.evaluateRule(rule, new Date(now));
      expect(outcome).to.equal('ok');
      const alerts = await knex('alerts').where({ rule_id: create.body.id }).whereNot({ fingerprint: RULE_RECORD_FINGERPRINT }).select('state', 'labels', 'value');
      const expected = [cumA, deltaA].map((s) => [...refIncrease(s.points, s.temporality, now - 10 * MIN + 1, now + 1, 10 * MIN).values()][0]).reduce((a, b) => a + b);
      expect(expected).to.equal(143 + 21);
      expect(alerts.map((a: { state: string; labels: Record<string, string>; value: number }) => [a.state, a.labels, a.value])).to.deep.equal([
        ['firing', { job: 'api', instance: 'a', alertname: 'requests on a', severity: 'critical' }, expected],
      ]);
      const [after] = await knex('alert_rules').where({ id: create.body.id }).select('last_error');
      expect(after.last_error).to.equal(null);
    });

    it('a rate_of_change rule with agg=rate validates and evaluates; a bad agg is refused at body/query/agg', async () => {
      const create = await t.api.post<{ id: string }>(path(), editorA, {
        name: 'rate change',
        kind: 'rate_of_change',
        query: { name: 'http_requests_total', filter: { instance: 'b' }, agg: 'rate', window: '5m' },
        op: '>',
        threshold: 0,
        interval: '1m',
        severity: 'info',
      });
      expect(create.status, create.text).to.equal(201);
      const res = await t.api.post<{ evaluations: number; transitions: { value: number | null }[] }>(`${path()}/${create.body.id}/preview?start=${at(300)}&end=${at(600)}`, editorA);
      expect(res.status, res.text).to.equal(200);
      expect(res.body.evaluations).to.equal(6);
      // The burst (from 4 min) raises the rate: the rule fires with a finite positive change.
      expect(res.body.transitions.length).to.be.at.least(1);
      expect(res.body.transitions[0].value).to.be.a('number').and.to.be.greaterThan(0);

      const bad = await t.api.post<Problem>(path(), editorA, {
        name: 'bad agg',
        kind: 'threshold',
        query: { name: 'http_requests_total', agg: 'irate', window: '5m' },
        op: '>',
        threshold: 0,
        interval: '1m',
        severity: 'info',
      });
      expectProblem(bad, 400, 'agg irate');
      expect(bad.body.errors?.map((e) => e.path)).to.include('body/query/agg');
    });
  });
});
