import { expect } from 'chai';
import { DomainError } from '../../src/core/errors.js';
import { decodeOtlpLogs, decodeOtlpMetrics, type OtlpDecoded } from '../../src/features/telemetry/otlp-decode.js';
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
    it('maps gauge and sum data points (double and int) to one point each, time in epoch ms', () => {
      const out = metricsBoth(
        metricsRequest([
          gauge('temperature', [{ timeUnixNano: T, asDouble: 21.5 }]),
          { name: 'requests', sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [{ startTimeUnixNano: START, timeUnixNano: T, asInt: '7' }] } },
          { name: 'ratio', sum: { aggregationTemporality: 1, dataPoints: [{ startTimeUnixNano: START, asDouble: 0.25 }] } },
          gauge('queue_depth', [{ asInt: '-3' }, { timeUnixNano: T, asDouble: 0 }]),
        ]),
      );
      expect(out).to.deep.equal({
        batch: {
          points: [
            { name: 'temperature', labels: {}, ts: T_MS, value: 21.5 },
            { name: 'requests', labels: {}, ts: T_MS, value: 7 },
            { name: 'ratio', labels: {}, ts: START_MS, value: 0.25 },
            { name: 'queue_depth', labels: {}, ts: NOW, value: -3 },
            { name: 'queue_depth', labels: {}, ts: T_MS, value: 0 },
          ],
          logs: [],
          events: [],
        },
        rejected: 0,
        messages: [],
      });
    });

    it('expands a histogram into _count, _sum and cumulative _bucket series with le (incl. +Inf)', () => {
      const out = metricsBoth(
        metricsRequest([
          {
            name: 'http.duration',
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
      expect(out.batch.points).to.deep.equal([
        { name: 'http.duration_count', labels: a, ts: T_MS, value: 10 },
        { name: 'http.duration_sum', labels: a, ts: T_MS, value: 4.5 },
        { name: 'http.duration_bucket', labels: { ...a, le: '0.1' }, ts: T_MS, value: 2 },
        { name: 'http.duration_bucket', labels: { ...a, le: '0.5' }, ts: T_MS, value: 5 },
        { name: 'http.duration_bucket', labels: { ...a, le: '1' }, ts: T_MS, value: 9 },
        { name: 'http.duration_bucket', labels: { ...a, le: '+Inf' }, ts: T_MS, value: 10 },
        { name: 'http.duration_count', labels: { route: '/b' }, ts: T_MS, value: 4 },
      ]);
      expect(out.rejected).to.equal(0);
    });

    it('maps a summary to _count, _sum and one series per quantile', () => {
      const out = metricsBoth(
        metricsRequest([
          {
            name: 'rpc_latency',
            summary: { dataPoints: [{ timeUnixNano: T, count: '5', sum: 12.5, quantileValues: [{ quantile: 0.5, value: 2 }, { quantile: 0.99, value: 7.5 }] }] },
          },
        ]),
      );
      expect(out.batch.points).to.deep.equal([
        { name: 'rpc_latency_count', labels: {}, ts: T_MS, value: 5 },
        { name: 'rpc_latency_sum', labels: {}, ts: T_MS, value: 12.5 },
        { name: 'rpc_latency', labels: { quantile: '0.5' }, ts: T_MS, value: 2 },
        { name: 'rpc_latency', labels: { quantile: '0.99' }, ts: T_MS, value: 7.5 },
      ]);
    });

    it('maps an exponential histogram to _count and _sum only', () => {
      const out = metricsBoth(
        metricsRequest([
          {
            name: 'payload_size',
            exponentialHistogram: {
              aggregationTemporality: 2,
              dataPoints: [{ timeUnixNano: T, count: '6', sum: 30, scale: 2, zeroCount: '1', positive: { offset: 1, bucketCounts: ['2', '3'] } }],
            },
          },
        ]),
      );
      expect(out.batch.points).to.deep.equal([
        { name: 'payload_size_count', labels: {}, ts: T_MS, value: 6 },
        { name: 'payload_size_sum', labels: {}, ts: T_MS, value: 30 },
      ]);
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
            'lib.attr': 'x',
            code: '200',
            ratio: '0.5',
            ok: 'true',
            tags: '["a",2]',
            meta: '{"k":"v","n":1.5}',
          },
          ts: T_MS,
          value: 1,
        },
        { name: 'g', labels: { 'service.name': 'checkout', 'service.version': '1.2.3', 'host.name': 'web-1', 'k8s.pod.name': 'pod-7', 'cloud.region': 'eu-west-1' }, ts: T_MS, value: 2 },
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
        { name: 'http_server.duration__ms_', labels: { 'http.status_code': '1', _1xx: '2', h_llo: '3', a_b: '4', 'k8s.pod/name-x': '5' }, ts: T_MS, value: 1 },
        { name: '_9lives', labels: {}, ts: T_MS, value: 2 },
        { name: 'ns:metric.name/x-y', labels: {}, ts: T_MS, value: 3 },
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
          { name: 'y'.repeat(195), histogram: { dataPoints: [{ count: '1' }] } }, // y…y_count is 201
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
      expect(out.batch.points).to.deep.equal([{ name: 'g', labels: {}, ts: T_MS, value: 2 }]);
      expect(out.rejected).to.equal(0);
    });

    it('stores at most maxItems (10,000) data points of a request and counts the rest', () => {
      const dataPoints = Array.from({ length: 10_002 }, (_, i) => ({ timeUnixNano: T, asInt: String(i) }));
      const out = metricsBoth(metricsRequest([gauge('many', dataPoints)]));
      expect(out.batch.points).to.have.length(10_000);
      expect(out.batch.points[9_999].value).to.equal(9_999);
      expect(out.rejected).to.equal(2);
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
                    { name: 'c', histogram: { dataPoints: [{ timeUnixNano: T, count: 3, bucketCounts: [1, 2], explicitBounds: [10] }] } },
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
        { name: 'a', labels: {}, ts: T_MS, value: 42 },
        { name: 'b', labels: {}, ts: T_MS, value: 2.5 },
        { name: 'c_count', labels: {}, ts: T_MS, value: 3 },
        { name: 'c_bucket', labels: { le: '10' }, ts: T_MS, value: 1 },
        { name: 'c_bucket', labels: { le: '+Inf' }, ts: T_MS, value: 3 },
      ]);
      expect(out.rejected).to.equal(2);
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
            },
          ],
          events: [],
        },
        rejected: 0,
        messages: [],
      });
    });

    it('severity: the number as sent, else derived from severityText, else 9 (info)', () => {
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
        [9, 'verbose'],
        [9, 'info'],
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

    it('ts: timeUnixNano, else observedTimeUnixNano, else now', () => {
      const out = logsBoth(logsRequest([{ timeUnixNano: T, observedTimeUnixNano: START }, { observedTimeUnixNano: START }, {}]));
      expect(out.batch.logs.map((l) => l.ts)).to.deep.equal([T_MS, START_MS, NOW]);
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
      const out = logsBoth(fixture);
      expect(out.batch.logs).to.have.length(1);
      expect(out.batch.logs[0].body).to.have.length(65_536);
      expect(out.rejected).to.equal(6 + 2);
      expect(out.messages).to.deep.equal([
        '1 log record(s) rejected: a body longer than 65536 characters',
        '1 log record(s) rejected: more than 64 log attributes',
        '2 log record(s) rejected: a log attribute value longer than 4096 characters',
        '1 log record(s) rejected: a log attribute key longer than 100 characters',
        '1 log record(s) rejected: a severityText longer than 4096 characters',
        '2 log record(s) rejected: more than 64 resource attributes',
      ]);
    });
  });

  describe('encodings', () => {
    it('JSON and protobuf give identical batches for a request with every metric kind', () => {
      const fixture = metricsRequest(
        [
          gauge('g', [{ timeUnixNano: T, asDouble: 1.25, attributes: [kv('a', s('1'))] }]),
          { name: 's', sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [{ timeUnixNano: T, asInt: '9' }] } },
          { name: 'h', histogram: { dataPoints: [{ timeUnixNano: T, count: '2', sum: 3, bucketCounts: ['1', '1'], explicitBounds: [2] }] } },
          { name: 'e', exponentialHistogram: { dataPoints: [{ timeUnixNano: T, count: '2', sum: 3 }] } },
          { name: 'q', summary: { dataPoints: [{ timeUnixNano: T, count: '2', sum: 3, quantileValues: [{ quantile: 0.9, value: 2 }] }] } },
        ],
        [kv('service.name', s('svc'))],
        { name: 'scope' },
      );
      const out = metricsBoth(fixture);
      expect(out.batch.points.map((p) => p.name)).to.deep.equal(['g', 's', 'h_count', 'h_sum', 'h_bucket', 'h_bucket', 'e_count', 'e_sum', 'q_count', 'q_sum', 'q']);
      expect(out.batch.points.every((p) => p.labels['service.name'] === 'svc' && p.labels.otel_scope_name === 'scope')).to.equal(true);
    });

    it('an empty request (protobuf: zero bytes; JSON: {}) is valid and holds nothing', () => {
      for (const [body, format] of [[Buffer.alloc(0), 'protobuf'], [json({}), 'json']] as const) {
        expect(decodeOtlpMetrics(body, format, NOW)).to.deep.equal({ batch: { points: [], logs: [], events: [] }, rejected: 0, messages: [] });
        expect(decodeOtlpLogs(body, format, NOW).batch.logs).to.deep.equal([]);
      }
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
