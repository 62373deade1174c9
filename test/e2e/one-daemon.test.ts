import { expect } from 'chai';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { postgresPids, runBin, startDaemon, type Daemon } from '../support/daemon.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readiness(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/api/v1/health/ready`)).status;
}

async function stopDaemon(d: Daemon | undefined): Promise<void> {
  if (d && d.proc.exitCode === null && d.proc.signalCode === null) {
    d.proc.kill('SIGKILL');
    await d.exited;
  }
}

/**
 * The real binary, on a fresh data directory with the embedded PostgreSQL: the first start is
 * clean (migrations before anything that needs the schema), and one data directory has one
 * daemon — a second `serve` leaves the first one and its PostgreSQL alone, and a SIGKILLed
 * daemon leaves no lock behind.
 */
describe('bin/sentinel serve: first start and one daemon per data directory (embedded PostgreSQL)', function () {
  this.timeout(180_000);
  let dataDir: string;
  let env: Record<string, string>;
  let first: Daemon | undefined;
  let next: Daemon | undefined;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'sentinel-e2e-lock-'));
    chmodSync(dataDir, 0o755);
    // No SENTINEL_LOG_LEVEL: the default level is what an operator sees.
    env = { SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_PORT: '0', SENTINEL_AUTH_BCRYPT_ROUNDS: '4' };
    first = await startDaemon(env, ['serve', '--migrate']);
  });

  after(async () => {
    await stopDaemon(first);
    await stopDaemon(next);
    for (const pid of postgresPids(join(dataDir, 'postgres'))) process.kill(pid, 'SIGINT');
    await sleep(500);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("a fresh data directory's first start (initdb, migrations, partitions ahead) logs no warning or error line", async () => {
    expect(await readiness(first!.port)).to.equal(200);
    const lines = first!.stdout().split('\n').filter((l) => l.trim());
    const records = lines.map((l) => {
      try {
        return JSON.parse(l) as { level: number; msg: string; created?: number };
      } catch {
        // Anything on stdout/stderr that is not a log record (a stack, a library's warning) counts too.
        return { level: 60, msg: l };
      }
    });
    expect(records.filter((r) => r.level >= 40), lines.join('\n')).to.deep.equal([]);
    // The order that makes it clean: the schema exists before the partitions are created ahead.
    const msgs = records.map((r) => r.msg);
    expect(msgs.indexOf('migrations applied')).to.be.greaterThan(-1).and.below(msgs.indexOf('partition maintenance finished'));
    expect(records.find((r) => r.msg === 'partition maintenance finished')?.created).to.be.greaterThan(0);
    expect(msgs.indexOf('partition maintenance finished')).to.be.below(msgs.indexOf('ready'));
  });

  it('a second serve on the same data directory exits 1 naming the running pid; the first keeps serving, CLI commands still join', async () => {
    const pg = postgresPids(join(dataDir, 'postgres'));
    expect(pg).to.have.length(1);
    expect(readFileSync(join(dataDir, 'sentinel.pid'), 'utf8').trim()).to.equal(String(first!.proc.pid));

    for (const args of [['serve'], ['serve', '--migrate']]) {
      const second = runBin(args, env);
      expect(second.code, second.stdout + second.stderr).to.equal(1);
      expect(second.stderr).to.contain(`data directory in use by pid ${first!.proc.pid}`);
      // It gave up before touching the embedded server.
      expect(second.stdout).to.not.contain('PostgreSQL');
    }
    expect(first!.proc.exitCode).to.equal(null);
    expect(await readiness(first!.port)).to.equal(200);
    expect(postgresPids(join(dataDir, 'postgres'))).to.deep.equal(pg);

    const cliRun = runBin(['org', 'create', 'still-joins'], env);
    expect(cliRun.code, cliRun.stderr).to.equal(0);
    expect(postgresPids(join(dataDir, 'postgres'))).to.deep.equal(pg);
    // The refused starts changed nothing the first daemon relies on.
    await sleep(1500);
    expect(await readiness(first!.port)).to.equal(200);
  });

  it('after SIGKILL of the daemon (no clean-up at all) a new serve starts on the same data directory', async () => {
    first!.proc.kill('SIGKILL');
    await first!.exited;
    // The killed daemon's pid file stays behind: it is information, not the lock.
    expect(existsSync(join(dataDir, 'sentinel.pid'))).to.equal(true);

    next = await startDaemon(env, ['serve']);
    expect(await readiness(next.port)).to.equal(200);
    expect(readFileSync(join(dataDir, 'sentinel.pid'), 'utf8').trim()).to.equal(String(next.proc.pid));
    const orgs = runBin(['org', 'list', '--json'], env);
    expect(JSON.parse(orgs.stdout).map((o: { slug: string }) => o.slug)).to.deep.equal(['still-joins']);

    next.proc.kill('SIGTERM');
    expect((await next.exited).code).to.equal(0);
    expect(postgresPids(join(dataDir, 'postgres'))).to.deep.equal([]);
    expect(existsSync(join(dataDir, 'sentinel.pid'))).to.equal(false);
  });
});

/** The rule holds with an external database too: the data directory still holds the secrets. */
describe('bin/sentinel serve: one daemon per data directory (external PostgreSQL)', function () {
  this.timeout(120_000);
  let url: string;
  let dataDir: string;
  let daemon: Daemon | undefined;

  before(async () => {
    url = await cloneDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'sentinel-e2e-lock-ext-'));
  });

  after(async () => {
    await stopDaemon(daemon);
    await dropDatabase(url);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a second serve exits 1 naming the pid; a daemon on another data directory is not affected', async () => {
    const env = { SENTINEL_DATABASE_URL: url, SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_PORT: '0', SENTINEL_AUTH_BCRYPT_ROUNDS: '4' };
    daemon = await startDaemon(env, ['serve']);
    const second = runBin(['serve'], env);
    expect(second.code, second.stderr).to.equal(1);
    expect(second.stderr).to.contain(`data directory in use by pid ${daemon.proc.pid}`);
    expect(await readiness(daemon.port)).to.equal(200);

    // Same database, another data directory: allowed (several instances may share a database).
    const otherDir = mkdtempSync(join(tmpdir(), 'sentinel-e2e-lock-other-'));
    try {
      const other = await startDaemon({ ...env, SENTINEL_DATA_DIR: otherDir }, ['serve']);
      other.proc.kill('SIGTERM');
      expect((await other.exited).code).to.equal(0);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
    expect(await readiness(daemon.port)).to.equal(200);
  });
});
