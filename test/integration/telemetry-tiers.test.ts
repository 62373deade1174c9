import { createHash } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { pino } from 'pino';
import { DomainError } from '../../src/core/errors.js';
import { PartitionsRepository, DAY_MS } from '../../src/db/partitions.js';
import { chunkAggregates, encodeChunk, encodeChunkSub } from '../../src/features/telemetry/chunk-codec.js';
import { CompactionRepository } from '../../src/features/telemetry/compaction-repository.js';
import { CompactionService } from '../../src/features/telemetry/compaction-service.js';
import { readMetric, type MetricRead, type MetricReadLimits, type RawAnswerSeries } from '../../src/features/telemetry/metric-read.js';
import { QueryRepository, SNAPSHOT_READ_MS, type Aggregation } from '../../src/features/telemetry/query-repository.js';
import { canonicalLabels, seriesIdentity } from '../../src/features/telemetry/series-store.js';
import { StatsRepository } from '../../src/features/telemetry/stats-repository.js';
import { CHUNK_WINDOW_MS, chunkHeadSql, POINT_WINDOWS, TELEMETRY_TABLES } from '../../src/features/telemetry/telemetry-tables.js';
import type { SeriesMeta } from '../../src/features/telemetry/telemetry-types.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { asStatement, recordStatements, type SentStatement, type Statement } from '../support/statement-spy.js';
import { createApiKey, createOrg } from '../support/factories.js';
import {
  AGGS,
  asPoints,
  expectedPoints,
  HOUR,
  increaseSeries,
  iso,
  MIN,
  querySeries,
  refIncrease,
  SEC,
  sumMaps,
  type Pt,
  type StoredSeries,
} from '../support/telemetry-fixtures.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Metric reads over the two tiers (DESIGN §3): the data of the query tests (telemetry-query's
 * `req`, telemetry-increase's counters, gauges and up-down counter) and series spanning several
 * chunk windows are stored once per org, (a) all fresh in `points`, (b) all compacted into
 * `point_chunks` (chunk rows written with the codec, one per series and 2-hour window), (c) split
 * across the tiers in the middle of a bucket, and (d) interleaved (every other point compacted, as
 * late data leaves them until the next compaction). Every read — every aggregation, grouped or not,
 * with filters, several steps and unaligned starts, the increase/rate lookback — answers exactly
 * (deep equality) what the fresh tier answers, which equals the reference computed without SQL.
 * A chunk wholly inside a bucket is answered from its stored aggregates, and a chunk whose two
 * halves each lie inside one bucket from its halves' (`sub`): with its data destroyed, those reads
 * still answer the same (and a percentile, which needs the values, fails). Chunks are written with
 * their halves as the compaction job writes them, except in (e) `legacy`: all compacted, without
 * `sub`, as chunks written before the column existed, which reads decode.
 */

type Mode = 'fresh' | 'compacted' | 'split' | 'interleaved' | 'legacy';
const MODES: Mode[] = ['fresh', 'compacted', 'split', 'interleaved', 'legacy'];

const counter = (temporality: 'cumulative' | 'delta', unit = '1'): SeriesMeta => ({ kind: 'counter', temporality, monotonic: true, unit, description: 'Requests served' });
const gauge: SeriesMeta = { kind: 'gauge', temporality: null, monotonic: false, unit: 'Cel', description: 'Room temperature' };

describe('metric reads across the two tiers (fresh points and compacted chunks)', function () {
  this.timeout(300_000);

  let url: string;
  let t: TestApp;
  let knex: Knex;
  let reads: Knex;
  let repo: QueryRepository;
  /** Every read through the chunks-first statement where it may (not percentiles), the full one after it where it falls short. */
  let chunksFirst: QueryRepository;
  /** No prediction: every read is the full statement (as for a range across the compaction horizon). */
  let unpredicted: QueryRepository;
  const orgs = {} as Record<Mode | 'whole' | 'wholeNoSub' | 'lateCompacted' | 'lateFresh', { id: string; slug: string }>;
  let readKey: Record<string, string>;

  /** 1 hour into a 2-hour chunk window, some hours ago: [B − 1 h, B + 1 h) is one window. */
  const B = Math.floor((Date.now() - 6 * HOUR) / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS + HOUR;
  const at = (s: number) => B + s * SEC;
  const W = { start: B, end: B + 10 * MIN };
  /** Mid-bucket for every step the reads use (2 min 37 s): earlier points compacted, later ones fresh. */
  const SPLIT = B + 157 * SEC;
  /**
   * The long series: one point a minute over 5 hours from B − 3 h (three chunk windows), split at
   * LONG_SPLIT, in the second half of the window [B − 1 h, B + 1 h): that chunk has points in both
   * halves, its second half shares its bucket with fresh points at 1-hour steps.
   */
  const LONG = { start: B - 3 * HOUR, end: B + 2 * HOUR };
  const LONG_SPLIT = B + 17 * MIN + 30 * SEC;

  const req = querySeries(B);
  const inc = increaseSeries(B);
  // Counters and gauges over three windows: integer counter with resets, a quarter-step gauge
  // (exact sums), a two-decimal gauge (inexact sums: see the floating-point note in tier-read.ts).
  const longCounter: Pt[] = [];
  const longGauge: Pt[] = [];
  const longDecimal: Pt[] = [];
  {
    let c = 0;
    for (let ts = LONG.start, i = 0; ts < LONG.end; ts += MIN, i++) {
      c = i % 97 === 50 ? 3 : c + ((i * 13) % 7);
      longCounter.push([ts + ((i * 7) % 5), c]);
      longGauge.push([ts, ((i * 37) % 40) / 4 - 3]);
      longDecimal.push([ts, Math.round(((i * 7919) % 10_000) - 5000) / 100]);
    }
  }

  interface Stored {
    name: string;
    labels: Record<string, string>;
    meta: SeriesMeta | null;
    points: Pt[];
  }
  const stored: Stored[] = [
    ...Object.values(req).map((x) => ({ name: 'req', labels: x.labels, meta: null, points: x.points })),
    { name: 'http_requests_total', ...inc.cumA, meta: counter('cumulative') },
    { name: 'http_requests_total', ...inc.deltaA, meta: counter('delta') },
    { name: 'http_requests_total', ...inc.cumB, meta: counter('cumulative') },
    { name: 'temp', ...inc.temp, meta: gauge },
    { name: 'legacy_total', ...inc.legacy, meta: null },
    { name: 'sparse_total', ...inc.sparse, meta: counter('cumulative') },
    { name: 'queue_length', ...inc.queue, meta: { kind: 'updowncounter', temporality: 'cumulative', monotonic: false, unit: '{item}', description: 'Items queued' } },
    { name: 'long', labels: { k: 'counter' }, meta: counter('cumulative'), points: longCounter },
    { name: 'long', labels: { k: 'gauge' }, meta: gauge, points: longGauge },
    { name: 'long_decimal', labels: {}, meta: gauge, points: longDecimal },
  ];

  async function insertSeries(orgId: string, s: Stored): Promise<number> {
    const canon = canonicalLabels(s.labels);
    if (s.meta === null) {
      const hash = createHash('sha256').update(s.name === 'req' ? `${s.name}\u0000${canon}` : canon).digest();
      const { rows } = await knex.raw<{ rows: { id: string }[] }>('insert into series (org_id, name, labels, labels_hash) values (?, ?, ?::jsonb, ?) returning id', [orgId, s.name, canon, hash]);
      return Number(rows[0].id);
    }
    const hash = createHash('sha256').update(seriesIdentity(canon, s.meta)).digest();
    const { rows } = await knex.raw<{ rows: { id: string }[] }>(
      `insert into series (org_id, name, labels, labels_hash, kind, temporality, monotonic, unit, description)
       values (?, ?, ?::jsonb, ?, ?, ?, ?, ?, ?) returning id`,
      [orgId, s.name, canon, hash, s.meta.kind, s.meta.temporality, s.meta.monotonic, s.meta.unit, s.meta.description],
    );
    return Number(rows[0].id);
  }

  async function insertPoints(orgId: string, seriesId: number, points: Pt[]): Promise<void> {
    if (points.length === 0) return;
    // As the writer does: a window the compaction job dropped is made again first.
    await new PartitionsRepository(knex, TELEMETRY_TABLES, [], POINT_WINDOWS).ensure('points', points.map(([ts]) => ts), { exact: true });
    await knex.raw('insert into points (org_id, series_id, ts, value) select ?, ?, u.ts, u.v from unnest(?::timestamptz[], ?::float8[]) as u(ts, v)', [
      orgId,
      seriesId,
      points.map(([ts]) => iso(ts)),
      points.map(([, v]) => v),
    ]);
  }

  /** One chunk row per 2-hour window, written as the compaction job writes them (codec, its aggregates, its halves' unless withSub is false). */
  async function insertChunks(orgId: string, seriesId: number, points: Pt[], withSub = true): Promise<void> {
    const windows = new Map<number, Pt[]>();
    for (const p of points) {
      const w = Math.floor(p[0] / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS;
      windows.set(w, [...(windows.get(w) ?? []), p]);
    }
    for (const [w, pts] of windows) {
      const ts = pts.map(([x]) => x);
      const values = pts.map(([, v]) => v);
      const a = chunkAggregates(ts, values);
      const sub = withSub ? encodeChunkSub(w, CHUNK_WINDOW_MS, ts, values) : null;
      if (withSub) expect(sub, 'the points are in order, inside their window').to.be.instanceOf(Buffer);
      await knex.raw(
        `insert into point_chunks (org_id, series_id, ts, first_ts, last_ts, count, min, max, sum, first_value, last_value, increase, data, sub)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [orgId, seriesId, iso(w), iso(a.firstTs), iso(a.lastTs), a.count, a.min, a.max, a.sum, a.firstValue, a.lastValue, a.increase, encodeChunk(ts, values), sub],
      );
    }
  }

  async function place(orgId: string, mode: Mode, s: Stored): Promise<void> {
    const id = await insertSeries(orgId, s);
    const sorted = [...s.points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const split = s.name.startsWith('long') ? LONG_SPLIT : SPLIT;
    const chunked =
      mode === 'fresh' ? [] : mode === 'compacted' || mode === 'legacy' ? sorted : mode === 'split' ? sorted.filter(([ts]) => ts < split) : sorted.filter((_, i) => i % 2 === 0);
    const rest = sorted.filter((p) => !chunked.includes(p));
    await insertChunks(orgId, id, chunked, mode !== 'legacy');
    await insertPoints(orgId, id, rest);
  }

  /** A late point of the long counter, inside the second half of the window [B − 1 h, B + 1 h), between two of its points. */
  const LATE: Pt = [B + 20 * MIN + 30 * SEC, 1e6];

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000' });
    knex = t.app.db.knex;
    reads = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
    // Every read of the suite tries the fresh-first statement first: its answer where the range holds
    // no chunk (mode fresh), the full statement's otherwise, and the two must agree in every mode.
    repo = new QueryRepository(knex, reads, { compactAfterMs: Number.POSITIVE_INFINITY });
    chunksFirst = new QueryRepository(knex, reads, { compactAfterMs: Number.NEGATIVE_INFINITY });
    unpredicted = new QueryRepository(knex, reads);
    const parts = new PartitionsRepository(knex, TELEMETRY_TABLES, [], POINT_WINDOWS);
    const days: number[] = [];
    for (let d = LONG.start - DAY_MS; d <= Date.now() + DAY_MS; d += DAY_MS) days.push(d);
    for (const table of TELEMETRY_TABLES) await parts.ensure(table, days);
    readKey = {};
    for (const mode of [...MODES, 'whole', 'wholeNoSub'] as const) {
      orgs[mode] = await createOrg(t.app.services);
      readKey[mode] = (await createApiKey(t.app.services, orgs[mode].slug, ['read'])).secret;
      for (const s of stored) await place(orgs[mode].id, mode === 'whole' ? 'compacted' : mode === 'wholeNoSub' ? 'legacy' : mode, s);
    }
    // The data of every chunk of `whole` (and `wholeNoSub`, without halves) destroyed: only reads answered from stored aggregates can succeed.
    await knex.raw(`update point_chunks set data = '\\xff00'::bytea where org_id = any(?)`, [[orgs.whole.id, orgs.wholeNoSub.id]]);
    // Heads stored (as the compaction job stores them) in some modes; the others' reads pack them from the columns.
    await knex.raw(`update point_chunks c set head = ${chunkHeadSql('c')} where org_id = any(?)`, [[orgs.compacted.id, orgs.split.id, orgs.whole.id]]);
    const heads = await knex.raw<{ rows: { org_id: string; n: number; with_head: number }[] }>(
      'select org_id, count(*)::int as n, count(head)::int as with_head from point_chunks where org_id = any(?) group by org_id',
      [[orgs.compacted.id, orgs.split.id, orgs.interleaved.id, orgs.legacy.id]],
    );
    for (const r of heads.rows) expect(r.with_head, r.org_id).to.equal([orgs.compacted.id, orgs.split.id].includes(r.org_id) ? r.n : 0);
    // The long counter compacted with a late point not merged yet (fresh, inside a chunk's second half), and all fresh.
    const longCounterStored = stored.find((x) => x.name === 'long' && x.labels.k === 'counter')!;
    for (const [org, mode] of [['lateCompacted', 'compacted'], ['lateFresh', 'fresh']] as const) {
      orgs[org] = await createOrg(t.app.services);
      await place(orgs[org].id, mode, longCounterStored);
    }
    for (const org of ['lateCompacted', 'lateFresh'] as const) {
      const [{ id }] = (await knex.raw<{ rows: { id: string }[] }>(`select id::text as id from series where org_id = ? and name = 'long'`, [orgs[org].id])).rows;
      await insertPoints(orgs[org].id, Number(id), [LATE]);
    }
    await knex.raw('analyze points');
    await knex.raw('analyze point_chunks');
    const counts = await knex.raw<{ rows: { org_id: string; points: number; chunks: number }[] }>(
      `select o.id as org_id, (select count(*)::int from points p where p.org_id = o.id) as points, (select count(*)::int from point_chunks c where c.org_id = o.id) as chunks
         from organizations o where o.id = any(?)`,
      [MODES.map((m) => orgs[m].id)],
    );
    const byOrg = Object.fromEntries(counts.rows.map((r) => [r.org_id, r]));
    // The placement is what the modes say: nothing compacted, nothing fresh, both.
    expect(byOrg[orgs.fresh.id].chunks).to.equal(0);
    expect(byOrg[orgs.compacted.id].points).to.equal(0);
    for (const m of ['split', 'interleaved'] as const) expect(byOrg[orgs[m].id].points * byOrg[orgs[m].id].chunks, m).to.be.greaterThan(0);
  });

  after(async () => {
    await reads?.destroy();
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  const LIMITS: MetricReadLimits = { maxSeries: 1000, maxPoints: 1_000_000, statementTimeoutMs: 10_000 };
  type Read = Omit<MetricRead, 'matchers' | 'buckets'> & { filter?: [string, '=' | '!=' | '=~' | '!~', string][] };
  const read = (mode: keyof typeof orgs, r: Read, limits = LIMITS, via = repo): Promise<RawAnswerSeries[]> =>
    readMetric(
      via,
      orgs[mode].id,
      {
        ...r,
        matchers: (r.filter ?? []).map(([label, op, value]) => ({ label, op, value, source: `${label}${op}${value}` })),
        buckets: Math.ceil((r.endMs - r.startMs) / r.stepMs),
      },
      limits,
    );

  /** Every mode answers `r` exactly as the fresh tier does; returns the fresh answer. */
  async function same(r: Read): Promise<RawAnswerSeries[]> {
    const fresh = await read('fresh', r);
    for (const mode of MODES.slice(1)) expect(await read(mode, r), `${mode}: ${JSON.stringify(r)}`).to.deep.equal(fresh);
    for (const mode of MODES) {
      expect(await read(mode, r, LIMITS, chunksFirst), `${mode} (chunks first): ${JSON.stringify(r)}`).to.deep.equal(fresh);
      expect(await read(mode, r, LIMITS, unpredicted), `${mode} (full statement): ${JSON.stringify(r)}`).to.deep.equal(fresh);
    }
    return fresh;
  }

  const close = (actual: [number, number | null][], expected: [string, number][], what: string) => {
    expect(actual.map(([b]) => iso(b)), `${what}: buckets`).to.deep.equal(expected.map(([b]) => b));
    actual.forEach(([, v], i) => expect(v, `${what} @ ${expected[i][0]}`).to.be.closeTo(expected[i][1], 1e-9 * Math.max(1, Math.abs(expected[i][1]))));
  };
  const find = (series: RawAnswerSeries[], labels: Record<string, string>, temporality?: string | null) =>
    series.find((s) => canonicalLabels(s.labels) === canonicalLabels(labels) && (temporality === undefined || (s.descriptor?.temporality ?? null) === temporality));

  describe("telemetry-query's reads", () => {
    it('every aggregation, per series and grouped by one or two labels, several steps and an unaligned start: identical in every mode and equal to the reference', async () => {
      for (const agg of AGGS) {
        for (const step of [30 * SEC, MIN, 5 * MIN, 10 * MIN]) {
          for (const start of [W.start, B + 17 * SEC]) {
            const per = await same({ name: 'req', agg, by: [], startMs: start, endMs: W.end, stepMs: step });
            expect(per.map((s) => s.labels.host), `${agg} ${step}`).to.deep.equal(['c', 'a', 'b', 'd']);
            for (const x of Object.values(req)) close(find(per, x.labels)!.points, expectedPoints(x.points, start, W.end, step, agg), `${agg} ${step} ${x.labels.host}`);
            const byEnv = await same({ name: 'req', agg, by: ['env'], startMs: start, endMs: W.end, stepMs: step });
            expect(byEnv.map((s) => s.labels)).to.deep.equal([{ env: 'dev' }, { env: 'prod' }, {}]);
            close(byEnv[1].points, expectedPoints([...req.s1.points, ...req.s2.points], start, W.end, step, agg), `${agg} ${step} prod`);
            await same({ name: 'req', agg, by: ['env', 'region'], startMs: start, endMs: W.end, stepMs: step });
          }
        }
      }
    });

    it('filters (=, !=, =~, !~) select the same series in every mode', async () => {
      const filters: Read['filter'][] = [[['env', '=', 'prod']], [['env', '!=', 'prod']], [['region', '=~', 'e.*']], [['region', '!~', 'e.*']], [['env', '=', '']], [['host', '=~', 'a|b'], ['env', '!=', 'dev']]];
      for (const filter of filters) {
        for (const agg of ['avg', 'p90'] as const) {
          const res = await same({ name: 'req', agg, by: [], startMs: W.start, endMs: W.end, stepMs: MIN, filter });
          expect(res.length, JSON.stringify(filter)).to.be.greaterThan(0);
        }
      }
      expect(await same({ name: 'req', agg: 'sum', by: ['env'], startMs: W.start, endMs: W.end, stepMs: 10 * MIN, filter: [['env', '=', 'prod']] })).to.have.length(1);
    });

    it('the series and answer-size limits refuse the same reads with the same message', async () => {
      const r: Read = { name: 'req', agg: 'avg', by: [], startMs: W.start, endMs: W.end, stepMs: MIN };
      for (const [maxSeries, maxPoints, message] of [
        [3, 1000, 'more than 3 series'],
        [4, 39, '4 series × 10 buckets = 40 points'],
      ] as const) {
        for (const mode of MODES) {
          for (const via of [repo, chunksFirst]) {
            const err = await read(mode, r, { ...LIMITS, maxSeries, maxPoints }, via).then(
              () => null,
              (e: unknown) => e,
            );
            expect(err, mode).to.be.instanceOf(DomainError);
            expect((err as Error).message, mode).to.contain(message);
          }
        }
      }
      for (const mode of MODES) expect(await read(mode, r, { ...LIMITS, maxSeries: 4, maxPoints: 40 }), mode).to.have.length(4);
    });
  });

  describe("telemetry-increase's reads", () => {
    const refs: Record<string, StoredSeries[]> = {
      http_requests_total: [inc.cumA, inc.deltaA, inc.cumB],
      temp: [inc.temp],
      legacy_total: [inc.legacy],
      sparse_total: [inc.sparse],
    };

    it('increase and rate: every series, several steps, starts on, after and just past the lookback base; identical in every mode and equal to the reference', async () => {
      for (const step of [5 * SEC, 30 * SEC, MIN, 2 * MIN, 3 * MIN, 10 * MIN]) {
        for (const start of [W.start, at(7), at(60), at(330), at(331)]) {
          if (start + step > W.end) continue;
          for (const agg of ['increase', 'rate'] as const) {
            for (const [name, list] of Object.entries(refs)) {
              const res = await same({ name, agg, by: [], startMs: start, endMs: W.end, stepMs: step });
              for (const s of list) {
                const expected = asPoints(refIncrease(s.points, s.temporality, start, W.end, step), agg, step);
                const got = find(res, s.labels, s.temporality);
                if (expected.length === 0) expect(got, `${name} ${agg} ${step} ${start}`).to.equal(undefined);
                else close(got!.points, expected, `${name} ${JSON.stringify(s.labels)} ${s.temporality} ${agg} ${step} ${iso(start)}`);
              }
            }
            const grouped = await same({ name: 'http_requests_total', agg, by: ['job'], startMs: start, endMs: W.end, stepMs: step });
            close(grouped[0].points, asPoints(sumMaps(refs.http_requests_total.map((s) => refIncrease(s.points, s.temporality, start, W.end, step))), agg, step), `by job ${agg} ${step}`);
            await same({ name: 'http_requests_total', agg, by: ['instance'], startMs: start, endMs: W.end, stepMs: step });
          }
        }
      }
    });

    it('the worked examples: resets, a delta stream, an up-down counter, a one-point range', async () => {
      const cum = find(await same({ name: 'http_requests_total', agg: 'increase', by: [], startMs: W.start, endMs: W.end, stepMs: MIN, filter: [['instance', '=', 'a']] }), inc.cumA.labels, 'cumulative')!;
      expect(cum.points).to.deep.equal([0, 1, 2, 3, 6, 7, 8, 9].map((m, i) => [B + m * MIN, [40, 25, 37, 1, 11, 7, 3, 19][i]]));
      const [q] = await same({ name: 'queue_length', agg: 'increase', by: [], startMs: W.start, endMs: W.end, stepMs: MIN });
      expect(q.points).to.deep.equal([
        [B, -5],
        [B + MIN, 1],
      ]);
      const [r] = await same({ name: 'queue_length', agg: 'rate', by: [], startMs: W.start, endMs: W.end, stepMs: 2 * MIN });
      expect(r.points).to.deep.equal([[B, -4 / 120]]);
      const one = await same({ name: 'http_requests_total', agg: 'increase', by: [], startMs: at(170), endMs: at(200), stepMs: 10 * SEC, filter: [['instance', '=', 'a']] });
      expect(one.map((s) => [s.descriptor?.temporality, s.points])).to.deep.equal([['cumulative', [[at(180), 1]]]]);
      expect(await same({ name: 'sparse_total', agg: 'increase', by: [], startMs: at(390), endMs: at(410), stepMs: 10 * SEC })).to.deep.equal([]);
      // The other aggregations of these series too.
      for (const agg of AGGS) for (const name of Object.keys(refs)) await same({ name, agg, by: [], startMs: W.start, endMs: W.end, stepMs: 2 * MIN });
    });
  });

  describe('series spanning several chunk windows', () => {
    const ALL: Aggregation[] = [...AGGS, 'increase', 'rate'];

    it('every aggregation over 5 hours, buckets aligned to the windows (whole chunks) or not, identical in every mode and equal to the reference', async () => {
      for (const step of [10 * MIN, HOUR, 2 * HOUR]) {
        for (const start of [LONG.start, LONG.start + 7 * MIN + 13 * SEC]) {
          for (const agg of ALL) {
            const res = await same({ name: 'long', agg, by: [], startMs: start, endMs: LONG.end, stepMs: step });
            const grouped = await same({ name: 'long', agg, by: ['nope'], startMs: start, endMs: LONG.end, stepMs: step });
            expect(grouped).to.have.length(1);
            if (agg === 'increase' || agg === 'rate') {
              close(find(res, { k: 'counter' })!.points, asPoints(refIncrease(longCounter, 'cumulative', start, LONG.end, step), agg, step), `counter ${agg} ${step}`);
            } else {
              close(find(res, { k: 'counter' })!.points, expectedPoints(longCounter, start, LONG.end, step, agg), `counter ${agg} ${step}`);
              close(find(res, { k: 'gauge' })!.points, expectedPoints(longGauge, start, LONG.end, step, agg), `gauge ${agg} ${step}`);
            }
          }
        }
      }
    });

    it('a range longer than SNAPSHOT_READ_MS (one statement reading both tiers) answers every aggregation as the same buckets of a short range', async () => {
      for (const step of [HOUR, 2 * HOUR]) {
        // Starts a whole number of steps before the data: the same buckets, more of them empty.
        const longStart = LONG.start - Math.ceil(SNAPSHOT_READ_MS / step) * step;
        for (const agg of ALL) {
          for (const by of [[], ['k']]) {
            const short = await same({ name: 'long', agg, by, startMs: LONG.start, endMs: LONG.end, stepMs: step });
            expect(short.length, `${agg} ${step}`).to.be.greaterThan(0);
            expect(await same({ name: 'long', agg, by, startMs: longStart, endMs: LONG.end, stepMs: step }), `${agg} ${step} by ${by.join()}`).to.deep.equal(short);
          }
        }
      }
    });

    it('two-decimal values: counts, extremes and percentiles identical; sums within the last bits where a stored sum is one term', async () => {
      for (const step of [HOUR, 2 * HOUR]) {
        for (const agg of ALL) {
          const r: Read = { name: 'long_decimal', agg, by: [], startMs: LONG.start, endMs: LONG.end, stepMs: step };
          const fresh = await read('fresh', r);
          close(fresh[0].points, agg === 'increase' || agg === 'rate' ? asPoints(refIncrease(longDecimal, null, LONG.start, LONG.end, step), agg, step) : expectedPoints(longDecimal, LONG.start, LONG.end, step, agg), `${agg} ${step}`);
          for (const mode of MODES.slice(1)) {
            const got = await read(mode, r);
            if (['min', 'max', 'count', 'p50', 'p90', 'p95', 'p99'].includes(agg)) expect(got, `${mode} ${agg}`).to.deep.equal(fresh);
            else close(got[0].points, fresh[0].points.map(([b, v]) => [iso(b), v!]), `${mode} ${agg} ${step}`);
          }
        }
      }
    });

    it('a bucket covering whole chunks is answered from their stored aggregates, without reading their data', async () => {
      // `whole` is `compacted` with every chunk's data destroyed. Buckets of 2 h aligned to the windows cover whole chunks
      // (the first has no point in its lookback, so increase needs no earlier chunk).
      for (const agg of ['avg', 'min', 'max', 'sum', 'count', 'increase', 'rate'] as const) {
        const r: Read = { name: 'long', agg, by: [], startMs: LONG.start, endMs: LONG.end - HOUR, stepMs: 2 * HOUR };
        expect(await read('whole', r), agg).to.deep.equal(await read('compacted', r));
        expect(await read('whole', { ...r, by: ['k'] }), agg).to.deep.equal(await read('compacted', { ...r, by: ['k'] }));
        expect(await read('whole', r, LIMITS, chunksFirst), `${agg} (chunks first)`).to.deep.equal(await read('compacted', r));
      }
      // A percentile needs the values: the destroyed data fails it (so the reads above did not decode).
      const err = await read('whole', { name: 'long', agg: 'p50', by: [], startMs: LONG.start, endMs: LONG.end - HOUR, stepMs: 2 * HOUR }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(Error);
    });

    it('buckets covering whole halves (1 h, aligned) are answered from the halves\' aggregates, without data; chunks without halves are decoded', async () => {
      const fail = (p: Promise<unknown>) =>
        p.then(
          () => null,
          (e: unknown) => e,
        );
      for (const agg of ['avg', 'min', 'max', 'sum', 'count', 'increase', 'rate'] as const) {
        const r: Read = { name: 'long', agg, by: [], startMs: LONG.start, endMs: LONG.end - HOUR, stepMs: HOUR };
        const want = await read('fresh', r);
        expect(want.length, agg).to.equal(2);
        expect(await read('whole', r), agg).to.deep.equal(want);
        expect(await read('whole', { ...r, by: ['k'] }), agg).to.deep.equal(await read('fresh', { ...r, by: ['k'] }));
        // Without `sub`, 1-hour buckets need the points: the destroyed data fails the read; 2-hour ones do not.
        expect(await fail(read('wholeNoSub', r)), agg).to.be.instanceOf(Error);
        expect(await read('wholeNoSub', { ...r, stepMs: 2 * HOUR }), agg).to.deep.equal(await read('fresh', { ...r, stepMs: 2 * HOUR }));
        // A half not inside one bucket (an unaligned start) needs the points too.
        expect(await fail(read('whole', { ...r, startMs: LONG.start + 30 * MIN })), agg).to.be.instanceOf(Error);
      }
      expect(await fail(read('whole', { name: 'long', agg: 'p50', by: [], startMs: LONG.start, endMs: LONG.end - HOUR, stepMs: HOUR }))).to.be.instanceOf(Error);
      // The decode bound counts no point of a chunk read by its halves (and every point of one without them).
      const avg: Read = { name: 'long', agg: 'avg', by: [], startMs: LONG.start, endMs: LONG.end - HOUR, stepMs: HOUR };
      expect(await read('compacted', avg, { ...LIMITS, maxDecodedPoints: 0 })).to.deep.equal(await read('fresh', avg));
      expect(((await fail(read('legacy', avg, { ...LIMITS, maxDecodedPoints: 0 }))) as { code?: string }).code).to.equal('limit_exceeded');
    });

    it('increase and rate with a late point (fresh, not merged yet) inside a chunk\'s half: that half is decoded, the answer is the fresh one', async () => {
      for (const agg of ['increase', 'rate', 'avg', 'sum'] as const) {
        for (const step of [HOUR, 2 * HOUR, 30 * MIN]) {
          const r: Read = { name: 'long', agg, by: [], startMs: LONG.start, endMs: LONG.end, stepMs: step };
          const want = await read('lateFresh', r);
          expect(want, `${agg} ${step}`).to.have.length(1);
          for (const via of [repo, chunksFirst, unpredicted]) expect(await read('lateCompacted', r, LIMITS, via), `${agg} ${step}`).to.deep.equal(want);
        }
      }
      // The late point counts: a reset and back (1e6 between two small counter values).
      const r: Read = { name: 'long', agg: 'increase', by: [], startMs: LONG.start, endMs: LONG.end, stepMs: HOUR };
      const withLate = (await read('lateFresh', r))[0].points;
      const without = find(await read('fresh', r), { k: 'counter' })!.points;
      expect(withLate.map(([b]) => b)).to.deep.equal(without.map(([b]) => b));
      expect(withLate.filter((_, i) => withLate[i][1] !== without[i][1]).map(([b]) => b)).to.deep.equal([B]);
    });
  });

  describe('the decode bound', () => {
    it('a read that would decode more compacted points than allowed is refused (422 limit) before any data is fetched; whole chunks cost nothing', async () => {
      const r: Read = { name: 'long', agg: 'p50', by: [], startMs: LONG.start, endMs: LONG.end, stepMs: HOUR };
      // The points a p50 decodes: every chunk of the range's series (a percentile never reads a chunk whole).
      const { rows } = await t.app.db.knex.raw<{ rows: { n: number }[] }>(
        `select coalesce(sum(c.count), 0)::int as n from point_chunks c join series s on s.org_id = c.org_id and s.id = c.series_id
          where c.org_id = ? and s.name = 'long' and c.last_ts >= ? and c.first_ts < ?`,
        [orgs.compacted.id, new Date(LONG.start), new Date(LONG.end)],
      );
      const n = rows[0].n;
      expect(n, 'the test has compacted points').to.be.greaterThan(10);
      // At the bound the read is answered as before; one below it, refused with the count.
      expect(await read('compacted', r, { ...LIMITS, maxDecodedPoints: n })).to.deep.equal(await read('fresh', r));
      const err = (await read('compacted', r, { ...LIMITS, maxDecodedPoints: n - 1 }).then(
        () => null,
        (e: unknown) => e,
      )) as { code?: string; message?: string } | null;
      expect(err?.code).to.equal('limit_exceeded');
      expect(err?.message).to.contain(`would decode ${n} compacted points, more than ${n - 1}`);
      // Buckets covering whole chunks decode nothing: the same bound of 0 still answers avg.
      const whole: Read = { name: 'long', agg: 'avg', by: [], startMs: LONG.start, endMs: LONG.end - HOUR, stepMs: 2 * HOUR };
      expect(await read('compacted', whole, { ...LIMITS, maxDecodedPoints: 0 })).to.deep.equal(await read('fresh', whole));
      // The same through the chunks-first statement (a percentile never takes it: avg at 1 h decodes the halves-less legacy chunks).
      const avg: Read = { name: 'long', agg: 'avg', by: [], startMs: LONG.start, endMs: LONG.end, stepMs: 30 * MIN };
      const decoded = await read('compacted', avg, { ...LIMITS, maxDecodedPoints: n }, chunksFirst);
      expect(decoded).to.deep.equal(await read('fresh', avg));
      const refused = (await read('compacted', avg, { ...LIMITS, maxDecodedPoints: 1 }, chunksFirst).then(
        () => null,
        (e: unknown) => e,
      )) as { code?: string } | null;
      expect(refused?.code).to.equal('limit_exceeded');
      expect(await read('compacted', whole, { ...LIMITS, maxDecodedPoints: 0 }, chunksFirst)).to.deep.equal(await read('fresh', whole));
    });
  });

  describe('other reads of stored points', () => {
    it("the daily report's point count and top series count both tiers", async () => {
      const stats = new StatsRepository(knex);
      for (const day of new Set([LONG.start, B - 400 * SEC, LONG.end - 1].map((ms) => iso(ms).slice(0, 10)))) {
        const expected = stored.reduce((n, s) => n + s.points.filter(([ts]) => iso(ts).slice(0, 10) === day).length, 0);
        const fresh = await stats.daily(orgs.fresh.id, day, 5);
        expect(fresh.ingested.points, day).to.equal(expected);
        expect(fresh.top_series[0].points, day).to.be.greaterThan(0);
        for (const mode of MODES.slice(1)) expect(await stats.daily(orgs[mode].id, day, 5), `${mode} ${day}`).to.deep.equal(fresh);
      }
    });
  });

  describe('through the compaction job', () => {
    /**
     * A database of its own (the job compacts every org's old windows) with the partitions the
     * data needs and one org holding `data` placed in `mode`; `run` gets its pools and the org,
     * and everything is dropped afterwards.
     */
    async function withOwnDatabase(slug: string, data: Stored[], mode: Mode, run: (db: { k2: Knex; r2: Knex; orgId: string }) => Promise<void>): Promise<void> {
      const url2 = await cloneDatabase();
      const k2 = knexFactory({ client: 'pg', connection: url2, pool: { min: 0, max: 3 } });
      const r2 = knexFactory({ client: 'pg', connection: url2, pool: { min: 0, max: 1 } });
      try {
        const parts = new PartitionsRepository(k2, TELEMETRY_TABLES, [], POINT_WINDOWS);
        const days: number[] = [];
        for (let d = LONG.start - DAY_MS; d <= Date.now() + DAY_MS; d += DAY_MS) days.push(d);
        for (const table of TELEMETRY_TABLES) await parts.ensure(table, days);
        const [{ id: orgId }] = await k2('organizations').insert({ slug, name: slug }).returning<{ id: string }[]>('id');
        const saved = knex;
        knex = k2;
        try {
          for (const d of data) await place(orgId, mode, d);
        } finally {
          knex = saved;
        }
        await run({ k2, r2, orgId });
      } finally {
        await r2.destroy();
        await k2.destroy();
        await dropDatabase(url2);
      }
    }

    it('the fresh data of one org, compacted by CompactionService.run, answers every read as before', async () => {
      await withOwnDatabase('tiers-job', stored, 'fresh', async ({ k2, r2, orgId }) => {
        const repo2 = new QueryRepository(k2, r2);
        const reads2: Read[] = [];
        for (const agg of [...AGGS, 'increase', 'rate'] as Aggregation[]) {
          for (const [name, start, end, step] of [
            ['req', W.start, W.end, MIN],
            ['http_requests_total', W.start, W.end, MIN],
            ['queue_length', W.start, W.end, MIN],
            ['long', LONG.start, LONG.end, HOUR],
            ['long', LONG.start + 7 * MIN, LONG.end, 2 * HOUR],
          ] as const) {
            reads2.push({ name, agg, by: [], startMs: start, endMs: end, stepMs: step }, { name, agg, by: ['env'], startMs: start, endMs: end, stepMs: step });
          }
        }
        const answer = (r: Read) =>
          readMetric(repo2, orgId, { ...r, matchers: [], buckets: Math.ceil((r.endMs - r.startMs) / r.stepMs) }, LIMITS);
        const before = await Promise.all(reads2.map(answer));
        const logger = pino({ level: 'silent' });
        const report = await new CompactionService(new CompactionRepository(k2), { compactAfterMs: 2 * HOUR, batchSeries: 3 }, logger).run(Date.now());
        const total = stored.reduce((n, s) => n + s.points.length, 0);
        expect(report.points_compacted).to.equal(total);
        const [{ n }] = await k2('points').where({ org_id: orgId }).count<{ n: string }[]>({ n: '*' });
        expect(Number(n)).to.equal(0);
        const after = await Promise.all(reads2.map(answer));
        reads2.forEach((r, i) => expect(after[i], JSON.stringify(r)).to.deep.equal(before[i]));
        expect(before.filter((a) => a.length > 0).length).to.be.greaterThan(reads2.length / 2);
      });
    });
    /**
     * The data split across the tiers; the reads connection runs the job right before the first
     * statement of a read that starts with `trigger` (after its first statement), or with `trigger`
     * null right after its first statement. `from`: the reads' range starts there (and ends at
     * LONG.end). Returns the statements the raced read sent, in order.
     */
    async function raceCompaction(from: number, trigger: string | null): Promise<string[]> {
      const sent: string[] = [];
      await withOwnDatabase('tiers-race', stored.filter((x) => x.name === 'long'), 'split', async ({ k2, r2, orgId }) => {
        const [{ n: freshBefore }] = await k2('points').where({ org_id: orgId }).count<{ n: string }[]>({ n: '*' });
        expect(Number(freshBefore)).to.be.greaterThan(0);
        const repo2 = new QueryRepository(k2, r2);
        const reads2: Read[] = [
          { name: 'long', agg: 'count', by: [], startMs: from, endMs: LONG.end, stepMs: HOUR },
          { name: 'long', agg: 'sum', by: ['k'], startMs: from, endMs: LONG.end, stepMs: HOUR },
        ];
        const answer = (r: Read) => readMetric(repo2, orgId, { ...r, matchers: [], buckets: Math.ceil((r.endMs - r.startMs) / r.stepMs) }, LIMITS);
        const before = await Promise.all(reads2.map(answer));
        expect(before[0].length).to.be.greaterThan(0);
        // The next statement after a read's first one waits for the job to have committed.
        const pool = r2.client as { acquireConnection(): Promise<{ query(sql: SentStatement, values?: unknown[]): Promise<unknown> }> };
        const acquire = pool.acquireConnection.bind(pool);
        let compacted = 0;
        let armed = true;
        let recording = true;
        pool.acquireConnection = async () => {
          const conn = await acquire();
          const query = conn.query.bind(conn);
          let sawFirst = false;
          conn.query = async (stmt: SentStatement, values?: unknown[]) => {
            // A statement with parameters comes prepared (named): its text is what the read sent.
            const { sql } = asStatement(stmt);
            const compact = async () => {
              armed = false;
              const report = await new CompactionService(new CompactionRepository(k2), { compactAfterMs: 2 * HOUR, batchSeries: 3 }, pino({ level: 'silent' })).run(Date.now());
              compacted = report.points_compacted;
            };
            if (sawFirst && armed && trigger !== null && sql.startsWith(trigger)) await compact();
            if (recording && !sql.startsWith('set ')) sent.push(sql.trim().split(/\s+/).slice(0, 3).join(' '));
            const res = await query(stmt, values);
            if (sql.startsWith('with s as materialized')) sawFirst = true;
            if (sawFirst && armed && trigger === null) await compact();
            return res;
          };
          return conn;
        };
        const during = await answer(reads2[0]);
        recording = false;
        expect(compacted).to.equal(Number(freshBefore));
        const [{ n: freshAfter }] = await k2('points').where({ org_id: orgId }).count<{ n: string }[]>({ n: '*' });
        expect(Number(freshAfter)).to.equal(0);
        expect(during).to.deep.equal(before[0]);
        expect(await answer(reads2[1])).to.deep.equal(before[1]);
      });
      return sent;
    }
    it('a compaction batch committing between the chunk statement and the fresh one does not lose the points it moved', async () => {
      expect(LONG.end - LONG.start).to.be.at.most(SNAPSHOT_READ_MS);
      const sent = await raceCompaction(LONG.start, "select 'f'");
      // The chunk versions the two statements saw differ (the batch wrote chunks in the range): the read ran again as of one
      // snapshot, whose first statement found no fresh point left in the range (the batch took them all): nothing more to read.
      expect(sent).to.deep.equal(['with s as', "select 'f' as", 'begin isolation level', 'with s as', 'commit']);
    });
    it('increase/rate over chunks is one statement: a late point written right after it is not in its answer, and the next read decodes the chunk with it', async () => {
      // Compacted: every chunk of the long counter is whole in a 2-hour bucket, read by its stored
      // increase. A late point inside the first chunk's span, with a value below the chunk's last
      // (a reset to the reader), lands right after the read's statement; the read answers as of that
      // statement, without it. (a) No fresh point in the range; (b) a fresh point already in the
      // range (inside the second chunk): the statement reads it too (one statement, both tiers).
      await withOwnDatabase('tiers-late-race', stored.filter((x) => x.name === 'long' && x.labels.k === 'counter'), 'compacted', async ({ k2, r2, orgId }) => {
        const repo2 = new QueryRepository(k2, r2);
        const [{ id: seriesId }] = await k2('series').where({ org_id: orgId, name: 'long' }).select<{ id: string }[]>('id');
        const [{ n: fresh }] = await k2('points').where({ org_id: orgId }).count<{ n: string }[]>({ n: '*' });
        expect(Number(fresh)).to.equal(0);
        const late = { org_id: orgId, series_id: seriesId, ts: new Date(LONG.start + 30 * MIN + 30 * SEC), value: 0 };
        for (const withFresh of [false, true]) {
          for (const agg of ['increase', 'rate'] as const) {
            if (withFresh) await k2('points').insert({ org_id: orgId, series_id: seriesId, ts: new Date(LONG.start + 2 * HOUR + 30 * MIN + 30 * SEC), value: 5e5 });
            const r: Read = { name: 'long', agg, by: [], startMs: LONG.start, endMs: LONG.start + 4 * HOUR, stepMs: 2 * HOUR };
            const answer = () => readMetric(repo2, orgId, { ...r, matchers: [], buckets: 2 }, LIMITS);
            const before = await answer();
            expect(before.length).to.equal(1);
            const pool = r2.client as { acquireConnection(): Promise<{ query(sql: SentStatement, values?: unknown[]): Promise<unknown> }> };
            const acquire = pool.acquireConnection.bind(pool);
            let written = 0;
            const sent: string[] = [];
            pool.acquireConnection = async () => {
              const conn = await acquire();
              const query = conn.query.bind(conn);
              conn.query = async (stmt: SentStatement, values?: unknown[]) => {
                // A statement with parameters comes prepared (named): its text is what the read sent.
                const { sql } = asStatement(stmt);
                if (!sql.startsWith('set ')) sent.push(sql.trim().split(/\s+/).slice(0, 3).join(' '));
                const res = await query(stmt, values);
                if (written === 0 && sql.startsWith('with s as')) {
                  await k2('points').insert(late);
                  written++;
                }
                return res;
              };
              return conn;
            };
            const during = await answer();
            pool.acquireConnection = acquire;
            expect(written, agg).to.equal(1);
            expect(sent, `${agg} ${withFresh}`).to.deep.equal(['with s as']);
            expect(during, agg).to.deep.equal(before);
            // Once written, the late point is read (the chunk is decoded with it): the answer changes.
            const after = await answer();
            expect(after, agg).to.not.deep.equal(before);
            await k2('points').where({ org_id: orgId }).delete();
          }
        }
      });
    });
    it('a read whose transaction cannot be rolled back ends its connection; the next read gets another one', async () => {
      await withOwnDatabase('tiers-rollback', stored.filter((x) => x.name === 'long' && x.labels.k === 'counter'), 'compacted', async ({ k2, r2, orgId }) => {
        const repo2 = new QueryRepository(k2, r2);
        // A fresh point in the range: a short sum reads it by a second statement; a chunk row rewritten before that one
        // (new versions) makes the read run both again in one transaction.
        const [{ id: seriesId }] = await k2('series').where({ org_id: orgId, name: 'long' }).select<{ id: string }[]>('id');
        await k2('points').insert({ org_id: orgId, series_id: seriesId, ts: new Date(LONG.start + 2 * HOUR + 30 * MIN + 30 * SEC), value: 5e5 });
        const r: Read = { name: 'long', agg: 'sum', by: [], startMs: LONG.start, endMs: LONG.start + 4 * HOUR, stepMs: 2 * HOUR };
        const answer = () => readMetric(repo2, orgId, { ...r, matchers: [], buckets: 2 }, LIMITS);
        const before = await answer();
        const pool = r2.client as { acquireConnection(): Promise<{ processID: number; query(sql: SentStatement, values?: unknown[]): Promise<unknown> }> };
        const acquire = pool.acquireConnection.bind(pool);
        const pids: number[] = [];
        pool.acquireConnection = async () => {
          const conn = await acquire();
          pids.push(conn.processID);
          const query = conn.query.bind(conn);
          let sawFresh = false;
          const sent: string[] = [];
          conn.query = async (stmt: SentStatement, values?: unknown[]) => {
            // A statement with parameters comes prepared (named): its text is what the read sent.
            const { sql } = asStatement(stmt);
            if (!sql.startsWith('set ')) sent.push(sql.trim().split(/\s+/).slice(0, 3).join(' '));
            if (sql.startsWith("select 'f'") && !sawFresh) {
              sawFresh = true;
              await k2.raw('update point_chunks set count = count where org_id = ?', [orgId]);
            }
            if (sql.startsWith('with s as') && sawFresh) {
              expect(sent).to.deep.equal(['with s as', "select 'f' as", 'begin isolation level', 'with s as']);
              throw new Error('statement failed');
            }
            if (sql === 'rollback') throw new Error('rollback failed');
            return query(stmt, values);
          };
          return conn;
        };
        try {
          await answer();
          expect.fail('the read should fail');
        } catch (err) {
          expect((err as Error).message).to.equal('statement failed');
        }
        pool.acquireConnection = async () => {
          const conn = await acquire();
          pids.push(conn.processID);
          return conn;
        };
        expect(await answer()).to.deep.equal(before);
        expect(pids).to.have.length(2);
        expect(pids[1]).to.not.equal(pids[0]);
        pool.acquireConnection = acquire;
      });
    });
    it('a long read over both tiers is one statement (chunks and fresh points as of one snapshot): a batch committing right after it changes nothing', async () => {
      const sent = await raceCompaction(LONG.end - SNAPSHOT_READ_MS - 2 * HOUR, null);
      expect(sent).to.deep.equal(['with s as']);
    });

    /** The statements of `fn` on the pool `r2` (set aside), as their first three words. */
    function statementsOf(r2: Knex): () => string[] {
      const all: Statement[] = [];
      recordStatements(r2, all);
      let seen = 0;
      return () => {
        const mine = all.slice(seen).filter((x) => !x.sql.startsWith('set '));
        seen = all.length;
        return mine.map((x) => x.sql.trim().split(/\s+/).slice(0, 3).join(' '));
      };
    }
    const ONE = ['with s as'];
    const TWO = ['with s as', "select 'f' as"];
    /** The long series' reads of every aggregation, per series and grouped: 5 hours, and longer than SNAPSHOT_READ_MS ending at `end`. */
    const longReads = (start: number, end: number, step: number): Read[] =>
      ([...AGGS, 'increase', 'rate'] as Aggregation[]).flatMap((agg) =>
        [[], ['k']].flatMap((by) => [
          { name: 'long', agg, by, startMs: start, endMs: end, stepMs: step },
          { name: 'long', agg, by, startMs: end - Math.ceil((SNAPSHOT_READ_MS + HOUR) / step) * step, endMs: end, stepMs: step },
        ]),
      );

    it('a read of compacted data only (no fresh point in its range) runs one statement: no second one, no transaction', async () => {
      await withOwnDatabase('tiers-one-statement', stored.filter((x) => x.name === 'long'), 'fresh', async ({ k2, r2, orgId }) => {
        const repo2 = new QueryRepository(k2, r2);
        const sent = statementsOf(r2);
        const reads2 = [...longReads(LONG.start, LONG.end, HOUR), ...longReads(LONG.start + 7 * MIN + 13 * SEC, LONG.end - HOUR, 10 * MIN)];
        const answer = (r: Read) => readMetric(repo2, orgId, { ...r, matchers: [], buckets: Math.ceil((r.endMs - r.startMs) / r.stepMs) }, LIMITS);
        const before: RawAnswerSeries[][] = [];
        for (const r of reads2) before.push(await answer(r));
        await new CompactionService(new CompactionRepository(k2), { compactAfterMs: 2 * HOUR, batchSeries: 3 }, pino({ level: 'silent' })).run(Date.now());
        const [{ n }] = await k2('points').where({ org_id: orgId }).count<{ n: string }[]>({ n: '*' });
        expect(Number(n)).to.equal(0);
        sent();
        for (const [i, r] of reads2.entries()) {
          const got = await answer(r);
          expect(sent(), JSON.stringify(r)).to.deep.equal(ONE);
          expect(got, JSON.stringify(r)).to.deep.equal(before[i]);
          expect(got.length, JSON.stringify(r)).to.be.greaterThan(0);
        }
      });
    });

    it('points written to `points` after compaction are read: in the range, in the increase lookback only, of a series without chunks', async () => {
      const longData = stored.filter((x) => x.name === 'long');
      // Fresh after compaction: a late point inside a chunk of the counter; a series with fresh points only, early in the data.
      const extra: Stored[] = [
        { name: 'long', labels: { k: 'counter' }, meta: counter('cumulative'), points: [LATE] },
        { name: 'long', labels: { k: 'new' }, meta: counter('cumulative'), points: [[LONG.start + 10 * MIN, 7], [LONG.start + 70 * MIN, 9], [LONG.start + 71 * MIN, 20]] },
      ];
      await withOwnDatabase('tiers-fresh-after', longData, 'fresh', async ({ k2, r2, orgId }) => {
        await new CompactionService(new CompactionRepository(k2), { compactAfterMs: 2 * HOUR, batchSeries: 3 }, pino({ level: 'silent' })).run(Date.now());
        const [{ n }] = await k2('points').where({ org_id: orgId }).count<{ n: string }[]>({ n: '*' });
        expect(Number(n)).to.equal(0);
        // The same data and the extra points all fresh, in another org (the job has run): the answers to match.
        const [{ id: truthOrg }] = await k2('organizations').insert({ slug: 'tiers-truth', name: 'truth' }).returning<{ id: string }[]>('id');
        const saved = knex;
        knex = k2;
        try {
          const merged = longData.map((d) => ({ ...d, points: [...d.points, ...(extra.find((e) => e.labels.k === d.labels.k)?.points ?? [])] }));
          for (const d of [...merged, extra[1]]) await place(truthOrg, 'fresh', d);
          const [{ id: counterId }] = await k2('series').where({ org_id: orgId, name: 'long' }).whereRaw(`labels->>'k' = 'counter'`).select<{ id: string }[]>('id');
          await insertPoints(orgId, Number(counterId), extra[0].points);
          await place(orgId, 'fresh', extra[1]);
        } finally {
          knex = saved;
        }
        const repo2 = new QueryRepository(k2, r2);
        const sent = statementsOf(r2);
        const answer = (org: string, r: Read) => readMetric(repo2, org, { ...r, matchers: [], buckets: Math.ceil((r.endMs - r.startMs) / r.stepMs) }, LIMITS);
        const reads2 = [
          // Every extra point in the range.
          ...longReads(LONG.start, LONG.end, HOUR),
          // The late point only: the new series' points are before the start.
          ...longReads(LONG.start + 2 * HOUR, LONG.end, 30 * MIN),
          // The new series' points only (the late point is after the end): no chunk of that series, chunks of the others.
          ...longReads(LONG.start, LONG.start + 2 * HOUR, 30 * MIN),
          // The late point in the lookback of increase/rate only (10 minutes before the start), none in the range.
          ...longReads(LATE[0] + 30 * SEC, LONG.end, 10 * MIN),
        ];
        const freshPoints = extra.flatMap((e) => e.points.map(([ts]) => ts));
        let fresh = 0;
        for (const r of reads2) {
          const temporal = r.agg === 'increase' || r.agg === 'rate';
          const lo = temporal ? r.startMs - Math.max(r.stepMs, 5 * MIN) : r.startMs;
          const inRange = freshPoints.some((ts) => ts >= lo && ts < r.endMs);
          const want = await answer(truthOrg, r);
          sent();
          const got = await answer(orgId, r);
          const what = `${JSON.stringify(r)} ${iso(r.startMs)}`;
          const statements = sent();
          expect(got, what).to.deep.equal(want);
          // One statement, except a short read of the other aggregations with fresh points in its range: two.
          expect(statements, what).to.deep.equal(inRange && !temporal && r.endMs - lo <= SNAPSHOT_READ_MS ? TWO : ONE);
          expect(got.length, what).to.be.greaterThan(0);
          if (inRange) fresh++;
        }
        // Most reads see fresh points; the lookback-only ones (increase/rate from LATE + 30 s) among them.
        expect(fresh).to.be.greaterThan(reads2.length / 2);
      });
    });
  });

  describe('over HTTP', () => {
    it('GET …/metrics/query answers the same in every mode', async () => {
      const answers: unknown[] = [];
      for (const mode of MODES) {
        for (const params of [
          { name: 'req', agg: 'p95', by: 'env', step: '5m', start: W.start, end: W.end },
          { name: 'http_requests_total', agg: 'rate', step: '1m', start: W.start, end: W.end },
          { name: 'long', agg: 'avg', step: '1h', start: LONG.start, end: LONG.end },
        ]) {
          const res = await t.api.get<{ series: unknown[] }>(`/organizations/${orgs[mode].slug}/metrics/query?${new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]))}`, readKey[mode]);
          expect(res.status, res.text).to.equal(200);
          expect(res.body.series.length).to.be.greaterThan(0);
          answers.push([mode, params.name, res.body]);
        }
      }
      const per = (mode: Mode) => answers.filter((a) => (a as [Mode])[0] === mode).map((a) => (a as unknown[]).slice(1));
      for (const mode of MODES.slice(1)) expect(per(mode), mode).to.deep.equal(per('fresh'));
    });
  });
});
