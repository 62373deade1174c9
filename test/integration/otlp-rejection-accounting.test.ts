import { expect } from 'chai';
import type { AdminStatus } from '../../src/core/status.js';
import { OTLP_MESSAGES } from '../../src/features/telemetry/otlp-proto.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { parsePrometheusText, sampleValue, type Family } from '../support/prom-text.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/*
 * What the OTLP decoder drops (malformed data points and log records, and items past the
 * 10,000th of a request) is counted like every other refusal: in
 * sentinel_ingest_rejected_items_total{signal,reason}, in the admin status' ingest.rejected and in
 * the ingest_rejections rows the daily report reads; each item once, beside what ingest itself
 * drops (the time window). Bodies in both encodings, with known numbers of bad items.
 */

type J = Record<string, unknown>;
type Signal = 'metrics' | 'logs';

const nowNanos = (offsetMs = 0): string => String(BigInt(Date.now() + offsetMs) * 1_000_000n);
const s = (v: string): J => ({ stringValue: v });
const kv = (key: string, value: J): J => ({ key, value });
const metricsRequest = (metrics: J[]): J => ({ resourceMetrics: [{ resource: { attributes: [kv('service.name', s('acct'))] }, scopeMetrics: [{ scope: { name: 'acct' }, metrics }] }] });
const logsRequest = (logRecords: J[]): J => ({ resourceLogs: [{ resource: { attributes: [kv('service.name', s('acct'))] }, scopeLogs: [{ scope: {}, logRecords }] }] });
const MESSAGES = { metrics: OTLP_MESSAGES.metricsRequest, logs: OTLP_MESSAGES.logsRequest };
const RESPONSES = { metrics: OTLP_MESSAGES.metricsResponse, logs: OTLP_MESSAGES.logsResponse };

const WINDOW_MS = 60 * 86_400_000;

/** Four malformed data points (of five in the window) and one a month old, any encoding. */
function badMetrics(): J {
  const ts = nowNanos();
  return metricsRequest([
    { name: 'acct_ok', gauge: { dataPoints: [{ timeUnixNano: ts, asDouble: 1 }] } },
    // No aggregationTemporality: two data points.
    { name: 'acct_sum', sum: { isMonotonic: true, dataPoints: [{ timeUnixNano: ts, asDouble: 1 }, { timeUnixNano: ts, asDouble: 2, attributes: [kv('k', s('b'))] }] } },
    // An int64 a double would round.
    { name: 'acct_big', gauge: { dataPoints: [{ timeUnixNano: ts, asInt: '9007199254740993' }] } },
    // Buckets that do not sum to the count.
    { name: 'acct_hist', histogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: ts, count: '5', sum: 3, bucketCounts: ['1', '1'], explicitBounds: [1] }] } },
    // Well-formed, but outside the time window: ingest's reason, not the decoder's.
    { name: 'acct_old', gauge: { dataPoints: [{ timeUnixNano: nowNanos(-WINDOW_MS), asDouble: 1 }] } },
  ]);
}

/** Three malformed log records (of four in the window) and one a month old. */
function badLogs(): J {
  return logsRequest([
    { timeUnixNano: nowNanos(), body: s('kept') },
    { timeUnixNano: nowNanos(), body: s('x'.repeat(70_000)) },
    { timeUnixNano: nowNanos(), body: s('too many attributes'), attributes: Array.from({ length: 65 }, (_, i) => kv(`a${i}`, s('v'))) },
    { timeUnixNano: nowNanos(), body: s('long key'), attributes: [kv('k'.repeat(101), s('v'))] },
    { timeUnixNano: nowNanos(-WINDOW_MS), body: s('a month old') },
  ]);
}

function goodMetrics(): J {
  const ts = nowNanos();
  return metricsRequest([
    { name: 'acct_good', gauge: { dataPoints: [{ timeUnixNano: ts, asDouble: 1 }, { timeUnixNano: ts, asInt: '7', attributes: [kv('k', s('b'))] }] } },
    { name: 'acct_good_total', sum: { isMonotonic: true, aggregationTemporality: 2, dataPoints: [{ timeUnixNano: ts, asInt: '3' }] } },
    { name: 'acct_good_hist', histogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: ts, count: '2', sum: 3, bucketCounts: ['1', '1'], explicitBounds: [1] }] } },
  ]);
}

const goodLogs = (): J => logsRequest([{ timeUnixNano: nowNanos(), body: s('fine') }, { body: s('fine too'), attributes: [kv('k', s('v'))] }]);

interface Refusals {
  /** sentinel_ingest_rejected_items_total, per `signal/reason`. */
  metric: Record<string, number>;
  /** The admin status' ingest.rejected, per `signal/reason`. */
  status: Record<string, number>;
}

describe('OTLP: what the decoder drops is counted like every refusal', function () {
  this.timeout(90_000);
  let url: string;
  let t: TestApp;
  let root: string;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
    const su = await createUser(t.app.services, { superadmin: true });
    root = (await t.api.login(su.email, su.password)).access_token;
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  /** A fresh organization (its own ingest_rejections rows) and an ingest key for it. */
  async function freshOrg(): Promise<{ id: string; key: string }> {
    const org = await createOrg(t.app.services);
    await t.app.services.orgs.update({ kind: 'system' }, org.slug, { limits: { ingest_points_per_second: 1_000_000 } });
    return { id: org.id, key: (await createApiKey(t.app.services, org.slug, ['ingest'])).secret };
  }

  async function refusals(): Promise<Refusals> {
    const res = await t.api.raw('GET', '/metrics');
    expect(res.status).to.equal(200);
    const families: Map<string, Family> = parsePrometheusText(res.text);
    const metric: Record<string, number> = {};
    for (const sample of families.get('sentinel_ingest_rejected_items_total')?.samples ?? []) metric[`${sample.labels.signal}/${sample.labels.reason}`] = sample.value;
    // The same lookup the table would be read with, so the parser's view is the one checked.
    for (const k of Object.keys(metric)) {
      const [signal, reason] = k.split('/');
      expect(sampleValue(families, 'sentinel_ingest_rejected_items_total', { signal, reason })).to.equal(metric[k]);
    }
    const st = await t.api.get<AdminStatus>('/admin/status', root);
    expect(st.status, st.text).to.equal(200);
    const status: Record<string, number> = {};
    for (const r of st.body.ingest.rejected) status[`${r.signal}/${r.reason}`] = r.items;
    return { metric, status };
  }

  /** after − before, keys whose difference is 0 left out. */
  function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const d = (after[k] ?? 0) - (before[k] ?? 0);
      if (d !== 0) out[k] = d;
    }
    return out;
  }

  async function rows(orgId: string): Promise<{ reason: string; status: number; requests: number; items: number }[]> {
    await t.app.services.rejections.flush();
    return query(url, 'select reason, status, requests, items from ingest_rejections where org_id = $1 order by reason', [orgId]);
  }

  /** Posts `body` in `format`; the partialSuccess' rejected count (0 when absent). */
  async function post(signal: Signal, format: 'json' | 'protobuf', body: J, key: string): Promise<number> {
    const type = MESSAGES[signal];
    const payload = format === 'json' ? JSON.stringify(body) : Buffer.from(type.encode(type.fromObject(body)).finish());
    const res = await t.api.raw('POST', `/v1/${signal}`, { token: key, body: payload, headers: { 'content-type': format === 'json' ? 'application/json' : 'application/x-protobuf' } });
    expect(res.status, res.text).to.equal(200);
    const answer = (
      format === 'json' ? (JSON.parse(res.text) as J) : RESPONSES[signal].toObject(RESPONSES[signal].decode(res.bytes), { longs: Number })
    ) as { partialSuccess?: { rejectedDataPoints?: number | string; rejectedLogRecords?: number | string } };
    return Number(answer.partialSuccess?.[signal === 'metrics' ? 'rejectedDataPoints' : 'rejectedLogRecords'] ?? 0);
  }

  const CASES: { signal: Signal; body: () => J; invalid: number }[] = [
    { signal: 'metrics', body: badMetrics, invalid: 4 },
    { signal: 'logs', body: badLogs, invalid: 3 },
  ];
  for (const format of ['json', 'protobuf'] as const) {
    for (const c of CASES) {
      it(`${format} ${c.signal}: ${c.invalid} malformed items counted once as dropped_invalid_items, the old one as dropped_outside_time_window`, async () => {
        const org = await freshOrg();
        const before = await refusals();
        const rejected = await post(c.signal, format, c.body(), org.key);
        // The exporter is told of every dropped item: the malformed ones and the one outside the window.
        expect(rejected).to.equal(c.invalid + 1);
        const after = await refusals();
        const expected = { [`${c.signal}/dropped_invalid_items`]: c.invalid, [`${c.signal}/dropped_outside_time_window`]: 1 };
        expect(delta(before.metric, after.metric), 'sentinel_ingest_rejected_items_total').to.deep.equal(expected);
        expect(delta(before.status, after.status), 'admin status ingest.rejected').to.deep.equal(expected);
        expect(await rows(org.id), 'ingest_rejections').to.deep.equal([
          { reason: 'dropped_invalid_items', status: 200, requests: 1, items: c.invalid },
          { reason: 'dropped_outside_time_window', status: 200, requests: 1, items: 1 },
        ]);
      });
    }
  }

  it('protobuf logs past the 10,000th of a request: dropped_too_many_items, apart from the malformed ones', async () => {
    const org = await freshOrg();
    const before = await refusals();
    const records: J[] = Array.from({ length: 10_003 }, (_, i) => ({ body: s(`n${i}`) }));
    // Two malformed records among the first 10,000, three records past them.
    records[5] = { body: s('x'.repeat(70_000)) };
    records[9] = { body: s('k'), attributes: [kv('k'.repeat(101), s('v'))] };
    expect(await post('logs', 'protobuf', logsRequest(records), org.key)).to.equal(5);
    const after = await refusals();
    const expected = { 'logs/dropped_invalid_items': 2, 'logs/dropped_too_many_items': 3 };
    expect(delta(before.metric, after.metric)).to.deep.equal(expected);
    expect(delta(before.status, after.status)).to.deep.equal(expected);
    expect(await rows(org.id)).to.deep.equal([
      { reason: 'dropped_invalid_items', status: 200, requests: 1, items: 2 },
      { reason: 'dropped_too_many_items', status: 200, requests: 1, items: 3 },
    ]);
    expect(await query(url, 'select count(*)::int as n from logs where org_id = $1', [org.id])).to.deep.equal([{ n: 9_998 }]);
  });

  it('well-formed bodies, JSON and protobuf, move none of the counts', async () => {
    const org = await freshOrg();
    const before = await refusals();
    for (const format of ['json', 'protobuf'] as const) {
      expect(await post('metrics', format, goodMetrics(), org.key)).to.equal(0);
      expect(await post('logs', format, goodLogs(), org.key)).to.equal(0);
    }
    const after = await refusals();
    expect(delta(before.metric, after.metric)).to.deep.equal({});
    expect(delta(before.status, after.status)).to.deep.equal({});
    expect(await rows(org.id)).to.deep.equal([]);
    // They were stored (a histogram point is four rows: _count, _sum and two buckets).
    expect(await query(url, 'select count(*)::int as n from logs where org_id = $1', [org.id])).to.deep.equal([{ n: 4 }]);
    expect(await query(url, 'select count(*)::int as n from points where org_id = $1', [org.id])).to.deep.equal([{ n: 2 * (2 + 1 + 4) }]);
  });
});
