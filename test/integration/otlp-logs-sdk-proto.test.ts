import { ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { expect } from 'chai';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The real OpenTelemetry JS protobuf logs exporter against /v1/logs. The other protobuf log tests
 * encode with the server's own OTLP_MESSAGES, so a wrong field number in the vendored
 * opentelemetry-proto definitions would pass them; this exporter writes the wire format with its
 * own serializer (eventName is LogRecord field 12, observed_time_unix_nano field 11), so every
 * field is checked against an independent encoder.
 */

type J = Record<string, unknown>;

describe('OTLP logs from the real protobuf exporter (@opentelemetry/exporter-logs-otlp-proto)', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let provider: LoggerProvider | undefined;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
  });
  after(async () => {
    await provider?.shutdown();
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  it('stores eventName, observed time, time, severity, body, attributes (ints beyond 2^53 exactly), resource and trace context as the SDK was given them', async () => {
    const org = await createOrg(t.app.services);
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    const reader = (await createApiKey(t.app.services, org.slug, ['read'])).secret;

    const exporter = new OTLPLogExporter({ url: `${t.baseUrl}/v1/logs`, headers: { Authorization: `Bearer ${key}` } });
    // Every export result, so a failed export fails the test instead of a diagnostic log line.
    const codes: number[] = [];
    const inner = exporter.export.bind(exporter);
    exporter.export = (records, cb) =>
      inner(records, (r) => {
        codes.push(r.code);
        cb(r);
      });
    provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'proto-sdk', 'service.version': '1.2.3', 'deployment.environment.name': 'it' }),
      processors: [new BatchLogRecordProcessor({ exporter })],
    });
    const logger = provider.getLogger('proto-sdk-logs');

    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const spanId = 'b7ad6b7169203331';
    const context = trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: TraceFlags.SAMPLED });
    // Whole milliseconds (Sentinel stores ms), distinct so that a swap of time and observed time shows.
    const at = Date.now() - 90_000;
    const observedAt = at + 2_345;
    // Integers beyond 2^53 that a double holds exactly: the exporter writes them as int_value (int64),
    // which Sentinel keeps as decimal strings rather than rounded Numbers.
    const big = 2 ** 60 + 256;
    const negativeBig = -(2 ** 55);
    expect([Number.isSafeInteger(big), Number.isSafeInteger(negativeBig)]).to.deep.equal([false, false]);
    logger.emit({
      eventName: 'payment.declined',
      timestamp: at,
      observedTimestamp: observedAt,
      severityNumber: SeverityNumber.ERROR2,
      severityText: 'ERROR2',
      body: 'card declined: insufficient funds',
      attributes: {
        'payment.id': 'pay_123',
        'amount.cents': 4999,
        ratio: 0.25,
        retry: false,
        'big.int': big,
        'big.negative': negativeBig,
        tags: ['a', 'b'],
        nested: { depth: 1, label: 'x' },
        raw: new Uint8Array([1, 2, 255]),
      },
      context,
    });
    // No eventName: stored as null, so the first record's name is not a default of the decoder.
    logger.emit({ timestamp: at + 1_000, observedTimestamp: observedAt + 1_000, severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: 'second' });
    // The batch processor's flush waits for the export itself.
    await provider.forceFlush();
    expect(codes).to.deep.equal([0]);

    const resource = { 'service.name': 'proto-sdk', 'service.version': '1.2.3', 'deployment.environment.name': 'it', 'otel.scope.name': 'proto-sdk-logs' };
    const attributes = {
      'payment.id': 'pay_123',
      'amount.cents': 4999,
      ratio: 0.25,
      retry: false,
      'big.int': '1152921504606847232',
      'big.negative': '-36028797018963968',
      tags: ['a', 'b'],
      nested: { depth: 1, label: 'x' },
      raw: Buffer.from([1, 2, 255]).toString('base64'),
    };

    // The table, to the millisecond.
    const rows = await query<J>(
      url,
      `select (extract(epoch from ts) * 1000)::bigint as ts_ms, (extract(epoch from observed_ts) * 1000)::bigint as observed_ms,
              event_name, severity_number, severity_text, body, attributes, resource, trace_id, span_id
         from logs where org_id = $1 order by ts`,
      [org.id],
    );
    // bigint columns come back as strings; null stays null.
    const ms = (v: unknown) => (v === null ? null : Number(v));
    expect(rows.map((r) => ({ ...r, ts_ms: ms(r.ts_ms), observed_ms: ms(r.observed_ms) }))).to.deep.equal([
      {
        ts_ms: at,
        observed_ms: observedAt,
        event_name: 'payment.declined',
        severity_number: 18,
        severity_text: 'ERROR2',
        body: 'card declined: insufficient funds',
        attributes,
        resource,
        trace_id: traceId,
        span_id: spanId,
      },
      {
        ts_ms: at + 1_000,
        observed_ms: observedAt + 1_000,
        event_name: null,
        severity_number: 9,
        severity_text: 'INFO',
        body: 'second',
        attributes: {},
        resource,
        trace_id: null,
        span_id: null,
      },
    ]);

    // The API (answers are validated against the OpenAPI document by the client).
    const range = `start=${new Date(at - 60_000).toISOString()}&end=${new Date(Date.now() + 60_000).toISOString()}`;
    const page = await t.api.get<{ items: J[] }>(`/organizations/${org.slug}/logs?${range}`, reader);
    expect(page.status, page.text).to.equal(200);
    const byBody = new Map(page.body.items.map((i) => [i.body, i]));
    expect(page.body.items).to.have.length(2);
    expect(byBody.get('card declined: insufficient funds')).to.deep.equal({
      ts: new Date(at).toISOString(),
      observed_ts: new Date(observedAt).toISOString(),
      event_name: 'payment.declined',
      level: 'error',
      severity_number: 18,
      severity_text: 'ERROR2',
      body: 'card declined: insufficient funds',
      attributes,
      resource,
      trace_id: traceId,
      span_id: spanId,
    });
    expect(byBody.get('second')).to.deep.include({ ts: new Date(at + 1_000).toISOString(), observed_ts: new Date(observedAt + 1_000).toISOString(), event_name: null, level: 'info' });
  });
});
