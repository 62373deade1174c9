import { expect } from 'chai';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { LogCapture } from '../support/capture.js';
import { startOwnPostgres, tempDataDir, type OwnPostgres } from '../support/own-postgres.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


async function canConnect(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

describe('PostgreSQL outages', function () {
  this.timeout(120_000);

  describe('a server this test starts and stops under a running app', () => {
    let own: OwnPostgres;
    let pgServer: EmbeddedPostgres;
    let t: TestApp;

    before(async () => {
      own = await startOwnPostgres();
      pgServer = own.server;
      t = await startTestApp(own.url, { SENTINEL_DATABASE_CONNECT_TIMEOUT_MS: '1000' });
    });

    after(async () => {
      await t?.stop();
      await own?.remove();
    });

    it('ready is 200 while PostgreSQL runs', async () => {
      const r = await t.api.get('/health/ready');
      expect(r.status).to.equal(200);
    });

    it('while PostgreSQL is down: ready answers 503 + Retry-After naming the failing check, liveness stays 200, the process survives', async () => {
      await pgServer.stop();
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        const r = await t.api.get('/health/ready');
        expect(Date.now() - t0).to.be.below(5000, 'answers quickly, does not hang');
        expect(r.status).to.equal(503);
        expect(Number(r.headers.get('retry-after'))).to.be.greaterThan(0);
        const body = r.body as { status: string; checks: { name: string; ok: boolean; error?: string }[] };
        expect(body.status).to.equal('not_ready');
        const db = body.checks.find((c) => c.name === 'database')!;
        expect(db.ok).to.equal(false);
        expect(db.error).to.be.a('string').and.not.equal('');
      }
      const live = await t.api.get('/health');
      expect(live.status).to.equal(200);
    });

    it('recovers by itself within 5 s of PostgreSQL accepting connections, without restarting the app', async () => {
      const url = await pgServer.start();
      expect(await canConnect(url)).to.equal(true);
      const acceptedAt = Date.now();
      let status = 0;
      while (Date.now() - acceptedAt < 5000) {
        status = (await t.api.get('/health/ready')).status;
        if (status === 200) break;
        await sleep(100);
      }
      expect(status).to.equal(200);
      expect(Date.now() - acceptedAt).to.be.below(5000);
      // Same app instance: its pool reconnected.
      await t.app.db.ping();
    });
  });

  describe('the embedded server supervised by the daemon', () => {
    it('is restarted (with backoff) after it dies, and the reason is logged', async () => {
      const dir = tempDataDir();
      const logs = new LogCapture();
      const server = new EmbeddedPostgres({ dataDir: dir, port: 0, osUser: 'sentinel', logger: pino({ level: 'info' }, logs), supervise: true, adoptOrphan: true });
      try {
        const url = await server.start();
        const first = server.postmasterPid()!;
        expect(first).to.be.a('number');
        process.kill(first, 'SIGKILL');
        const deadline = Date.now() + 60_000;
        let next: number | null = null;
        while (Date.now() < deadline) {
          next = server.postmasterPid();
          if (next && next !== first && (await canConnect(url))) break;
          await sleep(200);
        }
        expect(next).to.be.a('number').and.not.equal(first);
        expect(await canConnect(url)).to.equal(true);
        expect(logs.text).to.match(/"signal":"SIGKILL".*embedded PostgreSQL exited unexpectedly; restarting/);
      } finally {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a daemon takes over a server a CLI command started; the CLI then leaves it running; the daemon stops it', async () => {
      const dir = tempDataDir();
      const quiet = pino({ level: 'silent' });
      const cliServer = new EmbeddedPostgres({ dataDir: dir, port: 0, osUser: 'sentinel', logger: quiet });
      try {
        const url = await cliServer.start();
        const pid = cliServer.postmasterPid()!;
        expect(cliServer.isOwner).to.equal(true);
        const daemon = new EmbeddedPostgres({ dataDir: dir, port: 0, osUser: 'sentinel', logger: quiet, adoptOrphan: true, supervise: true });
        await daemon.start();
        expect(daemon.isOwner).to.equal(true);
        expect(daemon.postmasterPid()).to.equal(pid);
        // The CLI command ends: the server must stay up for the daemon.
        await cliServer.stop();
        expect(cliServer.postmasterPid()).to.equal(pid);
        expect(await canConnect(url)).to.equal(true);
        await daemon.stop();
        expect(cliServer.postmasterPid()).to.equal(null);
      } finally {
        await cliServer.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a daemon adopts a server left behind by a killed daemon, and stops it on shutdown', async () => {
      const dir = tempDataDir();
      const quiet = pino({ level: 'silent' });
      const orphan = new EmbeddedPostgres({ dataDir: dir, port: 0, osUser: 'sentinel', logger: quiet });
      try {
        await orphan.start();
        const pid = orphan.postmasterPid()!;
        // The owner died without stopping it (as after SIGKILL of the daemon).
        writeFileSync(join(dir, 'postgres.owner'), '999999:gone');
        const daemon = new EmbeddedPostgres({ dataDir: dir, port: 0, osUser: 'sentinel', logger: quiet, adoptOrphan: true });
        await daemon.start();
        expect(daemon.isOwner).to.equal(true);
        expect(daemon.postmasterPid()).to.equal(pid);
        await daemon.stop();
        expect(orphan.postmasterPid()).to.equal(null);
      } finally {
        await orphan.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
