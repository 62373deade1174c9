import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { startDaemon, type Daemon } from '../support/daemon.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForLog(d: Daemon, pattern: RegExp, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const line = d.stdout().split('\n').find((l) => pattern.test(l));
    if (line) return line;
    await sleep(50);
  }
  throw new Error(`no log line matching ${pattern}:\n${d.stdout()}`);
}

describe('bin/sentinel serve: SIGHUP reloads the configuration file', function () {
  this.timeout(60_000);
  let url: string;
  let dir: string;
  let file: string;
  let daemon: Daemon;

  before(async () => {
    url = await cloneDatabase();
    dir = mkdtempSync(join(tmpdir(), 'sentinel-hup-'));
    file = join(dir, 'sentinel.json');
    writeFileSync(file, JSON.stringify({ log: { level: 'info' } }));
    daemon = await startDaemon({ SENTINEL_CONFIG: file, SENTINEL_DATABASE_URL: url, SENTINEL_DATA_DIR: dir, SENTINEL_HTTP_PORT: '0' }, ['serve']);
  });

  after(async () => {
    if (daemon && daemon.proc.exitCode === null) {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    }
    rmSync(dir, { recursive: true, force: true });
    await dropDatabase(url);
  });

  it('applies log.level live and names the keys that need a restart', async () => {
    writeFileSync(file, JSON.stringify({ log: { level: 'debug' }, http: { cors_origins: ['https://ops.example'] } }));
    daemon.proc.kill('SIGHUP');
    const line = JSON.parse(await waitForLog(daemon, /SIGHUP: configuration reloaded"/)) as { applied: string[]; restart_required: string[] };
    expect(line.applied).to.deep.equal(['log.level']);
    expect(line.restart_required).to.deep.equal(['http.cors_origins']);
    expect((await fetch(`http://127.0.0.1:${daemon.port}/api/v1/health`)).status).to.equal(200);
  });

  it('keeps the running configuration when the file became invalid, and keeps serving', async () => {
    writeFileSync(file, JSON.stringify({ log: { level: 'loud' } }));
    daemon.proc.kill('SIGHUP');
    const line = await waitForLog(daemon, /configuration not reloaded \(invalid\)/);
    expect(line).to.contain('log.level');
    expect((await fetch(`http://127.0.0.1:${daemon.port}/api/v1/health`)).status).to.equal(200);
    daemon.proc.kill('SIGTERM');
    expect((await daemon.exited).code).to.equal(0);
  });
});
