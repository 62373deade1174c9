import { expect } from 'chai';
import { OTLP_MESSAGES } from '../../src/features/telemetry/otlp-proto.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Hand-built OTLP log requests, each sent as protobuf and as JSON, checked against the rows of
 * the logs table, the partialSuccess answered and GET /organizations/{org}/logs: eventName and
 * observed time stored, severity 0 kept unspecified, real times however small, an over-long
 * resource attribute cut and reported instead of refusing its records, NUL bytes stored as
 * U+FFFD, and wrong types refused with a message, never a 500.
 */

type J = Record<string, unknown>;
type Format = 'json' | 'protobuf';

const CONTENT_TYPE: Record<Format, string> = { json: 'application/json', protobuf: 'application/x-protobuf' };
const nanos = (ms: number, extraNs = 0): string => String(BigInt(ms) * 1_000_000n + BigInt(extraNs));
const s = (v: string): J => ({ stringValue: v });
const kv = (key: string, value: J): J => ({ key, value });
const resourceLogs = (logRecords: J[], resource: J[], scope: J = {}): J => ({ resource: { attributes: resource }, scopeLogs: [{ scope, logRecords }] });
const LIMIT = 4096;
const TRUNCATED_MARKER = 'sentinel.truncated_attributes';
const truncatedWarning = (key: string) => `resource attribute ${JSON.stringify(key)} truncated to ${LIMIT} characters (listed in ${TRUNCATED_MARKER})`;

/** The JSON-mapping fixture as protobuf: hex ids become bytes, the rest fromObject reads as is. */
function encode(format: Format, body: J): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify(body));
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v !== 'object' || v === null) return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, (k === 'traceId' || k === 'spanId') && typeof x === 'string' ? Buffer.from(x, 'hex') : walk(x)]));
  };
  const type = OTLP_MESSAGES.logsRequest;
  return Buffer.from(type.encode(type.fromObject(walk(body) as J)).finish());
}

interface Exported {
  status: number;
  /** partialSuccess.rejectedLogRecords (0 when absent). */
  rejected: number;
  /** partialSuccess.errorMessage, or the Status message of an error. */
  message: string;
}

interface LogRow {
  ts_ms: number;
  observed_ms: number | null;
  severity_number: number;
  severity_text: string;
  body: string;
  event_name: string | null;
  attributes: J;
  resource: J;
}

describe('OTLP logs fidelity: eventName, observed time, severity, long resource attributes, NUL and wrong types (protobuf and JSON)', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  /** A new org (so every case reads only its own rows), an ingest key and a read key. */
  async function freshOrg(): Promise<{ id: string; slug: string; key: string; reader: string }> {
    const org = await createOrg(t.app.services);
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    const reader = (await createApiKey(t.app.services, org.slug, ['read'])).secret;
    return { id: org.id, slug: org.slug, key, reader };
  }

  async function post(format: Format, key: string, body: Buffer): Promise<Exported> {
    const res = await t.api.raw('POST', '/v1/logs', { token: key, body, headers: { 'content-type': CONTENT_TYPE[format] } });
    expect(res.headers.get('content-type'), 'answered in the request encoding').to.match(new RegExp(`^${CONTENT_TYPE[format]}(;|$)`));
    if (res.status !== 200) {
      const status = format === 'json' ? (JSON.parse(res.text) as J) : OTLP_MESSAGES.status.toObject(OTLP_MESSAGES.status.decode(res.bytes));
      return { status: res.status, rejected: 0, message: String(status.message) };
    }
    const answer =
      format === 'json' ? (JSON.parse(res.text) as J) : OTLP_MESSAGES.logsResponse.toObject(OTLP_MESSAGES.logsResponse.decode(res.bytes), { longs: String });
    const partial = (answer.partialSuccess ?? {}) as { rejectedLogRecords?: string; errorMessage?: string };
    return { status: 200, rejected: Number(partial.rejectedLogRecords ?? 0), message: partial.errorMessage ?? '' };
  }

  const send = (format: Format, key: string, body: J): Promise<Exported> => post(format, key, encode(format, body));

  /** The org's rows, oldest first (then by body). */
  const rowsOf = (orgId: string): Promise<LogRow[]> =>
    query<LogRow>(
      url,
      `select (extract(epoch from ts) * 1000)::float8 as ts_ms, (extract(epoch from observed_ts) * 1000)::float8 as observed_ms,
              severity_number, severity_text, body, event_name, attributes, resource
         from logs where org_id = $1 order by ts, body collate "C"`,
      [orgId],
    );

  for (const format of ['protobuf', 'json'] as const) {
    describe(format, () => {
      it('eventName, observed time and severity 0 are stored and answered by GET …/logs; a 500 ns time is real (too old), no time is the observed time, else the arrival', async () => {
        const org = await freshOrg();
        const base = Date.now() - 60_000;
        const before = Date.now();
        const res = await send(format, org.key, {
          resourceLogs: [
            resourceLogs(
              [
                // Sub-millisecond nanoseconds are dropped (PostgreSQL would keep microseconds; Sentinel stores ms).
                { timeUnixNano: nanos(base, 999_999), observedTimeUnixNano: nanos(base + 1_500, 123), eventName: 'user.login', body: s('a-event') },
                { observedTimeUnixNano: nanos(base + 2_000), severityText: 'WARN', body: s('b-observed-only') },
                { body: s('c-no-time') },
                { timeUnixNano: '500', observedTimeUnixNano: nanos(base), body: s('d-500ns') },
                { timeUnixNano: nanos(base + 3_000), severityNumber: 17, body: s('e-error') },
              ],
              [kv('service.name', s('logs-fidelity'))],
            ),
          ],
        });
        const after = Date.now();
        expect(res).to.deep.equal({ status: 200, rejected: 1, message: '1 item(s) outside the accepted time window' });

        const rows = await rowsOf(org.id);
        const noTime = rows.find((r) => r.body === 'c-no-time')!;
        expect(noTime.ts_ms, 'no time at all: the arrival').to.be.within(before, after);
        expect(rows.map(({ ts_ms, observed_ms, severity_number, severity_text, body, event_name }) => ({ ts_ms, observed_ms, severity_number, severity_text, body, event_name }))).to.deep.equal([
          { ts_ms: base, observed_ms: base + 1_500, severity_number: 0, severity_text: '', body: 'a-event', event_name: 'user.login' },
          { ts_ms: base + 2_000, observed_ms: base + 2_000, severity_number: 13, severity_text: 'WARN', body: 'b-observed-only', event_name: null },
          { ts_ms: base + 3_000, observed_ms: null, severity_number: 17, severity_text: 'error', body: 'e-error', event_name: null },
          { ts_ms: noTime.ts_ms, observed_ms: null, severity_number: 0, severity_text: '', body: 'c-no-time', event_name: null },
        ]);

        // The API (answers are validated against the OpenAPI document by the client).
        const range = `start=${new Date(base - 60_000).toISOString()}&end=${new Date(after + 60_000).toISOString()}`;
        const page = await t.api.get<{ items: J[] }>(`/organizations/${org.slug}/logs?${range}`, org.reader);
        expect(page.status, page.text).to.equal(200);
        const byBody = new Map(page.body.items.map((i) => [i.body, i]));
        expect(byBody.get('a-event')).to.deep.include({
          ts: new Date(base).toISOString(),
          observed_ts: new Date(base + 1_500).toISOString(),
          event_name: 'user.login',
          severity_number: 0,
          severity_text: '',
          level: 'info',
        });
        expect(byBody.get('b-observed-only')).to.deep.include({ observed_ts: new Date(base + 2_000).toISOString(), event_name: null, severity_number: 13, level: 'warn' });
        expect(byBody.get('c-no-time')).to.deep.include({ observed_ts: null, event_name: null, severity_number: 0, level: 'info' });
        // The level filter reads 0 as info, as the level field does.
        const bodies = async (level: string) =>
          ((await t.api.get<{ items: J[] }>(`/organizations/${org.slug}/logs?${range}&level=${level}`, org.reader)).body.items.map((i) => i.body) as string[]).sort();
        expect(await bodies('info')).to.deep.equal(['a-event', 'b-observed-only', 'c-no-time', 'e-error']);
        expect(await bodies('warn')).to.deep.equal(['b-observed-only', 'e-error']);
      });

      it('a 5,000-character process.command_line: the records are stored with it cut to 4,096 and listed in sentinel.truncated_attributes, reported with nothing rejected', async () => {
        const org = await freshOrg();
        const ts = nanos(Date.now() - 1_000);
        const commandLine = `/usr/bin/java -javaagent:/otel/opentelemetry-javaagent.jar -cp ${'/opt/app/lib/dependency.jar:'.repeat(200)}`.slice(0, 5_000);
        expect(commandLine).to.have.length(5_000);
        const resource = [kv('service.name', s('java-app')), kv('process.command_line', s(commandLine)), kv('process.pid', { intValue: '4242' })];
        const res = await send(format, org.key, { resourceLogs: [resourceLogs([{ timeUnixNano: ts, body: s('one') }, { timeUnixNano: ts, body: s('two') }], resource, { name: 'io.app' })] });
        expect(res).to.deep.equal({ status: 200, rejected: 0, message: truncatedWarning('process.command_line') });

        const rows = await rowsOf(org.id);
        expect(rows.map((r) => r.body)).to.deep.equal(['one', 'two']);
        const expected = {
          'service.name': 'java-app',
          'process.command_line': commandLine.slice(0, LIMIT),
          'process.pid': 4242,
          'otel.scope.name': 'io.app',
          [TRUNCATED_MARKER]: ['process.command_line'],
        };
        for (const r of rows) expect(r.resource).to.deep.equal(expected);
        expect((rows[0].resource['process.command_line'] as string).length).to.equal(LIMIT);

        // Other resource problems still refuse the resource's records; the warning of another resource is kept beside them.
        const tooMany = Array.from({ length: 65 }, (_, i) => kv(`k${i}`, s('v')));
        const mixed = await send(format, org.key, {
          resourceLogs: [
            resourceLogs([{ timeUnixNano: ts, body: s('too-many-1') }, { timeUnixNano: ts, body: s('too-many-2') }], tooMany),
            resourceLogs([{ timeUnixNano: ts, body: s('long-key') }], [kv('k'.repeat(101), s('v'))]),
            resourceLogs([{ timeUnixNano: ts, body: s('three') }], resource),
          ],
        });
        expect(mixed).to.deep.equal({
          status: 200,
          rejected: 3,
          message: [
            '2 log record(s) rejected: more than 64 resource attributes',
            '1 log record(s) rejected: a resource attribute key longer than 100 characters',
            truncatedWarning('process.command_line'),
          ].join('; '),
        });
        const after = await rowsOf(org.id);
        expect(after.map((r) => r.body)).to.deep.equal(['one', 'three', 'two']);
      });

      it('NUL in the body, eventName, attributes and resource is stored as U+FFFD; an eventName over 4,096 characters refuses its record', async () => {
        const org = await freshOrg();
        const ts = nanos(Date.now() - 1_000);
        const res = await send(format, org.key, {
          resourceLogs: [
            resourceLogs(
              [
                {
                  timeUnixNano: ts,
                  body: s('bo\u0000dy'),
                  eventName: 'ev\u0000ent',
                  severityText: 'WA\u0000RN',
                  attributes: [kv('k\u0000ey', s('va\u0000lue')), kv('list', { arrayValue: { values: [s('x\u0000')] } })],
                },
                { timeUnixNano: ts, body: s('long-event-name'), eventName: 'e'.repeat(LIMIT + 1) },
                { timeUnixNano: ts, body: s('event-name-at-limit'), eventName: 'e'.repeat(LIMIT) },
              ],
              [kv('service.name', s('sv\u0000c'))],
            ),
          ],
        });
        expect(res).to.deep.equal({ status: 200, rejected: 1, message: `1 log record(s) rejected: an eventName longer than ${LIMIT} characters` });
        const rows = await rowsOf(org.id);
        expect(rows.map((r) => ({ body: r.body, event_name: r.event_name, severity_text: r.severity_text, attributes: r.attributes, resource: r.resource }))).to.deep.equal([
          {
            body: 'bo\ufffddy',
            event_name: 'ev\ufffdent',
            severity_text: 'WA\ufffdRN',
            attributes: { 'k\ufffdey': 'va\ufffdlue', list: ['x\ufffd'] },
            resource: { 'service.name': 'sv\ufffdc' },
          },
          { body: 'event-name-at-limit', event_name: 'e'.repeat(LIMIT), severity_text: '', attributes: {}, resource: { 'service.name': 'sv\ufffdc' } },
        ]);
      });
    });
  }

  describe('wrong types', () => {
    it('JSON: an eventName that is not a string or an unreadable time refuses its record with a message; a body that is not an AnyValue is a 400', async () => {
      const org = await freshOrg();
      const ts = nanos(Date.now() - 1_000);
      const res = await send('json', org.key, {
        resourceLogs: [
          resourceLogs(
            [
              { timeUnixNano: ts, body: s('number'), eventName: 42 },
              { timeUnixNano: ts, body: s('object'), eventName: { stringValue: 'x' } },
              { timeUnixNano: 'yesterday', body: s('bad-time') },
              { timeUnixNano: ts, observedTimeUnixNano: '18446744073709551616', body: s('beyond-fixed64') },
              { timeUnixNano: ts, body: s('fine'), eventName: 'ok' },
            ],
            [kv('service.name', s('types'))],
          ),
        ],
      });
      expect(res).to.deep.equal({
        status: 200,
        rejected: 4,
        message: ['2 log record(s) rejected: an eventName that is not a string', '2 log record(s) rejected: an unreadable timeUnixNano or observedTimeUnixNano'].join('; '),
      });
      expect((await rowsOf(org.id)).map((r) => [r.body, r.event_name])).to.deep.equal([['fine', 'ok']]);

      const structural = await send('json', org.key, { resourceLogs: [resourceLogs([{ timeUnixNano: ts, body: 'plain text, not an AnyValue' }], [])] });
      expect(structural).to.deep.equal({ status: 400, rejected: 0, message: 'invalid OTLP request: resourceLogs[0].scopeLogs[0].logRecords[0].body must be an object' });
      expect(await rowsOf(org.id)).to.have.length(1);
    });

    it('protobuf: an eventName sent with another wire type is skipped as an unknown field (the record is stored without it), never a 500', async () => {
      const org = await freshOrg();
      const ms = Date.now() - 1_000;
      // LogRecord { time_unix_nano (1, fixed64) = ms; body (5) = AnyValue { string_value = "wire" }; event_name (12) as varint 42 }
      const time = Buffer.alloc(9);
      time[0] = (1 << 3) | 1;
      time.writeBigUInt64LE(BigInt(ms) * 1_000_000n, 1);
      const ld = (field: number, inner: Buffer) => Buffer.concat([Buffer.from([(field << 3) | 2, inner.length]), inner]);
      const record = Buffer.concat([time, ld(5, ld(1, Buffer.from('wire'))), Buffer.from([(12 << 3) | 0, 42])]);
      const res = await post('protobuf', org.key, ld(1, ld(2, ld(2, record))));
      expect(res).to.deep.equal({ status: 200, rejected: 0, message: '' });
      expect((await rowsOf(org.id)).map((r) => [r.ts_ms, r.body, r.event_name])).to.deep.equal([[ms, 'wire', null]]);
    });
  });
});
