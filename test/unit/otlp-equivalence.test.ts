import { expect } from 'chai';
import fc from 'fast-check';
import { DomainError } from '../../src/core/errors.js';
import { decodeOtlpMetrics, type OtlpDecoded } from '../../src/features/telemetry/otlp-decode.js';
import { OTLP_MESSAGES } from '../../src/features/telemetry/otlp-proto.js';
import { referenceDecodeOtlpMetrics } from './otlp-reference.js';

/**
 * The metrics decoder reads protobufjs messages directly and builds each distinct attribute list's
 * labels once; otlp-reference.ts keeps the decoder as it was (toObject, then labels per data point).
 * Over generated requests, both encodings, and damaged bodies, the two must give the same batch,
 * counts, messages and warnings, or fail with the same bad_request. Label key order is not part of
 * a result (the series store and PostgreSQL ignore it): the decoder sorts keys, checked separately.
 */

type J = Record<string, unknown>;
const NOW = 1_800_000_000_000;
const type = OTLP_MESSAGES.metricsRequest;
const toProtobuf = (fixture: J): Uint8Array => type.encode(type.fromObject(fixture)).finish();
const toJson = (fixture: J): Buffer => Buffer.from(JSON.stringify(fixture));

type Outcome = { ok: OtlpDecoded } | { error: string };
function outcome(decode: () => OtlpDecoded): Outcome {
  try {
    return { ok: decode() };
  } catch (err) {
    // Anything but a DomainError would be a 500: never acceptable for what a client sent.
    if (!(err instanceof DomainError)) throw err;
    return { error: `${err.code}: ${err.message}` };
  }
}

function expectSame(body: Uint8Array, format: 'json' | 'protobuf'): Outcome {
  const actual = outcome(() => decodeOtlpMetrics(body, format, NOW));
  const expected = outcome(() => referenceDecodeOtlpMetrics(body, format, NOW));
  expect(actual).to.deep.equal(expected);
  if ('ok' in actual) {
    for (const p of actual.ok.batch.points) {
      const keys = Object.keys(p.labels);
      expect(keys, 'label keys in code-unit order').to.deep.equal([...keys].sort());
    }
  }
  return actual;
}

// Small pools, so that keys collide after sanitizing, attribute lists repeat across data points,
// and limits and special names come up often.
const keyArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('host', 'region', 'a', 'a b', 'a_b', 'a-b', '1x', '_1x', 'le', 'quantile', 'otel_resource_id', 'otel_scope_name', '__proto__', '', 'x\u0000y', 'k'.repeat(101)) },
  { weight: 2, arbitrary: fc.constantFrom('service.name', 'service.instance.id', 'host.name', 'process.pid', 'telemetry.sdk.name') },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);
const textArb = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('h1', 'h2', 'eu', '', 'v\u0000', '\ud800', 'x'.repeat(1025), '0.5') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'binary' }) },
);
const int64Arb = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String) }, fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String), fc.constantFrom('9007199254740991', '9007199254740992', '-9007199254740993'));
const uint64Arb = fc.oneof(fc.integer({ min: 0, max: 1000 }).map(String), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), fc.constantFrom('0', '500', '9007199254740993', '18446744073709551615'));
const doubleArb = fc.oneof({ weight: 4, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) }, { weight: 1, arbitrary: fc.constantFrom('NaN', 'Infinity', '-Infinity', -0, 0.1, 1e300) });

const leafValueArb: fc.Arbitrary<J> = fc.oneof(
  { weight: 6, arbitrary: textArb.map((v) => ({ stringValue: v })) },
  { weight: 1, arbitrary: int64Arb.map((v) => ({ intValue: v })) },
  { weight: 1, arbitrary: doubleArb.map((v) => ({ doubleValue: v })) },
  { weight: 1, arbitrary: fc.boolean().map((v) => ({ boolValue: v })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 4 }).map((v) => ({ bytesValue: Buffer.from(v).toString('base64') })) },
  { weight: 1, arbitrary: fc.constant({}) },
);
const anyValueArb: fc.Arbitrary<J> = fc.oneof(
  { weight: 8, arbitrary: leafValueArb },
  { weight: 1, arbitrary: fc.array(leafValueArb, { maxLength: 3 }).map((values) => ({ arrayValue: { values } })) },
  { weight: 1, arbitrary: fc.array(fc.record({ key: keyArb, value: leafValueArb }), { maxLength: 2 }).map((values) => ({ kvlistValue: { values } })) },
);
const attributesArb = fc.array(fc.record({ key: keyArb, value: anyValueArb }), { maxLength: 4 });
/** Attribute lists that make storable labels, mostly. */
const plainAttributesArb = fc.array(fc.record({ key: fc.constantFrom('host', 'region', 'a b', 'a_b', 'b.c', 'le', 'otel_resource_id'), value: fc.constantFrom('h1', 'h2', 'eu', '').map((v) => ({ stringValue: v })) }), { maxLength: 3 });

/** Fields a data point may have or not: each present with probability 1/2. */
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
const defined = (o: J): J => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

function dataPointArb(pool: J[][]): fc.Arbitrary<J> {
  const common = {
    attributes: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: attributesArb }),
    timeUnixNano: optional(uint64Arb),
    startTimeUnixNano: optional(uint64Arb),
    flags: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, 2, 3) }),
  };
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ ...common, value: fc.oneof(doubleArb.map((asDouble) => ({ asDouble })), int64Arb.map((asInt) => ({ asInt }))) }).map(({ value, ...dp }) => defined({ ...dp, ...value })) },
    { weight: 1, arbitrary: fc.record({ ...common, asDouble: doubleArb, asInt: int64Arb }).map(defined) },
    { weight: 1, arbitrary: fc.record(common).map(defined) },
  );
}

function histogramPointArb(pool: J[][]): fc.Arbitrary<J> {
  return fc
    .record({
      attributes: fc.constantFrom(...pool),
      timeUnixNano: optional(uint64Arb),
      count: optional(fc.oneof(fc.integer({ min: 0, max: 20 }).map(String), uint64Arb)),
      sum: optional(doubleArb),
      bucketCounts: optional(fc.array(fc.oneof(fc.integer({ min: 0, max: 5 }).map(String), uint64Arb), { maxLength: 4 })),
      explicitBounds: optional(fc.array(fc.oneof(fc.integer({ min: -3, max: 3 }), doubleArb), { maxLength: 3 })),
      min: optional(fc.double()),
      max: optional(fc.double()),
      flags: optional(fc.constantFrom(0, 1)),
    })
    .map(defined);
}

/** A histogram point whose counts add up, so that its parts get stored. */
function validHistogramPointArb(pool: J[][]): fc.Arbitrary<J> {
  return fc.record({ attributes: fc.constantFrom(...pool), counts: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 4 }), sum: optional(fc.double({ noNaN: true, noDefaultInfinity: true })) }).map(({ attributes, counts, sum }) =>
    defined({
      attributes,
      timeUnixNano: '1700000000000000000',
      count: String(counts.reduce((a, c) => a + c, 0)),
      sum,
      bucketCounts: counts.map(String),
      explicitBounds: counts.slice(1).map((_, i) => i * 2.5),
    }),
  );
}

/** A data point with a count and a sum (exponential histogram, summary), plus the fields of its own kind. */
function countSumPointArb(pool: J[][], own: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<J> {
  return fc.record({ attributes: fc.constantFrom(...pool), timeUnixNano: optional(uint64Arb), count: optional(uint64Arb), sum: optional(doubleArb), ...own }).map(defined);
}

const exponentialPointArb = (pool: J[][]): fc.Arbitrary<J> =>
  countSumPointArb(pool, {
    zeroCount: optional(uint64Arb),
    positive: optional(fc.record({ offset: fc.integer({ min: -3, max: 3 }), bucketCounts: fc.array(uint64Arb, { maxLength: 2 }) })),
    min: optional(fc.double()),
  });

const summaryPointArb = (pool: J[][]): fc.Arbitrary<J> =>
  countSumPointArb(pool, {
    quantileValues: optional(fc.array(fc.record({ quantile: optional(fc.oneof(fc.constantFrom(0, 0.5, 0.99, 1), doubleArb)), value: optional(doubleArb) }).map(defined), { maxLength: 3 })),
  });

const temporalityArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 2) }, { weight: 1, arbitrary: optional(fc.constant(0)) });

function metricArb(pool: J[][]): fc.Arbitrary<J> {
  const head = {
    name: optional(fc.oneof({ weight: 6, arbitrary: fc.constantFrom('m', 'requests', 'http.server.duration', 'a b', '1xx', 'n\u0000') }, { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(195), 'x'.repeat(201)) })),
    unit: optional(fc.constantFrom('', 's', 'By', 'u'.repeat(101), 'u\u0000')),
    description: optional(fc.constantFrom('', 'd', 'd'.repeat(1025))),
  };
  const points = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { maxLength: 6 });
  const data = fc.oneof(
    points(dataPointArb(pool)).map((dataPoints) => ({ gauge: { dataPoints } })),
    fc.record({ dataPoints: points(dataPointArb(pool)), aggregationTemporality: temporalityArb, isMonotonic: fc.oneof({ weight: 2, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: optional(fc.boolean()) }) }).map((sum) => ({ sum: defined(sum) })),
    fc.record({ dataPoints: points(fc.oneof(histogramPointArb(pool), validHistogramPointArb(pool))), aggregationTemporality: temporalityArb }).map((h) => ({ histogram: defined(h) })),
    fc.record({ dataPoints: points(exponentialPointArb(pool)), aggregationTemporality: temporalityArb }).map((h) => ({ exponentialHistogram: defined(h) })),
    points(summaryPointArb(pool)).map((dataPoints) => ({ summary: { dataPoints } })),
    fc.constant({}),
  );
  return fc.record({ ...head, data }).map(({ data: d, ...h }) => defined({ ...h, ...d }));
}

/** A whole ExportMetricsServiceRequest in the OTLP JSON mapping. */
const requestArb: fc.Arbitrary<J> = fc.array(fc.oneof(plainAttributesArb, attributesArb), { minLength: 1, maxLength: 4 }).chain((pool) => {
  const scopeArb = fc.record({ name: optional(fc.constantFrom('', 'lib', 's\u0000')), attributes: optional(attributesArb) }).map(defined);
  const scopeMetricsArb = fc.record({ scope: optional(scopeArb), metrics: fc.array(metricArb(pool), { maxLength: 3 }) }).map(defined);
  const resourceArb = fc.record({ attributes: attributesArb }).map(defined);
  const resourceMetricsArb = fc.record({ resource: optional(resourceArb), scopeMetrics: fc.array(scopeMetricsArb, { maxLength: 2 }) }).map(defined);
  return fc.array(resourceMetricsArb, { maxLength: 2 }).map((resourceMetrics) => ({ resourceMetrics }));
});

/** Every [parent, key] place of a JSON tree, for mutations. */
function places(v: unknown, out: [J | unknown[], string | number][] = []): [J | unknown[], string | number][] {
  const children: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : typeof v === 'object' && v !== null ? Object.entries(v) : [];
  for (const [k, x] of children) {
    out.push([v as J | unknown[], k]);
    places(x, out);
  }
  return out;
}

describe('OTLP metrics decoding: equivalence with the earlier decoder', function () {
  this.timeout(120_000);

  it('protobuf: the same result for generated requests of every kind, limit and special value', () => {
    const reached = new Map<string, number>();
    const count = (what: string, n = 1) => reached.set(what, (reached.get(what) ?? 0) + n);
    fc.assert(
      fc.property(requestArb, (fixture) => {
        const out = expectSame(toProtobuf(fixture), 'protobuf');
        if (!('ok' in out)) {
          count('bad_request');
          return;
        }
        count('rejected', out.ok.rejected);
        count('warnings', out.ok.warnings.length);
        for (const p of out.ok.batch.points) {
          count(`kind ${p.meta?.kind}`);
          if ('le' in p.labels) count('le');
          if ('quantile' in p.labels) count('quantile');
          if ('otel_resource_id' in p.labels) count('otel_resource_id');
          if (Object.keys(p.labels).some((k) => /__\d$/.test(k))) count('keys kept apart');
        }
      }),
      { numRuns: 600 },
    );
    // The generator reaches every outcome (else the comparison above proves little).
    const kinds = ['gauge', 'counter', 'updowncounter', 'histogram', 'exponential_histogram', 'summary'].map((k) => `kind ${k}`);
    for (const what of [...kinds, 'rejected', 'warnings', 'le', 'quantile', 'otel_resource_id', 'keys kept apart']) expect(reached.get(what) ?? 0, what).to.be.at.least(3);
  });

  it('JSON: the same result for the same requests, and with any field of the tree replaced by a value of another type', () => {
    const strange = fc.constantFrom<unknown>(null, 5, -1.5, 'x', '12', 'NaN', '', true, {}, [], [1], { stringValue: 1 }, 2 ** 64, '18446744073709551616', '-5');
    fc.assert(
      fc.property(requestArb, fc.nat(), strange, fc.boolean(), (fixture, at, value, mutate) => {
        if (mutate) {
          const all = places(fixture);
          if (all.length) {
            const [parent, key] = all[at % all.length];
            (parent as Record<string | number, unknown>)[key] = value;
          }
        }
        expectSame(toJson(fixture), 'json');
      }),
      { numRuns: 600 },
    );
  });

  it('damaged protobuf (truncated, bytes changed, bytes inserted): the same result or the same bad_request, never another error', () => {
    let failed = 0;
    fc.assert(
      fc.property(requestArb, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('truncate', 'set', 'insert'), (fixture, at, byte, how) => {
        const body = Buffer.from(toProtobuf(fixture));
        if (body.length === 0) return;
        const i = at % body.length;
        const damaged = how === 'truncate' ? body.subarray(0, i) : how === 'set' ? Buffer.concat([body.subarray(0, i), Buffer.from([byte]), body.subarray(i + 1)]) : Buffer.concat([body.subarray(0, i), Buffer.from([byte]), body.subarray(i)]);
        const out = expectSame(damaged, 'protobuf');
        if ('error' in out) {
          failed++;
          expect(out.error).to.match(/^bad_request: invalid OTLP (protobuf|request): /);
        }
      }),
      { numRuns: 1500 },
    );
    expect(failed).to.be.above(100);
  });

  it('random bytes as a protobuf body: the same result or the same bad_request', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => void expectSame(bytes, 'protobuf')),
      { numRuns: 2000 },
    );
  });
});

/** Protobuf wire format by hand, for what protobufjs's encoder would not write. */
const varint = (n: number): number[] => {
  const out: number[] = [];
  for (; n > 0x7f; n >>>= 7) out.push((n & 0x7f) | 0x80);
  return [...out, n];
};
const field = (no: number, bytes: number[]): number[] => [...varint((no << 3) | 2), ...varint(bytes.length), ...bytes];
const str = (no: number, s: string): number[] => field(no, [...Buffer.from(s, 'utf8')]);
const fixed64 = (no: number, v: bigint): number[] => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return [...varint((no << 3) | 1), ...b];
};
const double64 = (no: number, v: number): number[] => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return [...varint((no << 3) | 1), ...b];
};
const sfixed64 = (no: number, v: bigint): number[] => fixed64(no, BigInt.asUintN(64, v));
/** A request of one gauge metric "g" whose one data point has these fields (NumberDataPoint's bytes). */
const gaugeRequest = (dp: number[]): Uint8Array => Uint8Array.from(field(1, field(2, field(2, [...str(1, 'g'), ...field(5, field(1, dp))]))));
const T_NS = 1_700_000_000_123_456_789n;

describe('OTLP metrics decoding: hostile protobuf', () => {
  it('NUL in attribute keys and values, huge ints, NaN and infinities, two values of one oneof: as the earlier decoder, with the readings written out', () => {
    const attr = (key: number[], value: number[]) => field(7, [...key, ...field(2, value)]);
    const cases: [string, number[]][] = [
      ['NUL in key and value', [...attr(str(1, 'a\u0000b'), str(1, 'v\u0000')), ...fixed64(3, T_NS), ...double64(4, 1.5)]],
      ['asInt 2^53+1', [...fixed64(3, T_NS), ...sfixed64(6, 2n ** 53n + 1n)]],
      ['NaN', [...fixed64(3, T_NS), ...double64(4, NaN)]],
      ['-Infinity', [...fixed64(3, T_NS), ...double64(4, -Infinity)]],
      ['asInt and asDouble both sent', [...fixed64(3, T_NS), ...sfixed64(6, 7n), ...double64(4, 2.5)]],
      ['asInt -(2^53-1)', [...fixed64(3, T_NS), ...sfixed64(6, -(2n ** 53n - 1n))]],
      ['asInt -2^63', [...fixed64(3, T_NS), ...sfixed64(6, -(2n ** 63n))]],
      ['no value', [...fixed64(3, T_NS)]],
      ['no time', [...double64(4, 1)]],
      ['time 2^64-1 ns', [...fixed64(3, 2n ** 64n - 1n), ...double64(4, 1)]],
    ];
    const results = cases.map(([what, dp]) => {
      const out = expectSame(gaugeRequest(dp), 'protobuf');
      if (!('ok' in out)) throw new Error(`${what}: ${out.error}`);
      return [what, out.ok.batch.points.map((p) => [p.labels, p.ts, p.value]), out.ok.messages];
    });
    expect(results).to.deep.equal([
      ['NUL in key and value', [[{ a_b: 'v\u0000' }, 1_700_000_000_123, 1.5]], []],
      ['asInt 2^53+1', [], ['1 data point(s) rejected: metric "g": an asInt beyond ±(2^53−1), which cannot be stored exactly']],
      ['NaN', [], ['1 data point(s) rejected: metric "g": a NaN, infinite or unreadable value']],
      ['-Infinity', [], ['1 data point(s) rejected: metric "g": a NaN, infinite or unreadable value']],
      ['asInt and asDouble both sent', [[{}, 1_700_000_000_123, 2.5]], []],
      ['asInt -(2^53-1)', [[{}, 1_700_000_000_123, -(2 ** 53 - 1)]], []],
      ['asInt -2^63', [], ['1 data point(s) rejected: metric "g": an asInt beyond ±(2^53−1), which cannot be stored exactly']],
      ['no value', [], ['1 data point(s) rejected: metric "g": a data point without a value']],
      ['no time', [[{}, NOW, 1]], []],
      ['time 2^64-1 ns', [[{}, 18_446_744_073_709, 1]], []],
    ]);
  });

  it('an int attribute beyond 2^53 becomes its exact decimal text; an empty AnyValue the empty text', () => {
    const attr = (key: string, value: number[]) => field(7, [...str(1, key), ...field(2, value)]);
    // intValue is a varint: 2^63 − 1 as ten bytes.
    const big = [...varint(3 << 3), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    const out = expectSame(gaugeRequest([...attr('big', big), ...attr('none', []), ...fixed64(3, T_NS), ...double64(4, 1)]), 'protobuf');
    expect('ok' in out && out.ok.batch.points.map((p) => p.labels)).to.deep.equal([{ big: '9223372036854775807', none: '' }]);
  });

  it('a KeyValue without a key on the wire (an empty key left out) fails the request as before: its key is not a string', () => {
    const dp = [...field(7, field(2, str(1, 'v'))), ...fixed64(3, T_NS), ...double64(4, 1)];
    const out = expectSame(gaugeRequest(dp), 'protobuf');
    expect(out).to.deep.equal({ error: 'bad_request: invalid OTLP request: resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[].attributes[].key must be a string' });
    // Written out (an empty string on the wire), it is an empty key, which refuses the data point only.
    const sent = expectSame(gaugeRequest([...field(7, [...str(1, ''), ...field(2, str(1, 'v'))]), ...fixed64(3, T_NS), ...double64(4, 1)]), 'protobuf');
    expect('ok' in sent && sent.ok.messages).to.deep.equal(['1 data point(s) rejected: metric "g": an attribute with an empty key']);
  });

  it('wrong wire types and truncated bodies are bad_request with the decoder\'s reason, never another error', () => {
    const valid = gaugeRequest([...fixed64(3, T_NS), ...double64(4, 1)]);
    const bodies: [string, Uint8Array][] = [
      // timeUnixNano (fixed64) sent as a length-delimited field that runs past the end.
      ['wrong wire type', gaugeRequest([...varint((3 << 3) | 2), 50, 1, 2])],
      // A group start (wire type 3) never closed.
      ['unclosed group', gaugeRequest([...varint((9 << 3) | 3), 1])],
      ['wire type 7', Uint8Array.from([0x0f])],
      ...Array.from({ length: valid.length - 1 }, (_, i) => [`truncated to ${i + 1} bytes`, valid.subarray(0, i + 1)] as [string, Uint8Array]),
    ];
    let failed = 0;
    for (const [what, body] of bodies) {
      const out = expectSame(body, 'protobuf');
      if ('error' in out) {
        failed++;
        expect(out.error, what).to.match(/^bad_request: invalid OTLP protobuf: \S/);
      }
    }
    expect(failed).to.be.above(bodies.length / 2);
  });
});
