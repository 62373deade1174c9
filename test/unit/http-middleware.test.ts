import { Type } from '@sinclair/typebox';
import { expect } from 'chai';
import { DomainError } from '../../src/core/errors.js';
import { RateLimiter } from '../../src/core/rate-limiter.js';
import type { ApiRegistry } from '../../src/http/registry.js';
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

  describe('the frame: request id, limit, metrics and the access line', () => {
    const TOKEN = 'snt_s3cr3t-t0k3n-value';
    const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.s1gn4tur3';
    // A stand-in for the auth feature's authenticator: a key or a user token, never logged.
    function authed(r: ApiRegistry): void {
      routes(r);
      r.setAuthenticator((ctx, info) => {
        if (info.auth === 'none') return;
        const header = ctx.get('Authorization');
        if (header === `Bearer ${TOKEN}`) ctx.state.actor = { kind: 'apikey', keyId: 'key-42', orgId: 'org-1', scopes: ['ingest'] };
        else if (header === `Bearer ${JWT}`) ctx.state.actor = { kind: 'user', userId: 'user-7', superadmin: false };
        else throw new DomainError('unauthenticated', 'no');
      });
      r.route({
        method: 'post', path: '/ingest', operationId: 'ingest', summary: 'ingest', auth: 'any', rateLimit: 'ingest',
        body: Type.Object({ n: Type.Number() }),
        responses: { 202: { description: 'accepted' } },
        handler: (ctx) => { ctx.status = 202; ctx.body = { ok: true }; },
      });
      r.route({
        method: 'get', path: '/probe', operationId: 'probe', summary: 'probe', auth: 'none', rateLimit: 'none',
        responses: { 200: { description: 'ok' } },
        handler: (ctx) => { ctx.body = { ok: true }; },
      });
      r.route({
        method: 'get', path: '/me', operationId: 'me', summary: 'me', auth: 'any',
        responses: { 200: { description: 'me' } },
        handler: (ctx) => { ctx.body = { ok: true }; },
      });
      r.route({
        method: 'get', path: '/boom/{id}', operationId: 'boom', summary: 'boom', auth: 'none',
        params: Type.Object({ id: Type.String() }),
        responses: { 200: { description: 'never' } },
        handler: () => { throw new Error('kaput'); },
      });
    }

    let srv: RunningServer;
    let limited: RunningServer;
    let proxied: RunningServer;
    before(async () => {
      srv = await startServer({ routes: authed });
      limited = await startServer({ routes: authed, apiRateLimiter: new RateLimiter(3, 60_000) });
      proxied = await startServer({ routes: authed, http: { trust_proxy: true, proxy_hops: 1 } });
    });
    after(async () => {
      await srv.close();
      await limited.close();
      await proxied.close();
    });

    const accessLine = (s: RunningServer, res: Response) => {
      const lines = s.log.lines().filter((l) => l.request_id === res.headers.get('x-request-id') && l.msg === 'request');
      expect(lines, 'one access line per request').to.have.length(1);
      return lines[0];
    };

    it('keeps a plain caller request id and replaces one that could inject into logs or headers', async () => {
      const kept = await fetch(`${srv.url}/api/v1/things/1`, { headers: { 'X-Request-Id': 'proxy-id.123_abc' } });
      expect(kept.headers.get('x-request-id')).to.equal('proxy-id.123_abc');
      const replaced = await fetch(`${srv.url}/api/v1/things/1`, { headers: { 'X-Request-Id': 'evil"id\\u0000; x=1' } });
      expect(replaced.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
      const fresh = await fetch(`${srv.url}/api/v1/things/1`);
      expect(fresh.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/).and.not.equal(replaced.headers.get('x-request-id'));
    });

    it('puts the request id in the header and the problem body of an error answer', async () => {
      const res = await fetch(`${srv.url}/api/v1/boom/1`, { headers: { 'X-Request-Id': 'trace-500' } });
      expect(res.status).to.equal(500);
      expect(res.headers.get('x-request-id')).to.equal('trace-500');
      expect(((await res.json()) as { request_id: string }).request_id).to.equal('trace-500');
      expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
    });

    it('writes the client address and the actor id on the access line, never the token', async () => {
      const key = await fetch(`${srv.url}/api/v1/me?api_key=${TOKEN}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      expect(key.status).to.equal(200);
      expect(accessLine(srv, key)).to.include({ method: 'GET', route: '/me', status: 200, ip: '127.0.0.1', actor: 'apikey:key-42' });
      const user = await fetch(`${srv.url}/api/v1/me`, { headers: { Authorization: `Bearer ${JWT}` } });
      expect(accessLine(srv, user)).to.include({ actor: 'user:user-7' });
      const anonymous = await fetch(`${srv.url}/api/v1/me`, { headers: { Authorization: 'Bearer wrong-0ne' } });
      expect(anonymous.status).to.equal(401);
      const line = accessLine(srv, anonymous);
      expect(line).to.include({ status: 401, ip: '127.0.0.1' });
      expect(line).to.not.have.property('actor');
      const raw = srv.log.raw();
      expect(raw).to.include('apikey:key-42');
      expect(raw).to.not.include(TOKEN);
      expect(raw).to.not.include('s3cr3t');
      expect(raw).to.not.include(JWT.split('.')[2]);
      expect(raw).to.not.include('wrong-0ne');
    });

    it('logs the address the trusted proxy appended, not one the client wrote', async () => {
      const res = await fetch(`${proxied.url}/api/v1/things/1`, { headers: { 'X-Forwarded-For': '6.6.6.6, 203.0.113.9' } });
      expect(accessLine(proxied, res)).to.include({ ip: '203.0.113.9' });
      const direct = await fetch(`${srv.url}/api/v1/things/1`, { headers: { 'X-Forwarded-For': '6.6.6.6' } });
      expect(accessLine(srv, direct)).to.include({ ip: '127.0.0.1' });
    });

    it('logs a 500 at warn level with the route template', async () => {
      const res = await fetch(`${srv.url}/api/v1/boom/x-77`);
      const line = accessLine(srv, res);
      expect(line).to.include({ level: 40, route: '/boom/{id}', status: 500 });
      expect(JSON.stringify(line)).to.not.include('x-77');
    });

    it('follows a log level change: access lines stop below the new level and come back', async () => {
      const s = await startServer({ routes: authed });
      try {
        const first = await fetch(`${s.url}/api/v1/things/1`);
        accessLine(s, first);
        s.log.logger.level = 'warn';
        const quiet = await fetch(`${s.url}/api/v1/things/1`);
        expect(s.log.lines().filter((l) => l.request_id === quiet.headers.get('x-request-id'))).to.have.length(0);
        s.log.logger.level = 'info';
        accessLine(s, await fetch(`${s.url}/api/v1/things/1`));
      } finally {
        await s.close();
      }
    });

    it('labels metrics by route template and final status, errors and limits included', async () => {
      await fetch(`${srv.url}/api/v1/boom/zz-9911`);
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      expect(text).to.match(/^sentinel_http_request_duration_seconds_count\{method="GET",route="\/boom\/\{id\}",status="500"\} [1-9]/m);
      expect(text).to.not.include('zz-9911');
      const over = await startServer({ routes: authed, apiRateLimiter: new RateLimiter(1, 60_000) });
      try {
        await fetch(`${over.url}/api/v1/things/1`);
        expect((await fetch(`${over.url}/api/v1/things/2`)).status).to.equal(429);
        const m = await (await fetch(`${over.url}/metrics`)).text();
        // The 429 was answered before routing: no template to go by.
        expect(m).to.match(/^sentinel_http_request_duration_seconds_count\{method="GET",route="unmatched",status="429"\} 1$/m);
        expect(m).to.match(/^sentinel_http_request_duration_seconds_count\{method="GET",route="\/things\/\{id\}",status="200"\} 1$/m);
      } finally {
        await over.close();
      }
    });

    it('limits requests per client IP with RateLimit-* headers, then 429 with Retry-After', async () => {
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await fetch(`${limited.url}/api/v1/things/${i}`));
      expect(answers.slice(0, 3).map((r) => r.status)).to.deep.equal([200, 200, 200]);
      expect(answers.map((r) => r.headers.get('ratelimit-remaining'))).to.deep.equal(['2', '1', '0', '0']);
      expect(answers[0].headers.get('ratelimit-limit')).to.equal('3');
      const over = answers[3];
      expect(over.status).to.equal(429);
      expect(Number(over.headers.get('retry-after'))).to.be.within(1, 60);
      expect(over.headers.get('content-type')).to.match(/problem\+json/);
      expect(over.headers.get('x-frame-options')).to.equal('DENY');
      // Unmatched /api/ paths count too (scanning is limited), and are refused now.
      expect((await fetch(`${limited.url}/api/v1/no/such/path`)).status).to.equal(429);
    });

    it("does not count an ingest route or a probe, whose declarations say so; they answer while the client is over", async () => {
      const s = await startServer({ routes: authed, apiRateLimiter: new RateLimiter(2, 60_000) });
      try {
        for (let i = 0; i < 5; i++) {
          const ingest = await fetch(`${s.url}/api/v1/ingest`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: '{"n":1}' });
          expect(ingest.status, `ingest ${i}`).to.equal(202);
          expect(ingest.headers.has('ratelimit-remaining')).to.equal(false);
          expect((await fetch(`${s.url}/api/v1/probe`)).status, `probe ${i}`).to.equal(200);
        }
        // Neither used up the budget: the first two API requests pass, the third is over.
        const api = [];
        for (let i = 0; i < 3; i++) api.push((await fetch(`${s.url}/api/v1/things/${i}`)).status);
        expect(api).to.deep.equal([200, 200, 429]);
        expect((await fetch(`${s.url}/api/v1/ingest`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: '{"n":1}' })).status).to.equal(202);
      } finally {
        await s.close();
      }
    });

    it('derives the exempt paths from the declarations: templated paths included, nothing else', () => {
      const s = srv.registry.rateLimited();
      expect(s('/api/v1/ingest')).to.equal(false);
      expect(s('/api/v1/probe')).to.equal(false);
      expect(s('/api/v1/things/1')).to.equal(true);
      expect(s('/api/v1/ingest/more')).to.equal(true);
      expect(s('/metrics')).to.equal(false);
    });
  });
});
