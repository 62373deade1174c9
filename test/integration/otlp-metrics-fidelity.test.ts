import { createHash } from 'node:crypto';
import protobufjs from 'protobufjs';
import { expect } from 'chai';
import { OTLP_MESSAGES } from '../../src/features/telemetry/otlp-proto.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Hand-built OTLP metric requests, each sent as protobuf and as JSON, checked against the
 * series and points stored and the partialSuccess answered: one series per stream (kind,
 * temporality, unit), a per-process identity, data points stored whole or not at all, exact
 * integers, and bad input answered as 200 with partialSuccess or 400, never 500.
 */

type J = Record<string, unknown>;
type Format = 'json' | 'protobuf';

const CONTENT_TYPE: Record<Format, string> = { json: 'application/json', protobuf: 'application/x-protobuf' };
const nowNanos = (offsetMs = 0): string => String(BigInt(Date.now() + offsetMs) * 1_000_000n);
const s = (v: string): J => ({ stringValue: v });
const int = (v: string): J => ({ intValue: v });
const kv = (key: string, value: J): J => ({ key, value });
const request = (metrics: J[], resource: J[] = [kv('service.name', s('fidelity'))]): J => ({ resourceMetrics: [{ resource: { attributes: resource }, scopeMetrics: [{ scope: {}, metrics }] }] });
const sum = (name: string, temporality: number, dataPoints: J[], extra: J = {}): J => ({ name, ...extra, sum: { aggregationTemporality: temporality, isMonotonic: true, dataPoints } });
const gauge = (name: string, dataPoints: J[], extra: J = {}): J => ({ name, ...extra, gauge: { dataPoints } });
/** The first 16 hex digits of SHA-256, as otel_resource_id is documented. */
const resourceId = (canonicalJson: string): string => createHash('sha256').update(canonicalJson).digest('hex').slice(0, 16);

function encode(format: Format, body: J): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify(body));
  const type = OTLP_MESSAGES.metricsRequest;
  return Buffer.from(type.encode(type.fromObject(body)).finish());
}

interface Exported {
  status: number;
  /** partialSuccess.rejectedDataPoints (0 when absent). */
  rejected: number;
  /** partialSuccess.errorMessage, or the Status message of an error. */
  message: string;
}

interface SeriesRow {
  name: string;
  labels: Record<string, string>;
  kind: string;
  temporality: string | null;
  monotonic: boolean;
  unit: string;
  description: string;
  values: number[];
}

describe('OTLP metrics fidelity: streams, identity, whole data points, exact values (protobuf and JSON)', function () {
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

  /** A new org (so every case starts without series) and an ingest key for it. */
  async function freshOrg(limits: { max_series?: number } = {}): Promise<{ id: string; key: string }> {
    const org = await createOrg(t.app.services);
    if (limits.max_series !== undefined) await t.app.services.orgs.update({ kind: 'system' }, org.slug, { limits });
    return { id: org.id, key: (await createApiKey(t.app.services, org.slug, ['ingest'])).secret };
  }

  async function post(format: Format, key: string, body: Buffer): Promise<Exported> {
    const res = await t.api.raw('POST', '/v1/metrics', { token: key, body, headers: { 'content-type': CONTENT_TYPE[format] } });
    expect(res.headers.get('content-type'), 'answered in the request encoding').to.match(new RegExp(`^${CONTENT_TYPE[format]}(;|$)`));
    if (res.status !== 200) {
      const status = format === 'json' ? (JSON.parse(res.text) as J) : OTLP_MESSAGES.status.toObject(OTLP_MESSAGES.status.decode(res.bytes));
      return { status: res.status, rejected: 0, message: String(status.message) };
    }
    const answer =
      format === 'json'
        ? (JSON.parse(res.text) as J)
        : OTLP_MESSAGES.metricsResponse.toObject(OTLP_MESSAGES.metricsResponse.decode(res.bytes), { longs: String });
    const partial = (answer.partialSuccess ?? {}) as { rejectedDataPoints?: string; errorMessage?: string };
    return { status: 200, rejected: Number(partial.rejectedDataPoints ?? 0), message: partial.errorMessage ?? '' };
  }

  const send = (format: Format, key: string, body: J): Promise<Exported> => post(format, key, encode(format, body));

  /** Every series of the org with its descriptor and its points' values (ascending). */
  const seriesOf = (orgId: string): Promise<SeriesRow[]> =>
    query<SeriesRow>(
      url,
      `select s.name, s.labels, s.kind, s.temporality, s.monotonic, s.unit, s.description,
              coalesce(array_agg(p.value order by p.value) filter (where p.value is not null), '{}') as values
         from series s left join points p on p.org_id = s.org_id and p.series_id = s.id
        where s.org_id = $1
        group by s.org_id, s.id
        order by s.name collate "C", s.labels::text collate "C", s.temporality collate "C" nulls first, s.unit collate "C"`,
      [orgId],
    );
  const pointCount = async (orgId: string, where = 'true'): Promise<number> =>
    Number((await query<{ n: string }>(url, `select count(*) as n from points p join series s on s.org_id = p.org_id and s.id = p.series_id where p.org_id = $1 and ${where}`, [orgId]))[0].n);

  const base = { 'service.name': 'fidelity' };
  const descriptor = (kind: string, temporality: string | null, monotonic: boolean, unit = '', description = '') => ({ kind, temporality, monotonic, unit, description });

  for (const format of ['protobuf', 'json'] as const) {
    describe(format, () => {
      it('sums of one name differing in temporality or unit are separate series; a gauge of that name is refused as another kind', async () => {
        const org = await freshOrg();
        const ts = nowNanos();
        const res = await send(
          format,
          org.key,
          request([
            sum('reqs', 2, [{ timeUnixNano: ts, asInt: '1000' }], { unit: '1', description: 'all requests' }),
            sum('reqs', 1, [{ timeUnixNano: ts, asInt: '3' }], { unit: '1' }),
            sum('reqs', 2, [{ timeUnixNano: ts, asInt: '7' }], { unit: 'By' }),
            gauge('reqs', [{ timeUnixNano: ts, asDouble: 0.5 }]),
            gauge('temp', [{ timeUnixNano: ts, asDouble: 21.5 }], { unit: 'Cel' }),
            { name: 'queue', sum: { aggregationTemporality: 1, isMonotonic: false, dataPoints: [{ timeUnixNano: ts, asInt: '-4' }] } },
          ]),
        );
        expect(res).to.deep.equal({ status: 200, rejected: 1, message: '1 data point(s) rejected: metric "reqs" has series of kind counter; a gauge of the same name is refused' });
        expect(await seriesOf(org.id)).to.deep.equal([
          { name: 'queue', labels: base, ...descriptor('updowncounter', 'delta', false), values: [-4] },
          { name: 'reqs', labels: base, ...descriptor('counter', 'cumulative', true, '1', 'all requests'), values: [1000] },
          { name: 'reqs', labels: base, ...descriptor('counter', 'cumulative', true, 'By'), values: [7] },
          { name: 'reqs', labels: base, ...descriptor('counter', 'delta', true, '1'), values: [3] },
          { name: 'temp', labels: base, ...descriptor('gauge', null, false, 'Cel'), values: [21.5] },
        ]);
      });

      it('a histogram a_h and a counter a_h_count: the counter is refused with a message, the histogram is stored whole', async () => {
        const org = await freshOrg();
        const ts = nowNanos();
        const histogram = { name: 'a_h', unit: 'ms', histogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: ts, count: '3', sum: 4.5, bucketCounts: ['1', '2'], explicitBounds: [1] }] } };
        const res = await send(format, org.key, request([histogram, sum('a_h_count', 2, [{ timeUnixNano: ts, asInt: '99' }])]));
        const refused = '1 data point(s) rejected: metric "a_h_count" has series of kind histogram; a counter of the same name is refused';
        expect(res).to.deep.equal({ status: 200, rejected: 1, message: refused });
        const h = descriptor('histogram', 'cumulative', true, 'ms');
        const expected = [
          { name: 'a_h_bucket', labels: { ...base, le: '+Inf' }, ...h, values: [3] },
          { name: 'a_h_bucket', labels: { ...base, le: '1' }, ...h, values: [1] },
          { name: 'a_h_count', labels: base, ...h, values: [3] },
          { name: 'a_h_sum', labels: base, ...h, values: [4.5] },
        ];
        expect(await seriesOf(org.id)).to.deep.equal(expected);
        // In a later request too: the name's kind is known from the stored series.
        const later = await send(format, org.key, request([sum('a_h_count', 2, [{ timeUnixNano: nowNanos(), asInt: '100' }])]));
        expect(later).to.deep.equal({ status: 200, rejected: 1, message: refused });
        expect(await seriesOf(org.id)).to.deep.equal(expected);
      });

      it('a counter a_h_count first, then a histogram a_h: the histogram point is refused whole and creates none of its series', async () => {
        const org = await freshOrg();
        const ts = nowNanos();
        expect(await send(format, org.key, request([sum('a_h_count', 2, [{ timeUnixNano: ts, asInt: '7' }])]))).to.deep.equal({ status: 200, rejected: 0, message: '' });
        const histogram = { name: 'a_h', histogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: nowNanos(), count: '3', sum: 4.5, bucketCounts: ['1', '2'], explicitBounds: [1] }] } };
        const res = await send(format, org.key, request([histogram]));
        expect(res).to.deep.equal({ status: 200, rejected: 1, message: '1 data point(s) rejected: metric "a_h_count" has series of kind counter; a histogram of the same name is refused' });
        // No empty a_h_sum or a_h_bucket series: they would take up room and fix those names' kind.
        expect((await seriesOf(org.id)).map((r) => [r.name, r.kind, r.values])).to.deep.equal([['a_h_count', 'counter', [7]]]);
      });

      it('two resources differing only in process.pid write two series, told apart by otel_resource_id', async () => {
        const org = await freshOrg();
        const ts = nowNanos();
        const resource = (pid: string) => ({
          resource: { attributes: [kv('service.name', s('twin')), kv('process.pid', int(pid)), kv('telemetry.sdk.language', s('nodejs'))] },
          scopeMetrics: [{ scope: { name: 'twin-scope' }, metrics: [sum('orders', 2, [{ timeUnixNano: ts, asInt: pid === '101' ? '1000' : '3' }])] }],
        });
        const res = await send(format, org.key, { resourceMetrics: [resource('101'), resource('202')] });
        expect(res).to.deep.equal({ status: 200, rejected: 0, message: '' });
        const labels = (pid: string) => ({ 'service.name': 'twin', otel_scope_name: 'twin-scope', otel_resource_id: resourceId(`{"process.pid":"${pid}","telemetry.sdk.language":"nodejs"}`) });
        const rows = await seriesOf(org.id);
        expect(rows.map((r) => [r.labels, r.values])).to.have.deep.members([
          [labels('101'), [1000]],
          [labels('202'), [3]],
        ]);
        expect(rows[0].labels.otel_resource_id).to.not.equal(rows[1].labels.otel_resource_id);
      });

      it("a histogram data point at the org's series limit is stored not at all and counts as one rejection", async () => {
        const org = await freshOrg({ max_series: 3 });
        const ts = nowNanos();
        expect(await send(format, org.key, request([gauge('pre', [{ timeUnixNano: ts, asDouble: 1 }])]))).to.deep.equal({ status: 200, rejected: 0, message: '' });
        // _count, _sum, _bucket{le="5"} and _bucket{le="+Inf"}: four new series where two fit.
        const histogram = { name: 'lat', histogram: { aggregationTemporality: 1, dataPoints: [{ timeUnixNano: ts, count: '2', sum: 3, bucketCounts: ['1', '1'], explicitBounds: [5] }] } };
        const res = await send(format, org.key, request([gauge('pre', [{ timeUnixNano: nowNanos(), asDouble: 2 }]), histogram]));
        expect(res).to.deep.equal({ status: 200, rejected: 1, message: "1 data point(s) refused: would create a new series beyond the organization's limit of 3 series" });
        expect(await pointCount(org.id, "s.name like 'lat%'")).to.equal(0);
        expect((await seriesOf(org.id)).filter((r) => r.name === 'pre').map((r) => r.values)).to.deep.equal([[1, 2]]);
        // None of its series was created either: an empty _count or _sum would take up room under the limit.
        expect((await seriesOf(org.id)).map((r) => r.name)).to.deep.equal(['pre']);
        // A histogram that fits (two new series: _count and _sum, room for two) is then stored whole.
        const small = { name: 'small', histogram: { aggregationTemporality: 1, dataPoints: [{ timeUnixNano: nowNanos(), count: '0', sum: 0 }] } };
        expect(await send(format, org.key, request([small]))).to.deep.equal({ status: 200, rejected: 0, message: '' });
        expect((await seriesOf(org.id)).map((r) => r.name).sort()).to.deep.equal(['pre', 'small_count', 'small_sum']);
      });

      it('integers beyond ±(2^53−1) are refused with a message; 2^53−1 itself is stored exactly', async () => {
        const org = await freshOrg();
        const ts = nowNanos();
        const res = await send(
          format,
          org.key,
          request([
            gauge('big', [
              { timeUnixNano: ts, asInt: '9007199254740991', attributes: [kv('v', s('max'))] },
              { timeUnixNano: ts, asInt: '9007199254740993', attributes: [kv('v', s('over'))] },
            ]),
            { name: 'bigh', histogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: ts, count: '18446744073709551615' }] } },
          ]),
        );
        expect(res.status).to.equal(200);
        expect(res.rejected).to.equal(2);
        expect(res.message.split('; ')).to.deep.equal([
          '1 data point(s) rejected: metric "big": an asInt beyond ±(2^53−1), which cannot be stored exactly',
          '1 data point(s) rejected: metric "bigh": a count beyond ±(2^53−1), which cannot be stored exactly',
        ]);
        // float8 → numeric would round to 15 digits; compared as float8 in SQL, and as read by the client.
        const rows = await query<{ value: number; exact: boolean }>(url, "select p.value, p.value = '9007199254740991'::float8 as exact from points p where p.org_id = $1", [org.id]);
        expect(rows).to.deep.equal([{ value: 9007199254740991, exact: true }]);
      });

      it('a histogram whose buckets do not sum to its count is refused; a consistent one beside it is stored', async () => {
        const org = await freshOrg();
        const ts = nowNanos();
        const dataPoints = [
          { timeUnixNano: ts, count: '10', bucketCounts: ['2', '3', '4'], explicitBounds: [1, 2], attributes: [kv('p', s('bad'))] },
          { timeUnixNano: ts, count: '9', bucketCounts: ['2', '3', '4'], explicitBounds: [1, 2], attributes: [kv('p', s('good'))] },
        ];
        const res = await send(format, org.key, request([{ name: 'hb', histogram: { aggregationTemporality: 2, dataPoints } }]));
        expect(res).to.deep.equal({ status: 200, rejected: 1, message: '1 data point(s) rejected: metric "hb": a histogram whose bucketCounts sum to 9 but count is 10' });
        const rows = await seriesOf(org.id);
        expect(rows.map((r) => [r.name, r.labels.p, r.labels.le ?? '', r.values])).to.deep.equal([
          ['hb_bucket', 'good', '+Inf', [9]],
          ['hb_bucket', 'good', '1', [2]],
          ['hb_bucket', 'good', '2', [5]],
          ['hb_count', 'good', '', [9]],
        ]);
      });

      it('attribute keys that collide after sanitizing are both kept, with a warning (rejected 0); so is what exponential histograms lose', async () => {
        const org = await freshOrg();
        const ts = nowNanos();
        const attributes = [kv('http.status code', s('space')), kv('http.status_code', s('valid'))];
        const res = await send(
          format,
          org.key,
          request([
            gauge('coll', [{ timeUnixNano: ts, asInt: '1', attributes }]),
            { name: 'eh', exponentialHistogram: { aggregationTemporality: 1, dataPoints: [{ timeUnixNano: ts, count: '3', sum: 6, zeroCount: '1', positive: { offset: 0, bucketCounts: ['2'] } }] } },
          ]),
        );
        expect(res).to.deep.equal({
          status: 200,
          rejected: 0,
          message:
            'attribute keys that sanitize to the same label key are kept apart: "http.status_code" as "http.status_code", "http.status code" as "http.status_code__2"; ' +
            'exponential histograms: only _count and _sum are stored; buckets, zeroCount, min and max are not',
        });
        const e = descriptor('exponential_histogram', 'delta', true);
        expect(await seriesOf(org.id)).to.deep.equal([
          { name: 'coll', labels: { ...base, 'http.status_code': 'valid', 'http.status_code__2': 'space' }, ...descriptor('gauge', null, false), values: [1] },
          { name: 'eh_count', labels: base, ...e, values: [3] },
          { name: 'eh_sum', labels: base, ...e, values: [6] },
        ]);
      });

      it('NUL bytes in names, attributes, unit and description are stored replaced, not failing the request', async () => {
        const org = await freshOrg();
        const res = await send(
          format,
          org.key,
          request(
            [gauge('nul\u0000name', [{ timeUnixNano: nowNanos(), asInt: '5', attributes: [kv('k\u0000', s('v\u0000'))] }], { unit: 'm\u0000s', description: 'd\u0000' })],
            [kv('service.name', s('svc\u0000'))],
          ),
        );
        expect(res).to.deep.equal({ status: 200, rejected: 0, message: '' });
        expect(await seriesOf(org.id)).to.deep.equal([
          { name: 'nul_name', labels: { 'service.name': 'svc\ufffd', k_: 'v\ufffd' }, ...descriptor('gauge', null, false, 'm\ufffds', 'd\ufffd'), values: [5] },
        ]);
      });

      it('no temporality on a sum: refused with a message, nothing stored', async () => {
        const org = await freshOrg();
        const res = await send(format, org.key, request([{ name: 'nt', sum: { isMonotonic: true, dataPoints: [{ timeUnixNano: nowNanos(), asInt: '1' }] } }]));
        expect(res).to.deep.equal({ status: 200, rejected: 1, message: '1 data point(s) rejected: metric "nt": a sum without aggregationTemporality (neither delta nor cumulative)' });
        expect(await seriesOf(org.id)).to.deep.equal([]);
      });

      it('an empty body is an empty request: 200, nothing stored', async () => {
        const org = await freshOrg();
        expect(await post(format, org.key, Buffer.alloc(0))).to.deep.equal({ status: 200, rejected: 0, message: '' });
        if (format === 'json') expect(await post(format, org.key, Buffer.from(' \n'))).to.deep.equal({ status: 200, rejected: 0, message: '' });
        expect(await seriesOf(org.id)).to.deep.equal([]);
      });
    });
  }

  it('JSON of the wrong types: a unit, description, name or isMonotonic of another type is a rejection, a structure of the wrong type a 400, never a 500', async () => {
    const org = await freshOrg();
    const ts = nowNanos();
    const res = await send(
      'json',
      org.key,
      request([
        gauge('u', [{ timeUnixNano: ts, asInt: '1' }], { unit: 5 }),
        gauge('d', [{ timeUnixNano: ts, asInt: '1' }], { description: ['x'] }),
        { name: 42, gauge: { dataPoints: [{ timeUnixNano: ts, asInt: '1' }] } },
        { name: 'm', sum: { aggregationTemporality: 2, isMonotonic: 'yes', dataPoints: [{ timeUnixNano: ts, asInt: '1' }] } },
        gauge('v', [{ timeUnixNano: ts, asInt: { n: 1 } }]),
        gauge('ok', [{ timeUnixNano: ts, asInt: '1' }]),
      ]),
    );
    expect(res.status).to.equal(200);
    expect(res.rejected).to.equal(5);
    expect(res.message.split('; ')).to.deep.equal([
      '1 data point(s) rejected: metric "u": a unit that is not a string',
      '1 data point(s) rejected: metric "d": a description that is not a string',
      '1 data point(s) rejected: a metric name that is not a string',
      '1 data point(s) rejected: metric "m": a sum whose isMonotonic is not a boolean',
      '1 data point(s) rejected: metric "v": a NaN, infinite or unreadable value',
    ]);
    expect((await seriesOf(org.id)).map((r) => r.name)).to.deep.equal(['ok']);

    for (const bad of [
      request([{ name: 'x', gauge: { dataPoints: 'many' } }]),
      request([{ name: 'x', histogram: { aggregationTemporality: 2, dataPoints: [{ count: '1', bucketCounts: '1' }] } }]),
      request([gauge('x', [{ asInt: '1', attributes: [{ key: 5, value: s('v') }] }])]),
      { resourceMetrics: [{ resource: 'r' }] },
    ]) {
      const answer = await send('json', org.key, bad);
      expect(answer.status, JSON.stringify(bad)).to.equal(400);
      expect(answer.message).to.match(/^invalid OTLP request: /);
    }
  });

  it('protobuf with a field of the wrong wire type (a unit sent as a varint) is a 400 naming the undecodable body, never a 500', async () => {
    const org = await freshOrg();
    const W = protobufjs.Writer;
    // Metric { name: "w" (1, bytes), unit: 5 (3, varint instead of bytes), gauge (5) { dataPoints (1) { as_int (6) = 1 } } }
    const point = W.create().uint32((6 << 3) | 1).sfixed64(1).finish();
    const gaugeMsg = W.create().uint32((1 << 3) | 2).bytes(point).finish();
    const metric = W.create().uint32((1 << 3) | 2).string('w').uint32((3 << 3) | 0).uint32(5).uint32((5 << 3) | 2).bytes(gaugeMsg).finish();
    const scope = W.create().uint32((2 << 3) | 2).bytes(metric).finish();
    const resource = W.create().uint32((2 << 3) | 2).bytes(scope).finish();
    const body = Buffer.from(W.create().uint32((1 << 3) | 2).bytes(resource).finish());
    const res = await post('protobuf', org.key, body);
    // The varint 5 is read as the unit's length: the message runs past its end.
    expect(res.status, res.message).to.equal(400);
    expect(res.message).to.match(/^invalid OTLP protobuf: index out of range/);
    expect(await pointCount(org.id)).to.equal(0);
  });
});
