import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { runBin, startDaemon, type Daemon } from '../support/daemon.js';
import { tempDataDir } from '../support/own-postgres.js';
import { tableChecksums } from '../support/table-checksums.js';

/** The machine's PostgreSQL (another major than the embedded 17), as .ci/run names it. */
const OTHER_SERVER = 'postgres://postgres@127.0.0.1:5432/postgres';

async function otherServer<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: OTHER_SERVER, connectionTimeoutMillis: 3000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * The embedded default backed up by the real binary (`backup create` against the running
 * daemon's PostgreSQL 17), restored into a new empty database on the machine's PostgreSQL 15:
 * no pg_dump version coupling, every table equal.
 */
describe('bin/sentinel backup: embedded PostgreSQL 17 → PostgreSQL 15', function () {
  this.timeout(180_000);
  let dataDir: string;
  let daemon: Daemon | undefined;
  let target: string | undefined;
  let env: Record<string, string>;

  before(async () => {
    try {
      await otherServer((c) => c.query('select 1'));
    } catch (err) {
      throw new Error(`the cross-major backup test needs the machine's PostgreSQL at ${OTHER_SERVER}, which does not answer: ${(err as Error).message}`);
    }
    dataDir = tempDataDir();
    env = { SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_PORT: '0', SENTINEL_AUTH_BCRYPT_ROUNDS: '4', SENTINEL_LOG_LEVEL: 'info' };
    daemon = await startDaemon(env);
  });

  after(async () => {
    if (daemon && daemon.proc.exitCode === null) {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    }
    if (target) await otherServer((c) => c.query(`drop database if exists ${target} with (force)`));
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('create on the embedded server, restore into an empty database on 5432: equal tables', async () => {
    expect(runBin(['seed'], env).code).to.equal(0);
    const key = runBin(['apikey', 'create', '--org', 'demo', '--name', 'xmajor', '--json'], env);
    expect(key.code, key.stderr).to.equal(0);
    const secret = (JSON.parse(key.stdout) as { secret: string }).secret;
    const now = Date.now();
    const res = await fetch(`http://127.0.0.1:${daemon!.port}/api/v1/telemetry`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        metrics: Array.from({ length: 500 }, (_, i) => ({ name: 'temp', value: i / 7, ts: now - i * 60_000, labels: { room: `r${i % 5}` } })),
        logs: [{ level: 'warn', message: 'ünïcode\tand\\backslash', attributes: { a: '1' } }],
        events: [{ type: 'deploy', title: 'x', tags: ['t'] }],
      }),
    });
    expect(res.status, await res.text()).to.equal(202);

    const created = runBin(['backup', 'create', '--json'], env);
    expect(created.code, created.stderr).to.equal(0);
    const id = (JSON.parse(created.stdout) as { id: string }).id;
    const manifest = JSON.parse(readFileSync(join(dataDir, 'backups', id, 'manifest.json'), 'utf8')) as { postgres_version: string };
    expect(manifest.postgres_version).to.match(/^17\./);
    // Verify's scratch database on the embedded server, beside the running daemon.
    const verified = runBin(['backup', 'verify', id], env);
    expect(verified.code, verified.stderr).to.equal(0);
    expect(verified.stdout).to.contain(`backup ${id} is good`);

    const port = readFileSync(join(dataDir, 'postgres.port'), 'utf8').trim();
    const password = readFileSync(join(dataDir, 'secrets', 'postgres_password'), 'utf8').trim();
    const source = await tableChecksums(`postgres://sentinel:${encodeURIComponent(password)}@127.0.0.1:${port}/sentinel`);
    // The daemon may have compacted the points older than storage.compact_after (2 h) by now: the
    // last two hours (120 of the 500) are always fresh, the rest in either tier (both are compared below).
    expect(source.get('points')?.rows).to.be.at.least(120);

    target = `sentinel_xmajor_${randomBytes(4).toString('hex')}`;
    const version = await otherServer(async (c) => {
      await c.query(`create database ${target}`);
      return (await c.query<{ v: string }>("select current_setting('server_version') as v")).rows[0].v;
    });
    expect(version).not.to.match(/^17\./);
    const targetUrl = OTHER_SERVER.replace(/\/postgres$/, `/${target}`);
    const restored = runBin(['backup', 'restore', id, '--yes', '--database-url', targetUrl], env);
    expect(restored.code, restored.stderr).to.equal(0);
    // `backup create` is a manual run of the backup job, under way in its own snapshot: the
    // restore closes that run as skipped (README Backups → Restore), so job_runs differs by design.
    const restoredTables = await tableChecksums(targetUrl);
    const tc = new pg.Client({ connectionString: targetUrl });
    await tc.connect();
    const runs = await tc.query<{ outcome: string }>("select outcome from job_runs where job = 'backup' order by id desc limit 1").finally(() => tc.end());
    expect(runs.rows).to.deep.equal([{ outcome: 'skipped' }]);
    restoredTables.delete('job_runs');
    source.delete('job_runs');
    expect(restoredTables).to.deep.equal(source);
  });
});
