import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { freePort } from '../support/daemon.js';
import { NGINX, writeNginxConf } from '../support/nginx.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Behind a real nginx (Debian's package; .ci/run installs it) with http.trust_proxy on, the client
 * address is the one the proxy appended to X-Forwarded-For (`$proxy_add_x_forwarded_for`), never
 * an entry the client wrote itself. The client connects to nginx from 127.0.0.5, so that address
 * can only have come from nginx's own entry: not from the spoofed header, and not from the socket
 * (nginx connects to Sentinel from 127.0.0.1).
 */

const CLIENT_ADDRESS = '127.0.0.5';

async function waitForPort(port: number, deadlineMs = 10_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Nginx {
  port: number;
  stop(): Promise<void>;
}

async function startNginx(upstreamPort: number): Promise<Nginx> {
  if (!NGINX) throw new Error('nginx is not installed (apt-get install nginx): the proxy-path test needs a real proxy and cannot pass without one');
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-nginx-'));
  const port = await freePort();
  const args = writeNginxConf(
    dir,
    `server {
  listen 127.0.0.1:${port};
  location / {
    proxy_pass http://127.0.0.1:${upstreamPort};
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
  }
}`,
  );
  const check = spawnSync(NGINX, ['-t', ...args], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
  const child: ChildProcess = spawn(NGINX, args, { stdio: 'ignore' });
  try {
    await waitForPort(port);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; nginx error log: ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '(none)'}`);
  }
  return {
    port,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A login through the proxy from CLIENT_ADDRESS, with the X-Forwarded-For the client chooses. */
function loginThrough(port: number, email: string, forwardedFor: string): Promise<{ status: number; retryAfter: string | undefined }> {
  const body = JSON.stringify({ email, password: 'wrong-password' });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        localAddress: CLIENT_ADDRESS,
        method: 'POST',
        path: '/api/v1/auth/login',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-forwarded-for': forwardedFor },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

describe('behind a real nginx: the client cannot choose its address', function () {
  this.timeout(60_000);
  let dbUrl: string;

  before(async () => {
    dbUrl = await cloneDatabase();
  });
  after(async () => {
    if (dbUrl) await dropDatabase(dbUrl);
  });

  async function behindNginx(hops: number, fn: (port: number) => Promise<void>): Promise<void> {
    const app: TestApp = await startTestApp(dbUrl, { SENTINEL_HTTP_TRUST_PROXY: 'true', SENTINEL_HTTP_PROXY_HOPS: String(hops) });
    const upstream = Number(new URL(app.baseUrl).port);
    let nginx: Nginx | null = null;
    try {
      nginx = await startNginx(upstream);
      await fn(nginx.port);
    } finally {
      await nginx?.stop();
      await app.stop();
    }
  }

  it('with proxy_hops 1 (the default): 25 logins under spoofed X-Forwarded-For trip the per-IP limit at the 21st; the audit log records the proxy-appended address', async () => {
    const tag = `hops1-${Date.now()}`;
    await behindNginx(1, async (port) => {
      const statuses: number[] = [];
      let retryAfter: string | undefined;
      for (let i = 1; i <= 25; i++) {
        // Distinct unknown accounts, so only the per-IP limit can answer 429.
        const res = await loginThrough(port, `${tag}-${i}@example.test`, `198.51.100.${i}, 10.0.0.${i}`);
        statuses.push(res.status);
        if (res.status === 429) retryAfter ??= res.retryAfter;
      }
      expect(statuses.slice(0, 20)).to.deep.equal(Array(20).fill(401));
      expect(statuses.slice(20)).to.deep.equal(Array(5).fill(429));
      expect(Number(retryAfter)).to.be.greaterThan(0);
    });
    // The 20 refused (401) attempts are recorded, all from the address nginx saw (the 429s never reach the service).
    const audit = await query<{ ip: string; n: number }>(dbUrl, `select ip, count(*)::int as n from audit_log where action = 'auth.login_failed' group by ip`);
    expect(audit).to.deep.equal([{ ip: CLIENT_ADDRESS, n: 20 }]);
  });

  it('with proxy_hops 2 through one proxy the client-written entry would be believed (why the setting must match the proxies): no limit trips', async () => {
    const tag = `hops2-${Date.now()}`;
    await behindNginx(2, async (port) => {
      const statuses: number[] = [];
      for (let i = 1; i <= 25; i++) statuses.push((await loginThrough(port, `${tag}-${i}@example.test`, `203.0.113.${i}`)).status);
      expect(statuses).to.deep.equal(Array(25).fill(401));
    });
    const spoofed = await query<{ n: number }>(dbUrl, `select count(*)::int as n from audit_log where action = 'auth.login_failed' and ip like '203.0.113.%'`);
    expect(spoofed[0].n).to.equal(25);
  });
});
