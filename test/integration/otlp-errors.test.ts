import { expect } from 'chai';
import { DomainError } from '../../src/core/errors.js';
import { OTLP_MESSAGES } from '../../src/features/telemetry/otlp-proto.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import type { Answer } from '../support/http.js';
import { startOwnPostgres, type OwnPostgres } from '../support/own-postgres.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Every 4xx/5xx under /v1/ is a google.rpc.Status in the request's encoding
 * (https://opentelemetry.io/docs/specs/otlp/#failures-1), whatever raised it: authentication,
 * the body, the service, a database outage, a defect, an unknown path or method. 429 and 503,
 * the statuses OTLP exporters retry, carry Retry-After.
 */

type J = Record<string, unknown>;
type Format = 'json' | 'protobuf';
const FORMATS: Format[] = ['protobuf', 'json'];
const TYPE: Record<Format, string> = { json: 'application/json', protobuf: 'application/x-protobuf' };

// google.rpc.Code, from googleapis google/rpc/code.proto (written out here, not taken from the server's table).
const INVALID_ARGUMENT = 3;
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowNanos = (): string => String(BigInt(Date.now()) * 1_000_000n);
const kv = (key: string, value: string): J => ({ key, value: { stringValue: value } });

/** One gauge data point per value, each in its own series (`i`), plus labels common to the request. */
function metricsRequest(name: string, values: number[], labels: J[] = []): J {
  const ts = nowNanos();
  const dataPoints = values.map((v, i) => ({ timeUnixNano: ts, asDouble: v, attributes: [kv('i', String(i)), ...labels] }));
  return { resourceMetrics: [{ resource: { attributes: [kv('service.name', 'otlp-errors')] }, scopeMetrics: [{ scope: { name: 'errors-test' }, metrics: [{ name, gauge: { dataPoints } }] }] }] };
}

/** The request in `format`: protobuf bytes, or the OTLP JSON mapping. */
function encode(format: Format, request: J): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify(request));
  const type = OTLP_MESSAGES.metricsRequest;
  return Buffer.from(type.encode(type.fromObject(request)).finish());
}

interface Send {
  method?: string;
  format?: Format;
  /** Overrides the Content-Type `format` implies. */
  type?: string;
  token?: string | null;
  body?: Buffer | string;
  headers?: Record<string, string>;
}

const send = (app: TestApp, path: string, o: Send = {}): Promise<Answer> =>
  app.api.raw(o.method ?? 'POST', path, {
    token: o.token,
    body: o.body ?? (o.method && o.method !== 'POST' ? undefined : encode(o.format ?? 'json', metricsRequest('unused', []))),
    headers: { 'content-type': o.type ?? TYPE[o.format ?? 'json'], ...o.headers },
  });

/** The answer's google.rpc.Status, insisting on the status, the encoding and nothing but code and message. */
function rpcStatus(res: Answer, httpStatus: number, format: Format): { code: number; message: string } {
  expect(res.status, res.text).to.equal(httpStatus);
  const type = res.headers.get('content-type') ?? '';
  if (format === 'protobuf') {
    expect(type).to.equal('application/x-protobuf');
    const status = OTLP_MESSAGES.status.toObject(OTLP_MESSAGES.status.decode(res.bytes)) as { code: number; message: string };
    // Re-encoding what was decoded gives the same bytes: nothing else (no details, no stray fields) was in the body.
    expect(Buffer.from(OTLP_MESSAGES.status.encode(OTLP_MESSAGES.status.fromObject(status)).finish()).equals(res.bytes)).to.equal(true);
    return status;
  }
  expect(type).to.match(/^application\/json(;|$)/);
  const status = JSON.parse(res.text) as { code: number; message: string };
  expect(Object.keys(status).sort()).to.deep.equal(['code', 'message']);
  return status;
}

function retryAfterOf(res: Answer): number {
  const header = res.headers.get('retry-after');
  expect(header, `Retry-After on ${res.status}`).to.match(/^\d+$/);
  return Number(header);
}

describe('OTLP/HTTP errors: a google.rpc.Status in the request encoding for every 4xx and 5xx under /v1/', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  /** Same database, 64 KiB body limit. */
  let small: TestApp;
  /** Same database, two refused credentials per minute per address. */
  let strict: TestApp;
  let org: { id: string; slug: string };
  let key: string;

  before(async () => {
    url = await cloneDatabase();
    [t, small, strict] = await Promise.all([
      startTestApp(url),
      startTestApp(url, { SENTINEL_HTTP_BODY_LIMIT_BYTES: '65536' }),
      startTestApp(url, { SENTINEL_RATE_LIMITS_AUTH_FAILURES_PER_MINUTE_PER_IP: '2' }),
    ]);
    org = await createOrg(t.app.services);
    key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
  });
  after(async () => {
    await Promise.all([t?.stop(), small?.stop(), strict?.stop()]);
    if (url) await dropDatabase(url);
  });

  const storedValues = async (name: string): Promise<number[]> =>
    (await query<{ value: number }>(url, 'select p.value from points p join series s on s.org_id = p.org_id and s.id = p.series_id where p.org_id = $1 and s.name = $2 order by 1', [org.id, name])).map((r) => r.value);

  for (const format of FORMATS) {
    describe(`${format} requests`, () => {
      it('401 UNAUTHENTICATED without a key and with an unknown one, with WWW-Authenticate', async () => {
        const none = await send(t, '/v1/metrics', { format, token: null });
        expect(rpcStatus(none, 401, format)).to.deep.equal({ code: UNAUTHENTICATED, message: 'authentication required' });
        expect(none.headers.get('www-authenticate')).to.match(/^Bearer /);
        const unknown = await send(t, '/v1/logs', { format, token: `snt_${'x'.repeat(32)}` });
        const status = rpcStatus(unknown, 401, format);
        expect(status.code).to.equal(UNAUTHENTICATED);
        expect(status.message).to.not.equal('');
      });

      it('403 PERMISSION_DENIED for a key without the ingest scope, nothing stored', async () => {
        const readOnly = (await createApiKey(t.app.services, org.slug, ['read'])).secret;
        const name = `forbidden_${format}`;
        const res = await send(t, '/v1/metrics', { format, token: readOnly, body: encode(format, metricsRequest(name, [1])) });
        const status = rpcStatus(res, 403, format);
        expect(status.code).to.equal(PERMISSION_DENIED);
        expect(status.message).to.match(/scope|permission|ingest/i);
        expect(await storedValues(name)).to.deep.equal([]);
      });

      it('400 INVALID_ARGUMENT for a user token (only API keys decide the organization) and for an undecodable body', async () => {
        const user = await createUser(t.app.services, { org: org.slug, role: 'admin' });
        const { access_token } = await t.api.login(user.email, user.password);
        const name = `user_token_${format}`;
        const byUser = await send(t, '/v1/metrics', { format, token: access_token, body: encode(format, metricsRequest(name, [1])) });
        const status = rpcStatus(byUser, 400, format);
        expect(status.code).to.equal(INVALID_ARGUMENT);
        expect(status.message).to.match(/^only API keys decide the organization/);
        expect(await storedValues(name)).to.deep.equal([]);

        const garbage = await send(t, '/v1/metrics', { format, token: key, body: format === 'json' ? '{"resourceMetrics": [' : Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) });
        const bad = rpcStatus(garbage, 400, format);
        expect(bad.code).to.equal(INVALID_ARGUMENT);
        expect(bad.message).to.match(format === 'json' ? /^invalid OTLP JSON/ : /^invalid OTLP protobuf/);
      });

      it('413 RESOURCE_EXHAUSTED for a body over http.body_limit_bytes', async () => {
        const big = encode(format, metricsRequest('too_big', [1], [kv('pad', 'p'.repeat(70_000))]));
        expect(big.length).to.be.above(65_536);
        const res = await send(small, '/v1/metrics', { format, token: key, body: big });
        expect(rpcStatus(res, 413, format)).to.deep.equal({ code: RESOURCE_EXHAUSTED, message: 'the request body is larger than 65536 bytes' });
        expect(await storedValues('too_big')).to.deep.equal([]);
      });

      it('415 INVALID_ARGUMENT for a Content-Encoding other than gzip', async () => {
        const res = await send(t, '/v1/logs', { format, token: key, headers: { 'content-encoding': 'br' } });
        expect(rpcStatus(res, 415, format)).to.deep.equal({ code: INVALID_ARGUMENT, message: 'Content-Encoding "br" is not supported; send gzip or no encoding' });
      });

      it("429 RESOURCE_EXHAUSTED with Retry-After over the organization's ingest rate", async () => {
        const limited = await createOrg(t.app.services);
        await t.app.services.orgs.update({ kind: 'system' }, limited.slug, { limits: { ingest_points_per_second: 5 } });
        const limitedKey = (await createApiKey(t.app.services, limited.slug, ['ingest'])).secret;
        const body = encode(format, metricsRequest(`rate_${format}`, [1, 2, 3, 4, 5]));
        expect((await send(t, '/v1/metrics', { format, token: limitedKey, body })).status).to.equal(200);
        const res = await send(t, '/v1/metrics', { format, token: limitedKey, body });
        const status = rpcStatus(res, 429, format);
        expect(status.code).to.equal(RESOURCE_EXHAUSTED);
        expect(status.message).to.match(/^ingest rate limit of 5 items per second exceeded; retry in \d+ s$/);
        expect(retryAfterOf(res)).to.be.within(1, 2);
      });

      it('404 UNIMPLEMENTED for POST /v1/traces (traces are not accepted) and any other path under /v1/', async () => {
        for (const token of [key, null]) {
          const traces = await send(t, '/v1/traces', { format, token });
          expect(rpcStatus(traces, 404, format)).to.deep.equal({
            code: UNIMPLEMENTED,
            message: 'traces are not accepted: this server receives OTLP metrics (POST /v1/metrics) and logs (POST /v1/logs)',
          });
        }
        for (const path of ['/v1/metrics/', '/v1/profiles', '/v1/metrics/extra']) {
          const res = await send(t, path, { format, token: key });
          expect(rpcStatus(res, 404, format)).to.deep.equal({
            code: UNIMPLEMENTED,
            message: `no OTLP receiver at ${path}: this server receives OTLP metrics (POST /v1/metrics) and logs (POST /v1/logs)`,
          });
        }
      });

      it('405 UNIMPLEMENTED with Allow: POST for another method on /v1/metrics and /v1/logs', async () => {
        for (const [method, path] of [['GET', '/v1/metrics'], ['PUT', '/v1/logs'], ['DELETE', '/v1/metrics']] as const) {
          const res = await send(t, path, { method, format, token: key });
          expect(rpcStatus(res, 405, format)).to.deep.equal({ code: UNIMPLEMENTED, message: `${method} is not allowed on ${path}; OTLP/HTTP exports are POST requests` });
          expect(res.headers.get('allow')).to.equal('POST');
        }
      });

      it('503 UNAVAILABLE with Retry-After for a connection error the classifier knows, and for an unavailable error naming no wait', async () => {
        const telemetry = t.app.services.telemetry as unknown as Record<string, unknown>;
        const failures: [unknown, string, number][] = [
          // What pg raises when PostgreSQL refuses the connection: classified as the problem layer classifies it.
          [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), 'the database is unavailable; retry shortly', 2],
          [new DomainError('unavailable', 'busy, no wait named'), 'busy, no wait named', 1],
        ];
        for (const [error, message, wait] of failures) {
          telemetry.ingest = () => Promise.reject(error);
          let res: Answer;
          try {
            res = await send(t, '/v1/metrics', { format, token: key, body: encode(format, metricsRequest(`unavailable_${format}`, [1])) });
          } finally {
            delete telemetry.ingest;
          }
          expect(rpcStatus(res, 503, format)).to.deep.equal({ code: UNAVAILABLE, message });
          expect(retryAfterOf(res)).to.equal(wait);
        }
      });

      it('500 INTERNAL naming the request id for a defect, logged with its error; the next request is served', async () => {
        const telemetry = t.app.services.telemetry as unknown as Record<string, unknown>;
        telemetry.ingest = () => Promise.reject(new TypeError(`defect under test (${format})`));
        let res: Answer;
        try {
          res = await send(t, '/v1/metrics', { format, token: key, body: encode(format, metricsRequest(`defect_${format}`, [1])) });
        } finally {
          delete telemetry.ingest;
        }
        const requestId = res.headers.get('x-request-id');
        expect(requestId).to.match(/^[0-9a-f-]{36}$/);
        expect(rpcStatus(res, 500, format)).to.deep.equal({ code: INTERNAL, message: `internal error; quote request id ${requestId} when reporting it` });
        const logged = t.logs.lines.map((l) => JSON.parse(l) as J).filter((l) => l.request_id === requestId && l.msg === 'unhandled error');
        expect(logged.map((l) => (l.err as J).message)).to.deep.equal([`defect under test (${format})`]);
        // The stub is gone: the same kind of request is stored.
        const name = `after_defect_${format}`;
        const ok = await send(t, '/v1/metrics', { format, token: key, body: encode(format, metricsRequest(name, [7])) });
        expect(ok.status).to.equal(200);
        expect(await storedValues(name)).to.deep.equal([7]);
      });
    });
  }

  it('415 for a Content-Type that is neither: the Status is JSON, the readable choice', async () => {
    const res = await send(t, '/v1/metrics', { type: 'text/plain', token: key, body: 'hello' });
    expect(rpcStatus(res, 415, 'json')).to.deep.equal({ code: INVALID_ARGUMENT, message: 'Content-Type must be application/x-protobuf or application/json' });
  });

  it('429 RESOURCE_EXHAUSTED with Retry-After once too many credentials were refused from one address, in either encoding', async () => {
    const bad = `snt_${'y'.repeat(32)}`;
    for (const format of FORMATS) expect(rpcStatus(await send(strict, '/v1/metrics', { format, token: bad }), 401, format).code).to.equal(UNAUTHENTICATED);
    for (const format of FORMATS) {
      // Refused before the key is looked up, a valid one included.
      for (const token of [bad, key]) {
        const res = await send(strict, '/v1/metrics', { format, token });
        const status = rpcStatus(res, 429, format);
        expect(status.code).to.equal(RESOURCE_EXHAUSTED);
        const wait = retryAfterOf(res);
        expect(wait).to.be.within(1, 60);
        expect(status.message).to.equal(`too many failed authentications from this address; retry in ${wait} s`);
      }
    }
  });

  it('leaves other paths alone: OPTIONS on a receiver is 204 with Allow, /v1 itself and /api/v1 answer problem+json', async () => {
    const options = await t.api.raw('OPTIONS', '/v1/metrics');
    expect([options.status, options.headers.get('allow'), options.text]).to.deep.equal([204, 'POST', '']);
    const bare = await t.api.raw('POST', '/v1', { body: '{}' });
    expect([bare.status, bare.headers.get('content-type')]).to.deep.equal([404, 'application/problem+json']);
    const api = await t.api.raw('GET', '/api/v1/no-such-thing');
    expect([api.status, api.headers.get('content-type')]).to.deep.equal([404, 'application/problem+json']);
  });
});

/** PostgreSQL stopped under OTLP protobuf ingest: only 200 (stored) or 503 + Retry-After (a protobuf Status), never a 500, no acknowledged point lost. */
describe('OTLP/HTTP protobuf ingest while PostgreSQL goes away', function () {
  this.timeout(120_000);
  let own: OwnPostgres;
  let t: TestApp;

  before(async () => {
    own = await startOwnPostgres();
    t = await startTestApp(own.url, { SENTINEL_DATABASE_CONNECT_TIMEOUT_MS: '1000' });
  });
  after(async () => {
    await t?.stop();
    await own?.remove();
  });

  it('answers 503 UNAVAILABLE with Retry-After in protobuf (JSON for JSON) while it is down, and stores every point it acknowledged', async () => {
    const org = await createOrg(t.app.services);
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    const statuses = new Map<number, number>();
    const problems: string[] = [];
    /** Values of the points in requests answered 200 without rejections. */
    const acknowledged: number[] = [];
    let answered200 = 0;
    let next = 0;
    let stop = false;
    const POINTS = 4;
    const client = async () => {
      while (!stop) {
        const n = next++;
        // Distinct values; point 0 in a series of its own (a new series needs the database), the rest in shared ones.
        const values = Array.from({ length: POINTS }, (_, i) => n * POINTS + i);
        const request = metricsRequest('otlp_outage', values);
        (((request.resourceMetrics as J[])[0].scopeMetrics as J[])[0].metrics as { gauge: { dataPoints: { attributes: J[] }[] } }[])[0].gauge.dataPoints[0].attributes.push(kv('request', String(n)));
        const res = await send(t, '/v1/metrics', { format: 'protobuf', token: key, body: encode('protobuf', request) });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200) {
          expect(res.headers.get('content-type')).to.equal('application/x-protobuf');
          const answer = OTLP_MESSAGES.metricsResponse.toObject(OTLP_MESSAGES.metricsResponse.decode(res.bytes));
          if (Object.keys(answer).length) problems.push(`request ${n}: 200 with ${JSON.stringify(answer)}`);
          else acknowledged.push(...values);
          answered200++;
        } else if (res.status === 503) {
          try {
            const status = rpcStatus(res, 503, 'protobuf');
            expect(status.code).to.equal(UNAVAILABLE);
            expect(status.message).to.not.equal('');
            expect(retryAfterOf(res)).to.be.within(1, 10);
          } catch (err) {
            problems.push(`request ${n}: ${(err as Error).message}`);
          }
          await sleep(50);
        } else {
          problems.push(`request ${n}: ${res.status} ${res.headers.get('content-type')} ${res.text.slice(0, 200)}`);
        }
      }
    };
    const clients = Array.from({ length: 4 }, client);
    try {
      const waitFor = async (done: () => boolean, ms: number, what: string) => {
        const until = Date.now() + ms;
        while (!done()) {
          if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${JSON.stringify([...statuses])}`);
          await sleep(20);
        }
      };
      await waitFor(() => answered200 >= 20, 15_000, '20 answers before the stop');
      await own.server.stop();
      await waitFor(() => (statuses.get(503) ?? 0) >= 5, 15_000, '503s while PostgreSQL is down');
      // A JSON exporter gets the same answer in JSON.
      const json = await send(t, '/v1/metrics', { format: 'json', token: key, body: encode('json', metricsRequest('otlp_outage_json', [1])) });
      expect(rpcStatus(json, 503, 'json').code).to.equal(UNAVAILABLE);
      expect(retryAfterOf(json)).to.be.within(1, 10);
      await sleep(300);
      await own.server.start();
      const before = answered200;
      await waitFor(() => answered200 >= before + 20, 30_000, '20 answers after the restart');
    } finally {
      stop = true;
      await Promise.all(clients);
    }

    expect(problems).to.deep.equal([]);
    expect([...statuses.keys()].sort()).to.deep.equal([200, 503]);
    const rows = await query<{ value: number; n: string }>(
      own.url,
      "select p.value, count(*) as n from points p join series s on s.org_id = p.org_id and s.id = p.series_id where p.org_id = $1 and s.name = 'otlp_outage' group by 1",
      [org.id],
    );
    const stored = new Map(rows.map((r) => [r.value, Number(r.n)]));
    const lost = acknowledged.filter((v) => !stored.has(v));
    expect(lost, `${lost.length} of ${acknowledged.length} acknowledged points missing`).to.deep.equal([]);
    // Each point once: nothing was written twice (no retries were sent).
    expect([...stored.values()].filter((n) => n !== 1)).to.deep.equal([]);
  });
});
