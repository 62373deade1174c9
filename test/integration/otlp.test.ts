import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ROOT_CONTEXT, trace, TraceFlags, type Meter } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { expect } from 'chai';
import { OTLP_MESSAGES } from '../../src/features/telemetry/otlp-proto.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg } from '../support/factories.js';
import type { Answer } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

type J = Record<string, unknown>;

/** OTLP/HTTP answers are JSON or protobuf: the shared client's raw request, bytes kept. */
const send = (app: TestApp, path: string, body: Buffer | string, opts: { type?: string; token?: string | null; encoding?: string } = {}): Promise<Answer> =>
  app.api.raw('POST', path, { token: opts.token, body, headers: { 'content-type': opts.type ?? 'application/json', ...(opts.encoding ? { 'content-encoding': opts.encoding } : {}) } });

/** The answer's body as JSON, insisting that it is declared as such. */
function jsonBody(a: Answer): J {
  expect(a.headers.get('content-type')).to.match(/^application\/json/);
  return JSON.parse(a.text) as J;
}
/** A google.rpc.Status in protobuf, insisting on the content type. */
function protoStatus(a: Answer): J {
  expect(a.headers.get('content-type')).to.equal('application/x-protobuf');
  return OTLP_MESSAGES.status.toObject(OTLP_MESSAGES.status.decode(a.bytes));
}

const nowNanos = (offsetMs = 0): string => String(BigInt(Date.now() + offsetMs) * 1_000_000n);
const s = (v: string): J => ({ stringValue: v });
const kv = (key: string, value: J): J => ({ key, value });
const metricsRequest = (metrics: J[]): J => ({ resourceMetrics: [{ resource: { attributes: [] }, scopeMetrics: [{ scope: { name: 'by-hand' }, metrics }] }] });
const logsRequest = (logRecords: J[]): J => ({ resourceLogs: [{ resource: { attributes: [kv('service.name', s('by-hand'))] }, scopeLogs: [{ scope: {}, logRecords }] }] });
const protobuf = (type: typeof OTLP_MESSAGES.metricsRequest, v: J): Buffer => Buffer.from(type.encode(type.fromObject(v)).finish());

interface StoredPoint {
  name: string;
  labels: Record<string, string>;
  value: number;
  ts: string;
}
const pointsOf = (url: string, orgId: string, where = 'true', params: unknown[] = []) =>
  query<StoredPoint>(
    url,
    `select s.name, s.labels, p.value, (extract(epoch from p.ts) * 1000)::bigint::text as ts
       from points p join series s on s.org_id = p.org_id and s.id = p.series_id
      where p.org_id = $1 and ${where}
      order by s.name, p.value`,
    [orgId, ...params],
  );

/** Records every export result of a real exporter, so a failed export fails the test instead of a log line. */
function recording<E extends PushMetricExporter | OTLPLogExporter>(exporter: E): { exporter: E; codes: number[] } {
  const codes: number[] = [];
  const inner = exporter.export.bind(exporter) as (items: never, cb: (r: { code: number }) => void) => void;
  (exporter as { export: unknown }).export = (items: never, cb: (r: { code: number }) => void) =>
    inner(items, (r) => {
      codes.push(r.code);
      cb(r);
    });
  return { exporter, codes };
}

describe('OTLP/HTTP ingest (/v1/metrics, /v1/logs)', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  /** The same database behind a 64 KiB body limit. */
  let small: TestApp;
  let org: { id: string; slug: string };
  let key: string;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
    small = await startTestApp(url, { SENTINEL_HTTP_BODY_LIMIT_BYTES: '65536' });
    org = await createOrg(t.app.services);
    key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
  });
  after(async () => {
    for (const c of cleanups) await c();
    await small?.stop();
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  const resource = resourceFromAttributes({ 'service.name': 'otlp-it', 'host.name': 'h1', 'process.pid': 4242 });

  /** Counter 3 + 4, a histogram with bounds [1, 5, 10] and a gauge, exported once through `exporter`. */
  async function exportMetrics(exporter: PushMetricExporter, scope: string): Promise<number[]> {
    const rec = recording(exporter);
    const provider = new MeterProvider({ resource, readers: [new PeriodicExportingMetricReader({ exporter: rec.exporter, exportIntervalMillis: 3_600_000 })] });
    // Cumulative sums would be exported again on provider shutdown; the exporter goes first so that export fails quietly.
    cleanups.push(async () => {
      await exporter.shutdown();
      await provider.shutdown();
    });
    const meter: Meter = provider.getMeter(scope, '1.0.0');
    const orders = meter.createCounter('orders');
    orders.add(3, { shop: 'eu' });
    orders.add(4, { shop: 'eu' });
    const latency = meter.createHistogram('latency_ms', { advice: { explicitBucketBoundaries: [1, 5, 10] } });
    for (const v of [0.5, 3, 3, 7, 20]) latency.record(v, { route: '/checkout' });
    meter.createGauge('temperature').record(21.5, { room: 'lab' });
    await provider.forceFlush();
    return rec.codes;
  }

  function expectMetricRows(rows: StoredPoint[], scope: string, from: number, to: number): void {
    // process.pid is outside the resource label allow-list: the process's identity is its hash (first 16 hex digits of SHA-256).
    const otel_resource_id = createHash('sha256').update('{"process.pid":"4242"}').digest('hex').slice(0, 16);
    const base = { 'service.name': 'otlp-it', 'host.name': 'h1', otel_scope_name: scope, otel_resource_id };
    const route = { ...base, route: '/checkout' };
    expect(rows.map(({ name, labels, value }) => ({ name, labels, value }))).to.deep.equal([
      { name: 'latency_ms_bucket', labels: { ...route, le: '1' }, value: 1 },
      { name: 'latency_ms_bucket', labels: { ...route, le: '5' }, value: 3 },
      { name: 'latency_ms_bucket', labels: { ...route, le: '10' }, value: 4 },
      { name: 'latency_ms_bucket', labels: { ...route, le: '+Inf' }, value: 5 },
      { name: 'latency_ms_count', labels: route, value: 5 },
      { name: 'latency_ms_sum', labels: route, value: 33.5 },
      { name: 'orders', labels: { ...base, shop: 'eu' }, value: 7 },
      { name: 'temperature', labels: { ...base, room: 'lab' }, value: 21.5 },
    ]);
    for (const r of rows) expect(Number(r.ts)).to.be.within(from, to);
  }

  it('stores what the real OTLP JSON metrics exporter sends: counter, histogram buckets and gauge, exactly', async () => {
    const from = Date.now();
    const exporter = new JsonMetricExporter({ url: `${t.baseUrl}/v1/metrics`, headers: { Authorization: `Bearer ${key}` } });
    expect(await exportMetrics(exporter, 'it-json')).to.deep.equal([0]);
    expectMetricRows(await pointsOf(url, org.id, "s.labels->>'otel_scope_name' = $2", ['it-json']), 'it-json', from - 1, Date.now());
  });

  it('stores the same from the real OTLP protobuf exporter, gzip-compressed', async () => {
    const from = Date.now();
    const exporter = new ProtoMetricExporter({
      url: `${t.baseUrl}/v1/metrics`,
      headers: { Authorization: `Bearer ${key}` },
      // The option is typed as otlp-exporter-base's CompressionAlgorithm enum, whose GZIP member is 'gzip'.
      compression: 'gzip' as NonNullable<ConstructorParameters<typeof ProtoMetricExporter>[0]>['compression'],
    });
    expect(await exportMetrics(exporter, 'it-proto')).to.deep.equal([0]);
    expectMetricRows(await pointsOf(url, org.id, "s.labels->>'otel_scope_name' = $2", ['it-proto']), 'it-proto', from - 1, Date.now());
  });

  it('stores what the real OTLP logs exporter sends: severity, body, attributes, resource and trace context', async () => {
    const rec = recording(new OTLPLogExporter({ url: `${t.baseUrl}/v1/logs`, headers: { Authorization: `Bearer ${key}` } }));
    const provider = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: rec.exporter })] });
    cleanups.push(() => provider.shutdown());
    const logger = provider.getLogger('it-logs');
    const traceId = '5b8efff798038103d269b633813fc60c';
    const spanId = 'eee19b7ec3c1b174';
    const context = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: TraceFlags.SAMPLED });
    const at = Date.now() - 5_000;
    const emittedFrom = Date.now();
    logger.emit({ timestamp: at, severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: 'disk almost full', attributes: { 'disk.free_mb': 42, mount: '/var' }, context, eventName: 'disk.low' });
    logger.emit({ body: { structured: true, n: 1.5 } });
    const emittedTo = Date.now();
    // The batch processor's flush waits for the export itself (the simple one's does not).
    await provider.forceFlush();
    expect(rec.codes).to.deep.equal([0]);

    const rows = await query<J>(
      url,
      `select (extract(epoch from ts) * 1000)::bigint::text as ts, severity_number, severity_text, body, attributes, resource, trace_id, span_id, event_name,
              (extract(epoch from observed_ts) * 1000)::bigint as observed_ms
         from logs where org_id = $1 and resource->>'otel.scope.name' = 'it-logs' order by ts`,
      [org.id],
    );
    // The SDK stamps observedTimestamp when a record is emitted; the record without a timestamp is stored at it.
    for (const r of rows) expect(Number(r.observed_ms)).to.be.within(emittedFrom, emittedTo);
    expect(rows[1].ts).to.equal(String(rows[1].observed_ms));
    for (const r of rows) delete r.observed_ms;
    const res = { 'service.name': 'otlp-it', 'host.name': 'h1', 'process.pid': 4242, 'otel.scope.name': 'it-logs' };
    expect(rows[0]).to.deep.equal({
      ts: String(at),
      severity_number: 13,
      severity_text: 'WARN',
      body: 'disk almost full',
      attributes: { 'disk.free_mb': 42, mount: '/var' },
      resource: res,
      trace_id: traceId,
      span_id: spanId,
      event_name: 'disk.low',
    });
    expect({ ...rows[1], ts: undefined }).to.deep.equal({
      ts: undefined,
      // Neither a severity number nor a text: unspecified (0) and stored so.
      severity_number: 0,
      severity_text: '',
      body: '{"structured":true,"n":1.5}',
      attributes: {},
      resource: res,
      trace_id: null,
      span_id: null,
      event_name: null,
    });
  });

  it('JSON in, JSON out: partialSuccess counts the invalid data points while the valid ones are stored', async () => {
    const ts = nowNanos();
    const body = metricsRequest([
      {
        name: 'mixed',
        gauge: {
          dataPoints: [
            { timeUnixNano: ts, asDouble: 1, attributes: [kv('i', s('1'))] },
            { timeUnixNano: ts, asInt: '2', attributes: [kv('i', s('2'))] },
            { timeUnixNano: ts, asDouble: 'NaN' },
            { timeUnixNano: ts, asDouble: 3, attributes: Array.from({ length: 33 }, (_, i) => kv(`k${i}`, s('v'))) },
          ],
        },
      },
      { name: '', gauge: { dataPoints: [{ timeUnixNano: ts, asDouble: 4 }] } },
    ]);
    const res = await send(t, '/v1/metrics', JSON.stringify(body), { token: key });
    expect(res.status).to.equal(200);
    const answer = jsonBody(res) as { partialSuccess: { rejectedDataPoints: string; errorMessage: string } };
    expect(answer.partialSuccess.rejectedDataPoints).to.equal('3');
    expect(answer.partialSuccess.errorMessage).to.include('NaN').and.include('more than 32 labels').and.include('a metric without a name');
    const rows = await pointsOf(url, org.id, "s.name = 'mixed'");
    expect(rows.map((r) => [r.labels, r.value])).to.deep.equal([
      [{ otel_scope_name: 'by-hand', i: '1' }, 1],
      [{ otel_scope_name: 'by-hand', i: '2' }, 2],
    ]);
    // Nothing rejected: an empty response object.
    const clean = await send(t, '/v1/metrics', JSON.stringify(metricsRequest([{ name: 'clean', gauge: { dataPoints: [{ asDouble: 1 }] } }])), { token: key, type: 'application/json; charset=utf-8' });
    expect([clean.status, jsonBody(clean)]).to.deep.equal([200, {}]);
  });

  it('protobuf in, protobuf out: rejections by the decoder and by the ingest time window add up', async () => {
    const body = protobuf(
      OTLP_MESSAGES.logsRequest,
      logsRequest([
        { timeUnixNano: nowNanos(), severityNumber: 17, body: s('kept'), traceId: Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex') },
        { timeUnixNano: nowNanos(), body: s('x'.repeat(70_000)) },
        { timeUnixNano: nowNanos(-30 * 86_400_000), body: s('a month old') },
      ]),
    );
    const res = await send(t, '/v1/logs', body, { token: key, type: 'application/x-protobuf' });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/x-protobuf');
    const answer = OTLP_MESSAGES.logsResponse.toObject(OTLP_MESSAGES.logsResponse.decode(res.bytes), { longs: Number }) as { partialSuccess: { rejectedLogRecords: number; errorMessage: string } };
    expect(answer.partialSuccess.rejectedLogRecords).to.equal(2);
    expect(answer.partialSuccess.errorMessage).to.include('a body longer than 65536 characters').and.include('time window');
    const rows = await query<J>(url, "select body, severity_text, trace_id from logs where org_id = $1 and resource->>'service.name' = 'by-hand'", [org.id]);
    expect(rows).to.deep.equal([{ body: 'kept', severity_text: 'error', trace_id: '0102030405060708090a0b0c0d0e0f10' }]);
  });

  it('stores nested attribute strings holding NUL or a lone surrogate (jsonb refuses both) with U+FFFD in their place, not failing the commit', async () => {
    const nested = { kvlistValue: { values: [kv('k\u0000', { arrayValue: { values: [s('a\u0000b'), s('\udc00')] } })] } };
    const body = JSON.stringify(logsRequest([{ timeUnixNano: nowNanos(), body: s('nul-test'), attributes: [kv('nested', nested)] }]));
    const res = await send(t, '/v1/logs', body, { token: key });
    expect([res.status, jsonBody(res)]).to.deep.equal([200, {}]);
    const rows = await query<J>(url, "select attributes from logs where org_id = $1 and body = 'nul-test'", [org.id]);
    expect(rows).to.deep.equal([{ attributes: { nested: { 'k\ufffd': ['a\ufffdb', '\ufffd'] } } }]);
  });

  it('401 without a key or with an invalid one, answered as a google.rpc.Status in the request encoding', async () => {
    const empty = JSON.stringify(metricsRequest([]));
    const none = await send(t, '/v1/metrics', empty);
    expect(none.status).to.equal(401);
    expect(jsonBody(none)).to.include({ code: 16 });
    const bad = await send(t, '/v1/logs', Buffer.alloc(0), { type: 'application/x-protobuf', token: `snt_${'x'.repeat(32)}` });
    expect(bad.status).to.equal(401);
    expect(protoStatus(bad).code).to.equal(16);
  });

  it('403 for a key without the ingest scope; nothing stored', async () => {
    const readOnly = (await createApiKey(t.app.services, org.slug, ['read'])).secret;
    const res = await send(t, '/v1/metrics', JSON.stringify(metricsRequest([{ name: 'forbidden', gauge: { dataPoints: [{ asDouble: 1 }] } }])), { token: readOnly });
    expect(res.status).to.equal(403);
    expect(jsonBody(res)).to.include({ code: 7 });
    expect(await pointsOf(url, org.id, "s.name = 'forbidden'")).to.deep.equal([]);
  });

  it('415 for a Content-Type other than JSON or protobuf, and for an encoding other than gzip', async () => {
    const text = await send(t, '/v1/metrics', 'hello', { token: key, type: 'text/plain' });
    expect(text.status).to.equal(415);
    expect(jsonBody(text)).to.include({ code: 3 });
    const br = await send(t, '/v1/metrics', Buffer.from('x'), { token: key, type: 'application/x-protobuf', encoding: 'br' });
    expect(br.status).to.equal(415);
    expect(protoStatus(br).message).to.match(/Content-Encoding "br"/);
  });

  it('400 for garbage protobuf, bad JSON and bad gzip, answered as a Status in the request encoding', async () => {
    const garbage = await send(t, '/v1/metrics', Buffer.from('this is not protobuf at all'), { token: key, type: 'application/x-protobuf' });
    expect(garbage.status).to.equal(400);
    const status = protoStatus(garbage);
    expect(status.code).to.equal(3);
    expect(status.message).to.match(/^invalid OTLP protobuf/);
    const badJson = await send(t, '/v1/logs', '{"resourceLogs": [', { token: key });
    expect(badJson.status).to.equal(400);
    expect(jsonBody(badJson).message).to.match(/^invalid OTLP JSON/);
    const badGzip = await send(t, '/v1/logs', Buffer.from('not gzip at all'), { token: key, encoding: 'gzip' });
    expect(badGzip.status).to.equal(400);
    expect(jsonBody(badGzip)).to.deep.equal({ code: 3, message: 'the request body is not valid gzip' });
  });

  it('413 for a body over the limit, and for a small gzip body that inflates past it; under it gzip is fine', async () => {
    const ts = nowNanos();
    const big = JSON.stringify({ ...metricsRequest([]), padding: 'x'.repeat(70_000) });
    const oversized = await send(small, '/v1/metrics', big, { token: key });
    expect(oversized.status).to.equal(413);
    expect(jsonBody(oversized)).to.include({ code: 8 });

    const bomb = gzipSync(Buffer.alloc(10_000_000, 0x20));
    expect(bomb.length).to.be.below(65_536);
    const inflated = await send(small, '/v1/metrics', bomb, { token: key, type: 'application/x-protobuf', encoding: 'gzip' });
    expect(inflated.status).to.equal(413);
    expect(protoStatus(inflated).code).to.equal(8);

    // 60 KB of JSON inflated from far less: within the limit, stored.
    const fits = metricsRequest([{ name: 'gz', gauge: { dataPoints: [{ timeUnixNano: ts, asDouble: 5, attributes: [kv('pad', s('p'.repeat(1000)))] }] } }]);
    const padded = JSON.stringify({ ...fits, padding: ' '.repeat(60_000) });
    const ok = await send(small, '/v1/metrics', gzipSync(padded), { token: key, encoding: 'gzip' });
    expect(ok.status).to.equal(200);
    expect((await pointsOf(url, org.id, "s.name = 'gz'")).map((r) => r.value)).to.deep.equal([5]);
  });

  it('429 with Retry-After over the organization ingest rate', async () => {
    const limited = await createOrg(t.app.services);
    await t.app.services.orgs.update({ kind: 'system' }, limited.slug, { limits: { ingest_points_per_second: 10 } });
    const limitedKey = (await createApiKey(t.app.services, limited.slug, ['ingest'])).secret;
    const ts = nowNanos();
    const body = JSON.stringify(metricsRequest([{ name: 'rate', gauge: { dataPoints: Array.from({ length: 10 }, (_, i) => ({ timeUnixNano: ts, asInt: String(i), attributes: [kv('i', s(String(i)))] })) } }]));
    expect((await send(t, '/v1/metrics', body, { token: limitedKey })).status).to.equal(200);
    const res = await send(t, '/v1/metrics', body, { token: limitedKey });
    expect(res.status).to.equal(429);
    expect(Number(res.headers.get('retry-after'))).to.be.within(1, 2);
    expect(jsonBody(res)).to.include({ code: 8 });
  });

  it('reports OTLP requests under their own route in /metrics', async () => {
    const { text } = await t.api.raw('GET', '/metrics');
    const counts = text.split('\n').filter((l) => l.startsWith('sentinel_http_request_duration_seconds_count{'));
    expect(counts.some((l) => l.includes('route="/v1/metrics"') && l.includes('status="200"'))).to.equal(true);
    expect(counts.some((l) => l.includes('route="/v1/logs"') && l.includes('status="400"'))).to.equal(true);
  });
});
