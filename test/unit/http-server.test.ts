import { connect } from 'node:net';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Type } from '@sinclair/typebox';
import { expect } from 'chai';
import { registerHealthRoutes } from '../../src/features/health/health-routes.js';
import { createHttpMetrics } from '../../src/http/metrics.js';
import { ApiRegistry } from '../../src/http/registry.js';
import { createHttpServer } from '../../src/http/server.js';
import { testConfig } from '../support/config.js';
import { captureLogger, sleep, startServer, type RunningServer } from './http-fixtures.js';

const Org = Type.Object({ org: Type.String({ pattern: '^[a-z0-9-]+$', description: 'Organization slug.' }) });

function connectionRefused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

describe('http server', () => {
  describe('metrics, OpenAPI and docs', () => {
    let srv: RunningServer;
    before(async () => {
      srv = await startServer({
        routes: (r) => {
          registerHealthRoutes(r, { checks: [], version: '9.9.9' });
          r.route({
            method: 'get', path: '/organizations/{org}', operationId: 'getOrganization', summary: 'one org', tags: ['orgs'],
            params: Org,
            responses: { 200: { description: 'the org', schema: Type.Object({ slug: Type.String() }) }, 404: { description: 'no such org' } },
            handler: (ctx, { params }) => { ctx.body = { slug: params.org }; },
          });
          r.route({
            method: 'patch', path: '/organizations/{org}', operationId: 'updateOrganization', summary: 'update', auth: 'any',
            params: Org,
            body: Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
            responses: { 200: { description: 'updated' } },
            handler: (ctx) => { ctx.body = {}; },
          });
        },
      });
    });
    after(() => srv.close());

    it('serves Prometheus text with route templates as labels, never raw paths', async () => {
      await fetch(`${srv.url}/api/v1/organizations/acme-corp-4711`);
      await fetch(`${srv.url}/api/v1/definitely/not/here-12345`);
      const res = await fetch(`${srv.url}/metrics`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      expect(text).to.match(
        /^sentinel_http_request_duration_seconds_bucket\{[^}]*method="GET"[^}]*route="\/organizations\/\{org\}"[^}]*status="200"[^}]*\} 1$/m,
      );
      expect(text).to.match(/^sentinel_http_request_duration_seconds_count\{[^}]*route="unmatched"[^}]*status="404"[^}]*\} 1$/m);
      expect(text).to.not.include('acme-corp-4711');
      expect(text).to.not.include('here-12345');
      expect(text).to.match(/^sentinel_http_requests_in_flight \d+$/m);
      expect(text).to.match(/^process_cpu_user_seconds_total \d/m);
    });

    it('keeps metrics per server: two in one process do not share a registry', async () => {
      const a = createHttpMetrics();
      const b = createHttpMetrics();
      expect(a.registry).to.not.equal(b.registry);
      a.collectDefault(); // idempotent: a second registration would throw on duplicate names
      expect(await a.registry.metrics()).to.include('process_cpu_user_seconds_total');
      expect(await b.registry.metrics()).to.include('sentinel_http_requests_in_flight');
    });

    it('serves a valid OpenAPI 3.1 document listing every registered route', async () => {
      const res = await fetch(`${srv.url}/api/v1/openapi.json`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^application\/json/);
      const doc = (await res.json()) as {
        openapi: string;
        servers: { url: string }[];
        paths: Record<string, Record<string, { operationId: string; security: unknown[] }>>;
        components: { securitySchemes: Record<string, { type: string; scheme: string }>; schemas: Record<string, unknown> };
      };
      await SwaggerParser.validate(structuredClone(doc) as never);
      expect(doc.openapi).to.equal('3.1.0');
      expect(doc.servers).to.deep.equal([{ url: '/api/v1' }]);
      const routes = srv.registry.routes();
      expect(routes).to.have.length(4);
      for (const r of routes) {
        expect(doc.paths[r.path]?.[r.method]?.operationId, `${r.method} ${r.path}`).to.equal(r.operationId);
      }
      expect(doc.paths['/organizations/{org}'].patch.security).to.deep.equal([{ bearer: [] }, { apiKey: [] }]);
      expect(doc.components.securitySchemes.bearer).to.include({ type: 'http', scheme: 'bearer' });
      expect(doc.components.schemas).to.have.property('Problem');
    });

    it('serves Swagger UI from local files at /docs', async () => {
      const page = await fetch(`${srv.url}/docs`);
      expect(page.status).to.equal(200);
      expect(page.headers.get('content-type')).to.match(/^text\/html/);
      const html = await page.text();
      expect(html).to.include('/docs/swagger-ui-bundle.js');
      expect(html).to.not.match(/<script>(?!<)/, 'no inline script');
      expect(html).to.not.match(/https?:\/\//, 'no CDN');
      const bundle = await fetch(`${srv.url}/docs/swagger-ui-bundle.js`);
      expect(bundle.status).to.equal(200);
      expect(bundle.headers.get('content-type')).to.match(/javascript/);
      expect((await bundle.text()).length).to.be.greaterThan(100_000);
      const init = await fetch(`${srv.url}/docs/swagger-initializer.js`);
      expect(await init.text()).to.include("url: '/api/v1/openapi.json'");
      const css = await fetch(`${srv.url}/docs/swagger-ui.css`);
      expect(css.headers.get('content-type')).to.match(/^text\/css/);
    });

    it('serves only the Swagger UI asset list under /docs', async () => {
      for (const path of ['/docs/package.json', '/docs/..%2Fpackage.json', '/docs/swagger-ui.js.map', '/docs/nope.js']) {
        const res = await fetch(`${srv.url}${path}`);
        expect(res.status, path).to.equal(404);
        expect(res.headers.get('content-type'), path).to.match(/^application\/problem\+json/);
      }
    });
  });

  describe('graceful close', () => {
    it('lets an in-flight request finish while refusing new connections', async () => {
      let started!: () => void;
      let handlerFinishedAt = 0;
      const handlerStarted = new Promise<void>((resolve) => (started = resolve));
      const srv = await startServer({
        routes: (r) =>
          r.route({
            method: 'get', path: '/slow', operationId: 'slow', summary: 'slow', auth: 'none',
            responses: { 200: { description: 'eventually' } },
            handler: async (ctx) => {
              started();
              await sleep(500);
              handlerFinishedAt = Date.now();
              ctx.body = { done: true };
            },
          }),
      });
      const slow = fetch(`${srv.url}/api/v1/slow`).then(async (res) => ({ status: res.status, body: await res.json(), at: Date.now() }));
      await handlerStarted;
      const closeStarted = Date.now();
      let closedAt = 0;
      const closed = srv.close(5000).then(() => (closedAt = Date.now()));
      expect(await connectionRefused(srv.port)).to.equal('ECONNREFUSED');
      const done = await slow;
      expect(done.status).to.equal(200);
      expect(done.body).to.deep.equal({ done: true });
      await closed;
      // close() resolves only after the in-flight handler finished (the client may still be reading).
      expect(handlerFinishedAt).to.be.greaterThan(0);
      expect(closedAt).to.be.at.least(handlerFinishedAt);
      expect(closedAt - closeStarted).to.be.below(4000, 'closed well before the grace period ran out');
    });

    it('a close while listen is under way waits for it and closes the server (no listening after "closed")', async () => {
      const http = createHttpServer({
        config: testConfig(),
        logger: captureLogger().logger,
        registry: new ApiRegistry(),
        metrics: createHttpMetrics(),
        openapiInfo: { title: 'Sentinel test', version: '0.0.0-test' },
      });
      const listening = http.listen();
      await http.close(1000);
      const { port } = await listening;
      expect(await connectionRefused(port)).to.equal('ECONNREFUSED');
    });

    it('cuts requests still running when the grace period ends', async () => {
      const srv = await startServer({
        routes: (r) =>
          r.route({
            method: 'get', path: '/stuck', operationId: 'stuck', summary: 'stuck', auth: 'none',
            responses: { 200: { description: 'never in time' } },
            handler: async (ctx) => {
              await sleep(1500);
              ctx.body = {};
            },
          }),
      });
      const stuck = fetch(`${srv.url}/api/v1/stuck`).then(
        (res) => `status ${res.status}`,
        () => 'failed',
      );
      await sleep(100);
      const t0 = Date.now();
      await srv.close(200);
      expect(Date.now() - t0).to.be.within(150, 1500);
      expect(await stuck).to.equal('failed');
      const warn = srv.log.lines().find((l) => l.msg === 'grace period over; closing remaining connections');
      expect(warn).to.include({ in_flight: 1 });
    });
  });
});
