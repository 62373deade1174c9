import { expect } from 'chai';
import fc from 'fast-check';
import { withPoints, type AnswerColumns, type RawAnswerSeries } from '../../src/features/telemetry/metric-read.js';
import { metricAnswerJson as answerJson } from '../../src/features/telemetry/query-answer-json.js';
import { SERIES_KINDS } from '../../src/features/telemetry/telemetry-types.js';

/**
 * The metric answer's JSON bytes against the answer object the query API built before
 * (`{ series: [{ labels, ...descriptor, points: [[RFC 3339, value]] }] }`) given to
 * JSON.stringify and encoded as UTF-8, which is what Koa sent for it.
 */
function reference(series: readonly RawAnswerSeries[]): Buffer {
  const answer = { series: series.map((a) => ({ labels: a.labels, ...(a.descriptor ?? {}), points: a.points.map(([t, v]) => [new Date(t).toISOString(), v]) })) };
  return Buffer.from(JSON.stringify(answer), 'utf8');
}

/** The answer's JSON from series given with [t, v] points (the writer reads columns). */
const metricAnswerJson = (series: readonly RawAnswerSeries[]): Buffer => answerJson(series.map(columns));
const columns = (s: RawAnswerSeries): AnswerColumns => ({ labels: s.labels, descriptor: s.descriptor, t: s.points.map((p) => p[0]), v: s.points.map((p) => p[1]) });

const expectSame = (series: RawAnswerSeries[]) => {
  const got = metricAnswerJson(series);
  const want = reference(series);
  if (!got.equals(want)) expect(got.toString('utf8')).to.equal(want.toString('utf8'));
  expect(got.equals(want)).to.equal(true);
};

// Strings of every kind: ASCII, any code point, lone surrogates, NUL and the characters JSON escapes.
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom('', '\u0000', '"', '\\', '\n', '\u2028', '\ud800', '\udfff', 'a\ud83d', '😀', '</script>', '\u007f', '\u0080', '\uffff'),
);
const value = fc.oneof(
  { weight: 6, arbitrary: fc.double() },
  { weight: 2, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.integer({ min: -1e6, max: 1e6 }).map((n) => n / 100) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, Number.MIN_VALUE, -Number.MAX_VALUE, 2 ** 53 + 2, 1e21, 1e-7, 5e-324) },
);
// Epoch ms across the years JavaScript can print, 0001 to beyond 9999 (six-digit years).
// Times of now, of any year a Date holds (negative, six-digit, the range's ends), fractions of a millisecond.
const ts = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }) },
  { weight: 4, arbitrary: fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }) },
  { weight: 1, arbitrary: fc.constantFrom(-8_640_000_000_000_000, 8_640_000_000_000_000, -62_167_219_200_001, -62_167_219_200_000, 253_402_300_799_999, 253_402_300_800_000, -1, 0, -0) },
  { weight: 1, arbitrary: fc.double({ min: -8.64e15, max: 8.64e15, noNaN: true }) },
);
const descriptor = fc.option(
  fc.record({ kind: fc.constantFrom(...SERIES_KINDS), temporality: fc.constantFrom('cumulative' as const, 'delta' as const, null), unit: text }),
  { nil: null },
);
const series: fc.Arbitrary<RawAnswerSeries> = fc.record({
  labels: fc.dictionary(text, text, { maxKeys: 5 }),
  descriptor,
  points: fc.array(fc.tuple(ts, value), { maxLength: 40 }),
});

describe('metric answer JSON', () => {
  it('is byte for byte JSON.stringify of the answer object, in UTF-8, for any series, labels and values', () => {
    fc.assert(
      fc.property(fc.array(series, { maxLength: 8 }), (s) => expectSame(s)),
      { numRuns: 2000 },
    );
  });

  it('answers of bench size: 250 series × 240 buckets sharing their bucket starts, with gaps and nulls', () => {
    const start = Date.UTC(2026, 10, 30, 4);
    const s: RawAnswerSeries[] = Array.from({ length: 250 }, (_, i) => ({
      labels: { instance: `host-${i % 5}`, job: 'node', cpu: String(i >> 1), mode: i % 2 ? 'user' : 'idle' },
      descriptor: { kind: 'counter', temporality: 'cumulative', unit: '' },
      points: Array.from({ length: 240 }, (_, k): [number, number | null] => [start + k * 60_000, k % 17 === 3 ? null : (i * 240 + k) / 7]).filter((_, k) => k % 29 !== 5),
    }));
    expectSame(s);
    expect(JSON.parse(metricAnswerJson(s).toString('utf8')).series[249].points[0]).to.deep.equal(['2026-11-30T04:00:00.000Z', (249 * 240) / 7]);
  });

  it('an empty answer, a series without points, labels without keys', () => {
    expect(metricAnswerJson([]).toString()).to.equal('{"series":[]}');
    expectSame([{ labels: {}, descriptor: null, points: [] }]);
    expectSame([{ labels: {}, descriptor: { kind: 'gauge', temporality: null, unit: '' }, points: [[0, 1]] }]);
  });

  it('non-finite aggregates and -0 are written as JSON.stringify writes them (null, 0)', () => {
    const got = metricAnswerJson([{ labels: { a: 'b' }, descriptor: null, points: [[0, NaN], [60_000, Infinity], [120_000, -Infinity], [180_000, -0], [240_000, 1e21], [300_000, 1e-7]] }]);
    expect(got.toString()).to.equal(
      '{"series":[{"labels":{"a":"b"},"points":[["1970-01-01T00:00:00.000Z",null],["1970-01-01T00:01:00.000Z",null],["1970-01-01T00:02:00.000Z",null],["1970-01-01T00:03:00.000Z",0],["1970-01-01T00:04:00.000Z",1e+21],["1970-01-01T00:05:00.000Z",1e-7]]}]}',
    );
  });

  it('values that are not numbers (never produced by a read) still come out as JSON.stringify has them', () => {
    const odd = [{ labels: {}, descriptor: null, points: [[0, '1.5' as unknown as number], [1, undefined as unknown as number], [2, { x: [1, ','] } as unknown as number], [3, 2]] }] as RawAnswerSeries[];
    expectSame(odd);
  });

  it('bucket starts: every field of the time of day, across days, leap days, years -1/0000 and 9999/10000, before 1970', () => {
    // (The fourth: an hour before 0000-01-01T00:00Z, so the days of years -1 and 0000.)
    const starts = [Date.UTC(2024, 1, 28, 23, 0), Date.UTC(1969, 11, 31, 22, 0), Date.UTC(9999, 11, 31, 23, 0), -62_167_219_200_000 - 3_600_000, Date.UTC(2026, 11, 1)];
    for (const start of starts) {
      for (const step of [1, 7, 999, 1_000, 59_999, 60_000, 61_001, 3_600_000, 86_399_999]) {
        expectSame([{ labels: {}, descriptor: null, points: Array.from({ length: 200 }, (_, k): [number, number] => [start + k * step, k]) }]);
      }
    }
  });

  it('outgrows its first estimate: long labels and six-digit years', () => {
    const long = 'ü'.repeat(5000);
    expectSame([{ labels: { [long]: long, b: '😀'.repeat(3000) }, descriptor: { kind: 'gauge', temporality: null, unit: long }, points: [[8_000_000_000_000_000, 1]] }]);
    expectSame(Array.from({ length: 3 }, () => ({ labels: {}, descriptor: null, points: Array.from({ length: 500 }, (_, k): [number, number] => [8_000_000_000_000_000 + k, -Number.MAX_VALUE]) })));
  });

  it('the longest number texts (25 bytes: negative 17-digit values between -1e-5 and -1e-6), repeated, across every buffer boundary', () => {
    const start = Date.UTC(2026, 10, 30);
    const points = Array.from({ length: 100 }, (_, k): [number, number] => [start + k * 60_000, -(1.2345678901234567e-6 + (k % 7) * 1e-21)]);
    expect(String(points[0][1])).to.have.length(25);
    for (let m = 4000; m < 4400; m++) expectSame([{ labels: { a: 'x'.repeat(1000), b: 'y'.repeat(1000), c: 'z'.repeat(m) }, descriptor: null, points }]);
  });

  it('a series whose points end exactly where its buffer did: every label length over a range lands the reserve on each boundary', () => {
    // The labels move where a series' points start in the writer's buffer, byte by byte, so some
    // length puts the buffer's end inside the points' bytes whatever the growth policy is.
    const start = Date.UTC(2026, 10, 30);
    const t = Array.from({ length: 100 }, (_, k) => start + k * 60_000);
    const v = Array.from({ length: 100 }, (_, k) => k % 10);
    for (let m = 1; m <= 1200; m++) {
      const s: AnswerColumns[] = [{ labels: { a: 'x'.repeat(1000), b: 'y'.repeat(1000), c: 'z'.repeat(m) }, descriptor: { kind: 'gauge', temporality: null, unit: 'By' }, t, v }];
      const got = answerJson(s);
      if (!got.equals(reference(s.map(withPoints)))) expect(`${m}: ${got.toString('utf8')}`).to.equal(`${m}: ${reference(s.map(withPoints)).toString('utf8')}`);
    }
  });

  it('series that share their times (one array or equal ones) or not, of any lengths, in any sequence', () => {
    const start = Date.UTC(2026, 10, 30);
    const grid = (n: number, step: number) => Array.from({ length: n }, (_, k) => start + k * step);
    const shared: number[] = grid(50, 60_000);
    const times = fc.oneof(fc.constant(shared), fc.constant(shared).map((t) => [...t]), fc.integer({ min: 0, max: 60 }).map((n) => grid(n, 60_000)), fc.integer({ min: 0, max: 60 }).map((n) => grid(n, 300_000)));
    const one = fc.tuple(times, fc.array(value, { minLength: 60, maxLength: 60 })).map(([t, v]): AnswerColumns => ({ labels: {}, descriptor: null, t, v: v.slice(0, t.length) }));
    fc.assert(
      fc.property(fc.array(one, { maxLength: 10 }), (s) => {
        const got = answerJson(s);
        expect(got.equals(reference(s.map(withPoints)))).to.equal(true);
      }),
      { numRuns: 500 },
    );
  });

  it('values repeated within and across series (each distinct value formatted once) come out as JSON.stringify has each', () => {
    // A few values, -0 beside 0 and NaN beside Infinity (same texts, different bits), drawn again and again.
    const pool = fc.array(value, { minLength: 1, maxLength: 8 }).map((p) => [...p, 0, -0, NaN, Infinity, null]);
    const answer = pool.chain((p) =>
      fc.array(
        fc.array(fc.nat(p.length - 1), { maxLength: 300 }).map((ix): AnswerColumns => ({ labels: {}, descriptor: null, t: ix.map((_, k) => k * 60_000), v: ix.map((i) => p[i]) })),
        { maxLength: 12 },
      ),
    );
    fc.assert(
      fc.property(answer, (s) => {
        const got = answerJson(s);
        const want = reference(s.map(withPoints));
        if (!got.equals(want)) expect(got.toString()).to.equal(want.toString());
      }),
      { numRuns: 300 },
    );
  });

  it('answers of many distinct values, then repeated ones: the same bytes whichever way each series is written', () => {
    const t = Array.from({ length: 2000 }, (_, k) => k * 60_000);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(7), fc.boolean()), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 2 ** 30 }), (shape, seed) => {
        // Series of 2,000 values: distinct (k + seed / 7, over 8,192 of them across the answer) or eight repeated ones.
        const s: AnswerColumns[] = shape.map(([m, distinct], i) => ({ labels: {}, descriptor: null, t, v: t.map((_, k) => (distinct ? (seed + i * 2000 + k) / 7 : ((k + m) % 8) / 3)) }));
        const got = answerJson(s);
        const want = reference(s.map(withPoints));
        if (!got.equals(want)) expect(got.toString()).to.equal(want.toString());
      }),
      { numRuns: 40 },
    );
  });

  it('series written from one JSON.stringify of their values (after an answer\'s first 1,024 values, mostly new): any values, any lengths', () => {
    // A first series of 1,100 distinct values: the writer stops looking values up; the others are split from their text.
    const first: AnswerColumns = { labels: {}, descriptor: null, t: Array.from({ length: 1100 }, (_, k) => k * 60_000), v: Array.from({ length: 1100 }, (_, k) => k / 3) };
    fc.assert(
      fc.property(fc.array(series, { maxLength: 8 }), (s) => {
        const all = [first, ...s.map(columns)];
        const got = answerJson(all);
        const want = reference(all.map(withPoints));
        if (!got.equals(want)) expect(got.toString()).to.equal(want.toString());
      }),
      { numRuns: 1000 },
    );
  });

  it('a bucket start JavaScript cannot print fails as it did (RangeError), not with a wrong answer', () => {
    // NaN, ±Infinity, and integers just outside the Date range (their UTC day's start is inside it).
    for (const t of [NaN, Infinity, -Infinity, 8_640_000_000_000_001, -8_640_000_000_000_001]) {
      expect(() => metricAnswerJson([{ labels: {}, descriptor: null, points: [[t, 1]] }]), String(t)).to.throw(RangeError);
      expect(() => reference([{ labels: {}, descriptor: null, points: [[t, 1]] }]), String(t)).to.throw(RangeError);
    }
  });
});
