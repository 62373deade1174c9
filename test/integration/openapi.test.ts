import { expect } from 'chai';
import SwaggerParser from '@apidevtools/swagger-parser';
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../../src/config/paths.js';
import type { RouteInfo } from '../../src/http/registry.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { createApiKey } from '../support/factories.js';
import { ApiClient, fillPath, placeholders } from '../support/http.js';
import { createTenant, type Tenant } from '../support/tenants.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { scratchDir } from '../support/scratch.js';

/**
 * The OpenAPI document a running app serves is valid for every reader (swagger-parser and
 * Redocly's linter, zero errors) and says what the server does: the OTLP receivers outside
 * /api/v1 are in it, and no operation offers API keys where the server refuses them.
 */

type Security = Record<string, string[]>[];
interface Operation {
  operationId: string;
  security: Security;
  servers?: { url: string }[];
  requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }>;
}
type PathItem = Record<string, Operation> & { servers?: { url: string }[] };
interface Doc {
  servers: { url: string }[];
  paths: Record<string, PathItem>;
}

interface LintProblem {
  ruleId: string;
  severity: 'error' | 'warn';
  message: string;
  location: { pointer?: string }[];
}

const MANY = { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000000', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '100000000' };
const REDOCLY = join(packageRoot(), 'node_modules', '.bin', 'redocly');
const OTLP = ['/v1/metrics', '/v1/logs'];

/** `redocly lint` on the document with the repository's redocly.yaml (built-in rules, telemetry off: no network). */
async function redoclyLint(doc: unknown): Promise<{ totals: { errors: number; warnings: number }; problems: LintProblem[] }> {
  const dir = scratchDir('sentinel-openapi-');
  try {
    const file = join(dir, 'openapi.json');
    await writeFile(file, JSON.stringify(doc, null, 2));
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        REDOCLY,
        ['lint', file, '--config', join(packageRoot(), 'redocly.yaml'), '--format', 'json'],
        { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 },
        // Exit code 1 means "errors found": the JSON report on stdout says which, so it is still read.
        (err, out, stderr) => (out ? resolve(out) : reject(new Error(`redocly lint failed: ${err?.message ?? ''}\n${stderr}`))),
      );
    });
    return JSON.parse(stdout) as { totals: { errors: number; warnings: number }; problems: LintProblem[] };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const describeProblem = (p: LintProblem) => `${p.ruleId}: ${p.message} at ${p.location.map((l) => l.pointer).join(', ')}`;
const hasApiKey = (security: Security) => security.some((s) => 'apiKey' in s);
const hasUserToken = (security: Security) => security.some((s) => 'bearer' in s);

describe('the OpenAPI document', () => {
  let url: string;
  let t: TestApp;
  let doc: Doc;
  let routes: RouteInfo[];
  let api: ApiClient;
  let tenant: Tenant;
  let userToken: string;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, MANY);
    api = t.api.withUserAgent('openapi-test/1.0');
    const res = await api.get<Doc>('/openapi.json');
    expect(res.status).to.equal(200);
    doc = res.body;
    routes = t.app.registry!.routes();
    tenant = await createTenant(t.app.services, { slugPrefix: 'oas', keyScopes: ['admin'] });
    userToken = (await api.login(tenant.owner.email, tenant.owner.password)).access_token;
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  it('passes swagger-parser validation and `redocly lint` with zero errors', async function () {
    this.timeout(120_000);
    await SwaggerParser.validate(structuredClone(doc) as never);
    const report = await redoclyLint(doc);
    const errors = report.problems.filter((p) => p.severity === 'error');
    expect(errors.map(describeProblem), 'redocly lint errors').to.deep.equal([]);
    expect(report.totals.errors).to.equal(0);
  });

  it('the lint fails a draft-07 tuple (items array + additionalItems), so the check above can fail', async function () {
    this.timeout(120_000);
    const bad = structuredClone(doc) as unknown as { paths: Record<string, Record<string, Record<string, unknown>>> };
    bad.paths['/health'].get.responses = {
      200: { description: 'x', content: { 'application/json': { schema: { type: 'array', items: [{ type: 'string' }, { type: 'number' }], additionalItems: false } } } },
    };
    const report = await redoclyLint(bad);
    expect(report.totals.errors, JSON.stringify(report.problems.map(describeProblem))).to.be.greaterThan(0);
  });

  it('describes the metric query points as a prefixItems pair, not the draft-07 tuple form', () => {
    const op = doc.paths['/organizations/{org}/metrics/query'].get;
    const series = op.responses['200'].content!['application/json'].schema as { properties: { series: { items: { properties: { points: { items: Record<string, unknown> } } } } } };
    const point = series.properties.series.items.properties.points.items;
    expect(point).to.include({ type: 'array', minItems: 2, maxItems: 2 });
    expect(point.prefixItems).to.be.an('array').with.length(2);
    expect(point).to.not.have.property('items');
    expect(point).to.not.have.property('additionalItems');
  });

  it('lists the OTLP receivers at the server root: API keys with the ingest scope only, JSON and protobuf, partialSuccess and google.rpc.Status', () => {
    expect(doc.servers).to.deep.equal([{ url: '/api/v1' }]);
    for (const path of OTLP) {
      const item = doc.paths[path];
      expect(item, `${path} in the document`).to.be.an('object');
      // The document's server is /api/v1; these paths are served at the root.
      expect(item.servers ?? item.post.servers, `${path} servers`).to.deep.equal([{ url: '/' }]);
      const op = item.post;
      expect(op.security, `${path} security`).to.deep.equal([{ apiKey: ['ingest'] }]);
      expect(Object.keys(op.requestBody!.content).sort()).to.deep.equal(['application/json', 'application/x-protobuf']);
      const ok = op.responses['200'].content!;
      expect(Object.keys(ok).sort()).to.deep.equal(['application/json', 'application/x-protobuf']);
      expect(ok['application/json'].schema.properties).to.have.property('partialSuccess');
      for (const code of ['400', '401', '403', '413', '415', '429', '503']) {
        const status = op.responses[code]?.content?.['application/json']?.schema as { properties?: Record<string, unknown> } | undefined;
        expect(status?.properties, `${path} ${code}: a google.rpc.Status body`).to.have.keys('code', 'message');
      }
    }
  });

  it('every operation served outside /api/v1 is really served there, and refuses what its security leaves out', async () => {
    const outside = Object.entries(doc.paths).filter(([, item]) => item.servers?.some((s) => s.url !== '/api/v1'));
    expect(outside.map(([path]) => path).sort()).to.deep.equal([...OTLP].sort());
    const ingestKey = (await createApiKey(t.app.services, tenant.org.slug, ['ingest'])).secret;
    const readKey = (await createApiKey(t.app.services, tenant.org.slug, ['read'])).secret;
    for (const [path, item] of outside) {
      expect(Object.keys(item).filter((k) => k !== 'servers'), path).to.deep.equal(['post']);
      const send = (token: string | null) => api.raw('POST', path, { token, body: '{}' });
      const none = await send(null);
      expect(none.status, `${path} without credentials`).to.equal(401);
      expect(none.body, `${path}: a google.rpc.Status`).to.have.keys('code', 'message');
      expect((await send(ingestKey)).status, `${path} with an ingest key`).to.equal(200);
      expect((await send(readKey)).status, `${path} with a read key (no ingest scope)`).to.equal(403);
      expect(hasUserToken(item.post.security)).to.equal(false);
      const user = await send(userToken);
      expect(user.status, `${path} with a user token, which the document leaves out`).to.be.within(400, 499);
    }
  });

  it("offers no API key on any route registered with auth 'user', and names the key's scope wherever keys are offered", () => {
    const user = routes.filter((r) => r.auth === 'user');
    expect(user.length).to.be.greaterThan(0);
    for (const r of routes) {
      const label = `${r.method.toUpperCase()} ${r.path} (auth ${r.auth})`;
      const { security } = doc.paths[r.path][r.method];
      if (r.auth === 'none') expect(security, label).to.deep.equal([]);
      if (r.auth === 'user') expect(security, label).to.deep.equal([{ bearer: [] }]);
      if (r.auth === 'any') {
        // A route that takes keys declares the permission its service checks; the scope comes from it.
        for (const s of security.filter((x) => 'apiKey' in x)) expect(s.apiKey, `${label}: the API key scope`).to.have.length(1);
        expect(security.length, label).to.be.greaterThan(0);
      }
    }
  });

  it("the server refuses an API key on every route the document offers to user tokens only (generated from the route table)", async () => {
    let checked = 0;
    for (const r of routes.filter((x) => x.auth === 'user')) {
      const { security } = doc.paths[r.path][r.method];
      expect(hasApiKey(security)).to.equal(false);
      // The authenticator refuses a key before anything reads the parameters or the body.
      const params = Object.fromEntries(placeholders(r.path).map((p) => [p, p === 'org' ? tenant.org.slug : '00000000-0000-4000-8000-000000000000']));
      const res = await api.call(r.method, fillPath(r.path, params), tenant.key.secret);
      expect(res.status, `${r.method.toUpperCase()} ${r.path} with an admin-scoped API key: ${res.text}`).to.be.oneOf([401, 403]);
      checked++;
    }
    expect(checked).to.be.greaterThan(0);
  });

  it('the server refuses a user token on every registry route the document offers to API keys only', async () => {
    const keyOnly = routes.filter((r) => r.auth === 'any' && !hasUserToken(doc.paths[r.path][r.method].security));
    expect(keyOnly.map((r) => `${r.method.toUpperCase()} ${r.path}`)).to.include('POST /telemetry');
    for (const r of keyOnly) {
      // A body the route accepts from its API key, so that only the credential can be refused.
      expect(r.path, 'add a valid request for this API-key-only route').to.equal('/telemetry');
      const body = { metrics: [{ name: 'oas.check', value: 1 }] };
      expect((await api.call(r.method, r.path, (await createApiKey(t.app.services, tenant.org.slug, ['ingest'])).secret, body)).status).to.equal(202);
      const res = await api.call(r.method, r.path, userToken, body);
      expect(res.status, `${r.method.toUpperCase()} ${r.path} with a user token: ${res.text}`).to.be.within(400, 499);
    }
  });
});
