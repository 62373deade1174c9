import { expect } from 'chai';
import fc from 'fast-check';
import {
  AGG_SIZE,
  chunkAggregates,
  cmpFloat8,
  decodeChunkSub,
  decodeChunkSubInto,
  encodeChunkSub,
  type ChunkAggregates,
} from '../../src/features/telemetry/chunk-codec.js';

const W = 7_200_000;
const H = W / 2;

/** Every aggregate of `got` the same float64 as `want`'s (Object.is: -0 is not 0; NaN equals NaN). */
function expectSame(got: ChunkAggregates | null, want: ChunkAggregates, what: string): void {
  expect(got, `${what} is missing`).to.not.equal(null);
  for (const key of Object.keys(want) as (keyof ChunkAggregates)[]) {
    expect(Object.is(got![key], want[key]), `${what}.${key}: got ${got![key]}, want ${want[key]}`).to.equal(true);
  }
}

/** Points as compaction stores them: (ts, value) order, ties by value as PostgreSQL orders float8. */
function sorted(ts: number[], values: number[]): { ts: number[]; values: number[] } {
  const idx = ts.map((_, i) => i).sort((a, b) => ts[a] - ts[b] || cmpFloat8(values[a], values[b]) || a - b);
  return { ts: idx.map((i) => ts[i]), values: idx.map((i) => values[i]) };
}

/** The halves a sub must give back: chunkAggregates of the points before the middle and of those from it. */
function halves(w: number, ts: number[], values: number[]): [ChunkAggregates | null, ChunkAggregates | null] {
  const n1 = ts.filter((t) => t < w + H).length;
  return [n1 ? chunkAggregates(ts.slice(0, n1), values.slice(0, n1)) : null, n1 < ts.length ? chunkAggregates(ts.slice(n1), values.slice(n1)) : null];
}

function roundTrip(w: number, ts: number[], values: number[]): Buffer {
  const sub = encodeChunkSub(w, W, ts, values);
  expect(sub, 'encodeChunkSub gave no sub').to.not.equal(null);
  const got = decodeChunkSub(sub!, w, W, chunkAggregates(ts, values));
  const want = halves(w, ts, values);
  for (const h of [0, 1] as const) {
    if (want[h] === null) expect(got[h], `half ${h} should be empty`).to.equal(null);
    else expectSame(got[h], want[h]!, `half ${h}`);
  }
  return sub!;
}

const value = fc.oneof(
  { weight: 3, arbitrary: fc.double() },
  { weight: 3, arbitrary: fc.integer({ min: -1000, max: 1000 }).map((k) => k / 100) },
  { weight: 2, arbitrary: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }) },
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072e-308, Number.MAX_VALUE, 0.1, 0.2),
);
/** Offsets inside the window, crowded near its middle and its edges (equal timestamps included). */
const offset = fc.oneof(
  fc.integer({ min: 0, max: W - 1 }),
  fc.integer({ min: H - 3, max: H + 2 }),
  fc.constantFrom(0, 1, H - 1, H, W - 1),
);
const chunkArb = fc
  .tuple(fc.integer({ min: -1000, max: 100_000 }), fc.array(fc.tuple(offset, value), { minLength: 1, maxLength: 60 }))
  .map(([k, pts]) => {
    const w = k * W;
    return { w, ...sorted(pts.map(([o]) => w + o), pts.map(([, v]) => v)) };
  });

describe('chunk sub (halves’ aggregates)', () => {
  it('round-trips every half bit for bit: any float64 values, equal timestamps, halves of 0, 1 or more points', () => {
    fc.assert(
      fc.property(chunkArb, ({ w, ts, values }) => {
        roundTrip(w, ts, values);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips scrape-like series (counters with resets, two-decimal gauges, constants) compactly', () => {
    const series = fc.tuple(
      fc.integer({ min: 0, max: 400_000 }),
      fc.constantFrom('counter', 'gauge', 'constant'),
      fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 720, maxLength: 720 }),
      fc.integer({ min: 0, max: 5 }),
    );
    fc.assert(
      fc.property(series, ([k, kind, steps, jitter]) => {
        const w = k * W;
        const ts = steps.map((_, i) => w + 5 + i * 10_000 + ((i * 7919) % (2 * jitter + 1)) - jitter);
        let v = kind === 'gauge' ? 42.17 : 1000;
        const values = steps.map((s, i) => {
          if (kind === 'counter') v = i === 300 ? s : v + s; // a reset in the first half
          if (kind === 'gauge' && s % 4 === 0) v = Math.round(v * 100 + s - 500) / 100;
          return v;
        });
        const sub = roundTrip(w, ts, values);
        // Referenced fields cost nothing: a constant's halves are a few bytes of counts, times and tags.
        if (kind === 'constant') expect(sub.length).to.be.at.most(12);
        expect(sub.length).to.be.at.most(1 + 3 + 6 + 3 + 10 * 8);
      }),
      { numRuns: 200 },
    );
  });

  it('a half with one point, and a chunk all in one half (nothing but its count: the other half is the chunk)', () => {
    const w = 10 * W;
    roundTrip(w, [w + 5, w + H, w + H + 10], [-0, NaN, 1e-320]);
    roundTrip(w, [w, w + 1, w + H], [Infinity, -Infinity, 0]);
    const first = roundTrip(w, [w, w + H - 1], [1, 2]);
    const second = roundTrip(w, [w + H, w + W - 1], [1, 2]);
    expect([...first]).to.deep.equal([1, 2]);
    expect([...second]).to.deep.equal([1, 0]);
    const [a, b] = decodeChunkSub(second, w, W, chunkAggregates([w + H, w + W - 1], [1, 2]));
    expect(a).to.equal(null);
    expect(b).to.deep.equal(chunkAggregates([w + H, w + W - 1], [1, 2]));
  });

  it('gives no sub (readers decode the data) for points out of (ts, value) order, outside the window, or not whole milliseconds', () => {
    const w = 3 * W;
    expect(encodeChunkSub(w, W, [w + 10, w + 5], [1, 2])).to.equal(null); // decreasing ts
    expect(encodeChunkSub(w, W, [w + 5, w + 5], [2, 1])).to.equal(null); // equal ts, values descending
    expect(encodeChunkSub(w, W, [w + 5, w + 5], [NaN, 1])).to.equal(null); // NaN sorts last
    expect(encodeChunkSub(w, W, [w - 1, w + 5], [1, 2])).to.equal(null);
    expect(encodeChunkSub(w, W, [w + 5, w + W], [1, 2])).to.equal(null);
    expect(encodeChunkSub(w, W, [w + 0.5], [1])).to.equal(null);
    expect(encodeChunkSub(w + 1, W, [w + 5], [1])).to.equal(null); // not a window start
    expect(encodeChunkSub(w, W, [], [])).to.equal(null);
    expect(encodeChunkSub(w, W, [w + 5, w + 5], [1, 1])).to.not.equal(null);
    expect(() => encodeChunkSub(w, W, [w + 5], [])).to.throw(RangeError, /1 timestamps but 0 values/);
  });

  it('refuses malformed subs instead of answering from them', () => {
    const w = 7 * W;
    const ts = [w + H - 5, w + H - 2, w + H + 3, w + H + 9];
    const values = [0.5, 1e300, NaN, 3];
    const whole = chunkAggregates(ts, values);
    const sub = encodeChunkSub(w, W, ts, values)!;
    const bad = (bytes: number[], why: RegExp) => expect(() => decodeChunkSub(Buffer.from(bytes), w, W, whole), bytes.join(',')).to.throw(Error, why);
    bad([], /truncated/);
    bad([2, ...sub.subarray(1)], /unknown version 2/);
    bad([...sub.subarray(0, sub.length - 1)], /truncated/);
    bad([...sub, 0], /trailing bytes/);
    bad([1, 5], /larger than the chunk/);
    bad([1, 0, 0], /trailing bytes/);
    bad([1, 2, ...Array(9).fill(0xff), 0x7f], /varint too long/);
    // The tag bytes follow version, n1 and the two time offsets (one byte each here).
    const padded = [...sub];
    padded[6] |= 0x01;
    bad(padded, /non-zero tag padding/);
    // A first half ending after the chunk's first point is fine; one ending before it is not.
    bad([1, 2, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0], /outside the chunk/);
    bad([1, 2, 0, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0], /outside the chunk/);
  });

  it('decodes into a shared array at an offset, from a record buffer at an offset', () => {
    const w = 0;
    const ts = [1, 2, H, H + 1];
    const values = [1, 2, 3, 4];
    const sub = encodeChunkSub(w, W, ts, values)!;
    const buf = Buffer.concat([Buffer.from([9, 9, 9]), sub, Buffer.from([9])]);
    const a = chunkAggregates(ts, values);
    const agg = Float64Array.of(0, 0, a.firstTs, a.lastTs, a.count, a.min, a.max, a.sum, a.firstValue, a.lastValue, a.increase);
    const out = new Float64Array(2 * AGG_SIZE);
    decodeChunkSubInto(buf, 3, 3 + sub.length, w, W, agg, 2, out);
    expect([...out]).to.deep.equal([1, 2, 2, 1, 2, 3, 1, 2, 1, H, H + 1, 2, 3, 4, 7, 3, 4, 1]);
  });
});
