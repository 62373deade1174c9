import { expect } from 'chai';
import fc from 'fast-check';
import { chunkAggregates, encodeChunk, encodeChunkSub } from '../../src/features/telemetry/chunk-codec.js';
import type { Aggregation, MetricReadSeries } from '../../src/features/telemetry/query-repository.js';
import { CHUNK_WINDOW_MS } from '../../src/features/telemetry/telemetry-tables.js';
import { aggregateTiers, IndexList, type TierChunks, type TierFresh, type TierReadSpec, type TierSeries } from '../../src/features/telemetry/tier-read.js';

const PG_EPOCH_US = 946_684_800_000_000n;
/** 2026-11-30T00:00Z: a window start. */
const W = Date.UTC(2026, 10, 30);

/** One chunk record as the read's statement sends it (tier-read.ts TierChunks): kind 0 data, -1 none, 1 sub. */
function record(ts: number[], vs: number[], kind: number, windowStart: number): Buffer {
  const a = chunkAggregates(ts, vs);
  const sub = kind === 1 ? encodeChunkSub(windowStart, CHUNK_WINDOW_MS, ts, vs) : null;
  const k = kind === 1 && sub === null ? 0 : kind;
  const payload = k === 0 ? encodeChunk(ts, vs) : k === 1 ? sub! : Buffer.alloc(0);
  const b = Buffer.alloc(76 + payload.length);
  b.writeBigInt64BE(BigInt(a.firstTs) * 1000n - PG_EPOCH_US, 0);
  b.writeBigInt64BE(BigInt(a.lastTs) * 1000n - PG_EPOCH_US, 8);
  [a.count, a.min, a.max, a.sum, a.firstValue, a.lastValue, a.increase].forEach((x, i) => b.writeDoubleBE(x, 16 + 8 * i));
  b.writeInt32BE(k === 0 ? payload.length : k === 1 ? -2 - payload.length : -1, 72);
  payload.copy(b, 76);
  return b;
}

const value = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: -500, max: 500 }).map((n) => n / 4) },
  { weight: 4, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, -0, 0, Infinity) },
);

/** A point's offset in its window: anywhere, on a minute (a bucket's edge at most steps), or one of a few (repeated times). */
const offset = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: CHUNK_WINDOW_MS - 1 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 119 }).map((k) => k * 60_000) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }).map((k) => 30_000 + k * 1_000) },
);

/** A window's points: times inside it (sorted, or as generated), values. */
const chunkPoints = (w: number) =>
  fc
    .record({ offs: fc.array(offset, { minLength: 1, maxLength: 40 }), sorted: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), vals: fc.array(value, { minLength: 40, maxLength: 40 }) })
    .map(({ offs, sorted, vals }) => {
      const ts = (sorted ? [...offs].sort((a, b) => a - b) : offs).map((o) => w + o);
      return { ts, vs: ts.map((_, i) => vals[i]) };
    });

const seriesArb = fc.record({
  kind: fc.constantFrom('counter' as const, 'gauge' as const, 'updowncounter' as const),
  temporality: fc.constantFrom('cumulative' as const, 'delta' as const, null),
  group: fc.constantFrom('a', 'b'),
  windows: fc.subarray([0, 1, 2, 3]),
  kinds: fc.array(fc.constantFrom(0, 0, 1, -1), { minLength: 4, maxLength: 4 }),
  shuffle: fc.boolean(),
  // A window's points in two records (as two chunks of one window would be): spans that touch or overlap.
  split: fc.option(fc.integer({ min: 1, max: 39 }), { nil: null }),
  points: fc.tuple(chunkPoints(W), chunkPoints(W + CHUNK_WINDOW_MS), chunkPoints(W + 2 * CHUNK_WINDOW_MS), chunkPoints(W + 3 * CHUNK_WINDOW_MS)),
  // The fresh tier: after the chunks (as usual) or anywhere in the range.
  freshAfter: fc.boolean(),
  // The chunks' values as generated (mostly XOR-coded), as integers, or as a counter's running
  // total with resets, or two-decimal (decimal-coded: the chunks the streamed path folds without decoding them).
  decimal: fc.constantFrom('as-is' as const, 'integers' as const, 'decimals' as const, 'counter' as const),
  fresh: fc.array(fc.tuple(fc.integer({ min: 0, max: 4 * CHUNK_WINDOW_MS - 1 }), value), { maxLength: 12 }),
});

const readArb = fc.record({
  agg: fc.constantFrom<Aggregation>('avg', 'min', 'max', 'sum', 'count', 'increase', 'rate'),
  step: fc.constantFrom(7_000, 60_000, 300_000, 3_600_000, CHUNK_WINDOW_MS, 3 * CHUNK_WINDOW_MS),
  from: fc.integer({ min: -2, max: 30 }),
  grouped: fc.boolean(),
  series: fc.array(seriesArb, { minLength: 1, maxLength: 4 }),
});

type Read = { spec: TierReadSpec; series: TierSeries[]; chunks: TierChunks[]; fresh: TierFresh[] };

function build(r: typeof readArb extends fc.Arbitrary<infer T> ? T : never): Read {
  const startMs = W + r.from * 1_800_000 + (r.step === 7_000 ? 3_000 : 0);
  const endMs = Math.min(startMs + 400 * r.step, W + 4 * CHUNK_WINDOW_MS + r.step);
  const temporal = r.agg === 'increase' || r.agg === 'rate';
  const spec: TierReadSpec = { agg: r.agg, startMs, endMs, stepMs: r.step, lookbackStartMs: startMs - Math.max(r.step, 300_000), by: r.grouped ? ['g'] : [] };
  const series: TierSeries[] = [];
  const chunks: TierChunks[] = [];
  const fresh: TierFresh[] = [];
  r.series.forEach((s, k) => {
    const id = String(k + 1);
    series.push({
      id,
      kind: s.kind,
      temporality: s.temporality,
      labels: r.grouped ? null : { n: id },
      descriptor: r.grouped ? null : { kind: s.kind, temporality: s.temporality, unit: '' },
      gk: r.grouped ? [s.group] : null,
    });
    let total = 1000;
    const recs = [...s.windows].sort().flatMap((w) => {
      const { ts } = s.points[w];
      const vs = s.points[w].vs.map((v) =>
        s.decimal === 'as-is' ? v : !Number.isFinite(v) ? 7 : s.decimal === 'integers' ? Math.round(v) + 0 : s.decimal === 'decimals' ? Math.round(v * 137) / 100 + 0 : (total = v > 200 ? Math.abs(Math.round(v)) % 50 : total + Math.abs(Math.round(v)) % 30),
      );
      const at = s.split === null ? 0 : s.split % ts.length;
      if (at === 0) return [record(ts, vs, s.kinds[w], W + w * CHUNK_WINDOW_MS)];
      return [record(ts.slice(0, at), vs.slice(0, at), s.kinds[w], W + w * CHUNK_WINDOW_MS), record(ts.slice(at), vs.slice(at), 0, W + w * CHUNK_WINDOW_MS)];
    });
    if (s.shuffle) recs.reverse();
    if (recs.length > 0) chunks.push({ seriesId: id, records: Buffer.concat(recs) });
    const last = Math.max(-Infinity, ...s.windows.map((w) => Math.max(...s.points[w].ts)));
    const pts = s.fresh
      .map(([o, v]): [number, number] => [s.freshAfter && Number.isFinite(last) ? last + 1 + (o % 7_200_000) : W + o, v])
      .filter(([t]) => t < endMs && t >= spec.lookbackStartMs)
      .sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    if (pts.length === 0) return;
    if (temporal) {
      fresh.push({ seriesId: id, raw: true, t: pts.map((p) => p[0]), v: pts.map((p) => p[1]) });
    } else {
      // Per-bucket partials, as the fresh statement sends them.
      const by = new Map<number, { b: number; first: number; n: number; sum: number; min: number; max: number }>();
      for (const [t, v] of pts) {
        if (t < startMs) continue;
        const b = startMs + Math.floor((t - startMs) / r.step) * r.step;
        const x = by.get(b);
        if (!x) by.set(b, { b, first: t, n: 1, sum: v, min: v, max: v });
        else {
          x.n++;
          x.sum += v;
          x.min = Math.min(x.min, v);
          x.max = Math.max(x.max, v);
        }
      }
      if (by.size > 0) fresh.push({ seriesId: id, raw: false, buckets: [...by.values()] });
    }
  });
  return { spec, series, chunks, fresh };
}

/** The answer, or the error it throws. */
function run(read: Read, streaming: boolean): MetricReadSeries[] | string {
  try {
    return aggregateTiers({ ...read.spec, streaming }, read.series, read.chunks, read.fresh);
  } catch (err) {
    return `throws: ${(err as Error).message}`;
  }
}

function expectIdentical(got: MetricReadSeries[] | string, want: MetricReadSeries[] | string): void {
  if (typeof want === 'string' || typeof got === 'string') {
    expect(got).to.deep.equal(want);
    return;
  }
  expect(got.map((s) => [s.labels, s.descriptor, s.t])).to.deep.equal(want.map((s) => [s.labels, s.descriptor, s.t]));
  got.forEach((s, i) =>
    s.v.forEach((v, j) => {
      if (!Object.is(v, want[i].v[j])) expect.fail(`series ${i} bucket ${s.t[j]}: got ${v}, want ${want[i].v[j]}`);
    }),
  );
}

describe('tier read', () => {
  it('parts in time order go straight into the buckets: bit for bit what collecting and sorting them gives, for every aggregation', () => {
    fc.assert(
      fc.property(readArb, (r) => {
        const read = build(r);
        expectIdentical(run(read, true), run(read, false));
      }),
      { numRuns: 1500 },
    );
  });

  it('spec.streaming false takes the general path, the default the streamed one (told apart by the streamed path\'s check of a chunk\'s points against its stored span)', () => {
    const ts = [W + 1_000, W + 61_000, W + 121_000];
    const rec = record(ts, [1, 2, 3], 0, W);
    // The stored first time after the first point: only the streamed path reads it as a span.
    rec.writeBigInt64BE(BigInt(W + 2_000) * 1000n - PG_EPOCH_US, 0);
    for (const agg of ['avg', 'rate'] as const) {
      const spec: TierReadSpec = { agg, startMs: W, endMs: W + 180_000, stepMs: 60_000, lookbackStartMs: W - 300_000, by: [] };
      const series: TierSeries[] = [{ id: '1', kind: 'counter', temporality: 'cumulative', labels: {}, descriptor: null, gk: null }];
      const chunks = [{ seriesId: '1', records: rec }];
      expect(() => aggregateTiers(spec, series, chunks, [])).to.throw(/points outside its first and last time/);
      expect(() => aggregateTiers({ ...spec, streaming: true }, series, chunks, [])).to.throw(/points outside its first and last time/);
      expect(aggregateTiers({ ...spec, streaming: false }, series, chunks, [])[0].t).to.deep.equal(agg === 'avg' ? [W, W + 60_000, W + 120_000] : [W + 60_000, W + 120_000]);
    }
  });

  it('a read over chunks shaped like bench:prometheus (10 s points, 60 s buckets): the same answers by both paths', () => {
    const points = (w: number, counter: boolean) => {
      const ts = Array.from({ length: 720 }, (_, i) => w + i * 10_000 + 5_000 + (i % 7) - 3);
      let v = 1000;
      return { ts, vs: ts.map((_, i) => (counter ? (v += i % 5) : Math.round(Math.sin(i) * 2000) / 100)) };
    };
    for (const agg of ['avg', 'rate', 'increase', 'max'] as const) {
      const counter = agg === 'rate' || agg === 'increase';
      const series: TierSeries[] = [];
      const chunks: TierChunks[] = [];
      for (let k = 0; k < 5; k++) {
        const id = String(k);
        series.push({ id, kind: counter ? 'counter' : 'gauge', temporality: counter ? 'cumulative' : null, labels: { k: id }, descriptor: { kind: 'gauge', temporality: null, unit: '' }, gk: null });
        const a = points(W, counter);
        const b = points(W + CHUNK_WINDOW_MS, counter);
        chunks.push({ seriesId: id, records: Buffer.concat([record(b.ts, b.vs, 0, W + CHUNK_WINDOW_MS), record(a.ts, a.vs, 0, W)]) });
      }
      const read: Read = { spec: { agg, startMs: W, endMs: W + 2 * CHUNK_WINDOW_MS, stepMs: 60_000, lookbackStartMs: W - 300_000, by: [] }, series, chunks, fresh: [] };
      const got = run(read, true);
      expectIdentical(got, run(read, false));
      expect((got as MetricReadSeries[])[0].t.length).to.equal(240);
    }
  });

  it('a read whose buckets outgrow the reused storage (here 6 answers × 400,000 buckets) answers exactly, and so does a small read after it', () => {
    const size = 400_000;
    const spec: TierReadSpec = { agg: 'sum', startMs: 0, endMs: size * 1000, stepMs: 1000, lookbackStartMs: 0, by: [] };
    const series: TierSeries[] = [];
    const fresh: TierFresh[] = [];
    for (let k = 0; k < 6; k++) {
      const id = String(k);
      series.push({ id, kind: 'gauge', temporality: null, labels: { k: id }, descriptor: { kind: 'gauge', temporality: null, unit: '' }, gk: null });
      // Series k holds a point in buckets k, k + 100,000, … (one each): every other bucket must stay empty.
      const b = [0, 1, 2, 3].map((j) => (k + j * 100_000) * 1000);
      fresh.push({ seriesId: id, raw: false, buckets: b.map((x) => ({ b: x, first: x + 500, n: 1, sum: x / 1000 + 0.5 + k, min: 0, max: 0 })) });
    }
    const big = aggregateTiers(spec, series, [], fresh);
    expect(big.map((a) => a.labels.k)).to.deep.equal(['0', '1', '2', '3', '4', '5']);
    big.forEach((a, k) => {
      expect(a.t).to.deep.equal([0, 1, 2, 3].map((j) => (k + j * 100_000) * 1000));
      expect(a.v).to.deep.equal([0, 1, 2, 3].map((j) => k + j * 100_000 + 0.5 + k));
    });
    const small = aggregateTiers({ ...spec, endMs: 10_000 }, series.slice(0, 1), [], [{ seriesId: '0', raw: false, buckets: [{ b: 1000, first: 1500, n: 2, sum: 3, min: 1, max: 2 }] }]);
    expect(small).to.have.length(1);
    expect(small[0].t).to.deep.equal([1000]);
    expect(small[0].v).to.deep.equal([3]);
  });
});

describe('answer arrays', () => {
  it('an answer of more non-empty buckets than the arrays\' template holds (20,000), then a small one: every bucket, in order', () => {
    const n = 20_000;
    const spec: TierReadSpec = { agg: 'avg', startMs: 0, endMs: n * 1000, stepMs: 1000, lookbackStartMs: 0, by: [] };
    const series: TierSeries[] = [{ id: '1', kind: 'gauge', temporality: null, labels: {}, descriptor: { kind: 'gauge', temporality: null, unit: '' }, gk: null }];
    const buckets = Array.from({ length: n }, (_, i) => ({ b: i * 1000, first: i * 1000 + 1, n: 2, sum: 2 * i + 1, min: 0, max: 0 }));
    const [big] = aggregateTiers(spec, series, [], [{ seriesId: '1', raw: false, buckets }]);
    expect(big.t).to.deep.equal(buckets.map((x) => x.b));
    expect(big.v).to.deep.equal(buckets.map((_, i) => i + 0.5));
    const [small] = aggregateTiers({ ...spec, endMs: 3000 }, series, [], [{ seriesId: '1', raw: false, buckets: buckets.slice(0, 3) }]);
    expect(small.t).to.deep.equal([0, 1000, 2000]);
    expect(small.v).to.deep.equal([0.5, 1.5, 2.5]);
  });
});

describe('IndexList (an answer\'s buckets in first-seen order)', () => {
  it('keeps every index in push order, within its array and past it (grown, the first ones kept)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.array(fc.integer({ min: 0, max: 1e6 }), { maxLength: 200 }), (capacity, pushed) => {
        const list = new IndexList(new Float64Array(capacity));
        for (const i of pushed) list.push(i);
        expect(list.len).to.equal(pushed.length);
        expect(Array.from(list.at.subarray(0, list.len))).to.deep.equal(pushed);
      }),
    );
  });
});
