import { expect } from 'chai';
import fc from 'fast-check';
import { answerColumns, answerSeries, finite, labelKey, withPoints, type RawAnswerSeries } from '../../src/features/telemetry/metric-read.js';
import type { MetricReadSeries } from '../../src/features/telemetry/query-repository.js';

/** answerSeries as it was written before the answer had columns: a [t, v] pair per point, sorted. */
function reference(rows: MetricReadSeries[]): RawAnswerSeries[] {
  const out = rows.map((r) => {
    const points: [number, number | null][] = r.t.map((t, i) => [t, finite(r.v[i] ?? null)]);
    points.sort((a, b) => a[0] - b[0]);
    const d = r.descriptor;
    const key = d === null ? labelKey(r.labels) : `${labelKey(r.labels)}\u0000${JSON.stringify([d.kind, d.temporality ?? '', d.unit])}`;
    return { key, series: { labels: r.labels, descriptor: d, points } };
  });
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out.map((o) => o.series);
}

/** Deep equality that tells -0 from 0 (Object.is per value). */
function expectIdentical(got: RawAnswerSeries[], want: RawAnswerSeries[]): void {
  expect(got.map((s) => ({ ...s, points: [] }))).to.deep.equal(want.map((s) => ({ ...s, points: [] })));
  got.forEach((s, i) => {
    expect(s.points.length).to.equal(want[i].points.length);
    s.points.forEach((p, j) => {
      const w = want[i].points[j];
      if (!Object.is(p[0], w[0]) || !Object.is(p[1], w[1])) expect.fail(`series ${i} point ${j}: got [${p[0]}, ${p[1]}], want [${w[0]}, ${w[1]}]`);
    });
  });
}

const value = fc.oneof(fc.double(), fc.constant(null), fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(NaN, Infinity, -Infinity, -0, 0));
const row: fc.Arbitrary<MetricReadSeries> = fc
  .record({
    labels: fc.dictionary(fc.constantFrom('a', 'b', 'host', 'é'), fc.constantFrom('1', '2', 'x'), { maxKeys: 3 }),
    descriptor: fc.option(fc.record({ kind: fc.constantFrom('gauge' as const, 'counter' as const), temporality: fc.constantFrom('cumulative' as const, 'delta' as const, null), unit: fc.constantFrom('', 's') }), { nil: null }),
    // Times ascending (as every read gives them), or in any order, with repeats.
    sorted: fc.boolean(),
    t: fc.array(fc.integer({ min: 0, max: 20 }).map((k) => 1_700_000_000_000 + k * 60_000), { maxLength: 30 }),
    extra: fc.integer({ min: -3, max: 3 }),
    values: fc.array(value, { maxLength: 40 }),
  })
  .map(({ labels, descriptor, sorted, t, extra, values }) => {
    const times = sorted ? [...t].sort((a, b) => a - b) : t;
    // Values as many as the times, or fewer (missing ones are null) or more (ignored).
    const v = Array.from({ length: Math.max(0, times.length + extra) }, (_, i) => values[i % Math.max(1, values.length)] ?? null);
    return { labels, descriptor, t: times, v };
  });

describe('metric read answer', () => {
  it('answerColumns gives what answerSeries gave: the same series, order, points and values (-0, nulls, non-finite)', () => {
    fc.assert(
      fc.property(fc.array(row, { maxLength: 8 }), (rows) => {
        const want = reference(structuredClone(rows));
        expectIdentical(answerColumns(structuredClone(rows)).map(withPoints), want);
        expectIdentical(answerSeries(structuredClone(rows)), want);
      }),
      { numRuns: 1000 },
    );
  });

  it('takes a row’s arrays over when they are in order and finite, copies them otherwise', () => {
    const t = [0, 60_000, 120_000];
    const v = [1, -0, 2.5];
    const [c] = answerColumns([{ labels: {}, descriptor: null, t, v }]);
    expect(c.t).to.equal(t);
    expect(c.v).to.equal(v);
    const [d] = answerColumns([{ labels: {}, descriptor: null, t, v: [1, NaN, 2] }]);
    expect(d.t).to.equal(t);
    expect(d.v).to.deep.equal([1, null, 2]);
    const [e] = answerColumns([{ labels: {}, descriptor: null, t: [120_000, 0, 60_000], v: [3, 1, 2] }]);
    expect(e.t).to.deep.equal([0, 60_000, 120_000]);
    expect(e.v).to.deep.equal([1, 2, 3]);
  });
});
