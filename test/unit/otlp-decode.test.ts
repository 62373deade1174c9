import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { DomainError } from '../../src/core/errors.js';
import { decodeOtlpLogs, decodeOtlpMetrics, type OtlpDecoded } from '../../src/features/telemetry/otlp-decode.js';
import { RESOURCE_ID_LABEL } from '../../src/features/telemetry/otlp-metrics.js';
import { OTLP_MESSAGES, exportResponse, statusBody, type ProtoMessageType } from '../../src/features/telemetry/otlp-proto.js';

type J = Record<string, unknown>;

const NOW = 1_800_000_000_000;
const T = '1700000000123456789';
const T_MS = 1_700_000_000_123;
const START = '1699999990000000000';
const START_MS = 1_699_999_990_000;

const s = (v: string): J => ({ stringValue: v });
const int = (v: string): J => ({ intValue: v });
const kv = (key: string, value: J): J => ({ key, value });

function metricsRequest(metrics: J[], resource: J[] = [], scope: J = {}): J {
  return { resourceMetrics: [{ resource: { attributes: resource }, scopeMetrics: [{ scope, metrics }] }] };
}
function logsRequest(logRecords: J[], resource: J[] = [], scope: J = {}): J {
  return { resourceLogs: [{ resource: { attributes: resource }, scopeLogs: [{ scope, logRecords }] }] };
}

/** The fixture as an OTLP protobuf body: the JSON mapping's hex ids become bytes, the rest fromObject reads as is. */
function protobufOf(type: ProtoMessageType, fixture: J): Buffer {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v !== 'object' || v === null) return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, (k === 'traceId' || k === 'spanId') && typeof x === 'string' ? Buffer.from(x, 'hex') : walk(x)]),
    );
  };
  return Buffer.from(type.encode(type.fromObject(walk(fixture) as J)).finish());
}

const json = (fixture: J): Buffer => Buffer.from(JSON.stringify(fixture));

/** Decodes the fixture as JSON and as protobuf, insists both give the same answer, and returns it. */
function metricsBoth(fixture: J): OtlpDecoded {
  const fromJson = decodeOtlpMetrics(json(fixture), 'json', NOW);
  const fromProto = decodeOtlpMetrics(protobufOf(OTLP_MESSAGES.metricsRequest, fixture), 'protobuf', NOW);
  expect(fromProto, 'protobuf decodes like JSON').to.deep.equal(fromJson);
  return fromJson;
}
function logsBoth(fixture: J): OtlpDecoded {
  const fromJson = decodeOtlpLogs(json(fixture), 'json', NOW);
  const fromProto = decodeOtlpLogs(protobufOf(OTLP_MESSAGES.logsRequest, fixture), 'protobuf', NOW);
  expect(fromProto, 'protobuf decodes like JSON').to.deep.equal(fromJson);
  return fromJson;
}

const gauge = (name: string, dataPoints: J[]): J => ({ name, gauge: { dataPoints } });
/** Stream descriptors, written out here rather than taken from the code under test. */
const GAUGE = { kind: 'gauge', temporality: null, monotonic: false, unit: '', description: '' };
const HISTOGRAM = { kind: 'histogram', temporality: 'cumulative', monotonic: true, unit: '', description: '' };

function errorOf(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error('expected a DomainError');
}

describe('OTLP decoding', () => {
  describe('metrics', () => {
    it('maps gauge and sum data points (double and int) to one point each, with kind, temporality, unit and description', () => {
      const out = metricsBoth(
        metricsRequest([
          gauge('temperature', [{ timeUnixNano: T, asDouble: 21.5 }]),
          {
            name: 'requests',
            unit: '{request}',
            description: 'Requests served',
            sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [{ startTimeUnixNano: START, timeUnixNano: T, asInt: '7' }] },
          },
          // No timeUnixNano: the time of arrival, not startTimeUnixNano.
          { name: 'ratio', unit: '1', sum: { aggregationTemporality: 1, dataPoints: [{ startTimeUnixNano: START, asDouble: 0.25 }] } },
          gauge('queue_depth', [{ asInt: '-3' }, { timeUnixNano: T, asDouble: 0 }]),
        ]),
      );
      const counter = { kind: 'counter', temporality: 'cumulative', monotonic: true, unit: '{request}', description: 'Requests served' };
      const upDown = { kind: 'updowncounter', temporality: 'delta', monotonic: false, unit: '1', description: '' };
      expect(out).to.deep.equal({
        batch: {
          points: [
            { name: 'temperature', labels: {}, ts: T_MS, value: 21.5, meta: GAUGE, point: 1 },
            { name: 'requests', labels: {}, ts: T_MS, value: 7, meta: counter, point: 2 },
            { name: 'ratio', labels: {}, ts: NOW, value: 0.25, meta: upDown, point: 3 },
            { name: 'queue_depth', labels: {}, ts: NOW, value: -3, meta: GAUGE, point: 4 },
            { name: 'queue_depth', labels: {}, ts: T_MS, value: 0, meta: GAUGE, point: 5 },
          ],
          logs: [],
          events: [],
        },
        rejected: 0,
        tooMany: 0,
        messages: [],
        warnings: [],
      });
    });

    it('expands a histogram into _count, _sum and cumulative _bucket series with le (incl. +Inf), all rows of a data point sharing its number', () => {
      const out = metricsBoth(
        metricsRequest([
          {
            name: 'http.duration',
            unit: 'ms',
            histogram: {
              aggregationTemporality: 2,
              dataPoints: [
                { timeUnixNano: T, count: '10', sum: 4.5, bucketCounts: ['2', '3', '4', '1'], explicitBounds: [0.1, 0.5, 1], attributes: [kv('route', s('/a'))] },
                // No sum and no buckets: only the count is known.
                { timeUnixNano: T, count: '4', attributes: [kv('route', s('/b'))] },
              ],
            },
          },
        ]),
      );
      const a = { route: '/a' };
      const meta = { ...HISTOGRAM, unit: 'ms' };
      const row = (name: string, labels: Record<string, string>, value: number, point: number) => ({ name, labels, ts: T_MS, value, meta, point });
      expect(out.batch.points).to.deep.equal([
        row('http.duration_count', a, 10, 1),
        row('http.duration_sum', a, 4.5, 1),
        row('http.duration_bucket', { ...a, le: '0.1' }, 2, 1),
        row('http.duration_bucket', { ...a, le: '0.5' }, 5, 1),
        row('http.duration_bucket', { ...a, le: '1' }, 9, 1),
        row('http.duration_bucket', { ...a, le: '+Inf' }, 10, 1),
        row('http.duration_count', { route: '/b' }, 4, 2),
      ]);
      expect([out.rejected, out.warnings]).to.deep.equal([0, []]);
    });

    it('maps a summary to _count, _sum and one series per quantile, kind summary, cumulative', () => {
      const out = metricsBoth(
        metricsRequest([
          {
            name: 'rpc_latency',
            summary: { dataPoints: [{ timeUnixNano: T, count: '5', sum: 12.5, quantileValues: [{ quantile: 0.5, value: 2 }, { quantile: 0.99, value: 7.5 }] }] },
          },
        ]),
      );
      const meta = { kind: 'summary', temporality: 'cumulative', monotonic: true, unit: '', description: '' };
      expect(out.batch.points).to.deep.equal([
        { name: 'rpc_latency_count', labels: {}, ts: T_MS, value: 5, meta, point: 1 },
        { name: 'rpc_latency_sum', labels: {}, ts: T_MS, value: 12.5, meta, point: 1 },
        { name: 'rpc_latency', labels: { quantile: '0.5' }, ts: T_MS, value: 2, meta, point: 1 },
        { name: 'rpc_latency', labels: { quantile: '0.99' }, ts: T_MS, value: 7.5, meta, point: 1 },
      ]);
    });

    it('maps an exponential histogram to _count and _sum only, and warns once per request that the rest is not stored', () => {
      const out = metricsBoth(
        metricsRequest([
          {
            name: 'payload_size',
            exponentialHistogram: {
              aggregationTemporality: 1,
              dataPoints: [
                { timeUnixNano: T, count: '6', sum: 30, scale: 2, zeroCount: '1', positive: { offset: 1, bucketCounts: ['2', '3'] } },
                { timeUnixNano: T, count: '2', sum: 3, min: 1, max: 2, attributes: [kv('k', s('v'))] },
              ],
            },
          },
          { name: 'other_size', exponentialHistogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: T, count: '1', negative: { bucketCounts: ['1'] } }] } },
        ]),
      );
      const delta = { kind: 'exponential_histogram', temporality: 'delta', monotonic: true, unit: '', description: '' };
      expect(out.batch.points).to.deep.equal([
        { name: 'payload_size_count', labels: {}, ts: T_MS, value: 6, meta: delta, point: 1 },
        { name: 'payload_size_sum', labels: {}, ts: T_MS, value: 30, meta: delta, point: 1 },
        { name: 'payload_size_count', labels: { k: 'v' }, ts: T_MS, value: 2, meta: delta, point: 2 },
        { name: 'payload_size_sum', labels: { k: 'v' }, ts: T_MS, value: 3, meta: delta, point: 2 },
        { name: 'other_size_count', labels: {}, ts: T_MS, value: 1, meta: { ...delta, temporality: 'cumulative' }, point: 3 },
      ]);
      expect(out.rejected).to.equal(0);
      expect(out.warnings).to.deep.equal(['exponential histograms: only _count and _sum are stored; buckets, zeroCount, min and max are not']);
      // Nothing but count and sum sent: nothing lost, no warning.
      const plain = metricsBoth(metricsRequest([{ name: 'e', exponentialHistogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: T, count: '0', sum: 0 }] } }]));
      expect([plain.batch.points.length, plain.warnings]).to.deep.equal([2, []]);
      // A data point that is refused loses everything, not just the parts a warning would name.
      const refused = metricsBoth(
        metricsRequest([{ name: 'e', exponentialHistogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: T, count: '1', sum: 'NaN', zeroCount: '1', attributes: [kv('a b', s('1')), kv('a_b', s('2'))] }] } }]),
      );
      expect([refused.rejected, refused.warnings]).to.deep.equal([1, []]);
      // An explicit histogram's min and max are not stored either.
      const minMax = metricsBoth(
        metricsRequest([{ name: 'h', histogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: T, count: '1', sum: 2, min: 2, max: 2, bucketCounts: ['1'] }] } }]),
      );
      expect(minMax.batch.points.map((p) => p.name)).to.deep.equal(['h_count', 'h_sum', 'h_bucket']);
      expect(minMax.warnings).to.deep.equal(['histograms: min and max are not stored']);
      // An attribute named like the label a part adds is replaced on that part, and reported.
      const shadowed = metricsBoth(
        metricsRequest([
          { name: 'h', histogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: T, count: '1', bucketCounts: ['1'], attributes: [kv('le', s('mine'))] }] } },
          { name: 'q', summary: { dataPoints: [{ timeUnixNano: T, count: '1', quantileValues: [{ quantile: 0.5, value: 1 }], attributes: [kv('quantile', s('mine'))] }] } },
        ]),
      );
      expect(shadowed.batch.points.map((p) => [p.name, p.labels])).to.deep.equal([
        ['h_count', { le: 'mine' }],
        ['h_bucket', { le: '+Inf' }],
        ['q_count', { quantile: 'mine' }],
        ['q_sum', { quantile: 'mine' }],
        ['q', { quantile: '0.5' }],
      ]);
      expect(shadowed.warnings).to.deep.equal(['an attribute "le" was replaced by the bucket bound', 'an attribute "quantile" was replaced by the quantile']);
    });

    it('temporality: sums, histograms and exponential histograms without it (0 or absent) are refused; JSON may name the enum', () => {
      const fixture = metricsRequest([
        { name: 'no_temporality', sum: { isMonotonic: true, dataPoints: [{ timeUnixNano: T, asInt: '1' }, { timeUnixNano: T, asInt: '2' }] } },
        { name: 'zero_temporality', sum: { aggregationTemporality: 0, dataPoints: [{ timeUnixNano: T, asInt: '1' }] } },
        { name: 'h', histogram: { dataPoints: [{ timeUnixNano: T, count: '1', bucketCounts: ['1'] }] } },
        { name: 'e', exponentialHistogram: { dataPoints: [{ timeUnixNano: T, count: '1' }] } },
        { name: 'named', sum: { aggregationTemporality: 'AGGREGATION_TEMPORALITY_DELTA', isMonotonic: true, dataPoints: [{ timeUnixNano: T, asInt: '3' }] } },
        { name: 'named_c', histogram: { aggregationTemporality: 'AGGREGATION_TEMPORALITY_CUMULATIVE', dataPoints: [{ timeUnixNano: T, count: '0' }] } },
      ]);
      const out = metricsBoth(fixture);
      expect(out.batch.points).to.deep.equal([
        { name: 'named', labels: {}, ts: T_MS, value: 3, meta: { kind: 'counter', temporality: 'delta', monotonic: true, unit: '', description: '' }, point: 6 },
        { name: 'named_c_count', labels: {}, ts: T_MS, value: 0, meta: HISTOGRAM, point: 7 },
      ]);
      expect(out.rejected).to.equal(5);
      expect(out.messages).to.deep.equal([
        '2 data point(s) rejected: metric "no_temporality": a sum without aggregationTemporality (neither delta nor cumulative)',
        '1 data point(s) rejected: metric "zero_temporality": a sum without aggregationTemporality (neither delta nor cumulative)',
        '1 data point(s) rejected: metric "h": a histogram without aggregationTemporality (neither delta nor cumulative)',
        '1 data point(s) rejected: metric "e": an exponential histogram without aggregationTemporality (neither delta nor cumulative)',
      ]);
      // An unknown enum value is no temporality either.
      const unknown = decodeOtlpMetrics(json(metricsRequest([{ name: 'x', sum: { aggregationTemporality: 3, dataPoints: [{ asInt: '1' }] } }])), 'json', NOW);
      expect([unknown.rejected, unknown.batch.points]).to.deep.equal([1, []]);
    });

    it('int64 values beyond ±(2^53−1) (asInt, count, bucket counts) are refused with a message, never rounded', () => {
      const max = '9007199254740991'; // 2^53 − 1
      const out = metricsBoth(
        metricsRequest([
          gauge('g', [
            { timeUnixNano: T, asInt: max, attributes: [kv('i', s('max'))] },
            { timeUnixNano: T, asInt: `-${max}`, attributes: [kv('i', s('min'))] },
            { timeUnixNano: T, asInt: '9007199254740993' },
            { timeUnixNano: T, asInt: '-9007199254740992' },
            { timeUnixNano: T, asInt: '9223372036854775807' },
          ]),
          {
            name: 'h',
            histogram: {
              aggregationTemporality: 2,
              dataPoints: [
                { timeUnixNano: T, count: '18446744073709551615' },
                { timeUnixNano: T, count: '9007199254740992', bucketCounts: ['9007199254740992'] },
                { timeUnixNano: T, count: max, bucketCounts: [max], attributes: [kv('i', s('max'))] },
              ],
            },
          },
          { name: 'q', summary: { dataPoints: [{ timeUnixNano: T, count: '9007199254740993' }] } },
        ]),
      );
      expect(out.batch.points.map((p) => [p.name, p.labels.i, p.value])).to.deep.equal([
        ['g', 'max', 9007199254740991],
        ['g', 'min', -9007199254740991],
        ['h_count', 'max', 9007199254740991],
        ['h_bucket', 'max', 9007199254740991],
      ]);
      expect(out.rejected).to.equal(6);
      expect(out.messages).to.deep.equal([
        '3 data point(s) rejected: metric "g": an asInt beyond ±(2^53−1), which cannot be stored exactly',
        '2 data point(s) rejected: metric "h": a count beyond ±(2^53−1), which cannot be stored exactly',
        '1 data point(s) rejected: metric "q": a count beyond ±(2^53−1), which cannot be stored exactly',
      ]);
      // A bucket count alone beyond the limit; and JSON numbers, which JSON.parse already rounded.
      const viaJson = decodeOtlpMetrics(
        Buffer.from(
          '{"resourceMetrics":[{"scopeMetrics":[{"metrics":[' +
            '{"name":"j","gauge":{"dataPoints":[{"asInt":9007199254740993}]}},' +
            '{"name":"b","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"1","bucketCounts":["1","18446744073709551615"],"explicitBounds":[1]}]}}]}]}]}',
        ),
        'json',
        NOW,
      );
      expect(viaJson.batch.points).to.deep.equal([]);
      expect(viaJson.messages).to.deep.equal([
        '1 data point(s) rejected: metric "j": an asInt beyond ±(2^53−1), which cannot be stored exactly',
        '1 data point(s) rejected: metric "b": a bucketCounts entry beyond ±(2^53−1), which cannot be stored exactly',
      ]);
    });

    it('time: a timeUnixNano of 500 ns is a real time (the epoch), a missing one on a cumulative point is the arrival', () => {
      const out = metricsBoth(
        metricsRequest([
          { name: 'c', sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [{ startTimeUnixNano: START, asInt: '1' }, { startTimeUnixNano: START, timeUnixNano: '500', asInt: '2' }] } },
          { name: 'h', histogram: { aggregationTemporality: 2, dataPoints: [{ startTimeUnixNano: START, count: '0' }] } },
          gauge('g', [{ timeUnixNano: '999999', asInt: '3' }, { timeUnixNano: '1000000', asInt: '4' }]),
        ]),
      );
      expect(out.batch.points.map((p) => [p.name, p.ts])).to.deep.equal([
        ['c', NOW],
        ['c', 0],
        ['h_count', NOW],
        ['g', 0],
        ['g', 1],
      ]);
    });

    it('a histogram whose bucket counts do not sum to its count is refused', () => {
      const out = metricsBoth(
        metricsRequest([
          {
            name: 'h',
            histogram: {
              aggregationTemporality: 1,
              dataPoints: [
                { timeUnixNano: T, count: '6', bucketCounts: ['1', '2', '2'], explicitBounds: [1, 2] },
                { timeUnixNano: T, bucketCounts: ['0', '1'], explicitBounds: [1] }, // count absent: 0
                { timeUnixNano: T, count: '5', sum: 7, bucketCounts: ['1', '2', '2'], explicitBounds: [1, 2], attributes: [kv('ok', s('yes'))] },
              ],
            },
          },
        ]),
      );
      expect(out.messages).to.deep.equal([
        '1 data point(s) rejected: metric "h": a histogram whose bucketCounts sum to 5 but count is 6',
        '1 data point(s) rejected: metric "h": a histogram whose bucketCounts sum to 1 but count is 0',
      ]);
      expect(out.rejected).to.equal(2);
      expect(out.batch.points.map((p) => [p.name, p.labels.le ?? '', p.value, p.point])).to.deep.equal([
        ['h_count', '', 5, 3],
        ['h_sum', '', 7, 3],
        ['h_bucket', '1', 1, 3],
        ['h_bucket', '2', 3, 3],
        ['h_bucket', '+Inf', 5, 3],
      ]);
    });

    it('otel_resource_id: a hash of the non-allow-listed resource attributes, unless service.instance.id is set; set last', () => {
      // sha256 of the canonical JSON (keys sorted, values as text), first 16 hex digits, computed here by hand.
      const idOf = (canonical: string) => createHash('sha256').update(canonical).digest('hex').slice(0, 16);
      const pid1 = idOf('{"process.pid":"1","telemetry.sdk.language":"nodejs"}');
      const pid2 = idOf('{"process.pid":"2","telemetry.sdk.language":"nodejs"}');
      const point = (v: string, attributes: J[] = []) => [gauge('g', [{ timeUnixNano: T, asInt: v, attributes }])];
      const fixture: J = {
        resourceMetrics: [
          // The same attributes in another order and with a repeated key (the last wins): the same id.
          { resource: { attributes: [kv('service.name', s('api')), kv('process.pid', int('1')), kv('telemetry.sdk.language', s('nodejs'))] }, scopeMetrics: [{ metrics: point('1') }] },
          { resource: { attributes: [kv('telemetry.sdk.language', s('nodejs')), kv('process.pid', int('9')), kv('process.pid', int('1')), kv('service.name', s('api'))] }, scopeMetrics: [{ metrics: point('2') }] },
          { resource: { attributes: [kv('service.name', s('api')), kv('process.pid', int('2')), kv('telemetry.sdk.language', s('nodejs'))] }, scopeMetrics: [{ metrics: point('3') }] },
          // service.instance.id identifies the process: no hash.
          { resource: { attributes: [kv('service.name', s('api')), kv('service.instance.id', s('i-1')), kv('process.pid', int('1'))] }, scopeMetrics: [{ metrics: point('4') }] },
          // Only allow-listed attributes: nothing to tell processes apart by, no label.
          { resource: { attributes: [kv('service.name', s('api')), kv('host.name', s('h'))] }, scopeMetrics: [{ metrics: point('5') }] },
          // An empty service.instance.id identifies nothing.
          { resource: { attributes: [kv('service.instance.id', s('')), kv('process.pid', int('2')), kv('telemetry.sdk.language', s('nodejs'))] }, scopeMetrics: [{ metrics: point('6') }] },
          // Neither a scope nor a data point attribute of that name can stand in for it.
          {
            resource: { attributes: [kv('process.pid', int('1')), kv('telemetry.sdk.language', s('nodejs'))] },
            scopeMetrics: [{ scope: { attributes: [kv('otel_resource_id', s('forged'))] }, metrics: [...point('7'), ...point('8', [kv('otel_resource_id', s('forged'))])] }],
          },
        ],
      };
      const out = metricsBoth(fixture);
      expect(out.batch.points.map((p) => [p.value, p.labels])).to.deep.equal([
        [1, { 'service.name': 'api', otel_resource_id: pid1 }],
        [2, { 'service.name': 'api', otel_resource_id: pid1 }],
        [3, { 'service.name': 'api', otel_resource_id: pid2 }],
        [4, { 'service.name': 'api', 'service.instance.id': 'i-1' }],
        [5, { 'service.name': 'api', 'host.name': 'h' }],
        [6, { 'service.instance.id': '', otel_resource_id: pid2 }],
        [7, { otel_resource_id: pid1 }],
        [8, { otel_resource_id: pid1 }],
      ]);
      expect(pid1).to.not.equal(pid2);
      expect(RESOURCE_ID_LABEL).to.equal('otel_resource_id');
      expect(out.warnings).to.deep.equal(['an attribute "otel_resource_id" was replaced by the resource\'s identity']);
    });

    it('labels: data point ∪ scope attributes ∪ otel_scope_name ∪ allow-listed resource attributes, the data point winning', () => {
      const resource = [
        kv('service.name', s('checkout')),
        kv('service.version', s('1.2.3')),
        kv('host.name', s('web-1')),
        kv('k8s.pod.name', s('pod-7')),
        kv('cloud.region', s('eu-west-1')),
        kv('process.pid', int('1234')),
        kv('telemetry.sdk.language', s('nodejs')),
      ];
      const resourceId = createHash('sha256').update('{"process.pid":"1234","telemetry.sdk.language":"nodejs"}').digest('hex').slice(0, 16);
      const scope = { name: 'my-lib', version: '1.0', attributes: [kv('lib.attr', s('x')), kv('host.name', s('scope-host'))] };
      const attributes = [
        kv('code', int('200')),
        kv('ratio', { doubleValue: 0.5 }),
        kv('ok', { boolValue: true }),
        kv('tags', { arrayValue: { values: [s('a'), int('2')] } }),
        kv('meta', { kvlistValue: { values: [kv('k', s('v')), kv('n', { doubleValue: 1.5 })] } }),
        kv('service.version', s('from-point')),
      ];
      const fixture = metricsRequest([gauge('g', [{ timeUnixNano: T, asInt: '1', attributes }])], resource, scope);
      // A second scope without a name: no otel_scope_name label.
      (fixture.resourceMetrics as J[])[0].scopeMetrics = [
        ...((fixture.resourceMetrics as J[])[0].scopeMetrics as J[]),
        { scope: {}, metrics: [gauge('g', [{ timeUnixNano: T, asInt: '2' }])] },
      ];
      const out = metricsBoth(fixture);
      expect(out.batch.points).to.deep.equal([
        {
          name: 'g',
          labels: {
            'service.name': 'checkout',
            'service.version': 'from-point',
            'host.name': 'scope-host',
            'k8s.pod.name': 'pod-7',
            'cloud.region': 'eu-west-1',
            otel_scope_name: 'my-lib',
            otel_resource_id: resourceId,
            'lib.attr': 'x',
            code: '200',
            ratio: '0.5',
            ok: 'true',
            tags: '["a",2]',
            meta: '{"k":"v","n":1.5}',
          },
          ts: T_MS,
          value: 1,
          meta: GAUGE,
          point: 1,
        },
        {
          name: 'g',
          labels: { 'service.name': 'checkout', 'service.version': '1.2.3', 'host.name': 'web-1', 'k8s.pod.name': 'pod-7', 'cloud.region': 'eu-west-1', otel_resource_id: resourceId },
          ts: T_MS,
          value: 2,
          meta: GAUGE,
          point: 2,
        },
      ]);
    });

    it('replaces characters that label keys and metric names may not hold with _', () => {
      const attributes = [
        kv('http.status code', s('1')),
        kv('1xx', s('2')),
        kv('héllo', s('3')),
        kv('a:b', s('4')),
        kv('k8s.pod/name-x', s('5')),
      ];
      const out = metricsBoth(
        metricsRequest([
          gauge('http server.duration (ms)', [{ timeUnixNano: T, asInt: '1', attributes }]),
          gauge('9lives', [{ timeUnixNano: T, asInt: '2' }]),
          gauge('ns:metric.name/x-y', [{ timeUnixNano: T, asInt: '3' }]),
        ]),
      );
      expect(out.batch.points).to.deep.equal([
        { name: 'http_server.duration__ms_', labels: { 'http.status_code': '1', _1xx: '2', h_llo: '3', a_b: '4', 'k8s.pod/name-x': '5' }, ts: T_MS, value: 1, meta: GAUGE, point: 1 },
        { name: '_9lives', labels: {}, ts: T_MS, value: 2, meta: GAUGE, point: 2 },
        { name: 'ns:metric.name/x-y', labels: {}, ts: T_MS, value: 3, meta: GAUGE, point: 3 },
      ]);
      // Renaming alone loses nothing: no warning.
      expect(out.warnings).to.deep.equal([]);
    });

    it('attribute keys that sanitize to one label key are all kept (__2, __3 … in key order, whatever the order sent) and reported', () => {
      const keys = [kv('http.status code', s('space')), kv('http.status_code', s('valid')), kv('http.status:code', s('colon')), kv('http.status_code__2', s('taken'))];
      const expected = { 'http.status_code': 'valid', 'http.status_code__3': 'space', 'http.status_code__4': 'colon', 'http.status_code__2': 'taken' };
      const warning =
        'attribute keys that sanitize to the same label key are kept apart: "http.status_code" as "http.status_code", ' +
        '"http.status code" as "http.status_code__3", "http.status:code" as "http.status_code__4"';
      for (const order of [keys, [...keys].reverse(), [keys[2], keys[0], keys[3], keys[1]]]) {
        const out = metricsBoth(metricsRequest([gauge('g', [{ timeUnixNano: T, asInt: '1', attributes: order }, { timeUnixNano: T, asInt: '2', attributes: order }])]));
        expect(out.batch.points.map((p) => p.labels)).to.deep.equal([expected, expected]);
        expect([out.rejected, out.warnings]).to.deep.equal([0, [warning]]);
      }
      // No valid key among them: the first in code-unit order keeps the name; scope attributes too.
      const out = metricsBoth(metricsRequest([gauge('g', [{ timeUnixNano: T, asInt: '1' }])], [], { attributes: [kv('a:b', s('colon')), kv('a b', s('space'))] }));
      expect(out.batch.points[0].labels).to.deep.equal({ a_b: 'space', a_b__2: 'colon' });
      expect(out.warnings).to.deep.equal(['attribute keys that sanitize to the same label key are kept apart: "a b" as "a_b", "a:b" as "a_b__2"']);
    });

    it('unit and description: stored as sent, NUL replaced, a long description truncated with a warning; wrong types refused', () => {
      const out = metricsBoth(
        metricsRequest([
          { name: 'a', unit: 'By\u0000s', description: `d\u0000${'x'.repeat(2000)}`, gauge: { dataPoints: [{ timeUnixNano: T, asInt: '1' }] } },
          { name: 'b', unit: 'u'.repeat(101), gauge: { dataPoints: [{ timeUnixNano: T, asInt: '2' }] } },
          { name: 'c', unit: 'u'.repeat(100), gauge: { dataPoints: [{ timeUnixNano: T, asInt: '3' }] } },
        ]),
      );
      expect(out.batch.points.map((p) => [p.name, p.meta?.unit, p.meta?.description])).to.deep.equal([
        ['a', 'By\ufffds', `d\ufffd${'x'.repeat(1022)}`],
        ['c', 'u'.repeat(100), ''],
      ]);
      expect(out.messages).to.deep.equal(['1 data point(s) rejected: metric "b": a unit longer than 100 characters']);
      expect(out.warnings).to.deep.equal(['metric descriptions longer than 1024 characters are truncated']);

      const wrong = decodeOtlpMetrics(
        json(
          metricsRequest([
            { name: 'u', unit: 5, gauge: { dataPoints: [{ asInt: '1' }, { asInt: '2' }] } },
            { name: 'd', description: { text: 'x' }, gauge: { dataPoints: [{ asInt: '1' }] } },
            { name: 7, gauge: { dataPoints: [{ asInt: '1' }] } },
            { name: 'm', sum: { aggregationTemporality: 2, isMonotonic: 'yes', dataPoints: [{ asInt: '1' }] } },
          ]),
        ),
        'json',
        NOW,
      );
      expect([wrong.rejected, wrong.batch.points]).to.deep.equal([5, []]);
      expect(wrong.messages).to.deep.equal([
        '2 data point(s) rejected: metric "u": a unit that is not a string',
        '1 data point(s) rejected: metric "d": a description that is not a string',
        '1 data point(s) rejected: a metric name that is not a string',
        '1 data point(s) rejected: metric "m": a sum whose isMonotonic is not a boolean',
      ]);
    });

    it('drops and counts data points that break the limits or carry NaN/Infinity, and stores the rest', () => {
      const attrs = (n: number, value = 'v', keyLen = 1): J[] => Array.from({ length: n }, (_, i) => kv(`${'k'.repeat(keyLen)}${i}`, s(value)));
      const out = metricsBoth(
        metricsRequest([
          gauge('ok', [{ timeUnixNano: T, asInt: '1' }]),
          gauge('bad_values', [{ asDouble: 'NaN' }, { asDouble: 'Infinity' }, { asDouble: '-Infinity' }, { timeUnixNano: T }]),
          gauge('labels', [
            { asInt: '1', attributes: attrs(33) }, // 33 labels
            { asInt: '2', attributes: [kv('k', s('v'.repeat(1025)))] },
            { asInt: '3', attributes: [kv('k'.repeat(101), s('v'))] },
            { asInt: '4', attributes: [kv('', s('v'))] },
            { timeUnixNano: T, asInt: '5', attributes: [...attrs(31), kv('k'.repeat(100), s('v'.repeat(1024)))] }, // exactly at the limits: kept
          ]),
          {
            name: 'h',
            histogram: {
              aggregationTemporality: 2,
              dataPoints: [
                { timeUnixNano: T, count: '3', bucketCounts: ['1', '2'], explicitBounds: [1, 2] }, // one bucket short
                { timeUnixNano: T, count: '3', bucketCounts: ['1', '1', '1'], explicitBounds: [2, 1] }, // bounds not increasing
                { timeUnixNano: T, count: '1', sum: 'NaN' },
                { timeUnixNano: T, count: '1', bucketCounts: ['0', '1'], explicitBounds: [5], attributes: attrs(31) }, // 31 + le = 32: kept
                { timeUnixNano: T, count: '1', bucketCounts: ['0', '1'], explicitBounds: [5], attributes: attrs(32) }, // 32 + le = 33
              ],
            },
          },
          gauge('', [{ asInt: '1' }]),
          gauge('x'.repeat(200), [{ timeUnixNano: T, asInt: '6' }]), // exactly 200: kept
          { name: 'y'.repeat(195), histogram: { aggregationTemporality: 2, dataPoints: [{ count: '1' }] } }, // y…y_count is 201
        ]),
      );
      expect(out.rejected).to.equal(4 + 4 + 3 + 1 + 1 + 1);
      const names = out.batch.points.map((p) => `${p.name.slice(0, 10)}=${p.value}`);
      expect(names).to.deep.equal(['ok=1', 'labels=5', 'h_count=1', 'h_bucket=0', 'h_bucket=1', `${'x'.repeat(10)}=6`]);
      expect(Object.keys(out.batch.points[1].labels)).to.have.length(32);
      expect(out.batch.points[3].labels.le).to.equal('5');
      expect(out.messages).to.include.members([
        '3 data point(s) rejected: metric "bad_values": a NaN, infinite or unreadable value',
        '1 data point(s) rejected: metric "bad_values": a data point without a value',
        '1 data point(s) rejected: metric "labels": more than 32 labels',
        '1 data point(s) rejected: metric "labels": a label value longer than 1024 characters',
        '1 data point(s) rejected: metric "labels": a label key longer than 100 characters',
        '1 data point(s) rejected: metric "labels": an attribute with an empty key',
        '1 data point(s) rejected: metric "h": a histogram whose bucketCounts do not have one more entry than explicitBounds',
        '1 data point(s) rejected: metric "h": a histogram whose explicitBounds are not finite and increasing',
        // At most 10 reasons are spelled out; the nameless metric and the long name are the 11th and 12th.
        '2 data point(s) rejected for other reasons',
      ]);
      expect(out.messages).to.have.length(11);
    });

    it('skips data points flagged "no recorded value" without counting them', () => {
      const out = metricsBoth(metricsRequest([gauge('g', [{ timeUnixNano: T, flags: 1 }, { timeUnixNano: T, asDouble: 2 }])]));
      expect(out.batch.points).to.deep.equal([{ name: 'g', labels: {}, ts: T_MS, value: 2, meta: GAUGE, point: 2 }]);
      expect(out.rejected).to.equal(0);
    });

    it('stores at most maxItems (10,000) data points of a request and counts the rest', () => {
      const dataPoints = Array.from({ length: 10_002 }, (_, i) => ({ timeUnixNano: T, asInt: String(i) }));
      const out = metricsBoth(metricsRequest([gauge('many', dataPoints)]));
      expect(out.batch.points).to.have.length(10_000);
      expect([out.batch.points[9_999].value, out.batch.points[9_999].point]).to.deep.equal([9_999, 10_000]);
      expect(out.rejected).to.equal(2);
      // Told apart from the invalid ones, for the refusal counts (dropped_too_many_items).
      expect(out.tooMany).to.equal(2);
      expect(out.messages).to.deep.equal(['2 data point(s) rejected: the request holds more than 10000 data points']);
    });

    it('JSON: int64 fields as numbers or strings, doubles as numeric strings, unknown fields ignored', () => {
      const out = decodeOtlpMetrics(
        json({
          resourceMetrics: [
            {
              futureField: { x: 1 },
              scopeMetrics: [
                {
                  metrics: [
                    gauge('a', [{ timeUnixNano: 1.7000000001234568e18, asInt: 42, unknown: true }]),
                    gauge('b', [{ timeUnixNano: T, asDouble: '2.5' }]),
                    { name: 'c', histogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: T, count: 3, bucketCounts: [1, 2], explicitBounds: [10] }] } },
                    gauge('d', [{ timeUnixNano: 'soon', asInt: '1' }]),
                    gauge('e', [{ timeUnixNano: T, asInt: 'many' }]),
                  ],
                },
              ],
            },
          ],
        }),
        'json',
        NOW,
      );
      expect(out.batch.points).to.deep.equal([
        { name: 'a', labels: {}, ts: T_MS, value: 42, meta: GAUGE, point: 1 },
        { name: 'b', labels: {}, ts: T_MS, value: 2.5, meta: GAUGE, point: 2 },
        { name: 'c_count', labels: {}, ts: T_MS, value: 3, meta: HISTOGRAM, point: 3 },
        { name: 'c_bucket', labels: { le: '10' }, ts: T_MS, value: 1, meta: HISTOGRAM, point: 3 },
        { name: 'c_bucket', labels: { le: '+Inf' }, ts: T_MS, value: 3, meta: HISTOGRAM, point: 3 },
      ]);
      expect(out.rejected).to.equal(2);
      expect(out.messages).to.deep.equal(['1 data point(s) rejected: metric "d": an unreadable timeUnixNano', '1 data point(s) rejected: metric "e": a NaN, infinite or unreadable value']);
    });
  });

  describe('logs', () => {
    it('maps a LogRecord with its attributes, resource, scope name and trace context', () => {
      const out = logsBoth(
        logsRequest(
          [
            {
              timeUnixNano: T,
              observedTimeUnixNano: '1700000001000000000',
              severityNumber: 17,
              severityText: 'ERROR',
              body: s('boom'),
              attributes: [
                kv('user.id', int('12')),
                kv('big', int('9007199254740993')),
                kv('nan', { doubleValue: 'NaN' }),
                kv('flag', { boolValue: false }),
                kv('list', { arrayValue: { values: [s('a')] } }),
                kv('map', { kvlistValue: { values: [kv('x', int('1'))] } }),
                kv('raw', { bytesValue: 'AQID' }),
                kv('empty', {}),
              ],
              traceId: '5B8EFFF798038103D269B633813FC60C',
              spanId: 'EEE19B7EC3C1B174',
              eventName: 'checkout.failed',
            },
          ],
          [kv('service.name', s('api')), kv('process.pid', int('42'))],
          { name: 'logger-x' },
        ),
      );
      expect(out).to.deep.equal({
        batch: {
          points: [],
          logs: [
            {
              ts: T_MS,
              severityNumber: 17,
              severityText: 'ERROR',
              body: 'boom',
              attributes: { 'user.id': 12, big: '9007199254740993', nan: 'NaN', flag: false, list: ['a'], map: { x: 1 }, raw: 'AQID', empty: null },
              resource: { 'service.name': 'api', 'process.pid': 42, 'otel.scope.name': 'logger-x' },
              traceId: '5b8efff798038103d269b633813fc60c',
              spanId: 'eee19b7ec3c1b174',
              observedTs: 1_700_000_001_000,
              eventName: 'checkout.failed',
            },
          ],
          events: [],
        },
        rejected: 0,
        tooMany: 0,
        messages: [],
        warnings: [],
      });
    });

    it('severity: the number as sent, else derived from severityText, else 0 (unspecified, no text)', () => {
      const out = logsBoth(
        logsRequest([
          { severityNumber: 5 },
          { severityText: 'WARN' },
          { severityText: 'Warning' },
          { severityText: 'ERROR2' },
          { severityText: 'fatal' },
          { severityText: 'verbose' },
          {},
          { severityNumber: 10, severityText: 'notice' },
        ]),
      );
      expect(out.batch.logs.map((l) => [l.severityNumber, l.severityText])).to.deep.equal([
        [5, 'debug'],
        [13, 'WARN'],
        [13, 'Warning'],
        [18, 'ERROR2'],
        [21, 'fatal'],
        [0, 'verbose'],
        [0, ''],
        [10, 'notice'],
      ]);
      // JSON leniency: an enum name, or a number outside 1–24 (treated as unset).
      const lenient = decodeOtlpLogs(json(logsRequest([{ severityNumber: 'SEVERITY_NUMBER_WARN' }, { severityNumber: 99, severityText: 'error' }])), 'json', NOW);
      expect(lenient.batch.logs.map((l) => [l.severityNumber, l.severityText])).to.deep.equal([
        [13, 'warn'],
        [17, 'error'],
      ]);
    });

    it('body: a string as is, other scalars as printed, structures as compact JSON, none as ""', () => {
      const out = logsBoth(
        logsRequest([
          { body: s('plain "text"') },
          { body: int('42') },
          { body: { doubleValue: 1.5 } },
          { body: { boolValue: true } },
          { body: { kvlistValue: { values: [kv('a', s('b')), kv('n', int('1'))] } } },
          { body: { arrayValue: { values: [s('x'), { boolValue: false }] } } },
          {},
        ]),
      );
      expect(out.batch.logs.map((l) => l.body)).to.deep.equal(['plain "text"', '42', '1.5', 'true', '{"a":"b","n":1}', '["x",false]', '']);
    });

    it('ts: timeUnixNano (any non-zero value, 500 ns too), else observedTimeUnixNano, else now; observedTs: null when unset', () => {
      const out = logsBoth(
        logsRequest([{ timeUnixNano: T, observedTimeUnixNano: START }, { observedTimeUnixNano: START }, {}, { timeUnixNano: '500' }, { timeUnixNano: '0', observedTimeUnixNano: '0' }]),
      );
      expect(out.batch.logs.map((l) => [l.ts, l.observedTs])).to.deep.equal([
        [T_MS, START_MS],
        [START_MS, START_MS],
        [NOW, null],
        [0, null],
        [NOW, null],
      ]);
      // JSON only: numbers beyond a fixed64 or of the wrong type are unreadable.
      const bad = decodeOtlpLogs(json(logsRequest([{ observedTimeUnixNano: '18446744073709551616' }, { timeUnixNano: 1e30 }, { observedTimeUnixNano: true }, { observedTimeUnixNano: '18446744073709551615' }])), 'json', NOW);
      expect(bad.batch.logs.map((l) => l.observedTs)).to.deep.equal([Math.floor(18446744073709551615 / 1e6)]);
      expect(bad.messages).to.deep.equal(['3 log record(s) rejected: an unreadable timeUnixNano or observedTimeUnixNano']);
    });

    it('eventName: stored as sent (NUL included; the writer replaces it), empty as null; over 4,096 characters or not a string: the record is refused', () => {
      const out = logsBoth(logsRequest([{ eventName: 'a.b' }, { eventName: '' }, {}, { eventName: 'x\u0000y' }, { eventName: 'e'.repeat(4096) }, { eventName: 'e'.repeat(4097) }]));
      expect(out.batch.logs.map((l) => l.eventName)).to.deep.equal(['a.b', null, null, 'x\u0000y', 'e'.repeat(4096)]);
      expect(out.messages).to.deep.equal(['1 log record(s) rejected: an eventName longer than 4096 characters']);
      const wrong = decodeOtlpLogs(json(logsRequest([{ eventName: 42 }, { eventName: { stringValue: 'x' } }, { eventName: 'ok' }])), 'json', NOW);
      expect(wrong.batch.logs.map((l) => l.eventName)).to.deep.equal(['ok']);
      expect(wrong.rejected).to.equal(2);
      expect(wrong.messages).to.deep.equal(['2 log record(s) rejected: an eventName that is not a string']);
    });

    it('trace and span ids: lowercase hex; null when absent, all zero or the wrong size; base64 accepted in JSON', () => {
      const ids = (records: J[], format: 'json' | 'protobuf') => {
        const fixture = logsRequest(records);
        const body = format === 'json' ? json(fixture) : protobufOf(OTLP_MESSAGES.logsRequest, fixture);
        return decodeOtlpLogs(body, format, NOW).batch.logs.map((l) => [l.traceId, l.spanId]);
      };
      const records = [
        { traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0102030405060708' },
        {},
        { traceId: '00000000000000000000000000000000', spanId: '0000000000000000' },
        { traceId: '010203', spanId: '01020304050607' },
      ];
      const expected = [['0102030405060708090a0b0c0d0e0f10', '0102030405060708'], [null, null], [null, null], [null, null]];
      expect(ids(records, 'protobuf')).to.deep.equal(expected);
      expect(ids(records, 'json')).to.deep.equal(expected);
      expect(ids([{ traceId: 'AQIDBAUGBwgJCgsMDQ4PEA==', spanId: 'AQIDBAUGBwg=' }, { traceId: 'not an id!', spanId: 42 }], 'json')).to.deep.equal([
        ['0102030405060708090a0b0c0d0e0f10', '0102030405060708'],
        [null, null],
      ]);
    });

    it('drops and counts records over the limits, and every record of a resource over them', () => {
      const attrs = (n: number): J[] => Array.from({ length: n }, (_, i) => kv(`k${i}`, s('v')));
      const fixture = logsRequest([
        { body: s('x'.repeat(65_536)), attributes: [...attrs(63), kv('k'.repeat(100), s('v'.repeat(4096)))] }, // at the limits: kept
        { body: s('x'.repeat(65_537)) },
        { attributes: attrs(65) },
        { attributes: [kv('k', s('v'.repeat(4097)))] },
        { attributes: [kv('k', { arrayValue: { values: [s('v'.repeat(4095))] } })] }, // ["v…v"] is 4099 long
        { attributes: [kv('k'.repeat(101), s('v'))] },
        { severityText: 'E'.repeat(4097) },
      ]);
      (fixture.resourceLogs as J[]).push({ resource: { attributes: attrs(65) }, scopeLogs: [{ logRecords: [{ body: s('a') }, { body: s('b') }] }] });
      (fixture.resourceLogs as J[]).push({ resource: { attributes: [kv('k'.repeat(101), s('v'))] }, scopeLogs: [{ logRecords: [{ body: s('c') }] }] });
      (fixture.resourceLogs as J[]).push({ resource: { attributes: [kv('', s('v'))] }, scopeLogs: [{ logRecords: [{ body: s('d') }] }] });
      const out = logsBoth(fixture);
      expect(out.batch.logs).to.have.length(1);
      expect(out.batch.logs[0].body).to.have.length(65_536);
      expect(out.rejected).to.equal(6 + 2 + 1 + 1);
      expect(out.messages).to.deep.equal([
        '1 log record(s) rejected: a body longer than 65536 characters',
        '1 log record(s) rejected: more than 64 log attributes',
        '2 log record(s) rejected: a log attribute value longer than 4096 characters',
        '1 log record(s) rejected: a log attribute key longer than 100 characters',
        '1 log record(s) rejected: a severityText longer than 4096 characters',
        '2 log record(s) rejected: more than 64 resource attributes',
        '1 log record(s) rejected: a resource attribute key longer than 100 characters',
        '1 log record(s) rejected: a resource attribute with an empty key',
      ]);
      expect(out.warnings).to.deep.equal([]);
    });

    it('a resource attribute value over 4,096 characters is cut to 4,096, listed in sentinel.truncated_attributes and reported; its records are stored', () => {
      const cmd = 'java -jar app.jar ' + 'x'.repeat(5000);
      const structured = { arrayValue: { values: Array.from({ length: 500 }, (_, i) => s(`arg-${i}`)) } };
      const structuredJson = JSON.stringify(Array.from({ length: 500 }, (_, i) => `arg-${i}`));
      // A surrogate pair straddling the cut: the high half is not kept alone.
      const emoji = 'e'.repeat(4095) + '\u{1F600}';
      const fixture = logsRequest(
        [{ body: s('one') }, { body: s('two') }],
        [kv('service.name', s('api')), kv('process.command_line', s(cmd)), kv('process.command_args', structured), kv('emoji', s(emoji))],
        { name: 'scope-' + 'n'.repeat(5000) },
      );
      // A second resource with nothing over the limit is left alone; one whose only record is refused gets no warning.
      (fixture.resourceLogs as J[]).push({ resource: { attributes: [kv('service.name', s('web'))] }, scopeLogs: [{ logRecords: [{ body: s('three') }] }] });
      (fixture.resourceLogs as J[]).push({ resource: { attributes: [kv('other', s('o'.repeat(4097)))] }, scopeLogs: [{ logRecords: [{ eventName: 'e'.repeat(4097) }] }] });
      const out = logsBoth(fixture);
      expect(out.rejected).to.equal(1);
      expect(out.batch.logs.map((l) => l.body)).to.deep.equal(['one', 'two', 'three']);
      const expectedResource = {
        'service.name': 'api',
        'process.command_line': cmd.slice(0, 4096),
        'process.command_args': structuredJson.slice(0, 4096),
        emoji: 'e'.repeat(4095),
        'otel.scope.name': ('scope-' + 'n'.repeat(5000)).slice(0, 4096),
        'sentinel.truncated_attributes': ['process.command_line', 'process.command_args', 'emoji', 'otel.scope.name'],
      };
      expect(out.batch.logs[0].resource).to.deep.equal(expectedResource);
      expect(out.batch.logs[1].resource).to.deep.equal(expectedResource);
      expect(out.batch.logs[2].resource).to.deep.equal({ 'service.name': 'web' });
      expect(structuredJson.length).to.be.greaterThan(4096);
      expect(out.warnings).to.deep.equal([
        'resource attribute "process.command_line" truncated to 4096 characters (listed in sentinel.truncated_attributes)',
        'resource attribute "process.command_args" truncated to 4096 characters (listed in sentinel.truncated_attributes)',
        'resource attribute "emoji" truncated to 4096 characters (listed in sentinel.truncated_attributes)',
        'resource attribute "otel.scope.name" truncated to 4096 characters (listed in sentinel.truncated_attributes)',
      ]);
    });
  });

  describe('encodings', () => {
    it('JSON and protobuf give identical batches for a request with every metric kind', () => {
      const fixture = metricsRequest(
        [
          gauge('g', [{ timeUnixNano: T, asDouble: 1.25, attributes: [kv('a', s('1'))] }]),
          { name: 's', sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [{ timeUnixNano: T, asInt: '9' }] } },
          { name: 'h', histogram: { aggregationTemporality: 1, dataPoints: [{ timeUnixNano: T, count: '2', sum: 3, bucketCounts: ['1', '1'], explicitBounds: [2] }] } },
          { name: 'e', exponentialHistogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: T, count: '2', sum: 3 }] } },
          { name: 'q', summary: { dataPoints: [{ timeUnixNano: T, count: '2', sum: 3, quantileValues: [{ quantile: 0.9, value: 2 }] }] } },
        ],
        [kv('service.name', s('svc'))],
        { name: 'scope' },
      );
      const out = metricsBoth(fixture);
      expect(out.batch.points.map((p) => p.name)).to.deep.equal(['g', 's', 'h_count', 'h_sum', 'h_bucket', 'h_bucket', 'e_count', 'e_sum', 'q_count', 'q_sum', 'q']);
      expect(out.batch.points.every((p) => p.labels['service.name'] === 'svc' && p.labels.otel_scope_name === 'scope')).to.equal(true);
      expect(out.batch.points.map((p) => `${p.meta?.kind}/${p.meta?.temporality}/${p.point}`)).to.deep.equal([
        'gauge/null/1',
        'counter/cumulative/2',
        'histogram/delta/3',
        'histogram/delta/3',
        'histogram/delta/3',
        'histogram/delta/3',
        'exponential_histogram/cumulative/4',
        'exponential_histogram/cumulative/4',
        'summary/cumulative/5',
        'summary/cumulative/5',
        'summary/cumulative/5',
      ]);
    });

    it('an empty request (protobuf: zero bytes; JSON: {}, zero bytes or only whitespace) is valid and holds nothing', () => {
      const bodies = [
        [Buffer.alloc(0), 'protobuf'],
        [json({}), 'json'],
        [Buffer.alloc(0), 'json'],
        [Buffer.from(' \r\n\t '), 'json'],
        [Buffer.from('\uFEFF\n'), 'json'],
      ] as const;
      for (const [body, format] of bodies) {
        const empty = { batch: { points: [], logs: [], events: [] }, rejected: 0, tooMany: 0, messages: [], warnings: [] };
        expect(decodeOtlpMetrics(body, format, NOW), `${format} ${JSON.stringify(body.toString())}`).to.deep.equal(empty);
        expect(decodeOtlpLogs(body, format, NOW), `${format} ${JSON.stringify(body.toString())}`).to.deep.equal(empty);
      }
      // Whitespace JSON does not know (a no-break space) is not an empty body.
      expect(errorOf(() => decodeOtlpMetrics(Buffer.from('\u00a0'), 'json', NOW)).code).to.equal('bad_request');
    });

    it('undecodable input is bad_request', () => {
      const deep = (n: number): J => (n === 0 ? s('x') : { arrayValue: { values: [deep(n - 1)] } });
      const cases: [string, () => unknown][] = [
        ['garbage protobuf', () => decodeOtlpMetrics(Buffer.from('this is not protobuf at all'), 'protobuf', NOW)],
        ['truncated protobuf', () => decodeOtlpLogs(protobufOf(OTLP_MESSAGES.logsRequest, logsRequest([{ body: s('hello') }])).subarray(0, 8), 'protobuf', NOW)],
        ['invalid JSON', () => decodeOtlpMetrics(Buffer.from('{"resourceMetrics": ['), 'json', NOW)],
        ['a JSON array', () => decodeOtlpMetrics(json([] as unknown as J), 'json', NOW)],
        ['JSON null', () => decodeOtlpLogs(Buffer.from('null'), 'json', NOW)],
        ['resourceMetrics not an array', () => decodeOtlpMetrics(json({ resourceMetrics: {} }), 'json', NOW)],
        ['dataPoints an object', () => decodeOtlpMetrics(json(metricsRequest([{ name: 'g', gauge: { dataPoints: { asInt: 1 } } }])), 'json', NOW)],
        ['attributes not an array', () => decodeOtlpMetrics(json(metricsRequest([gauge('g', [{ asInt: '1', attributes: { a: 1 } }])])), 'json', NOW)],
        ['an attribute key not a string', () => decodeOtlpLogs(json(logsRequest([{ attributes: [{ key: 1, value: s('v') }] }])), 'json', NOW)],
        ['a log record not an object', () => decodeOtlpLogs(json(logsRequest(['text' as unknown as J])), 'json', NOW)],
        ['AnyValue nested 40 deep', () => decodeOtlpLogs(json(logsRequest([{ body: deep(40) }])), 'json', NOW)],
      ];
      for (const [what, fn] of cases) {
        const err = errorOf(fn);
        expect(err.code, what).to.equal('bad_request');
      }
      expect(errorOf(cases[5][1]).message).to.equal('invalid OTLP request: resourceMetrics must be an array');
    });
  });

  describe('responses', () => {
    it('encodes partialSuccess and google.rpc.Status in both encodings', () => {
      expect(JSON.parse(exportResponse('metrics', 'json', 0, '').toString())).to.deep.equal({});
      expect(JSON.parse(exportResponse('logs', 'json', 3, 'why').toString()).partialSuccess).to.deep.equal({ rejectedLogRecords: '3', errorMessage: 'why' });
      const pb = OTLP_MESSAGES.metricsResponse.toObject(OTLP_MESSAGES.metricsResponse.decode(exportResponse('metrics', 'protobuf', 2, 'x')), { longs: Number });
      expect(pb).to.deep.equal({ partialSuccess: { rejectedDataPoints: 2, errorMessage: 'x' } });
      expect(exportResponse('logs', 'protobuf', 0, '')).to.have.length(0);
      const status = OTLP_MESSAGES.status.toObject(OTLP_MESSAGES.status.decode(statusBody('protobuf', 'unauthenticated', 'no key')));
      expect(status).to.deep.equal({ code: 16, message: 'no key' });
      expect(JSON.parse(statusBody('json', 'bad_request', 'bad').toString())).to.deep.equal({ code: 3, message: 'bad' });
    });
  });
});
