import { expect } from 'chai';
import fc from 'fast-check';
import { newAjv } from '../../src/core/validation.js';
import { INGEST_LIMITS as L } from '../../src/features/telemetry/telemetry-limits.js';
import { isPlainMetricsBody, TelemetryBody } from '../../src/features/telemetry/telemetry-schemas.js';

// Both forms the registry runs: every error (small bodies) and the first error (large ones).
const schemaAccepts = newAjv().compile(TelemetryBody);
const schemaAcceptsFirst = newAjv({ allErrors: false }).compile(TelemetryBody);

const astral = '\u{1F600}'; // two UTF-16 units, one character for the schema's maxLength
const anyValue = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.array(fc.integer(), { maxLength: 2 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }));
const nameArb = fc.oneof(
  fc.constantFrom('bench.ingest', 'a', ':x', '_y/z-1.2', '', '1abc', 'a b', 'é', 'x'.repeat(L.metricNameMax), 'x'.repeat(L.metricNameMax + 1)),
  fc.stringMatching(/^[A-Za-z_:][A-Za-z0-9_:./-]{0,8}$/),
  anyValue,
);
const keyArb = fc.oneof(
  fc.constantFrom('host', 'region', 'a', '_', 'a.b/c-d', '', '1a', 'a b', ':a', '__proto__', 'k'.repeat(L.labelKeyMax), 'k'.repeat(L.labelKeyMax + 1)),
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_./-]{0,6}$/),
  fc.string({ maxLength: 4 }),
);
const labelValueArb = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom('', 'v'.repeat(L.labelValueMax), 'v'.repeat(L.labelValueMax + 1), astral.repeat(L.labelValueMax / 2 + 1), astral.repeat(L.labelValueMax), astral.repeat(L.labelValueMax + 1), '\u0000', '\ud800'),
  anyValue,
);
const labelsArb = fc.oneof(
  fc.constant(undefined),
  fc.dictionary(keyArb, labelValueArb, { maxKeys: 4 }),
  fc.dictionary(fc.stringMatching(/^[a-z]{1,3}$/), fc.constant('v'), { minKeys: L.maxLabels - 1, maxKeys: L.maxLabels + 2 }),
  anyValue,
);
const tsArb = fc.oneof(fc.constant(undefined), fc.integer(), fc.maxSafeInteger(), fc.double(), fc.string({ maxLength: 30 }), fc.constantFrom(1.5, -0, 2 ** 60, Number.MAX_VALUE), anyValue);
const valueArb = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity, -0), anyValue);
const itemArb = fc
  .record({ name: nameArb, value: valueArb, ts: tsArb, labels: labelsArb, extra: fc.oneof(fc.constant(undefined), anyValue) }, { requiredKeys: [] })
  .map((r) => {
    // Absent and undefined are both possible; an `extra` key is an additional property unless undefined.
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) if (v !== undefined || k !== 'extra') out[k] = v;
    return out;
  });
// Mostly items that pass, with now and then one changed by the arbitraries above.
const goodItemArb = fc.record({
  name: fc.constantFrom('bench.ingest', 'cpu', 'mem:used'),
  value: fc.double({ noNaN: true, noDefaultInfinity: true }),
  ts: fc.oneof(fc.constant(undefined), fc.integer({ min: 0 }), fc.constant('2026-11-30T12:00:00Z')),
  labels: fc.oneof(fc.constant(undefined), fc.dictionary(fc.constantFrom('host', 'region', 'az'), fc.string({ maxLength: 6 }), { maxKeys: 3 })),
}, { requiredKeys: ['name', 'value'] });
const metricsArb = fc.oneof(
  fc.array(fc.oneof({ weight: 9, arbitrary: goodItemArb }, { weight: 1, arbitrary: itemArb }), { maxLength: 12 }),
  fc.array(itemArb, { maxLength: 4 }),
  anyValue,
);
const bodyArb = fc.oneof(
  { weight: 8, arbitrary: fc.record({ metrics: metricsArb }) },
  { weight: 1, arbitrary: fc.record({ metrics: metricsArb, logs: fc.oneof(fc.constant([]), anyValue), events: fc.oneof(fc.constant([]), anyValue), org: anyValue }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: anyValue },
);

describe('isPlainMetricsBody (the ingest route\'s cheaper check of its common body)', () => {
  it('accepts only bodies the compiled schema accepts, and accepts most valid bodies of metrics alone', () => {
    let accepted = 0;
    let runs = 0;
    fc.assert(
      fc.property(bodyArb, (body) => {
        runs++;
        const fast = isPlainMetricsBody(body);
        const full = schemaAccepts(body);
        expect(schemaAcceptsFirst(body)).to.equal(full);
        if (fast) {
          accepted++;
          expect(full, JSON.stringify(body)).to.equal(true);
        }
      }),
      { numRuns: 20_000 },
    );
    expect(accepted / runs, 'share the cheaper check took').to.be.above(0.2);
  });

  it('accepts a batch of valid metrics (names repeated, labels, both time forms) and refuses each kind of fault in any item', () => {
    const items = Array.from({ length: 30 }, (_, i) => ({ name: i < 15 ? 'bench.ingest' : 'other', value: i / 3, ...(i % 3 ? { ts: 1_764_500_000_000 + i } : {}), ...(i % 5 ? { labels: { host: `h${i}`, region: 'eu' } } : {}) }));
    items[7].ts = '2026-11-30T12:00:00.5Z' as unknown as number;
    expect(isPlainMetricsBody({ metrics: items })).to.equal(true);
    expect(isPlainMetricsBody({ metrics: [], org: 'x' })).to.equal(true);
    const faults: [string, (item: Record<string, unknown>) => void][] = [
      ['no name', (m) => delete m.name],
      ['null name', (m) => (m.name = null)],
      ['bad name', (m) => (m.name = '1x')],
      ['long name', (m) => (m.name = 'x'.repeat(L.metricNameMax + 1))],
      ['no value', (m) => delete m.value],
      ['string value', (m) => (m.value = '1')],
      ['fractional ts', (m) => (m.ts = 1.5)],
      ['null ts', (m) => (m.ts = null)],
      ['extra key', (m) => (m.unit = 's')],
      ['labels array', (m) => (m.labels = ['a'])],
      ['labels null', (m) => (m.labels = null)],
      ['number label', (m) => (m.labels = { host: 1 })],
      ['bad label key', (m) => (m.labels = { 'a b': 'x' })],
      ['empty label key', (m) => (m.labels = { '': 'x' })],
      ['long label value', (m) => (m.labels = { host: 'v'.repeat(L.labelValueMax + 1) })],
      ['too many labels', (m) => (m.labels = Object.fromEntries(Array.from({ length: L.maxLabels + 1 }, (_, k) => [`k${k}`, 'v'])))],
    ];
    for (const [what, fault] of faults) {
      for (const at of [0, 1, 29]) {
        const copy = items.map((m) => ({ ...m, ...(m.labels ? { labels: { ...m.labels } } : {}) }));
        fault(copy[at] as Record<string, unknown>);
        const body = { metrics: copy };
        expect(isPlainMetricsBody(body), `${what} at ${at}`).to.equal(false);
        expect(schemaAccepts(body), `${what} at ${at}: the schema refuses it too`).to.equal(false);
      }
    }
    for (const notAnItem of [['x'], 'x', null, 1]) {
      const body = { metrics: [...items.slice(0, 5), notAnItem, ...items.slice(5)] };
      expect(isPlainMetricsBody(body), JSON.stringify(notAnItem)).to.equal(false);
      expect(schemaAccepts(body)).to.equal(false);
    }
    // What it leaves to the schema: other signals, too many items, no metrics at all.
    expect(isPlainMetricsBody({ metrics: [], logs: [] })).to.equal(false);
    expect(isPlainMetricsBody({ metrics: Array.from({ length: L.maxItems + 1 }, () => items[0]) })).to.equal(false);
    expect(isPlainMetricsBody({})).to.equal(false);
    expect(isPlainMetricsBody([])).to.equal(false);
    expect(isPlainMetricsBody(null)).to.equal(false);
  });
});
