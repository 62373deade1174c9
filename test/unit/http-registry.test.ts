import { Type } from '@sinclair/typebox';
import { expect } from 'chai';
import { DomainError } from '../../src/core/errors.js';
import { ApiRegistry, type RouteInfo } from '../../src/http/registry.js';
import { startServer, type RunningServer } from './http-fixtures.js';

const Slug = Type.String({ pattern: '^[a-z0-9-]{2,40}$' });

describe('http ApiRegistry', () => {
  let srv: RunningServer;
  const seenByAuth: RouteInfo[] = [];

  before(async () => {
    srv = await startServer({
      routes: (r) => {
        r.setAuthenticator((ctx, route) => {
          seenByAuth.push(route);
          if (route.auth !== 'none' && ctx.get('Authorization') !== 'Bearer good') {
            throw new DomainError('unauthenticated', 'missing or invalid token');
          }
        });
        r.route({
          method: 'post',
          path: '/organizations/{org}/members',
          operationId: 'addMember',
          summary: 'add a member',
          auth: 'user',
          params: Type.Object({ org: Slug }),
          query: Type.Object({ dry_run: Type.Optional(Type.Boolean()) }),
          body: Type.Object(
            { email: Type.String({ format: 'email' }), role: Type.Union([Type.Literal('admin'), Type.Literal('viewer')]) },
            { additionalProperties: false },
          ),
          responses: { 201: { description: 'added' } },
          handler: (ctx, input) => {
            // Compile-time proof that input is typed from the schemas.
            const role: 'admin' | 'viewer' = input.body.role;
            const dry: boolean | undefined = input.query.dry_run;
            ctx.status = 201;
            ctx.body = { org: input.params.org, email: input.body.email, role, dry_run: dry ?? null };
          },
        });
        r.route({
          method: 'get',
          path: '/items',
          operationId: 'listItems',
          summary: 'list items',
          auth: 'none',
          query: Type.Object({
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
            tag: Type.Optional(Type.Array(Type.String())),
          }),
          responses: { 200: { description: 'items' } },
          handler: (ctx, { query }) => {
            const limit: number = query.limit;
            ctx.body = { limit, limitType: typeof limit, tag: query.tag ?? null };
          },
        });
      },
    });
  });
  after(() => srv.close());

  const post = (path: string, body: unknown, headers: Record<string, string> = { Authorization: 'Bearer good' }) =>
    fetch(`${srv.url}/api/v1${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('passes validated, typed input to the handler', async () => {
    const res = await post('/organizations/acme/members?dry_run=true', { email: 'a@example.com', role: 'admin' });
    expect(res.status).to.equal(201);
    expect(await res.json()).to.deep.equal({ org: 'acme', email: 'a@example.com', role: 'admin', dry_run: true });
  });

  it('lists every failing field with an in-prefixed path', async () => {
    const res = await post('/organizations/NOT%20A%20SLUG/members?dry_run=maybe', { email: 'not-an-email' });
    expect(res.status).to.equal(400);
    expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
    const body = (await res.json()) as { type: string; errors: { path: string; message: string }[] };
    expect(body.type).to.equal('https://sentinel.dev/problems/validation_failed');
    const paths = body.errors.map((e) => e.path);
    expect(paths).to.include.members(['params/org', 'query/dry_run', 'body/email', 'body/role']);
    expect(body.errors.find((e) => e.path === 'body/role')!.message).to.equal('is required');
  });

  it('rejects an unknown body field and names it', async () => {
    const res = await post('/organizations/acme/members', { email: 'a@example.com', role: 'viewer', is_superadmin: true });
    expect(res.status).to.equal(400);
    const body = (await res.json()) as { errors: { path: string; message: string }[] };
    expect(body.errors).to.deep.equal([{ path: 'body/is_superadmin', message: 'is not an allowed field' }]);
  });

  it('coerces query strings, applies defaults and reports bad values', async () => {
    const dflt = (await (await fetch(`${srv.url}/api/v1/items`)).json()) as Record<string, unknown>;
    expect(dflt).to.deep.equal({ limit: 50, limitType: 'number', tag: null });
    const given = (await (await fetch(`${srv.url}/api/v1/items?limit=7&tag=a&tag=b`)).json()) as Record<string, unknown>;
    expect(given).to.deep.equal({ limit: 7, limitType: 'number', tag: ['a', 'b'] });
    const one = (await (await fetch(`${srv.url}/api/v1/items?tag=solo`)).json()) as Record<string, unknown>;
    expect(one.tag).to.deep.equal(['solo']);
    const bad = await fetch(`${srv.url}/api/v1/items?limit=abc`);
    expect(bad.status).to.equal(400);
    const body = (await bad.json()) as { errors: { path: string }[] };
    expect(body.errors.map((e) => e.path)).to.deep.equal(['query/limit']);
  });

  it('runs the injected authenticator with the route info before validation', async () => {
    const res = await post('/organizations/acme/members', { bogus: 1 }, {});
    expect(res.status).to.equal(401, 'auth failure wins over the invalid body');
    expect(seenByAuth.some((r) => r.operationId === 'addMember' && r.auth === 'user')).to.equal(true);
  });

  it('lists its routes with method, OpenAPI path, operationId and auth', () => {
    expect(srv.registry.routes()).to.deep.equal([
      { method: 'post', path: '/organizations/{org}/members', operationId: 'addMember', auth: 'user' },
      { method: 'get', path: '/items', operationId: 'listItems', auth: 'none' },
    ]);
  });

  it('refuses duplicate operationIds, duplicate routes and params that disagree with the path', () => {
    const r = new ApiRegistry();
    const base = { summary: 's', responses: { 200: { description: 'ok' } }, handler: () => {} };
    r.route({ ...base, method: 'get', path: '/a/{id}', operationId: 'a', params: Type.Object({ id: Type.String() }) });
    expect(() => r.route({ ...base, method: 'get', path: '/b', operationId: 'a' })).to.throw(/duplicate operationId/);
    expect(() => r.route({ ...base, method: 'get', path: '/a/{id}', operationId: 'a2' })).to.throw(/duplicate route/);
    expect(() =>
      r.route({ ...base, method: 'get', path: '/c/{slug}', operationId: 'c', params: Type.Object({ id: Type.String() }) }),
    ).to.throw(/missing slug, extra id/);
  });

  it('defaults auth to "user" so a forgotten auth field is not public', () => {
    const r = new ApiRegistry();
    r.route({ method: 'get', path: '/x', operationId: 'x', summary: 'x', responses: { 200: { description: 'ok' } }, handler: () => {} });
    expect(r.routes()[0].auth).to.equal('user');
  });

  it('documents inputs, security and problem responses in the OpenAPI operation', () => {
    const doc = srv.registry.openapi({ title: 't', version: '1' }) as {
      paths: Record<string, Record<string, Record<string, unknown>>>;
    };
    const op = doc.paths['/organizations/{org}/members'].post as {
      parameters: { name: string; in: string; required: boolean }[];
      security: unknown[];
      requestBody: { content: Record<string, { schema: { required: string[]; additionalProperties: boolean } }> };
      responses: Record<string, { content?: Record<string, unknown> }>;
    };
    expect(op.parameters.map((p) => [p.name, p.in, p.required])).to.deep.equal([
      ['org', 'path', true],
      ['dry_run', 'query', false],
    ]);
    expect(op.security).to.deep.equal([{ bearer: [] }]);
    expect(op.requestBody.content['application/json'].schema.required).to.deep.equal(['email', 'role']);
    expect(op.requestBody.content['application/json'].schema.additionalProperties).to.equal(false);
    expect(op.responses['400'].content).to.have.property('application/problem+json');
    expect(op.responses['401'].content).to.have.property('application/problem+json');
    expect(Object.getOwnPropertySymbols(op.requestBody.content['application/json'].schema)).to.have.length(0);
    const items = doc.paths['/items'].get as { security: unknown[] };
    expect(items.security).to.deep.equal([]);
  });
});

describe('http ApiRegistry: a bulk route with a cheaper body check', () => {
  let srv: RunningServer;
  before(async () => {
    srv = await startServer({
      routes: (r) =>
        r.route({
          method: 'post',
          path: '/bulk',
          operationId: 'bulk',
          summary: 'a bulk body with a cheaper check',
          auth: 'none',
          body: Type.Object({ n: Type.Integer({ maximum: 10 }) }, { additionalProperties: false }),
          bulkBody: true,
          // Vouches (wrongly, to show that the schema is skipped) for a body with a `vouched` field.
          bodyAccepts: (b) => typeof b === 'object' && b !== null && (b as { vouched?: unknown }).vouched === true,
          responses: { 200: { description: 'taken' } },
          handler: (ctx, { body }) => {
            ctx.body = body;
          },
        }),
    });
  });
  after(() => srv.close());

  const bulk = (body: unknown) => fetch(`${srv.url}/api/v1/bulk`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

  it('skips the schema for a body the check accepts, and has the schema judge every other as before', async () => {
    const vouched = await bulk({ n: 1, vouched: true });
    expect(vouched.status).to.equal(200);
    expect(await vouched.json()).to.deep.equal({ n: 1, vouched: true });
    expect((await bulk({ n: 2 })).status, 'not vouched for, valid').to.equal(200);
    const bad = await bulk({ n: 11 });
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).to.deep.equal(['body/n']);
    const extra = await bulk({ n: 1, vouched: false });
    expect(extra.status, 'the check refuses it, so the schema answers').to.equal(400);
  });
});
