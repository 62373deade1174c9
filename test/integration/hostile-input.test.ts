import { createHmac } from 'node:crypto';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { SignJWT } from 'jose';
import { ConfigSchema } from '../../src/config/schema.js';
import { UUID_PATTERN } from '../../src/core/ids.js';
import { UNSTORABLE_TEXT_MESSAGE } from '../../src/core/text.js';
import { EMAIL_PATTERN, MAX_REPORTED_ERRORS } from '../../src/core/validation.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createUser } from '../support/factories.js';
import { ApiClient, type Answer, type Problem } from '../support/http.js';
import { createTenant, type Tenant } from '../support/tenants.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Hostile input (DESIGN §6: "client mistakes are 4xx problem+json on every route"). Part one is
 * generated from the OpenAPI document: NUL and an unpaired surrogate in every string the request
 * schemas declare — path and query parameters, body fields at any depth, map keys and values — each
 * must be refused with 400 naming exactly that field. Part two is a table of the other hostile
 * inputs: corrupt compressed bodies, huge bodies of unknown keys, out-of-range times, forged
 * tokens, poisoned cursors. Throughout, no answer is a 500, every answer is problem+json with a
 * request id, and /health keeps answering within 250 ms while the hostile request is served.
 */

const JWT_SECRET = 'hostile-input-test-secret-0123456789abcdef';
const MANY = {
  SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000000',
  SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '100000000',
  SENTINEL_AUTH_JWT_SECRET: JWT_SECRET,
};
/*
 * What the check tells apart is a server that stays responsive (parsing a 1 MiB body takes tens of
 * milliseconds) from one whose work on a hostile input grows out of bounds (seconds). The client
 * building and sending the body shares the process with the server and a 2-core machine runs
 * PostgreSQL beside it: 100 ms was measured at 105 ms on a quiet run, so the bound leaves room.
 */
const HEALTH_BUDGET_MS = 250;
/** Bulk ingest stores such text with U+FFFD instead (README, "Ingest"); telemetry-ingest.test.ts checks the stored rows. */
const STORES_REPLACED_TEXT = new Set(['ingestTelemetry', 'ingestOrgTelemetry']);

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  patternProperties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  prefixItems?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  $ref?: string;
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  schema: Schema;
}
interface Operation {
  operationId: string;
  security?: Record<string, string[]>[];
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  servers?: { url: string }[];
}
interface Doc {
  paths: Record<string, Record<string, Operation> & { servers?: { url: string }[] }>;
}

/** Where a string can go in a JSON body: a pointer of property names, array indexes and map keys. */
type Step = { prop: string } | { index: number } | { mapKey: true };

/** Every place a string can sit in a body of this schema, as steps from the root (depth-bounded). */
function stringSlots(schema: Schema, depth = 0): Step[][] {
  if (depth > 6) return [];
  const branches = [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])];
  const out: Step[][] = [];
  for (const b of branches) out.push(...stringSlots(b, depth + 1));
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.includes('string')) out.push([]);
  for (const [name, s] of Object.entries(schema.properties ?? {})) for (const rest of stringSlots(s, depth + 1)) out.push([{ prop: name }, ...rest]);
  const mapValue = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : Object.values(schema.patternProperties ?? {})[0];
  if (mapValue) {
    out.push([{ mapKey: true }]);
    for (const rest of stringSlots(mapValue, depth + 1)) out.push([{ prop: 'k' }, ...rest]);
  }
  const item = schema.items ?? schema.prefixItems?.[0];
  if (item) for (const rest of stringSlots(item, depth + 1)) out.push([{ index: 0 }, ...rest]);
  return out;
}

/** A body with `bad` placed at the slot (everything else left out: the check must not depend on validity). */
function bodyWith(slot: Step[], bad: string): { body: unknown; pointer: string } {
  if (slot.length === 0) return { body: bad, pointer: '' };
  const [step, ...rest] = slot;
  const inner = bodyWith(rest, bad);
  if ('index' in step) return { body: [inner.body], pointer: `/0${inner.pointer}` };
  // The key is `k` + the bad text; the error path names it with the bad characters as U+FFFD.
  if ('mapKey' in step) return { body: { [`k${bad}`]: 'v' }, pointer: `/k${bad.replace(/\u0000|[\ud800-\udfff]/g, '\ufffd')}` };
  return { body: { [step.prop]: inner.body }, pointer: `/${step.prop}${inner.pointer}` };
}

function describeSlot(slot: Step[]): string {
  return slot.map((s) => ('index' in s ? '[0]' : 'mapKey' in s ? '{key}' : `.${s.prop}`)).join('') || '(the body itself)';
}

describe('hostile input: no 500 for any client mistake', function () {
  this.timeout(120_000);
  let dbUrl: string;
  let t: TestApp;
  let api: ApiClient;
  let admin: string;
  let tenant: Tenant;
  let key: string;
  let doc: Doc;

  before(async () => {
    dbUrl = await cloneDatabase();
    t = await startTestApp(dbUrl, MANY);
    api = t.api;
    const root = await createUser(t.app.services, { superadmin: true });
    admin = (await api.login(root.email, root.password)).access_token;
    tenant = await createTenant(t.app.services);
    key = (await createApiKey(t.app.services, tenant.org.slug, ['ingest', 'admin'])).secret;
    doc = (await api.get<Doc>('/openapi.json')).body;
  });
  after(async () => {
    await t?.stop();
    if (dbUrl) await dropDatabase(dbUrl);
  });

  /** Sends a request while /health is polled every 5 ms; returns the answer and the slowest /health. */
  async function withHealth(send: () => Promise<Answer>): Promise<{ res: Answer; slowestHealthMs: number }> {
    let done = false;
    let slowest = 0;
    const poll = (async () => {
      while (!done) {
        const started = performance.now();
        // Raw fetch: the poll measures the server, not the client's answer validation.
        const h = await fetch(`${t.baseUrl}/api/v1/health`);
        await h.arrayBuffer();
        slowest = Math.max(slowest, performance.now() - started);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      const res = await send();
      return { res, slowestHealthMs: slowest };
    } finally {
      done = true;
      await poll;
    }
  }

  /** The common contract of a refused request: 4xx problem+json with a request id. */
  function expectClientProblem(res: Answer, status: number, label: string): Problem {
    expect(res.status, `${label}: ${res.text.slice(0, 500)}`).to.equal(status);
    expect(res.contentType, `${label}: content type`).to.match(/^application\/problem\+json/);
    const body = JSON.parse(res.text) as Problem;
    expect(body.status, label).to.equal(status);
    expect(body.request_id, `${label}: request id`).to.be.a('string').and.equal(res.headers.get('x-request-id'));
    return body;
  }

  function credentialFor(op: Operation): string | null {
    const security = op.security ?? [];
    if (security.length === 0) return null;
    return security.some((s) => 'bearer' in s) ? admin : key;
  }

  function fillParams(path: string, params: Parameter[], poisoned?: string): string {
    return path.replace(/\{([A-Za-z_]\w*)\}/g, (_, name: string) => {
      if (name === poisoned) return encodeURIComponent(`x\u0000y`);
      const p = params.find((x) => x.name === name);
      if (name === 'org') return tenant.org.slug;
      return p?.schema && JSON.stringify(p.schema).includes('uuid') ? '00000000-0000-4000-8000-000000000000' : 'some-value';
    });
  }

  describe('NUL and unpaired surrogates in every string of every operation (generated from the OpenAPI document)', () => {
    it('are refused with 400 naming the field (bulk ingest stores them replaced), never a 500', async () => {
      let checked = 0;
      const failures: string[] = [];
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const [method, value] of Object.entries(item)) {
          if (method === 'servers' || method === 'parameters') continue;
          const op = value as Operation;
          // Operations served outside /api/v1 (OTLP) read their own bodies; they have tests of their own.
          if ((op.servers ?? item.servers)?.some((s) => s.url !== '/api/v1')) continue;
          const params = op.parameters ?? [];
          const token = credentialFor(op);
          const send = (url: string, body?: unknown) => api.call<Problem>(method, url, token, body);
          const expectNamed = (res: Answer<Problem>, where: string, label: string) => {
            checked++;
            if (res.status !== 400 || !res.contentType.startsWith('application/problem+json') || !res.body?.request_id) {
              failures.push(`${label}: ${res.status} ${res.text.slice(0, 200)}`);
              return;
            }
            if (!res.body.errors?.some((e) => e.path === where && e.message === UNSTORABLE_TEXT_MESSAGE)) failures.push(`${label}: errors do not name ${where}: ${res.text.slice(0, 300)}`);
          };

          for (const p of params.filter((x) => x.in === 'path')) {
            expectNamed(await send(fillParams(path, params, p.name)), `params/${p.name}`, `${method.toUpperCase()} ${path} path {${p.name}}`);
          }
          for (const p of params.filter((x) => x.in === 'query')) {
            // A query key may be a pattern (attr.<key>): poison the key's tail and the value.
            const name = p.name.includes('<') ? p.name.replace(/<[^>]+>/, 'k') : p.name;
            expectNamed(await send(`${fillParams(path, params)}?${encodeURIComponent(name)}=${encodeURIComponent('a\u0000b')}`), `query/${name}`, `${method.toUpperCase()} ${path} ?${name}`);
          }
          const schema = op.requestBody?.content['application/json']?.schema;
          if (!schema) continue;
          const slots = stringSlots(schema);
          expect(slots.length, `${op.operationId}: a body without any string field?`).to.be.greaterThan(0);
          for (const slot of slots) {
            for (const [what, bad] of [['NUL', 'a\u0000b'], ['a lone surrogate', 'a\ud800b']] as const) {
              const { body, pointer } = bodyWith(slot, bad);
              const label = `${method.toUpperCase()} ${path} body${describeSlot(slot)} with ${what}`;
              const res = await send(fillParams(path, params), body);
              if (STORES_REPLACED_TEXT.has(op.operationId)) {
                checked++;
                // Ingest validates the batch as a whole: a body of one poisoned field is refused for its
                // missing parts, never for the text, and never with a 500.
                if (res.status >= 500 || res.body?.errors?.some((e) => e.message === UNSTORABLE_TEXT_MESSAGE)) failures.push(`${label}: ${res.status} ${res.text.slice(0, 200)}`);
              } else {
                expectNamed(res, `body${pointer}`, label);
              }
            }
          }
        }
      }
      expect(failures, failures.join('\n')).to.deep.equal([]);
      // The document has dozens of operations; a generator that found almost nothing proves nothing.
      expect(checked).to.be.greaterThan(150);
    });

    it('ingest stores NUL and a lone surrogate replaced by U+FFFD (202), in a log message and a label', async () => {
      const res = await api.post('/telemetry', key, { logs: [{ level: 'info', message: 'nul\u0000 and \ud800 here' }], metrics: [{ name: 'hostile_m', value: 1, labels: { k: 'v\udc00\u0000' } }] });
      expect(res.status, res.text).to.equal(202);
      const logs = await query<{ body: string }>(dbUrl, `select body from logs where body like 'nul%'`);
      expect(logs.map((l) => l.body)).to.deep.equal(['nul\ufffd and \ufffd here']);
      const series = await query<{ labels: Record<string, string> }>(dbUrl, `select labels from series where name = 'hostile_m'`);
      expect(series.map((s) => s.labels)).to.deep.equal([{ k: 'v\ufffd\ufffd' }]);
    });
  });

  describe('every `pattern` runs in linear time (ajv with allErrors tests it even on a string over its maxLength)', () => {
    /** Every pattern in a schema, at any depth (properties, propertyNames, items, unions …). */
    function patternsIn(node: unknown, out: Set<string>): Set<string> {
      if (Array.isArray(node)) for (const x of node) patternsIn(x, out);
      else if (node !== null && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === 'pattern' && typeof v === 'string') out.add(v);
          else patternsIn(v, out);
        }
      }
      return out;
    }
    // Long runs of one character between prefixes and suffixes that a pattern's parts may each
    // accept: the shape of every catastrophic case (two overlapping quantifiers, then a mismatch).
    const RUN = 20_000;
    const fills = ['.', 'a', '0', '-', '_', ':', '/', ' ', '@', 'a.', 'a-', '0.'];
    const prefixes = ['', 'a', 'a@', 'a@b', 'a@b.', ' a@b.c', '0', '_'];
    const suffixes = ['', '@', '!', ' ', '\n', '\u0000', 'é'];
    const BUDGET_MS = 20;

    it('on pathological inputs of 20,000+ characters, each test stays under 20 ms (request schemas from the document, and the config schema)', async () => {
      // UUID_PATTERN is what `format: 'uuid'` checks (core/validation), so the document shows it as a format.
      const patterns = patternsIn(ConfigSchema, patternsIn(doc, new Set([UUID_PATTERN])));
      // The document has slugs, emails, label keys, metric names, durations: a walk that found few proves nothing.
      expect(patterns.size).to.be.at.least(6);
      expect([...patterns], 'the email pattern is among them').to.include(EMAIL_PATTERN);
      const slow: string[] = [];
      for (const source of patterns) {
        const re = new RegExp(source, 'u'); // as ajv compiles it
        for (const prefix of prefixes) {
          for (const fill of fills) {
            for (const suffix of suffixes) {
              const input = prefix + fill.repeat(Math.ceil(RUN / fill.length)) + suffix;
              const timed = () => {
                const started = performance.now();
                re.test(input);
                return performance.now() - started;
              };
              // A stall of the shared machine (a collection, another process) is not the pattern's:
              // over budget, the best of three runs counts. A super-linear pattern is slow every time.
              let ms = timed();
              if (ms > BUDGET_MS) ms = Math.min(ms, timed(), timed());
              if (ms > BUDGET_MS) slow.push(`/${source}/ on ${JSON.stringify(prefix)} + ${JSON.stringify(fill)}×${RUN} + ${JSON.stringify(suffix)}: ${ms.toFixed(0)} ms`);
            }
          }
        }
      }
      expect(slow, slow.join('\n')).to.deep.equal([]);
    });
  });

  describe('the table of other hostile inputs', () => {
    interface HostileCase {
      label: string;
      status: number;
      /** The field the problem must name, when it names one. */
      path?: string;
      /**
       * Reading 5.5 MB of JSON holds the event loop for a few hundred ms: only bulk ingest takes
       * bodies that large, and only after its API key is checked.
       */
      slowParse?: true;
      /** Builds what `send` needs beforehand: the test client shares the server's event loop. */
      prepare?(): void;
      send(): Promise<Answer>;
    }
    const post = (url: string, body: Buffer | string, headers: Record<string, string>) => api.raw('POST', url, { body, headers });
    const login = JSON.stringify({ email: 'nobody@example.test', password: 'x' });
    const batch = JSON.stringify({ metrics: [{ name: 'm', value: 1 }] });
    const get = (url: string, token: string | null = admin) => api.get(url, token);
    const org = () => `/organizations/${tenant.org.slug}`;
    const poisonedCursor = Buffer.from('a\u0000b', 'utf8').toString('base64url');

    const cases: HostileCase[] = [];
    const compressed: [string, (b: Buffer) => Buffer][] = [
      ['gzip', gzipSync],
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
    ];
    for (const [encoding, compress] of compressed) {
      const corrupt = (b: Buffer) => Buffer.concat([b.subarray(0, 4), Buffer.from('garbage that is not compressed data at all'), b.subarray(4)]);
      const truncated = (b: Buffer) => b.subarray(0, Math.max(2, b.length - 8));
      for (const [how, spoil] of [['corrupt', corrupt], ['truncated', truncated]] as const) {
        cases.push({ label: `${how} ${encoding} body on /auth/login`, status: 400, send: () => post('/api/v1/auth/login', spoil(compress(Buffer.from(login))), { 'content-encoding': encoding }) });
        cases.push({
          label: `${how} ${encoding} body on /telemetry`,
          status: 400,
          send: () => post('/api/v1/telemetry', spoil(compress(Buffer.from(batch))), { 'content-encoding': encoding, authorization: `Bearer ${key}` }),
        });
        cases.push({
          label: `${how} ${encoding} body on POST /organizations`,
          status: 400,
          send: () => post('/api/v1/organizations', spoil(compress(Buffer.from(JSON.stringify({ slug: 'zz-hostile', name: 'x' })))), { 'content-encoding': encoding, authorization: `Bearer ${admin}` }),
        });
      }
    }
    const unknownKeys = (n: number, extra: Record<string, unknown> = {}) => {
      const o: Record<string, unknown> = { ...extra };
      for (let i = 0; i < n; i++) o[`k${i}`] = i;
      return JSON.stringify(o);
    };
    const bodyCase = (label: string, status: number, url: string, build: () => string, headers: () => Record<string, string> = () => ({}), extra: Partial<HostileCase> = {}): HostileCase => {
      let body = '';
      return { label, status, ...extra, prepare: () => void (body = build()), send: () => post(url, body, headers()) };
    };
    cases.push(
      bodyCase('5.5 MB login body of 400,000 unknown keys (over the API body limit)', 413, '/api/v1/auth/login', () => unknownKeys(400_000, { email: 'a@b.test', password: 'x' })),
      bodyCase('100,000 unknown keys on login', 413, '/api/v1/auth/login', () => unknownKeys(100_000)),
      bodyCase('70,000 unknown keys on login (under the limit): a short answer', 400, '/api/v1/auth/login', () => unknownKeys(70_000, { email: 'a@b.test', password: 'x' })),
      bodyCase('400,000 unknown fields in one ingest item (10 MiB limit)', 400, '/api/v1/telemetry', () => JSON.stringify({ metrics: [JSON.parse(unknownKeys(400_000, { name: 'm', value: 1 }))] }), () => ({ authorization: `Bearer ${key}` }), { slowParse: true }),
      bodyCase('50,000-deep nested arrays on login', 400, '/api/v1/auth/login', () => '['.repeat(50_000) + ']'.repeat(50_000)),
      { label: 'NUL in the login email (unauthenticated)', status: 400, path: 'body/email', send: () => post('/api/v1/auth/login', JSON.stringify({ email: 'a\u0000@b.test', password: 'x' }), {}) },
      { label: 'lone surrogate in the login password', status: 400, path: 'body/password', send: () => post('/api/v1/auth/login', JSON.stringify({ email: 'a@b.test', password: 'x\udfff' }), {}) },
    );
    // 60 KB (under the 64 KiB all-errors threshold, so every keyword runs, the pattern too even
    // though maxLength failed): an email pattern whose domain parts overlap on '.' backtracked
    // quadratically on it and held the event loop for seconds.
    const pathologicalEmail = `a@${'.'.repeat(60_000)}@`;
    cases.push(
      bodyCase('a 60 KB pathological email on login (unauthenticated)', 400, '/api/v1/auth/login', () => JSON.stringify({ email: pathologicalEmail, password: 'x' }), undefined, { path: 'body/email' }),
      bodyCase('a 60 KB pathological email on POST /users', 400, '/api/v1/users', () => JSON.stringify({ email: pathologicalEmail, password: 'long-enough-password' }), () => ({ authorization: `Bearer ${admin}` }), { path: 'body/email' }),
      {
        label: 'a 60 KB pathological email on POST /organizations/{org}/members',
        status: 400,
        path: 'body/email',
        send: () => post(`/api/v1${org()}/members`, JSON.stringify({ email: pathologicalEmail, role: 'viewer' }), { authorization: `Bearer ${admin}` }),
      },
    );
    // ajv-formats' uuid also takes a `urn:uuid:` prefix, which PostgreSQL's uuid refuses (22P02):
    // that was a 400 naming no field.
    const urnId = 'urn:uuid:00000000-0000-4000-8000-000000000000';
    cases.push(
      { label: 'a urn:uuid: id in the path (GET /users/{id})', status: 400, path: 'params/id', send: () => get(`/users/${urnId}`) },
      { label: 'a urn:uuid: user_id in a body (POST /organizations/{org}/members)', status: 400, path: 'body/user_id', send: () => api.post(`${org()}/members`, admin, { user_id: urnId, role: 'viewer' }) },
    );
    for (const [route, extra] of [
      ['/metrics/query', '&name=m&step=60s'],
      ['/logs', ''],
      ['/events', ''],
    ] as const) {
      const q = (params: string) => () => get(`${org()}${route}?${params}${extra}`);
      cases.push(
        { label: `${route}: start=-9999999999999999`, status: 400, path: 'query/start', send: q('start=-9999999999999999') },
        { label: `${route}: end=9999999999999999`, status: 400, path: 'query/end', send: q('end=9999999999999999') },
        { label: `${route}: start in year 10000 (RFC 3339 cannot say it; epoch ms can)`, status: 400, path: 'query/start', send: q('start=253402300800000') },
      );
    }
    for (const step of ['99999999999999999999', '1000000000000000', '367d']) {
      cases.push({ label: `metric query step=${step}`, status: 400, path: 'query/step', send: () => get(`${org()}/metrics/query?name=m&step=${step}`) });
    }
    cases.push(
      { label: 'metric query step longer than its range', status: 400, path: 'query/step', send: () => get(`${org()}/metrics/query?name=m&start=0&end=60000&step=2m`) },
      { label: 'NUL in the metric query filter', status: 400, path: 'query/filter', send: () => get(`${org()}/metrics/query?name=m&filter=${encodeURIComponent('a=\u0000')}`) },
      { label: 'NUL in an attr. key', status: 400, path: 'query/attr.k\ufffd', send: () => get(`${org()}/logs?${encodeURIComponent('attr.k\u0000')}=v`) },
    );
    for (const url of ['/organizations', '/users', '/admin/audit-log', '{org}/members', '{org}/api-keys', '{org}/metrics', '{org}/logs', '{org}/events']) {
      cases.push({
        label: `a cursor that decodes to text holding NUL: ${url}`,
        status: 400,
        path: 'query/cursor',
        send: () => get(`${url.replace('{org}', org())}?cursor=${poisonedCursor}`),
      });
    }
    const forged = async (claims: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(String(claims.sub ?? '00000000-0000-4000-8000-000000000000')).setIssuer('sentinel').setAudience('sentinel-api').setIssuedAt().setExpirationTime('5m').sign(Buffer.from(JWT_SECRET));
    cases.push(
      { label: 'a correctly signed token whose sid is not a UUID', status: 401, send: async () => get('/auth/me', await forged({ sid: 'not-a-uuid', tv: 0 })) },
      { label: 'a correctly signed token whose sid holds NUL', status: 401, send: async () => get('/auth/me', await forged({ sid: 'a\u0000', tv: 0 })) },
      { label: 'a correctly signed token whose sub is not a UUID', status: 401, send: async () => get('/auth/me', await forged({ sub: 'root', sid: '00000000-0000-4000-8000-000000000000', tv: 0 })) },
      { label: 'a correctly signed token whose tv is not an integer', status: 401, send: async () => get('/auth/me', await forged({ sid: '00000000-0000-4000-8000-000000000000', tv: 1.5 })) },
    );

    for (const c of cases) {
      it(`${c.label} → ${c.status} problem+json${c.slowParse ? '' : `, /health within ${HEALTH_BUDGET_MS} ms meanwhile`}`, async () => {
        c.prepare?.();
        const { res, slowestHealthMs: first } = await withHealth(c.send);
        // A stall of the shared machine (a collection of the big body, another process) is not the
        // server's: over budget, the request is sent once more and the better of the two counts.
        // A request that holds the event loop is over budget both times.
        const slowestHealthMs = c.slowParse || first < HEALTH_BUDGET_MS ? first : Math.min(first, (await withHealth(c.send)).slowestHealthMs);
        const body = expectClientProblem(res, c.status, c.label);
        if (c.path) expect(body.errors?.map((e) => e.path) ?? [], c.label).to.include(c.path);
        expect(body.errors?.length ?? 0, 'errors are capped').to.be.at.most(MAX_REPORTED_ERRORS);
        expect(res.text.length, 'a short answer').to.be.below(8_192);
        if (!c.slowParse) expect(slowestHealthMs, '/health while the hostile request was served').to.be.below(HEALTH_BUDGET_MS);
      });
    }

    it('a failed login with a valid email still writes its audit row (the hostile one is refused before any write)', async () => {
      const before = await query<{ n: string }>(dbUrl, `select count(*) as n from audit_log where action = 'auth.login_failed'`);
      await post('/api/v1/auth/login', JSON.stringify({ email: 'a\u0000@b.test', password: 'x' }), {});
      await post('/api/v1/auth/login', JSON.stringify({ email: 'real-but-wrong@b.test', password: 'x' }), {});
      const after = await query<{ n: string }>(dbUrl, `select count(*) as n from audit_log where action = 'auth.login_failed'`);
      expect(Number(after[0].n) - Number(before[0].n)).to.equal(1);
    });

    it('HMAC of the forged tokens is right: the same claims with a real session are accepted (the 401s above are the claims, not the signature)', async () => {
      const me = await api.call<{ id: string }>('GET', '/auth/me', admin);
      const [, payload] = admin.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sid: string; tv: number; sub: string };
      const token = await forged({ sub: claims.sub, sid: claims.sid, tv: claims.tv });
      const res = await get('/auth/me', token);
      expect(res.status).to.equal(200);
      expect((res.body as { id: string }).id).to.equal(me.body.id);
      // And a token signed with another key is refused: the forged ones above carry the real key.
      const other = createHmac('sha256', 'x').digest('base64url');
      expect((await get('/auth/me', `${token.split('.').slice(0, 2).join('.')}.${other}`)).status).to.equal(401);
    });
  });
});
