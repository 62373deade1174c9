import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { freePort, startDaemon, startDaemonLoggingTo, type Daemon } from '../support/daemon.js';
import { startNotifyReceiver, type NotifyReceiver } from '../support/notify-receiver.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function stop(d: Daemon | undefined): Promise<void> {
  if (d && d.proc.exitCode === null && d.proc.signalCode === null) {
    d.proc.kill('SIGTERM');
    await d.exited;
  }
}

/** A file for a daemon's stdout, created now, and the `<device>:<inode>` systemd would put in JOURNAL_STREAM for it. */
function logFile(path: string): { path: string; stream: string } {
  writeFileSync(path, '');
  const st = statSync(path, { bigint: true });
  return { path, stream: `${st.dev}:${st.ino}` };
}

/**
 * The compiled binary as systemd runs it: JOURNAL_STREAM naming its stdout → every log line
 * carries its syslog priority (and naming another stream, as a command a unit starts with its
 * output redirected inherits it → bare JSON); NOTIFY_SOCKET set → READY=1 once it listens
 * (Type=notify), nothing run without it.
 */
describe('bin/sentinel serve under systemd: journald priorities and readiness notification', function () {
  this.timeout(90_000);
  let url: string;
  let dir: string;
  const daemons: Daemon[] = [];
  let receiver: NotifyReceiver | undefined;

  before(async () => {
    url = await cloneDatabase();
    dir = mkdtempSync(join(tmpdir(), 'sentinel-systemd-'));
    chmodSync(dir, 0o755);
  });

  after(async () => {
    for (const d of daemons) await stop(d);
    receiver?.stop();
    rmSync(dir, { recursive: true, force: true });
    await dropDatabase(url);
  });

  const envFor = (name: string, extra: Record<string, string>) => {
    const config = join(dir, `${name}.json`);
    writeFileSync(config, JSON.stringify({ log: { level: 'info' } }));
    return { config, env: { SENTINEL_CONFIG: config, SENTINEL_DATABASE_URL: url, SENTINEL_DATA_DIR: join(dir, name), ...extra } };
  };

  it('with JOURNAL_STREAM naming its stdout and NOTIFY_SOCKET: <6> on info lines, <3> on error lines, READY=1 (with MAINPID) once it listens', async () => {
    const port = await freePort();
    const socketPath = join(dir, 'notify.sock');
    receiver = await startNotifyReceiver(socketPath, port);
    const log = logFile(join(dir, 'journald.log'));
    const { config, env } = envFor('journald', { JOURNAL_STREAM: log.stream, NOTIFY_SOCKET: socketPath });
    const d = await startDaemonLoggingTo(log.path, env, 60_000, { args: ['serve'], port });
    daemons.push(d);

    const ready = await waitFor('READY=1', () => receiver!.received().find((r) => r.listening !== null));
    expect(ready.message.split('\n')).to.include.members(['READY=1', `MAINPID=${d.proc.pid}`]);
    expect(ready.listening, 'the HTTP port accepted a connection when READY=1 arrived').to.equal(true);

    // An error line: SIGHUP with a configuration file that became invalid.
    writeFileSync(config, JSON.stringify({ log: { level: 'loud' } }));
    d.proc.kill('SIGHUP');
    const errorLine = await waitFor('the error line', () => d.stdout().split('\n').find((l) => l.includes('configuration not reloaded (invalid)')));
    expect(errorLine.slice(0, 4)).to.equal('<3>{');
    expect((JSON.parse(errorLine.slice(3)) as { level: string }).level).to.equal('error');

    const readyLine = await waitFor('the ready line', () => d.stdout().split('\n').find((l) => l.includes('"msg":"ready"')));
    expect(readyLine?.slice(0, 4)).to.equal('<6>{');
    // Every line, whatever it says, is one prefixed JSON record.
    const lines = d.stdout().split('\n').filter(Boolean);
    for (const l of lines) {
      const m = /^<([0-7])>(\{.*\})$/.exec(l);
      expect(m, l).to.not.equal(null);
      const level = (JSON.parse(m![2]) as { level: string }).level;
      expect(Number(m![1]), l).to.equal({ fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 }[level]);
    }
    d.proc.kill('SIGTERM');
    expect((await d.exited).code).to.equal(0);
    // One READY=1 only (the stop did not send another).
    expect(receiver.received().filter((r) => r.listening !== null)).to.have.length(1);
  });

  it('with JOURNAL_STREAM naming another stream (inherited, output redirected) or none, lines are bare JSON; without NOTIFY_SOCKET no systemd-notify is run (a recording one first on PATH)', async () => {
    const bin = join(dir, 'fake-bin');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(bin);
    const marker = join(dir, 'fake-notify-ran');
    writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> ${marker}\n`, { mode: 0o755 });
    const path = `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`;

    // Well formed and a real file's device:inode, just not this daemon's stdout.
    const elsewhere = logFile(join(dir, 'elsewhere.log'));
    const redirected = await startDaemonLoggingTo(logFile(join(dir, 'redirected.log')).path, { ...envFor('redirected', {}).env, JOURNAL_STREAM: elsewhere.stream }, 60_000, { args: ['serve'] });
    daemons.push(redirected);
    const plain = await startDaemon({ ...envFor('plain', {}).env, PATH: path, SENTINEL_HTTP_PORT: '0' }, ['serve']);
    daemons.push(plain);
    // The control: the same recording systemd-notify, with NOTIFY_SOCKET set, is run (so its absence above means something).
    const control = await startDaemon({ ...envFor('control', {}).env, PATH: path, NOTIFY_SOCKET: '/run/sentinel-test/notify', SENTINEL_HTTP_PORT: '0' }, ['serve']);
    daemons.push(control);
    await waitFor('the control run', () => (existsSync(marker) ? true : undefined));
    await sleep(1000);
    expect(readFileSync(marker, 'utf8')).to.equal(`/run/sentinel-test/notify --ready --pid=${control.proc.pid}\n`);

    await waitFor('the redirected daemon\'s ready line', () => (redirected.stdout().includes('"msg":"ready"') ? true : undefined));
    for (const d of [plain, redirected]) {
      const lines = d.stdout().split('\n').filter(Boolean);
      expect(lines.length).to.be.greaterThan(1);
      for (const l of lines) expect(l[0], l).to.equal('{');
    }
    expect(readFileSync(elsewhere.path, 'utf8')).to.equal('');
    await stop(redirected);
    await stop(plain);
    await stop(control);
  });
});
