import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describeFailure, fetchStatus, StatusClient, statusUrl, type FetchResult } from '../../src/tui/status-client.js';
import { freePort } from '../support/daemon.js';
import { healthyStatus } from './tui-fixtures.js';

/**
 * The dashboard's one request against a local HTTP server playing the daemon: each way it can
 * go wrong is a sentence, never a throw.
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

describe('status client (GET /api/v1/admin/status)', () => {
  let server: Server;
  let url: string;
  let handler: Handler = (_req, res) => res.end();
  const seen: IncomingMessage[] = [];
  const sockets = new Set<Socket>();

  before(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      handler(req, res);
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => (seen.length = 0));

  const json = (status: number, body: unknown, type = 'application/json'): Handler => (_req, res) => {
    res.writeHead(status, { 'content-type': type });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const notOk = (r: FetchResult) => {
    if (r.ok) throw new Error('expected a failure');
    return r;
  };

  it('200 with a valid answer: the status, asked for at the status path with the bearer token of that call', async () => {
    const s = healthyStatus();
    handler = json(200, s);
    let n = 0;
    const token = () => `tok-${++n}`;
    const r1 = await fetchStatus({ url: `${url}/`, token });
    const r2 = await fetchStatus({ url, token });
    expect(r1).to.deep.equal({ ok: true, status: s });
    expect(r2.ok).to.equal(true);
    expect(seen.map((q) => q.url)).to.deep.equal(['/api/v1/admin/status', '/api/v1/admin/status']);
    // A token per request: the short-lived local token is minted fresh every time.
    expect(seen.map((q) => q.headers.authorization)).to.deep.equal(['Bearer tok-1', 'Bearer tok-2']);
  });

  it('a path prefix in the URL is kept (a daemon behind a proxy path)', () => {
    expect(statusUrl('https://mon.example.com/sentinel/')).to.equal('https://mon.example.com/sentinel/api/v1/admin/status');
  });

  it('401 and 403: denied, with the problem detail', async () => {
    handler = json(401, { type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'missing or invalid token' }, 'application/problem+json');
    const r401 = notOk(await fetchStatus({ url, token: () => 'x' }));
    expect(r401).to.deep.include({ kind: 'denied', httpStatus: 401 });
    expect(r401.reason).to.equal('401 Unauthorized: missing or invalid token');
    handler = json(403, { title: 'Forbidden', status: 403, detail: 'superadmin only' }, 'application/problem+json');
    const r403 = notOk(await fetchStatus({ url, token: () => 'x' }));
    expect(r403).to.deep.include({ kind: 'denied', httpStatus: 403 });
    expect(describeFailure(url, r403)).to.equal(`Sentinel at ${url} refused the status request: 403 Forbidden: superadmin only`);
  });

  it('another status, a body that is not JSON, JSON that is not the contract: failed, saying which', async () => {
    handler = json(500, { title: 'Internal Server Error', detail: 'boom (request id r-1)' });
    expect(notOk(await fetchStatus({ url, token: () => 'x' }))).to.deep.equal({ kind: 'failed', ok: false, reason: 'HTTP 500: boom (request id r-1)' });
    handler = json(200, '<html>nginx</html>', 'text/html');
    expect(notOk(await fetchStatus({ url, token: () => 'x' })).reason).to.contain('not JSON');
    const bad = healthyStatus() as unknown as Record<string, unknown>;
    delete bad.version;
    handler = json(200, bad);
    const r = notOk(await fetchStatus({ url, token: () => 'x' }));
    expect(r.kind).to.equal('failed');
    expect(r.reason).to.contain("must have required property 'version'");
    const wrongType = { ...healthyStatus(), http: { ...healthyStatus().http, requests_per_second: 'many' } };
    handler = json(200, wrongType);
    expect(notOk(await fetchStatus({ url, token: () => 'x' })).reason).to.contain('/http/requests_per_second');
    handler = json(200, `{"version":"1\u0000"}`);
    expect(notOk(await fetchStatus({ url, token: () => 'x' })).kind).to.equal('failed');
  });

  it('escape sequences in an error answer do not reach the terminal (stderr or the screen)', async () => {
    handler = json(403, { title: 'Forbidden', detail: 'no\u001b]0;owned\u0007 way\u001b[2J' });
    const r = notOk(await fetchStatus({ url, token: () => 'x' }));
    expect(r.reason).to.equal('403 Forbidden: no ]0;owned  way [2J');
    handler = json(200, { ['\u001b[31mkey']: 1 });
    expect(notOk(await fetchStatus({ url, token: () => 'x' })).reason).not.to.match(/[\u0000-\u001f]/);
  });

  it('a huge error body is cut to one bounded line', async () => {
    handler = json(502, `${'x'.repeat(1_000_000)}\nsecond line`, 'text/plain');
    const r = notOk(await fetchStatus({ url, token: () => 'x' }));
    expect(r.reason.length).to.be.at.most(220);
    expect(r.reason).to.match(/^HTTP 502: x+$/);
  });

  it('nobody listening: unreachable, ECONNREFUSED', async () => {
    const port = await freePort();
    const r = notOk(await fetchStatus({ url: `http://127.0.0.1:${port}`, token: () => 'x' }));
    expect(r).to.deep.equal({ ok: false, kind: 'unreachable', reason: 'ECONNREFUSED' });
    expect(describeFailure(`http://127.0.0.1:${port}`, r)).to.equal(`cannot reach Sentinel at http://127.0.0.1:${port}: ECONNREFUSED`);
  });

  it('a port fetch refuses (6000, X11): unreachable, saying so', async () => {
    const r = notOk(await fetchStatus({ url: 'http://127.0.0.1:6000', token: () => 'x' }));
    expect(r).to.deep.equal({ ok: false, kind: 'unreachable', reason: 'bad port (fetch refuses to connect to this port; give the daemon another http.port)' });
  });

  it('an unknown host: unreachable, named by the resolver error', async () => {
    // fetch's failure for a name the resolver does not know (undici: TypeError, the getaddrinfo error as its cause).
    const notFound = async (): Promise<Response> => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('getaddrinfo ENOTFOUND no-such-host.invalid'), { code: 'ENOTFOUND', hostname: 'no-such-host.invalid' }) });
    };
    const r = notOk(await fetchStatus({ url: 'http://no-such-host.invalid:8080', token: () => 'x', fetch: notFound }));
    expect(r).to.deep.equal({ ok: false, kind: 'unreachable', reason: 'ENOTFOUND' });
    expect(describeFailure('http://no-such-host.invalid:8080', r)).to.equal('cannot reach Sentinel at http://no-such-host.invalid:8080: ENOTFOUND');
  });

  it('one client asks again and again with its own validator: answers checked each time', async () => {
    let n = 0;
    const client = new StatusClient({ url, token: () => `t${++n}` });
    handler = json(200, healthyStatus());
    expect((await client.fetch()).ok).to.equal(true);
    const bad = healthyStatus() as unknown as Record<string, unknown>;
    delete bad.pid;
    handler = json(200, bad);
    expect(notOk(await client.fetch()).reason).to.contain("must have required property 'pid'");
    handler = json(200, healthyStatus());
    expect(await client.fetch()).to.deep.equal({ ok: true, status: healthyStatus() });
    expect(seen.map((q) => q.headers.authorization)).to.deep.equal(['Bearer t1', 'Bearer t2', 'Bearer t3']);
  });

  it('a daemon that never answers: unreachable after the timeout', async () => {
    handler = () => undefined; // never respond
    const t0 = Date.now();
    const r = notOk(await fetchStatus({ url, token: () => 'x', timeoutMs: 200 }));
    expect(r).to.deep.equal({ ok: false, kind: 'unreachable', reason: 'no answer within 0.2 s' });
    expect(Date.now() - t0).to.be.lessThan(2000);
  });
});
