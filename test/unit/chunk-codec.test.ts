import { expect } from 'chai';
import fc from 'fast-check';
import {
  chunkAggregates,
  chunkTimestampMode,
  chunkValueMode,
  cmpFloat8,
  decodeChunk,
  decodeChunkInto,
  decodeChunkSub,
  encodeChunk,
  encodeChunkSub,
  foldChunk,
  FOLD_COUNTER,
  FOLD_UPDOWN,
  FOLD_VALUES,
  type ChunkAggregates,
  type ChunkFold,
} from '../../src/features/telemetry/chunk-codec.js';

const dv = new DataView(new ArrayBuffer(8));
const bitsOf = (v: number): string => {
  dv.setFloat64(0, v);
  return dv.getBigUint64(0).toString(16).padStart(16, '0');
};
const fromBits = (hi: number, lo: number): number => {
  dv.setUint32(0, hi);
  dv.setUint32(4, lo);
  return dv.getFloat64(0);
};

/**
 * Bit-exact comparison. NaNs compare as NaN only: V8 itself quiets signalling NaNs and may
 * canonicalise a NaN's payload when it stores it into an array (measured: the same bits read
 * back as 7ff8000000000001 or 7ff8000000000000 from run to run), so a payload cannot be
 * compared through number[]; the 'NaN payloads' example checks the encoded bits instead.
 */
function expectSameBits(actual: readonly number[], expected: readonly number[]): void {
  expect(actual.length).to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (Number.isNaN(expected[i]) && Number.isNaN(actual[i])) continue;
    if (!Object.is(actual[i], expected[i]) || bitsOf(actual[i]) !== bitsOf(expected[i])) {
      expect.fail(`index ${i}: got ${actual[i]} (${bitsOf(actual[i])}), want ${expected[i]} (${bitsOf(expected[i])})`);
    }
  }
}

function roundTrip(ts: number[], values: number[]): Buffer {
  const data = encodeChunk(ts, values);
  const out = decodeChunk(data);
  expect(out.ts).to.deep.equal(ts);
  expectSameBits(out.values, values);
  return data;
}

const MAX = Number.MAX_SAFE_INTEGER;
const tsArb = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }),
  fc.integer({ min: MAX - 1000, max: MAX }),
  fc.integer({ min: -MAX, max: -MAX + 1000 }),
  fc.constantFrom(0, MAX, -MAX, 1, -1),
  fc.maxSafeInteger(),
);
/** Timestamps like a scrape's: start, then 10 s ± jitter, sometimes a gap, a repeat or a step back. */
const scrapeTs = fc
  .tuple(
    fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }),
    fc.array(fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 9995, max: 10005 }) }, fc.integer({ min: -100_000, max: 10_000_000 }), fc.constant(0)), {
      maxLength: 2000,
    }),
  )
  .map(([start, steps]) => {
    const out = [start];
    for (const s of steps) out.push(out[out.length - 1] + s);
    return out;
  });
const nanArb = fc.tuple(fc.integer({ min: 0, max: 0xfffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean()).map(([hi, lo, neg]) =>
  fromBits(((neg ? 0xfff00000 : 0x7ff00000) | hi | (hi === 0 && lo === 0 ? 1 : 0)) >>> 0, lo),
);
const floatArb = fc.oneof(
  fc.double(),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072009e-308, Number.MAX_VALUE),
  nanArb,
  fc.double({ min: -1e-300, max: 1e-300 }),
);
const decimalArb = (k: number) => fc.integer({ min: -(10 ** 9), max: 10 ** 9 }).map((i) => (i === 0 ? 0 : i / 10 ** k));

function pointsOf<T>(tsA: fc.Arbitrary<number[]>, valueArb: fc.Arbitrary<T[]>) {
  return fc.tuple(tsA, valueArb).map(([ts, vs]) => {
    const n = Math.min(ts.length, (vs as unknown[]).length);
    return { ts: ts.slice(0, n), values: (vs as number[]).slice(0, n) };
  });
}

const anyTs = fc.oneof(fc.array(tsArb, { maxLength: 2000 }), scrapeTs);

describe('chunk codec', () => {
  describe('round trip (property)', () => {
    it('any timestamps and any float64 values round-trip bit-exactly', () => {
      fc.assert(
        fc.property(pointsOf(anyTs, fc.array(floatArb, { maxLength: 2000 })), ({ ts, values }) => {
          roundTrip(ts, values);
        }),
        { numRuns: 300 },
      );
    });

    it('decodeChunkInto gives the same points as decodeChunk, into a scratch that grows only when too small', () => {
      const scratch = { ts: new Float64Array(4), values: new Float64Array(4) };
      let grown = 0;
      fc.assert(
        fc.property(pointsOf(anyTs, fc.array(floatArb, { maxLength: 2000 })), ({ ts, values }) => {
          const data = encodeChunk(ts, values);
          const before = scratch.ts;
          // Stale contents from the previous chunk stay past the count: only [0, n) is the answer.
          const n = decodeChunkInto(data, scratch);
          expect(n).to.equal(ts.length);
          if (scratch.ts !== before) {
            grown++;
            expect(before.length).to.be.lessThan(n);
            expect(scratch.values.length).to.equal(scratch.ts.length);
          }
          expectSameBits(Array.from(scratch.ts.subarray(0, n)), ts);
          expectSameBits(Array.from(scratch.values.subarray(0, n)), values);
          const plain = decodeChunk(data);
          expectSameBits(plain.ts, ts);
          expectSameBits(plain.values, values);
        }),
        { numRuns: 200 },
      );
      expect(grown).to.be.greaterThan(0);
    });

    it('integers and decimals round-trip and are stored as decimals', () => {
      const valuesArb = fc.oneof(
        fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), { maxLength: 2000 }),
        fc.array(fc.maxSafeInteger(), { maxLength: 2000 }),
        fc.integer({ min: 0, max: 4 }).chain((k) => fc.array(decimalArb(k), { maxLength: 2000 })),
        // a counter with integer increments, a gauge changing every few samples
        fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 2000 }).map((inc) => {
          let c = 1e6;
          return inc.map((d) => (c += d));
        }),
        fc.array(fc.tuple(fc.nat(5), fc.integer({ min: -500, max: 500 })), { maxLength: 2000 }).map((steps) => {
          let g = 4217;
          return steps.map(([skip, d]) => (skip === 0 ? (g += d) : g) / 100);
        }),
      );
      fc.assert(
        fc.property(pointsOf(anyTs, valuesArb), ({ ts, values }) => {
          const data = roundTrip(ts, values);
          if (ts.length > 0) expect(chunkValueMode(data)).to.match(/^decimal-/);
        }),
        { numRuns: 300 },
      );
    });

    it('a -0 or a NaN anywhere forces XOR mode, and still round-trips', () => {
      fc.assert(
        fc.property(
          pointsOf(anyTs, fc.array(decimalArb(2), { minLength: 1, maxLength: 500 })),
          fc.oneof(fc.constant(-0), fc.constant(NaN), nanArb),
          fc.nat(),
          ({ ts, values }, odd, at) => {
            if (ts.length === 0) return;
            values[at % values.length] = odd;
            const data = roundTrip(ts, values);
            expect(chunkValueMode(data)).to.equal('xor');
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  describe('examples', () => {
    it('empty chunk: version and count only', () => {
      const data = encodeChunk([], []);
      expect([...data]).to.deep.equal([1, 0]);
      expect(decodeChunk(data)).to.deep.equal({ ts: [], values: [] });
    });

    it('one point: header, 54-bit timestamp, 54-bit scaled integer', () => {
      // 4 header bytes (version, count, mode, bucket base) + 108 bits (14 bytes)
      const data = roundTrip([1_700_000_000_000], [42]);
      expect(data.length).to.equal(4 + 14);
      expect(chunkValueMode(data)).to.equal('decimal-delta');
    });

    it('regular 10 s scrape of a constant: no bit per timestamp (grid, width 0), one per value after the first', () => {
      const ts = Array.from({ length: 720 }, (_, i) => 1_700_000_000_000 + i * 10_000);
      const values = ts.map(() => 1);
      const data = roundTrip(ts, values);
      expect(chunkTimestampMode(data)).to.equal('grid');
      // 5 header bytes (count 720 takes two) + grid: width 0, Δ 10 000 (zigzag 20 000: 3 bytes), lo 0 (1 byte);
      // ts: t₀'s 54 bits; values: 54 + 719 bits. (Version 1 took 54 + 26 + 718 ts bits: 197 bytes.)
      expect(data.length).to.equal(5 + 5 + Math.ceil((54 + 54 + 719) / 8));
    });

    it('a counter with a steady integer rate costs the same as a constant (delta-of-delta)', () => {
      const ts = Array.from({ length: 720 }, (_, i) => 1_700_000_000_000 + i * 10_000);
      const values = ts.map((_, i) => 1000 + 7 * i);
      const data = roundTrip(ts, values);
      expect(chunkValueMode(data)).to.equal('decimal-dod');
      // values: 54 + first dod 7 (zigzag 14: 4 bits, base 4 → '10' + 4 bits) + 718 zeros
      expect(data.length).to.equal(5 + 5 + Math.ceil((54 + 54 + 6 + 718) / 8));
    });

    it('two-decimal values are stored scaled by 100', () => {
      const data = roundTrip([0, 10_000, 20_000], [0.25, 0.5, 0.5]);
      expect(chunkValueMode(data)).to.equal('decimal-delta');
      // ts: 54 + (dod 10 000: 26) + 1; values ×100: 54 + (delta 25, zigzag 50: 6 bits, base 6 → 2 + 6) + 1
      expect(data.length).to.equal(4 + Math.ceil((54 + 26 + 1 + 54 + 8 + 1) / 8));
    });

    it('XOR floats: a repeated value costs one bit', () => {
      const data = roundTrip([0, 1, 2, 3], [Math.PI, Math.PI, Math.PI, Math.PI]);
      expect(chunkValueMode(data)).to.equal('xor');
      // 3 header bytes; ts: 54 + dod 1 (zigzag 2: 2 + 4) + dod 0 + dod 0; values: 64 + 3 zero bits
      expect(data.length).to.equal(3 + Math.ceil((54 + 6 + 1 + 1 + 64 + 3) / 8));
    });

    it('NaN payloads are written verbatim', () => {
      const nan = fromBits(0x7ff80000, 0xdeadbeef);
      const data = encodeChunk([0, 0], [1.5, nan]);
      expect(chunkValueMode(data)).to.equal('xor');
      // ts 54 + 1 bits, then 64 bits of 1.5, then the XOR with 1.5 (3ff8… ^ 7ff8… = 4000 0000 dead beef):
      // '11', 1 leading zero (5 bits), 63 meaningful bits (6 bits: 62)
      const dataView = new DataView(data.buffer, data.byteOffset, data.length);
      const bitAt = (i: number) => (data[3 + (i >>> 3)] >>> (7 - (i & 7))) & 1;
      let xor = 0n;
      const start = 55 + 64 + 2 + 5 + 6;
      for (let i = 0; i < 63; i++) xor = (xor << 1n) | BigInt(bitAt(start + i));
      expect(xor.toString(16)).to.equal('40000000deadbeef');
      expect(dataView.byteLength).to.equal(3 + Math.ceil((start + 63) / 8));
      const back = decodeChunk(data).values[1];
      expect(Number.isNaN(back)).to.equal(true);
    });

    it('special floats, huge jumps and the extremes of the safe range', () => {
      roundTrip(
        [MAX, -MAX, MAX, MAX, -MAX, 0, 0, -1],
        [NaN, -0, Infinity, -Infinity, Number.MIN_VALUE, -Number.MAX_VALUE, fromBits(0x7ff00000, 1), fromBits(0xfff80000, 0xdeadbeef)],
      );
      roundTrip([MAX, -MAX, MAX], [MAX, -MAX, MAX]);
      roundTrip([1, 2, 3], [0.1 + 0.2, 0.3, 1e-7]);
    });

    it('rejects what it cannot store faithfully', () => {
      expect(() => encodeChunk([1.5], [1])).to.throw(RangeError, /safe integer/);
      expect(() => encodeChunk([2 ** 53], [1])).to.throw(RangeError, /safe integer/);
      expect(() => encodeChunk([1, 2], [1])).to.throw(RangeError, /2 timestamps but 1 values/);
    });
  });

  describe('malformed data', () => {
    const ts = Array.from({ length: 200 }, (_, i) => 1_700_000_000_000 + i * 10_000 + ((i * 7) % 11) - 5);
    const samples = [
      encodeChunk(ts, ts.map((_, i) => Math.sin(i))),
      encodeChunk(ts, ts.map((_, i) => Math.round(i * 3.7) / 100)),
      encodeChunk(ts, ts.map((_, i) => i * i)),
    ];

    it('every truncation throws an Error', () => {
      const scratch = { ts: new Float64Array(1), values: new Float64Array(1) };
      for (const data of samples) {
        for (let len = 0; len < data.length; len++) {
          expect(() => decodeChunk(data.subarray(0, len)), `length ${len}`).to.throw(Error, /chunk data is corrupt/);
          expect(() => decodeChunkInto(data.subarray(0, len), scratch), `length ${len}`).to.throw(Error, /chunk data is corrupt/);
        }
      }
      // A count the data cannot hold is refused before the scratch is grown for it.
      expect(() => decodeChunkInto(Buffer.from([1, 0xff, 0xff, 0xff, 0xff, 0x07, 0, 0, 0]), scratch)).to.throw(/count/);
      expect(scratch.ts.length).to.be.lessThan(1000);
    });

    it('unknown version, unknown mode, trailing bytes and an impossible count throw', () => {
      const data = Buffer.from(samples[0]);
      expect(() => decodeChunk(Buffer.from([3, ...data.subarray(1)]))).to.throw(/unknown version 3/);
      const badMode = Buffer.from(data);
      badMode[3] = 11;
      expect(() => decodeChunk(badMode)).to.throw(/unknown value mode/);
      const badBase = Buffer.from(samples[1]);
      expect(badBase[3]).to.be.within(1, 10);
      badBase[4] = 21;
      expect(() => decodeChunk(badBase)).to.throw(/unknown bucket base 21/);
      expect(() => decodeChunk(Buffer.concat([data, Buffer.from([0])]))).to.throw(/trailing bytes/);
      expect(() => decodeChunk(Buffer.from([1, 0xff, 0xff, 0xff, 0xff, 0x07, 0, 0, 0]))).to.throw(/count/);
      expect(() => decodeChunk(Buffer.from([1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).to.throw(/count too large/);
    });

    it('random corruption throws an Error or decodes to some points, never hangs', () => {
      fc.assert(
        fc.property(fc.constantFrom(...samples), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (data, flips) => {
          const bad = Buffer.from(data);
          for (const [at, x] of flips) bad[at % bad.length] ^= x;
          try {
            const out = decodeChunk(bad);
            expect(out.ts.length).to.equal(out.values.length);
            expect(out.ts.length).to.be.at.most(bad.length * 8);
          } catch (e) {
            expect(e).to.be.instanceOf(Error);
          }
        }),
        { numRuns: 500 },
      );
    });

    it('random bytes throw or decode, never hang or allocate beyond the data', () => {
      fc.assert(
        fc.property(fc.constantFrom(1, 2), fc.uint8Array({ maxLength: 64 }), (version, bytes) => {
          const data = Buffer.from([version, ...bytes]);
          try {
            const out = decodeChunk(data);
            expect(out.ts.length).to.be.at.most(data.length * 8);
          } catch (e) {
            expect(e).to.be.instanceOf(Error);
          }
        }),
        { numRuns: 1000 },
      );
    });
  });

  describe('timestamps as offsets from a grid (version 2)', () => {
    /** Version 1's timestamp bits after the first, counted as the format comment documents them (a copy, not the encoder's). */
    function v1TimestampBits(ts: number[]): number {
      const widths = [4, 5, 6, 12, 20, 32];
      let bits = 0;
      let prevD = 0;
      for (let i = 1; i < ts.length; i++) {
        const d = ts[i] - ts[i - 1];
        const dSafe = Number.isSafeInteger(d);
        const e = d - prevD;
        if (e === 0 && dSafe) bits += 1;
        else {
          const z = e >= 0 ? 2 * e : -2 * e - 1;
          const b = dSafe && Number.isSafeInteger(e) ? widths.findIndex((w) => z < 2 ** w) : -1;
          bits += b >= 0 ? b + 2 + widths[b] : widths.length + 1 + 54;
        }
        prevD = dSafe ? d : 0;
      }
      return bits;
    }
    const varintLength = (v: number): number => (v < 0x80 ? 1 : 1 + varintLength(Math.floor(v / 0x80)));
    /** Version 1's size for a chunk of zero values (decimal, deltas, base 1: 54 bits, then one bit a point). */
    const v1SizeOfZeros = (ts: number[]): number => 1 + varintLength(ts.length) + 2 + Math.ceil((54 + v1TimestampBits(ts) + 54 + ts.length - 1) / 8);

    /** A small deterministic generator for jitter (fast-check gives the seed). */
    const lcg = (seed: number) => {
      let x = seed >>> 0;
      return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    };

    /** Grid-like timestamps anywhere in the safe range: an interval, jitter, and now and then a gap, a drift, an outlier, a repeat, a step back or a huge jump. */
    const gridTs = fc
      .record({
        start: fc.oneof(
          fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }),
          fc.integer({ min: -MAX, max: -MAX + 100_000 }),
          fc.integer({ min: MAX - 10_000_000, max: MAX }),
        ),
        interval: fc.oneof(fc.constantFrom(10_000, 15_000, 60_000, 1, 0), fc.integer({ min: -100_000, max: 1_000_000 })),
        jitter: fc.constantFrom(0, 1, 5, 50, 1000),
        events: fc.array(fc.tuple(fc.nat(), fc.constantFrom('gap', 'drift', 'outlier', 'repeat', 'back', 'huge')), { maxLength: 8 }),
        n: fc.integer({ min: 1, max: 800 }),
        seed: fc.integer(),
      })
      .map(({ start, interval, jitter, events, n, seed }) => {
        const rand = lcg(seed);
        const at = new Map(events.map(([i, e]) => [i % n, e]));
        const ts: number[] = [];
        let shift = 0;
        for (let i = 0; i < n; i++) {
          let t = start + shift + i * interval + Math.floor(rand() * (2 * jitter + 1)) - jitter;
          const event = at.get(i);
          if (event === 'gap') shift += interval * (1 + Math.floor(rand() * 5));
          else if (event === 'drift') shift += 1 + Math.floor(rand() * (jitter + 3));
          else if (event === 'outlier') t += 1_000_000;
          else if (event === 'repeat' && i > 0) t = ts[i - 1];
          else if (event === 'back' && i > 0) t = ts[i - 1] - 1000;
          else if (event === 'huge') t = rand() < 0.5 ? MAX : -MAX;
          ts.push(Math.max(-MAX, Math.min(MAX, t)));
        }
        return ts;
      });

    it('grid-like and arbitrary timestamps round-trip bit-exactly, never in more bytes than version 1', () => {
      fc.assert(
        fc.property(fc.oneof(gridTs, fc.array(tsArb, { maxLength: 300 })), (ts) => {
          const values = ts.map(() => 0);
          const data = roundTrip(ts, values);
          const v1 = v1SizeOfZeros(ts);
          expect(data.length).to.be.at.most(v1);
          const mode = chunkTimestampMode(data);
          if (mode === 'delta-of-delta') {
            // Where the grid would not be smaller, the bytes are version 1's.
            expect(data[0]).to.equal(1);
            expect(data.length).to.equal(v1);
          } else if (mode === 'grid') {
            expect(data[0]).to.equal(2);
          }
        }),
        { numRuns: 400 },
      );
    });

    it('grid-like timestamps with any values round-trip through both decoders', () => {
      const scratch = { ts: new Float64Array(4), values: new Float64Array(4) };
      fc.assert(
        fc.property(pointsOf(gridTs, fc.array(fc.oneof(floatArb, decimalArb(2)), { maxLength: 800 })), ({ ts, values }) => {
          const data = roundTrip(ts, values);
          const n = decodeChunkInto(data, scratch);
          expectSameBits(Array.from(scratch.ts.subarray(0, n)), ts);
          expectSameBits(Array.from(scratch.values.subarray(0, n)), values);
        }),
        { numRuns: 200 },
      );
    });

    it('10 s ± 5 ms of jitter, with missed scrapes: 4 bits a timestamp, and a gap costs one escape (the grid keeps its place after it)', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }),
          fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 720, maxLength: 720 }),
          fc.array(fc.tuple(fc.integer({ min: 1, max: 719 }), fc.integer({ min: 1, max: 30 })), { maxLength: 5 }),
          (start, jitter, gaps) => {
            const skip = new Map(gaps);
            let slot = 0;
            const ts = jitter.map((e, i) => {
              slot += skip.get(i) ?? 0;
              return start + (i + slot) * 10_000 + e;
            });
            const values = ts.map(() => 0);
            const data = roundTrip(ts, values);
            expect(chunkTimestampMode(data)).to.equal('grid');
            // Header: version, count (2 bytes), mode, base; width, Δ 10 000 (zigzag: 3 bytes), lo ≥ −10 (1 byte).
            // Offsets from t₀'s grid span at most 21 values (±10), but from the lowest one only 11: 4 bits (15 codes + escape).
            // A gap: one escape (4 bits), the timestamp (54) and its code (4): 58 bits more. Values: 54 + 719 bits.
            const bound = 10 + Math.ceil((54 + 719 * 4 + skip.size * 58 + 54 + 719) / 8);
            expect(data.length).to.be.at.most(bound);
            if (skip.size === 0) expect(data.length).to.be.lessThan(v1SizeOfZeros(ts) - 150);
          },
        ),
        { numRuns: 100 },
      );
    });

    it('an escape as the format comment defines it: the timestamp, then its code, from which the grid continues', () => {
      // version 2, count 4, decimal ×1 deltas, base 1; width 2, Δ 10 (zigzag 20), lo −1 (zigzag 1)
      const bits: [number, number][] = [
        [0, 1], [0, 21], [100, 32], // t₀ = 100: G = 99
        [2, 2], // G = 109: 109 + 2 = 111
        [3, 2], [0, 1], [0, 21], [1000, 32], [1, 2], // G = 119: escape, 1000, code 1: G = 999
        [0, 2], // G = 1009: 1009
        [0, 1], [0, 21], [0, 32], [0, 3], // values 0, 0, 0, 0
      ];
      const out = [2, 4, 1, 1, 2, 20, 1];
      let acc = 0;
      let n = 0;
      for (const [v, w] of bits) {
        for (let i = w - 1; i >= 0; i--) {
          acc = (acc << 1) | (Math.floor(v / 2 ** i) & 1);
          if (++n === 8) {
            out.push(acc);
            acc = 0;
            n = 0;
          }
        }
      }
      if (n > 0) out.push(acc << (8 - n));
      expect(decodeChunk(Buffer.from(out))).to.deep.equal({ ts: [100, 111, 1000, 1009], values: [0, 0, 0, 0] });
    });

    it('version 1 bytes written before version 2 existed still decode', () => {
      const vectors: [string, number[], number[]][] = [
        [
          '010c080600066b483c9fefe04e2ed5d6d56b6ab5b54000000000083cdf5bdfc3da6204954e22ccd200',
          [1764460799995, 1764460810002, 1764460819998, 1764460830005, 1764460840001, 1764460849997, 1764460860004, 1764460870000, 1764460879996, 1764460890003, 1764460899999, 1764460909995],
          [42.17, 42.48, 42.51, 42.22, 41.89, 41.82, 42.07, 42.41, 42.54, 42.32, 41.97, 41.8],
        ],
        [
          '0106010300066b483ca00fe04e1cabe18692f8752dfe04e1c000000003d090345ae938c4',
          [1764460800003, 1764460810001, 1764460820004, 1764460880000, 1764460880000, 1764460889998],
          [1000000, 1000017, 1000040, 1000041, 1000041, 1000090],
        ],
        [
          '0106007fffffffffffffffffffffffffffffdffffffffffffffe00000000000007f800000000000062400921fb54442d18c1e600490fdaa22168efff0000000000005000000000000000c1ffff8093445b87315c7fa642b77087aa3e',
          [9007199254740991, -9007199254740991, 9007199254740991, 0, -1, -1],
          [3.141592653589793, -0, Infinity, -Infinity, 1e-310, 0.30000000000000004],
        ],
        [
          '0101010100062f3f95a000000000000002a0',
          [1700000000000],
          [42],
        ],
      ];
      for (const [hex, ts, values] of vectors) {
        const data = Buffer.from(hex, 'hex');
        expect(data[0]).to.equal(1);
        const out = decodeChunk(data);
        expect(out.ts).to.deep.equal(ts);
        expectSameBits(out.values, values);
      }
    });

    it('malformed grid headers throw', () => {
      const data = encodeChunk(
        Array.from({ length: 50 }, (_, i) => 1_700_000_000_000 + i * 10_000 + ((i * 7) % 11)),
        Array.from({ length: 50 }, () => 0),
      );
      expect(chunkTimestampMode(data)).to.equal('grid');
      const badWidth = Buffer.from(data);
      badWidth[4] = 33; // version, count, mode, base, width
      expect(() => decodeChunk(badWidth)).to.throw(/unknown offset width 33/);
      expect(() => decodeChunk(Buffer.from([2, 4, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).to.throw(/grid parameter too large/);
      // Width 0 costs no bit a timestamp: the count is still bounded by the value stream's bit a point.
      const scratch = { ts: new Float64Array(1), values: new Float64Array(1) };
      expect(() => decodeChunkInto(Buffer.from([2, 0xff, 0xff, 0xff, 0x07, 1, 1, 0, 20, 0, ...new Array(20).fill(0)]), scratch)).to.throw(/count larger than the data/);
      expect(scratch.ts.length).to.equal(1);
    });
  });

  describe('chunkAggregates', () => {
    /** The plain definition: sort (ts, then value as PostgreSQL orders float8), then fold. */
    function reference(ts: number[], values: number[]): ChunkAggregates {
      const rank = (v: number) => (Number.isNaN(v) ? Infinity : v);
      const pts = ts.map((t, i) => ({ t, v: values[i], i }));
      pts.sort((a, b) => {
        if (a.t !== b.t) return a.t < b.t ? -1 : 1;
        const na = Number.isNaN(a.v);
        const nb = Number.isNaN(b.v);
        if (na !== nb) return na ? 1 : -1;
        if (!na && rank(a.v) !== rank(b.v)) return rank(a.v) < rank(b.v) ? -1 : 1;
        return a.i - b.i;
      });
      const vs = pts.map((p) => p.v);
      // PostgreSQL's sum(float8) starts from the first value (float8pl, no initial state): -0 stays -0
      let sum = vs[0];
      for (const v of vs.slice(1)) sum += v;
      let increase = 0;
      for (let i = 1; i < vs.length; i++) increase += vs[i] >= vs[i - 1] ? vs[i] - vs[i - 1] : vs[i];
      const nonNaN = vs.filter((v) => !Number.isNaN(v));
      const pgMin = nonNaN.length ? nonNaN.reduce((a, b) => (b < a ? b : a)) : NaN;
      const pgMax = nonNaN.length < vs.length ? NaN : vs.reduce((a, b) => (b > a ? b : a));
      return {
        count: vs.length,
        firstTs: pts[0].t,
        lastTs: pts[pts.length - 1].t,
        min: pgMin,
        max: pgMax,
        sum,
        firstValue: vs[0],
        lastValue: vs[vs.length - 1],
        increase,
      };
    }

    it('matches the reference on any points, in any order', () => {
      const smallTs = fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 300 });
      const vals = fc.array(fc.oneof(fc.double(), fc.integer({ min: -5, max: 5 }), fc.constantFrom(NaN, -0, 0, Infinity)), { maxLength: 300 });
      fc.assert(
        fc.property(pointsOf(fc.oneof(smallTs, fc.array(tsArb, { minLength: 1, maxLength: 300 })), vals), ({ ts, values }) => {
          if (ts.length === 0) return;
          const got = chunkAggregates(ts, values);
          const want = reference(ts, values);
          for (const key of Object.keys(want) as (keyof ChunkAggregates)[]) {
            // min/max of equal values (0 and -0) may be either; compare numerically there
            if ((key === 'min' || key === 'max') && got[key] === 0 && want[key] === 0) continue;
            expect(Object.is(got[key], want[key]), `${key}: got ${got[key]}, want ${want[key]}`).to.equal(true);
          }
        }),
        { numRuns: 500 },
      );
    });

    it('matches the reference on points already in (ts, value) order, and encodeChunkSub given them writes the same halves', () => {
      const W = 7_200_000;
      const vals = fc.array(fc.oneof(fc.double(), fc.integer({ min: -5, max: 5 }), fc.constantFrom(NaN, -0, 0, Infinity)), { maxLength: 300 });
      fc.assert(
        fc.property(pointsOf(fc.array(fc.integer({ min: 0, max: W - 1 }), { minLength: 1, maxLength: 300 }), vals), ({ ts, values }) => {
          if (ts.length === 0) return;
          const idx = ts.map((_, i) => i).sort((a, b) => ts[a] - ts[b] || cmpFloat8(values[a], values[b]) || a - b);
          const st = idx.map((i) => ts[i]);
          const sv = idx.map((i) => values[i]);
          const got = chunkAggregates(st, sv);
          const want = reference(st, sv);
          for (const key of Object.keys(want) as (keyof ChunkAggregates)[]) {
            if ((key === 'min' || key === 'max') && got[key] === 0 && want[key] === 0) continue;
            expect(Object.is(got[key], want[key]), `${key}: got ${got[key]}, want ${want[key]}`).to.equal(true);
          }
          const sub = encodeChunkSub(0, W, st, sv);
          expect(sub).to.not.equal(null);
          expect(encodeChunkSub(0, W, st, sv, got)).to.deep.equal(sub);
          const n1 = st.filter((t) => t < W / 2).length;
          if (n1 === 0 || n1 === st.length) return;
          // The halves read back are chunkAggregates of their points, bit for bit.
          const [a, b] = decodeChunkSub(sub!, 0, W, got);
          for (const [half, pts] of [
            [a, [st.slice(0, n1), sv.slice(0, n1)]],
            [b, [st.slice(n1), sv.slice(n1)]],
          ] as const) {
            const ref = chunkAggregates(pts[0], pts[1]);
            for (const key of Object.keys(ref) as (keyof ChunkAggregates)[]) expect(Object.is(half![key], ref[key]), key).to.equal(true);
          }
        }),
        { numRuns: 300 },
      );
    });

    it('a counter reset: the value after the drop counts in full', () => {
      const a = chunkAggregates([30, 10, 20, 40], [2, 5, 8, 6]);
      // order by ts: 5, 8, 2, 6 → 3 + 2 (reset) + 4
      expect(a).to.deep.equal({ count: 4, firstTs: 10, lastTs: 40, min: 2, max: 8, sum: 21, firstValue: 5, lastValue: 6, increase: 9 });
      expect(() => chunkAggregates([], [])).to.throw(RangeError);
    });
  });

  describe('foldChunk', () => {
    /** foldChunk's contract, point by point over decodeChunk's points. */
    function referenceFold(ts: readonly number[], vs: readonly number[], f: ChunkFold): void {
      for (let j = 0; j < ts.length; j++) {
        const t = ts[j];
        const v = vs[j];
        if (!(t >= f.lowMs && t < f.endMs)) continue;
        if (t < f.startMs) {
          f.prev = v;
          f.hasPrev = true;
          continue;
        }
        const i = Math.floor((t - f.startMs) / f.stepMs);
        let d: number | null = null;
        if (f.mode === FOLD_VALUES) d = v;
        else if (f.hasPrev) d = f.mode === FOLD_UPDOWN || cmpFloat8(v, f.prev) >= 0 ? v - f.prev : v;
        if (d !== null) {
          if (f.n[i] === 0) {
            f.seen.push(i);
            f.start[i] = f.startMs + i * f.stepMs;
            f.n[i] = 1;
            f.sum[i] = d;
          } else {
            f.n[i] += 1;
            f.sum[i] += d;
          }
        }
        f.prev = v;
        f.hasPrev = true;
      }
    }

    const valuesArb = fc.oneof(
      fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), { maxLength: 300 }),
      fc.integer({ min: 0, max: 4 }).chain((k) => fc.array(decimalArb(k), { maxLength: 300 })),
      // a counter with resets
      fc.array(fc.integer({ min: -50, max: 1000 }), { maxLength: 300 }).map((inc) => {
        let c = 1e6;
        return inc.map((d) => (c = d < 0 ? -d : c + d));
      }),
      fc.array(floatArb, { maxLength: 300 }),
    );
    const tsA = fc.oneof(scrapeTs.map((t) => t.slice(0, 300)), fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), { maxLength: 300 }), fc.array(fc.integer({ min: -50, max: 50 }), { maxLength: 300 }).map((t) => [...t].sort((a, b) => a - b)));
    const foldArb = fc.record({
      mode: fc.constantFrom(FOLD_VALUES, FOLD_COUNTER, FOLD_UPDOWN),
      step: fc.constantFrom(1, 7, 1000, 60_000, 3_600_000),
      // The range's start and the points' lower bound, from the first point, in steps.
      from: fc.integer({ min: -3, max: 30 }),
      low: fc.integer({ min: 0, max: 3 }),
      buckets: fc.integer({ min: 1, max: 400 }),
      // Buckets with a count and sum already (an earlier chunk's), and the previous point.
      before: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 9 }), floatArb), { maxLength: 5 }),
      prev: fc.option(floatArb, { nil: null }),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 2 }),
    });

    it('adds the decoded points to the buckets, the same float64 operations in the same order; or adds nothing and says decode; or throws as the decoder does', () => {
      const scratch = { ts: new Float64Array(4), values: new Float64Array(4) };
      let folded = 0;
      fc.assert(
        fc.property(pointsOf(tsA, valuesArb), foldArb, ({ ts, values }, p) => {
          const data = Buffer.from(encodeChunk(ts, values));
          for (const [at, x] of p.flips) if (data.length > 0) data[at % data.length] ^= x;
          const startMs = (ts[0] ?? 0) + p.from * p.step;
          const make = (): ChunkFold => {
            const f: ChunkFold = {
              mode: p.mode,
              startMs,
              endMs: startMs + p.buckets * p.step,
              stepMs: p.step,
              lowMs: startMs - p.low * p.step,
              n: new Float64Array(p.buckets),
              sum: new Float64Array(p.buckets),
              start: new Float64Array(p.buckets),
              seen: [],
              prev: p.prev ?? 0,
              hasPrev: p.prev !== null,
            };
            for (const [i, n, sum] of p.before) {
              const b = i % p.buckets;
              if (f.n[b] === 0) f.seen.push(b);
              f.n[b] = n;
              f.sum[b] = sum;
              f.start[b] = startMs + b * p.step;
            }
            return f;
          };
          const got = make();
          const want = make();
          let decoded: { ts: number[]; values: number[] } | null = null;
          let error: string | null = null;
          try {
            decoded = decodeChunk(data);
          } catch (e) {
            error = (e as Error).message;
          }
          let n: number;
          try {
            n = foldChunk(data, scratch, got);
          } catch (e) {
            expect((e as Error).message).to.equal(error);
            return;
          }
          if (n === -1) {
            // Nothing added: XOR values, or times not strictly increasing (or corrupt: the decoder throws then).
            expect(got).to.deep.equal(make());
            if (decoded !== null) expect(chunkValueMode(data) === 'xor' || decoded.ts.some((t, j) => j > 0 && !(t > decoded!.ts[j - 1]))).to.equal(true);
            return;
          }
          expect(error).to.equal(null);
          expect(chunkValueMode(data)).to.not.equal('xor');
          folded++;
          expect(n).to.equal(decoded!.ts.length);
          expect(decoded!.ts.every((t, j) => j === 0 || t > decoded!.ts[j - 1]), 'times strictly increasing').to.equal(true);
          expectSameBits(Array.from(scratch.ts.subarray(0, n)), decoded!.ts);
          referenceFold(decoded!.ts, decoded!.values, want);
          expect(got.seen).to.deep.equal(want.seen);
          expectSameBits(Array.from(got.n), Array.from(want.n));
          expectSameBits(Array.from(got.sum), Array.from(want.sum));
          expectSameBits(Array.from(got.start), Array.from(want.start));
          expectSameBits([got.prev], [want.prev]);
          expect(got.hasPrev).to.equal(want.hasPrev);
        }),
        { numRuns: 600 },
      );
      expect(folded).to.be.greaterThan(100);
    });
  });
});
