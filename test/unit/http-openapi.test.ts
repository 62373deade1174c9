import { Type } from '@sinclair/typebox';
import SwaggerParser from '@apidevtools/swagger-parser';
import { expect } from 'chai';
import { ApiRegistry, type ExternalOperation, type RouteDef } from '../../src/http/registry.js';
import { startServer, type RunningServer } from './http-fixtures.js';

/**
 * How the registry documents credentials (from a route's auth, the permission its service checks
 * and apiKeyOnly), operations served outside it, and 2020-12 tuples that its draft-07 ajv must
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

const external = (extra: Partial<ExternalOperation> = {}): ExternalOperation => ({
  method: 'post',
  path: '/v1/things',
  operationId: 'postThings',
  summary: 'things',
  auth: 'any',
  permission: 'telemetry.ingest',
  apiKeyOnly: true,
  requestBody: { content: { 'application/json': Type.Object({ a: Type.String() }), 'application/x-protobuf': Type.Unsafe({ contentMediaType: 'application/x-protobuf' }) } },
  responses: { 200: { description: 'stored', content: { 'application/json': Type.Object({}) } }, 400: { description: 'bad' } },
  ...extra,
});

describe('http ApiRegistry: OpenAPI credentials and external operations', () => {
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

  it('documents an external operation at the server root, with its own bodies, and a valid document', async () => {
    const r = new ApiRegistry();
    r.route(route('inside', { auth: 'none' }));
    r.external(
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

  it('refuses an external operation that clashes with a route or another operation', () => {
    const r = new ApiRegistry();
    r.route(route('inside', { auth: 'none' }));
    r.external(external());
    expect(() => r.external(external({ operationId: 'other' }))).to.throw(/duplicate operation POST \/v1\/things/);
    expect(() => r.external(external({ path: '/v1/other' , operationId: 'inside' }))).to.throw(/duplicate operationId inside/);
    expect(() => r.external(external({ path: '/inside', operationId: 'x' }))).to.throw(/registry route path/);
    expect(() => r.route(route('postThings', { auth: 'none', path: '/else' }))).to.throw(/duplicate operationId postThings/);
    expect(() => r.route(route('y', { auth: 'none', path: '/v1/things' }))).to.throw(/external path/);
    // Another method on the same external path is fine.
    r.external(external({ method: 'get', operationId: 'getThings' }));
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
