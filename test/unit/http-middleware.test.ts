import { Type } from '@sinclair/typebox';
import { expect } from 'chai';
import { startServer, type RunningServer } from './http-fixtures.js';

function routes(r: import('../../src/http/registry.js').ApiRegistry): void {
  r.route({
    method: 'get', path: '/things/{id}', operationId: 'getThing', summary: 'thing', auth: 'none',
    params: Type.Object({ id: Type.String() }),
    responses: { 200: { description: 'thing' } },
    handler: (ctx, { params }) => { ctx.body = { id: params.id }; },
  });
  r.route({
    method: 'post', path: '/things', operationId: 'createThing', summary: 'create', auth: 'none',
    body: Type.Object({ name: Type.String() }),
    responses: { 201: { description: 'created' } },
    handler: (ctx) => { ctx.status = 201; ctx.body = {}; },
  });
}

describe('http middleware', () => {
  describe('CORS with an allow-list', () => {
    let srv: RunningServer;
    before(async () => {
      srv = await startServer({ routes, http: { cors_origins: ['https://app.example.com'] } });
    });
    after(() => srv.close());

    it('echoes a listed origin', async () => {
      const res = await fetch(`${srv.url}/api/v1/things/1`, { headers: { Origin: 'https://app.example.com' } });
      expect(res.status).to.equal(200);
      expect(res.headers.get('access-control-allow-origin')).to.equal('https://app.example.com');
      expect(res.headers.get('access-control-expose-headers')).to.include('X-Request-Id');
      expect(res.headers.get('vary')).to.include('Origin');
    });

    it('sends no Access-Control-Allow-Origin for an unlisted origin', async () => {
      const res = await fetch(`${srv.url}/api/v1/things/1`, { headers: { Origin: 'https://evil.example.net' } });
      expect(res.status).to.equal(200);
      expect(res.headers.has('access-control-allow-origin')).to.equal(false);
    });

    it('answers a preflight only for a listed origin', async () => {
      const preflight = (origin: string) =>
        fetch(`${srv.url}/api/v1/things`, {
          method: 'OPTIONS',
          headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' },
        });
      const ok = await preflight('https://app.example.com');
      expect(ok.status).to.equal(204);
      expect(ok.headers.get('access-control-allow-origin')).to.equal('https://app.example.com');
      expect(ok.headers.get('access-control-allow-methods')).to.include('POST');
      expect(ok.headers.get('access-control-allow-headers')).to.match(/authorization/i);
      const denied = await preflight('https://evil.example.net');
      expect(denied.headers.has('access-control-allow-origin')).to.equal(false);
    });

    it('keeps CORS headers on error answers so the browser can read the problem', async () => {
      const res = await fetch(`${srv.url}/api/v1/missing`, { headers: { Origin: 'https://app.example.com' } });
      expect(res.status).to.equal(404);
      expect(res.headers.get('access-control-allow-origin')).to.equal('https://app.example.com');
    });
  });

  describe('CORS with "*"', () => {
    let srv: RunningServer;
    before(async () => {
      srv = await startServer({ routes, http: { cors_origins: ['*'] } });
    });
    after(() => srv.close());

    it('echoes any origin', async () => {
      const res = await fetch(`${srv.url}/api/v1/things/1`, { headers: { Origin: 'https://anything.example.org' } });
      expect(res.headers.get('access-control-allow-origin')).to.equal('https://anything.example.org');
    });
  });

  describe('security headers and logging', () => {
    let srv: RunningServer;
    let proxied: RunningServer;
    before(async () => {
      srv = await startServer({ routes, http: { api_body_limit_bytes: 1024 } });
      proxied = await startServer({ routes, http: { trust_proxy: true } });
    });
    after(async () => {
      await srv.close();
      await proxied.close();
    });

    function expectSecurityHeaders(res: Response): void {
      expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
      expect(res.headers.get('x-frame-options')).to.equal('DENY');
      expect(res.headers.get('referrer-policy')).to.equal('no-referrer');
      expect(res.headers.get('cross-origin-resource-policy')).to.equal('same-origin');
      expect(res.headers.get('content-security-policy')).to.include("frame-ancestors 'none'");
    }

    it('sets security headers on success, 404 and 413 answers', async () => {
      const ok = await fetch(`${srv.url}/api/v1/things/1`);
      expect(ok.status).to.equal(200);
      expectSecurityHeaders(ok);
      expect(ok.headers.get('content-security-policy')).to.include("default-src 'none'");
      const missing = await fetch(`${srv.url}/nowhere`);
      expect(missing.status).to.equal(404);
      expectSecurityHeaders(missing);
      const big = await fetch(`${srv.url}/api/v1/things`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'y'.repeat(4096) }),
      });
      expect(big.status).to.equal(413);
      expectSecurityHeaders(big);
    });

    it('gives /docs a policy that allows its own scripts and styles but no inline script', async () => {
      const res = await fetch(`${srv.url}/docs`);
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).to.include("script-src 'self'");
      expect(csp).to.not.match(/script-src[^;]*unsafe-inline/);
      expect(csp).to.include("style-src 'self'");
    });

    it('sends HSTS only for secure requests, trusting X-Forwarded-Proto only behind a trusted proxy', async () => {
      const plain = await fetch(`${srv.url}/api/v1/things/1`);
      expect(plain.headers.has('strict-transport-security')).to.equal(false);
      const spoofed = await fetch(`${srv.url}/api/v1/things/1`, { headers: { 'X-Forwarded-Proto': 'https' } });
      expect(spoofed.headers.has('strict-transport-security')).to.equal(false);
      const viaProxy = await fetch(`${proxied.url}/api/v1/things/1`, { headers: { 'X-Forwarded-Proto': 'https' } });
      expect(viaProxy.headers.get('strict-transport-security')).to.match(/^max-age=\d+/);
    });

    it('writes one access line per request with the route template, never secrets', async () => {
      const res = await fetch(`${srv.url}/api/v1/things/t0ps3cr3t-path?token=qu3ry-s3cr3t`, {
        headers: { Authorization: 'Bearer b3ar3r-s3cr3t' },
      });
      expect(res.status).to.equal(200);
      const id = res.headers.get('x-request-id');
      const access = srv.log.lines().filter((l) => l.request_id === id && l.msg === 'request');
      expect(access).to.have.length(1);
      expect(access[0]).to.include({ method: 'GET', route: '/things/{id}', status: 200 });
      expect(access[0].duration_ms).to.be.a('number').and.at.least(0);
      const raw = srv.log.raw();
      expect(raw).to.not.include('qu3ry-s3cr3t');
      expect(raw).to.not.include('b3ar3r-s3cr3t');
      expect(raw).to.not.include('t0ps3cr3t-path');
    });

    it('logs the path of unmatched requests (no route template to go by)', async () => {
      const res = await fetch(`${srv.url}/api/v1/no/such/thing?x=1`);
      const id = res.headers.get('x-request-id');
      const line = srv.log.lines().find((l) => l.request_id === id && l.msg === 'request');
      expect(line).to.include({ route: 'unmatched', path: '/api/v1/no/such/thing', status: 404 });
    });
  });
});
