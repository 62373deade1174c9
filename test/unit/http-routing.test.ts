import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Router } from '@koa/router';
import { expect } from 'chai';
import Koa, { type Middleware } from 'koa';
import { routerPath } from '../../src/http/openapi.js';
import { API_PREFIX, ApiRegistry, type HttpMethod } from '../../src/http/registry.js';

/*
 * The registry matches its routes itself (with @koa/router's compiled layers) instead of running
 * a router per request: every request must be answered as a router per group of routes answered
 * it (status, Allow, which route ran and with which parameters), builtin routes behind it included.
 */

const ROUTES: [HttpMethod, string][] = [
  ['get', '/organizations/{org}'],
  ['patch', '/organizations/{org}'],
  ['delete', '/organizations/{org}'],
  ['get', '/organizations/{org}/usage'],
  // A placeholder registered before a literal at the same place: the first registered runs.
  ['get', '/organizations/{org}/metrics/{name}'],
  ['get', '/organizations/{org}/metrics/query'],
  ['post', '/organizations/{org}/metrics/query'],
  ['get', '/items'],
  ['post', '/items'],
  ['get', '/items/{id}/parts/{part}'],
];

const operationId = (method: string, path: string) => `${method} ${path}`;

/** What the builtin routes' router serves behind the registry (server.ts). */
function builtin(app: Koa): void {
  const router = new Router();
  router.get(`${API_PREFIX}/openapi.json`, (ctx) => {
    ctx.body = 'openapi';
  });
  router.get('/metrics', (ctx) => {
    ctx.body = 'metrics';
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
}

/** The registry's routes served by the registry. */
function registryApp(): Koa {
  const registry = new ApiRegistry();
  for (const [method, path] of ROUTES) {
    registry.route({
      method,
      path,
      operationId: operationId(method, path),
      summary: path,
      auth: 'none',
      responses: { 200: { description: 'ok' } },
      handler: (ctx, { params }) => {
        ctx.body = { route: operationId(method, path), params };
      },
    });
  }
  const app = new Koa();
  app.use(registry.middleware());
  builtin(app);
  return app;
}

/** The same routes as a router per first path segment, each with its allowedMethods: the reference. */
function routerApp(): Koa {
  const groups = new Map<string, Router>();
  for (const [method, path] of ROUTES) {
    const segment = path.split('/')[1];
    let router = groups.get(segment);
    if (!router) groups.set(segment, (router = new Router()));
    router[method](API_PREFIX + routerPath(path), (ctx) => {
      ctx.body = { route: operationId(method, path), params: { ...(ctx.params as Record<string, string>) } };
    });
  }
  const handlers = new Map<string, Middleware>();
  for (const [segment, router] of groups) {
    const routes = router.routes() as unknown as Middleware;
    const allowed = router.allowedMethods() as unknown as Middleware;
    handlers.set(segment, (ctx, next) => routes(ctx, () => allowed(ctx, next)));
  }
  const app = new Koa();
  app.use((ctx, next) => {
    const m = /^\/api\/v1\/([^/]+)/.exec(ctx.path);
    const handler = m ? handlers.get(m[1]) : undefined;
    return handler ? handler(ctx, next) : next();
  });
  builtin(app);
  return app;
}

async function listen(app: Koa): Promise<{ server: Server; port: number }> {
  const server = createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** status, Allow and body of one request (raw node:http: fetch refuses methods like PROPFIND). */
async function answer(port: number, method: string, path: string): Promise<string> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(`${res.statusCode} allow=${res.headers.allow ?? '-'} ${body}`));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('http ApiRegistry routing', () => {
  let mine: { server: Server; port: number };
  let reference: { server: Server; port: number };
  before(async () => {
    mine = await listen(registryApp());
    reference = await listen(routerApp());
  });
  after(() => {
    mine.server.close();
    reference.server.close();
  });

  const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND'];
  const PATHS = [
    '/api/v1/organizations/acme',
    '/api/v1/organizations/acme/',
    '/api/v1/organizations/ACME/Usage',
    '/api/v1/ORGANIZATIONS/acme',
    '/api/v1/organizations/a%20b%2Fc/usage',
    '/api/v1/organizations/bad%E0%A4%A/usage',
    '/api/v1/organizations/acme/metrics/query',
    '/api/v1/organizations/acme/metrics/cpu.busy',
    '/api/v1/organizations/acme/metrics',
    '/api/v1/organizations/acme/nope',
    '/api/v1/organizations',
    '/api/v1/items',
    '/api/v1/items/7/parts/x%2By',
    '/api/v1/items/7/parts',
    '/api/v1/openapi.json',
    '/api/v1',
    '/api/v1/',
    '/metrics',
    '/elsewhere',
  ];

  it('answers every method on every path as a router per group of routes does', async () => {
    const differences: string[] = [];
    for (const path of PATHS) {
      for (const method of METHODS) {
        const [got, want] = [await answer(mine.port, method, path), await answer(reference.port, method, path)];
        if (got !== want) differences.push(`${method} ${path}: ${got} (router: ${want})`);
      }
    }
    expect(differences).to.deep.equal([]);
  });

  it('runs the first registered route that takes the path, with its parameters decoded', async () => {
    expect(await answer(mine.port, 'GET', '/api/v1/organizations/acme/metrics/query')).to.equal(
      '200 allow=- {"route":"get /organizations/{org}/metrics/{name}","params":{"org":"acme","name":"query"}}',
    );
    expect(await answer(mine.port, 'POST', '/api/v1/organizations/a%20b/metrics/query')).to.equal(
      '200 allow=- {"route":"post /organizations/{org}/metrics/query","params":{"org":"a b"}}',
    );
    expect(await answer(mine.port, 'DELETE', '/api/v1/organizations/acme/usage')).to.equal('405 allow=HEAD, GET Method Not Allowed');
    expect(await answer(mine.port, 'OPTIONS', '/api/v1/organizations/acme')).to.equal('200 allow=HEAD, GET, PATCH, DELETE ');
  });
});
