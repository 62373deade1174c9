import { Type } from '@sinclair/typebox';
import SwaggerParser from '@apidevtools/swagger-parser';
import { expect } from 'chai';
import { DomainError } from '../../src/core/errors.js';
import { ApiRegistry, type RawRouteDef, type RouteDef } from '../../src/http/registry.js';
import { startServer, type RunningServer } from './http-fixtures.js';

/**
 * How the registry documents credentials (from a route's auth, the permission its service checks
 * and apiKeyOnly), raw routes served outside /api/v1 from the same declaration, and 2020-12 tuples that its draft-07 ajv must
 * still validate.
 */

type Op = { security: Record<string, string[]>[]; description?: string; servers?: unknown };
type Doc = { paths: Record<string, Record<string, Op> & { servers?: { url: string }[] }> };

const ok = { 200: { description: 'ok' } };
const route = (operationId: string, extra: Partial<RouteDef>): RouteDef => ({
  method: 'get',
  path: `/${operationId}`,
  operationId,
  summary: operationId,
  responses: ok,
  handler: (ctx) => {
    ctx.body = {};
  },
  ...extra,
});

const external = (extra: Partial<RawRouteDef> = {}): RawRouteDef => ({
  method: 'post',
  path: '/v1/things',
  operationId: 'postThings',
  summary: 'things',
  auth: 'any',
  permission: 'telemetry.ingest',
  apiKeyOnly: true,
  requestBody: { content: { 'application/json': Type.Object({ a: Type.String() }), 'application/x-protobuf': Type.Unsafe({ contentMediaType: 'application/x-protobuf' }) } },
  responses: { 200: { description: 'stored', content: { 'application/json': Type.Object({}) } }, 400: { description: 'bad' } },
  handler: (ctx) => {
    ctx.body = { stored: true };
  },
  ...extra,
});

describe('http ApiRegistry: OpenAPI credentials and raw routes', () => {
  it('derives security from auth and the permission: user tokens only, scoped keys, keys never, keys only', () => {
    const r = new ApiRegistry();
    r.route(route('open', { auth: 'none' }));
    r.route(route('mine', { auth: 'user' }));
    r.route(route('read', { auth: 'any', permission: 'telemetry.read' }));
    r.route(route('drop', { auth: 'any', permission: 'org.delete' }));
    r.route(route('push', { auth: 'any', permission: 'telemetry.ingest', apiKeyOnly: true }));
    r.route(route('vague', { auth: 'any' }));
    const doc = r.openapi({ title: 't', version: '1' }) as Doc;
    const sec = (id: string) => doc.paths[`/${id}`].get.security;
    expect(sec('open')).to.deep.equal([]);
    expect(sec('mine')).to.deep.equal([{ bearer: [] }]);
    expect(sec('read')).to.deep.equal([{ bearer: [] }, { apiKey: ['read'] }]);
    expect(doc.paths['/read'].get.description).to.contain('`read` scope').and.contain('`write` and `admin` include it');
    // org.delete has no API key scope: the service refuses every key, so the document offers none.
    expect(sec('drop')).to.deep.equal([{ bearer: [] }]);
    expect(doc.paths['/drop'].get.description).to.contain('API keys are refused');
    expect(sec('push')).to.deep.equal([{ apiKey: ['ingest'] }]);
    expect(doc.paths['/push'].get.description).to.contain('user access tokens are refused');
    // Without a permission the registry cannot name a scope.
    expect(sec('vague')).to.deep.equal([{ bearer: [] }, { apiKey: [] }]);
  });

  it('refuses permission or apiKeyOnly where they cannot hold', () => {
    const r = new ApiRegistry();
    expect(() => r.route(route('a', { auth: 'user', permission: 'telemetry.read' }))).to.throw(/auth 'any'/);
    expect(() => r.route(route('b', { auth: 'any', permission: 'org.delete', apiKeyOnly: true }))).to.throw(/no API key scope grants org\.delete/);
  });

  it('documents a raw route at the server root, with its own bodies, and a valid document', async () => {
    const r = new ApiRegistry();
    r.route(route('inside', { auth: 'none' }));
    r.raw(
      external({
        headers: Type.Object({ 'Content-Encoding': Type.Optional(Type.Literal('gzip', { description: 'compression' })) }),
      }),
    );
    const doc = r.openapi({ title: 't', version: '1' }) as Doc & { paths: Record<string, Record<string, Record<string, unknown>>> };
    const item = doc.paths['/v1/things'];
    expect(item.servers).to.deep.equal([{ url: '/' }]);
    expect(doc.paths['/inside']).to.not.have.property('servers');
    const op = item.post as Record<string, unknown> & { security: unknown; parameters: unknown[]; requestBody: { content: object }; responses: Record<string, { content: object }> };
    expect(op.security).to.deep.equal([{ apiKey: ['ingest'] }]);
    expect(op.parameters).to.deep.equal([{ name: 'Content-Encoding', in: 'header', required: false, schema: { const: 'gzip', type: 'string', description: 'compression' }, description: 'compression' }]);
    expect(Object.keys(op.requestBody.content)).to.deep.equal(['application/json', 'application/x-protobuf']);
    expect(op.responses['400'].content).to.have.property('application/problem+json');
    expect(r.externalOperations().map((o) => o.operationId)).to.deep.equal(['postThings']);
    expect(r.routes().map((x) => x.operationId)).to.deep.equal(['inside']);
    await SwaggerParser.validate(structuredClone(doc) as never);
  });

  it('refuses a raw route that clashes with a route or another operation, or sits under /api/v1', () => {
    const r = new ApiRegistry();
    r.route(route('inside', { auth: 'none' }));
    r.raw(external());
    expect(() => r.raw(external({ operationId: 'other' }))).to.throw(/duplicate route POST \/v1\/things/);
    expect(() => r.raw(external({ path: '/api/v1/things', operationId: 'under' }))).to.throw(/outside \/api\/v1/);
    expect(() => r.raw(external({ path: '/v1/other' , operationId: 'inside' }))).to.throw(/duplicate operationId inside/);
    expect(() => r.raw(external({ path: '/inside', operationId: 'x' }))).to.throw(/registry route path/);
    expect(() => r.route(route('postThings', { auth: 'none', path: '/else' }))).to.throw(/duplicate operationId postThings/);
    expect(() => r.route(route('y', { auth: 'none', path: '/v1/things' }))).to.throw(/raw route's path/);
    // Another method on the same external path is fine.
    r.raw(external({ method: 'get', operationId: 'getThings' }));
  });

  describe('a raw route is served and documented from one declaration', () => {
    let srv: RunningServer;
    const seen: string[] = [];
    before(async () => {
      srv = await startServer({
        routes: (r) => {
          r.setAuthenticator((ctx, info) => {
            seen.push(`${info.operationId} ${info.auth}`);
            if (info.auth === 'none') return;
            if (ctx.get('Authorization') !== 'Bearer good') throw new DomainError('unauthenticated', 'bad key');
            ctx.state.actor = { kind: 'apikey', keyId: 'k1', orgId: 'o1', scopes: ['ingest'] };
          });
          r.raw(
            external({
              rateLimit: 'ingest',
              handler: async (ctx) => {
                // Reads its own body: nothing parsed it before the handler.
                const chunks: Buffer[] = [];
                for await (const c of ctx.req) chunks.push(c as Buffer);
                if (chunks.length === 0) throw new DomainError('bad_request', 'empty');
                ctx.type = 'text/plain';
                ctx.body = `got ${Buffer.concat(chunks).toString('utf8')}`;
              },
              answerError: (ctx, err) => {
                ctx.status = err.code === 'unauthenticated' ? 401 : 400;
                ctx.type = 'text/plain';
                ctx.body = `own format: ${err.code}`;
              },
            }),
          );
          r.raw(external({ method: 'get', operationId: 'getThings', auth: 'none', permission: undefined, apiKeyOnly: undefined, requestBody: undefined, handler: () => { throw new DomainError('not_found', 'nothing'); } }));
        },
      });
    });
    after(() => srv.close());

    it('authenticates through the registry, then hands the raw body to the handler', async () => {
      const res = await fetch(`${srv.url}/v1/things`, { method: 'POST', headers: { Authorization: 'Bearer good', 'Content-Type': 'application/x-protobuf' }, body: 'raw bytes' });
      expect(res.status).to.equal(200);
      expect(await res.text()).to.equal('got raw bytes');
      expect(seen).to.include('postThings any');
      const line = srv.log.lines().find((l) => l.request_id === res.headers.get('x-request-id') && l.msg === 'request');
      expect(line).to.include({ route: '/v1/things', actor: 'apikey:k1', status: 200 });
    });

    it("answers errors, the authenticator's too, in the route's own format", async () => {
      const unauth = await fetch(`${srv.url}/v1/things`, { method: 'POST', headers: { Authorization: 'Bearer bad' }, body: 'x' });
      expect(unauth.status).to.equal(401);
      expect(await unauth.text()).to.equal('own format: unauthenticated');
      const empty = await fetch(`${srv.url}/v1/things`, { method: 'POST', headers: { Authorization: 'Bearer good' } });
      expect(await empty.text()).to.equal('own format: bad_request');
    });

    it('without answerError, errors are problem+json; another method is 405', async () => {
      const res = await fetch(`${srv.url}/v1/things`);
      expect(res.status).to.equal(404);
      expect(res.headers.get('content-type')).to.match(/problem\+json/);
      const put = await fetch(`${srv.url}/v1/things`, { method: 'PUT' });
      expect(put.status).to.equal(405);
      expect(put.headers.get('allow')).to.include('POST');
    });

    it('is in the served OpenAPI document, at the server root', async () => {
      const doc = (await (await fetch(`${srv.url}/api/v1/openapi.json`)).json()) as Doc;
      expect(doc.paths['/v1/things'].servers).to.deep.equal([{ url: '/' }]);
      expect(doc.paths['/v1/things'].post).to.have.property('operationId', 'postThings');
      expect(doc.paths['/v1/things'].get).to.have.property('operationId', 'getThings');
      expect(srv.registry.externalOperations().map((o) => `${o.method} ${o.path}`)).to.deep.equal(['post /v1/things', 'get /v1/things']);
    });
  });

  describe('prefixItems (the OpenAPI 3.1 tuple) in a route schema', () => {
    let srv: RunningServer;
    before(async () => {
      srv = await startServer({
        routes: (r) =>
          r.route({
            method: 'post',
            path: '/pairs',
            operationId: 'pairs',
            summary: 'a pair',
            auth: 'none',
            body: Type.Object({ pair: Type.Unsafe<[string, number]>({ type: 'array', prefixItems: [Type.String(), Type.Number()], minItems: 2, maxItems: 2 }) }),
            responses: ok,
            handler: (ctx, { body }) => {
              ctx.body = body;
            },
          }),
      });
    });
    after(() => srv.close());

    const post = (pair: unknown) => fetch(`${srv.url}/api/v1/pairs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pair }) });

    it('is validated position by position by the registry (draft-07) ajv', async () => {
      expect((await post(['a', 1])).status).to.equal(200);
      const wrong = await post([1, 'a']);
      expect(wrong.status).to.equal(400);
      const paths = ((await wrong.json()) as { errors: { path: string }[] }).errors.map((e) => e.path);
      expect(paths).to.include.members(['body/pair/0', 'body/pair/1']);
      expect((await post(['a'])).status).to.equal(400);
      expect((await post(['a', 1, 2])).status).to.equal(400);
    });
  });
});
