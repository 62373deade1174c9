import { expect } from 'chai';
import { mkdtempSync, readFileSync, chmodSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresPids, runBin, startDaemon, type Daemon } from '../support/daemon.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/**
 * The real binary on the embedded default: first start (initdb), a CLI command from a second
 * process joining the running embedded server, SIGTERM draining an in-flight request, and no
 * PostgreSQL left behind.
 */
describe('bin/sentinel serve on the embedded PostgreSQL (child processes)', function () {
  this.timeout(120_000);
  let dataDir: string;
  let env: Record<string, string>;
  let daemon: Daemon;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'sentinel-e2e-'));
    chmodSync(dataDir, 0o755);
    env = { SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_PORT: '0', SENTINEL_AUTH_BCRYPT_ROUNDS: '4', SENTINEL_LOG_LEVEL: 'debug' };
    daemon = await startDaemon(env);
  });

  after(async () => {
    if (daemon && daemon.proc.exitCode === null) {
      daemon.proc.kill('SIGKILL');
      await daemon.exited;
    }
    for (const pid of postgresPids(join(dataDir, 'postgres'))) process.kill(pid, 'SIGINT');
    await sleep(500);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves health and readiness with the embedded database', async () => {
    const ready = await fetch(`http://127.0.0.1:${daemon.port}/api/v1/health/ready`);
    expect(ready.status).to.equal(200);
    expect(await ready.json()).to.deep.include({ status: 'ready' });
    expect(postgresPids(join(dataDir, 'postgres'))).to.have.length(1);
  });

  it('a CLI command in a second process uses the running embedded server', () => {
    const before = postgresPids(join(dataDir, 'postgres'));
    const r = runBin(['org', 'create', 'acme'], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^created organization acme/);
    const u = runBin(['user', 'create', 'ops@example.test', '--password-stdin', '--org', 'acme', '--role', 'owner'], env, 'super-secret-password\n');
    expect(u.code, u.stderr).to.equal(0);
    expect(postgresPids(join(dataDir, 'postgres'))).to.deep.equal(before);
    const list = runBin(['org', 'list', '--json'], env);
    expect(JSON.parse(list.stdout).map((o: { slug: string }) => o.slug)).to.deep.equal(['acme']);
  });

  it('SIGTERM: refuses new connections, finishes the in-flight request, exits 0, stops PostgreSQL', async () => {
    // A request whose body is still arriving is in flight until its last byte.
    const sock = connect(daemon.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let response = '';
    sock.on('data', (c: Buffer) => (response += c.toString('utf8')));
    const ended = new Promise((r) => sock.once('end', r));
    const body = '{"slow": "upload"}';
    sock.write(`POST /api/v1/health HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
    await sleep(200);

    daemon.proc.kill('SIGTERM');
    await sleep(300);
    expect(await refused(daemon.port)).to.equal(true);
    expect(daemon.proc.exitCode).to.equal(null);

    sock.write(body.slice(5));
    await ended;
    expect(response).to.match(/^HTTP\/1\.1 405 /);
    expect(response).to.match(/x-request-id: [0-9a-f-]{36}/i);

    const { code } = await daemon.exited;
    expect(code).to.equal(0);
    expect(postgresPids(join(dataDir, 'postgres'))).to.deep.equal([]);
  });

  it('never logs a secret (passwords, generated keys, the database password)', () => {
    const logs = daemon.stdout();
    expect(logs).to.contain('"msg":"ready"');
    const secrets = ['jwt_secret', 'encryption_key', 'postgres_password'].map((f) => readFileSync(join(dataDir, 'secrets', f), 'utf8').trim());
    for (const s of [...secrets, 'super-secret-password']) expect(logs).to.not.contain(s);
  });

  // How quick the second start is belongs to bench/startup.ts (second start beside the embedded
  // PostgreSQL alone); here what it does: the first start's cluster, with its data, is the one served.
  it('a second start reuses the cluster and its data, and stops it on SIGINT', async () => {
    const again = await startDaemon(env);
    try {
      const orgs = runBin(['org', 'list', '--json'], env);
      expect(JSON.parse(orgs.stdout).map((o: { slug: string }) => o.slug)).to.deep.equal(['acme']);
    } finally {
      again.proc.kill('SIGINT');
      expect((await again.exited).code).to.equal(0);
    }
    expect(postgresPids(join(dataDir, 'postgres'))).to.deep.equal([]);
  });
});
