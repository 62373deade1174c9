import { Type } from '@sinclair/typebox';
import { expect } from 'chai';
import { DomainError } from '../../src/core/errors.js';
import { startServer, type RunningServer } from './http-fixtures.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('http problem+json and request ids', () => {
  let srv: RunningServer;

  before(async () => {
    srv = await startServer({
      http: { api_body_limit_bytes: 2048 },
      classifyError: (err) =>
        (err as { code?: string }).code === 'ECONNREFUSED'
          ? new DomainError('unavailable', 'database unavailable', { retryAfter: 2.2 })
          : null,
      routes: (r) => {
        r.route({
          method: 'get', path: '/ok', operationId: 'ok', summary: 'ok', auth: 'none',
          responses: { 200: { description: 'ok' } },
          handler: (ctx) => { ctx.body = { ok: true }; },
        });
        r.route({
          method: 'get', path: '/boom', operationId: 'boom', summary: 'boom', auth: 'none',
          responses: { 200: { description: 'never' } },
          handler: () => { throw new Error('kaboom password=hunter2'); },
        });
        r.route({
          method: 'get', path: '/db-down', operationId: 'dbDown', summary: 'db down', auth: 'none',
          responses: { 200: { description: 'never' } },
          handler: () => { throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }); },
        });
        r.route({
          method: 'get', path: '/conflict', operationId: 'conflict', summary: 'conflict', auth: 'none',
          responses: { 409: { description: 'conflict' } },
          handler: () => { throw new DomainError('conflict', 'slug "acme" is taken'); },
        });
        r.route({
          method: 'post', path: '/echo', operationId: 'echo', summary: 'echo', auth: 'none',
          body: Type.Object({ name: Type.String() }, { additionalProperties: false }),
          responses: { 200: { description: 'echo' } },
          handler: (ctx, { body }) => { ctx.body = { name: body.name }; },
        });
      },
    });
  });
  after(() => srv.close());

  async function problem(res: Response): Promise<Record<string, unknown>> {
    expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.request_id, 'request_id matches the header').to.equal(res.headers.get('x-request-id'));
    expect(body.status).to.equal(res.status);
    expect(body.type).to.be.a('string').and.match(/^https:\/\/sentinel\.dev\/problems\/[a-z_]+$/);
    expect(body.title).to.be.a('string').and.not.equal('');
    expect(body.detail).to.be.a('string');
    return body;
  }

  it('puts a generated UUID X-Request-Id on a successful response', async () => {
    const res = await fetch(`${srv.url}/api/v1/ok`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('x-request-id')).to.match(UUID);
  });

  it('reuses a sane incoming X-Request-Id and replaces an unsafe one', async () => {
    const good = await fetch(`${srv.url}/api/v1/ok`, { headers: { 'X-Request-Id': 'edge-42.abc_DEF' } });
    expect(good.headers.get('x-request-id')).to.equal('edge-42.abc_DEF');
    const bad = await fetch(`${srv.url}/api/v1/ok`, { headers: { 'X-Request-Id': 'x"; injected=1' } });
    expect(bad.headers.get('x-request-id')).to.match(UUID);
    const long = await fetch(`${srv.url}/api/v1/ok`, { headers: { 'X-Request-Id': 'a'.repeat(129) } });
    expect(long.headers.get('x-request-id')).to.match(UUID);
  });

  it('answers an unknown route with a 404 problem carrying the request id', async () => {
    const res = await fetch(`${srv.url}/api/v1/nope`);
    expect(res.status).to.equal(404);
    expect(res.headers.get('x-request-id')).to.match(UUID);
    const body = await problem(res);
    expect(body.type).to.equal('https://sentinel.dev/problems/not_found');
    expect(body.title).to.equal('Not Found');
  });

  it('answers a wrong method on a known path with 405, an Allow header and a problem', async () => {
    const res = await fetch(`${srv.url}/api/v1/ok`, { method: 'DELETE' });
    expect(res.status).to.equal(405);
    expect(res.headers.get('allow')).to.include('GET');
    const body = await problem(res);
    expect(body.type).to.equal('https://sentinel.dev/problems/method_not_allowed');
  });

  it('maps a DomainError to its status with its message as detail', async () => {
    const res = await fetch(`${srv.url}/api/v1/conflict`);
    expect(res.status).to.equal(409);
    const body = await problem(res);
    expect(body.detail).to.equal('slug "acme" is taken');
    expect(body.type).to.equal('https://sentinel.dev/problems/conflict');
  });

  it('answers an unknown error with a generic 500 and logs the stack with the request id', async () => {
    const res = await fetch(`${srv.url}/api/v1/boom`);
    expect(res.status).to.equal(500);
    const id = res.headers.get('x-request-id');
    expect(id).to.match(UUID);
    const text = await res.clone().text();
    expect(text).to.not.include('hunter2');
    expect(text).to.not.include('kaboom');
    expect(text).to.not.match(/\bat .*\.ts:\d+/);
    const body = await problem(res);
    expect(body.detail).to.equal('internal error');
    const logged = srv.log.lines().find((l) => l.request_id === id && l.level === 50);
    expect(logged, 'an error-level log line for this request').to.be.an('object');
    const err = logged!.err as { stack?: string; message?: string };
    expect(err.message).to.include('hunter2');
    expect(err.stack).to.include('http-problem.test.ts');
  });

  it('turns a classified infrastructure error into 503 with Retry-After', async () => {
    const res = await fetch(`${srv.url}/api/v1/db-down`);
    expect(res.status).to.equal(503);
    expect(res.headers.get('retry-after')).to.equal('3');
    const body = await problem(res);
    expect(body.type).to.equal('https://sentinel.dev/problems/unavailable');
    expect(body.detail).to.equal('database unavailable');
  });

  it('answers an oversize JSON body with a 413 problem carrying the request id', async () => {
    const res = await fetch(`${srv.url}/api/v1/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'x'.repeat(5000) }),
    });
    expect(res.status).to.equal(413);
    expect(res.headers.get('x-request-id')).to.match(UUID);
    const body = await problem(res);
    expect(body.type).to.equal('https://sentinel.dev/problems/payload_too_large');
  });

  it('accepts a body just under the limit (the 413 above is the limit, not a broken route)', async () => {
    const res = await fetch(`${srv.url}/api/v1/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'x'.repeat(1900) }),
    });
    expect(res.status).to.equal(200);
    expect(((await res.json()) as { name: string }).name).to.have.length(1900);
  });

  it('answers invalid JSON with a 400 problem', async () => {
    const res = await fetch(`${srv.url}/api/v1/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"name": ',
    });
    expect(res.status).to.equal(400);
    const body = await problem(res);
    expect(body.type).to.equal('https://sentinel.dev/problems/bad_request');
  });

  it('answers a non-JSON body on a JSON route with a 415 problem', async () => {
    const res = await fetch(`${srv.url}/api/v1/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: 'name=x',
    });
    expect(res.status).to.equal(415);
    const body = await problem(res);
    expect(body.type).to.equal('https://sentinel.dev/problems/unsupported_media_type');
  });
});
