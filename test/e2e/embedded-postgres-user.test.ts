import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { packageRoot } from '../../src/config/paths.js';
import { freePort } from '../support/daemon.js';
import { startNotifyReceiver, type NotifyReceiver } from '../support/notify-receiver.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MAIN = join(packageRoot(), 'dist', 'src', 'main.js');
const isRoot = process.getuid?.() === 0;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

/** The real uid of a process, from /proc. */
function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))!;
  return Number(line.split(/\s+/)[1]);
}

function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
}

/** Paths under dir (dir included) not owned by uid. */
function notOwnedBy(dir: string, uid: number): string[] {
  const bad: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.uid !== uid) bad.push(`${p} (uid ${st.uid})`);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(dir);
  return bad;
}

/**
 * The embedded PostgreSQL runs as the daemon's own user when that user is not root — what lets
 * sentinel.service run as User=sentinel with no capabilities. As root the test creates a system
 * user (useradd) and starts the compiled daemon as that user in an approximation of the unit's
 * sandbox: its own mount namespace with /proc mounted subset=pid,hidepid=invisible
 * (ProcSubset=pid, ProtectProc=invisible) and a user namespace mapping only that user
 * (PrivateUsers=yes), with NOTIFY_SOCKET set (Type=notify). Not root: the daemon runs as the
 * current user, without the sandbox, and the sandbox test fails, saying it needs root.
 */
describe('embedded PostgreSQL as the daemon\'s own (non-root) user, in the unit\'s /proc and user-namespace sandbox', function () {
  this.timeout(180_000);
  let dir: string;
  let dataDir: string;
  let user: string | null = null;
  let uid: number;
  let daemon: ChildProcess | undefined;
  let exited: Promise<number | null>;
  let out = '';
  let port: number;
  let receiver: NotifyReceiver;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sentinel-pguser-'));
    chmodSync(dir, 0o755);
    dataDir = join(dir, 'data');
    mkdirSync(dataDir, { mode: 0o750 });
    if (isRoot) {
      user = `sntl-e2e-${randomBytes(3).toString('hex')}`;
      run('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user]);
      uid = Number(run('id', ['-u', user]).trim());
      const gid = Number(run('id', ['-g', user]).trim());
      chownSync(dataDir, uid, gid);
      // The user must be able to run this Node and read this checkout (as /usr/bin/node and /opt/sentinel are).
      const probe = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(MAIN)})`], { encoding: 'utf8' });
      if (probe.status !== 0) throw new Error(`user ${user} cannot run ${process.execPath} on ${MAIN}: ${probe.stderr || probe.error?.message}`);
    } else {
      uid = process.getuid!();
    }
    expect(uid).to.not.equal(0);
    port = await freePort();
    receiver = await startNotifyReceiver(join(dir, 'notify.sock'), port);
    const env = [
      `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
      'HOME=/nonexistent',
      `SENTINEL_DATA_DIR=${dataDir}`,
      `SENTINEL_HTTP_PORT=${port}`,
      'SENTINEL_AUTH_BCRYPT_ROUNDS=4',
      `NOTIFY_SOCKET=${join(dir, 'notify.sock')}`,
    ];
    const daemonArgs = [process.execPath, MAIN, 'serve', '--migrate'];
    daemon = isRoot
      ? spawn(
          'unshare',
          [
            '--mount', '--propagation', 'private', '--', 'sh', '-c',
            'mount -t proc -o subset=pid,hidepid=invisible proc /proc && exec setpriv --reuid="$0" --regid="$0" --clear-groups -- env -i "$@"',
            user!, ...env, 'unshare', '--user', '--map-current-user', '--', ...daemonArgs,
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        )
      : spawn(daemonArgs[0], daemonArgs.slice(1), { env: Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])), stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    daemon.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    exited = new Promise((resolve) => daemon!.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 120_000;
    while (!out.includes('"msg":"ready"')) {
      if (daemon.exitCode !== null) throw new Error(`daemon exited (${daemon.exitCode}) before ready:\n${out}`);
      if (Date.now() > deadline) throw new Error(`daemon not ready:\n${out}`);
      await sleep(100);
    }
  });

  after(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGKILL');
      await exited;
    }
    const pidFile = join(dataDir, 'postgres', 'postmaster.pid');
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGKILL');
      } catch {
        // gone
      }
    }
    receiver?.stop();
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
    if (user) {
      spawnSync('userdel', [user]);
      spawnSync('groupdel', [user]);
    }
  });

  const postmasterPid = () => Number(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);

  it('serves on the embedded PostgreSQL; the daemon and the postmaster both run as that user', async () => {
    expect((await fetch(`http://127.0.0.1:${port}/api/v1/health/ready`)).status).to.equal(200);
    expect(out).to.match(/"embedded_db":true,"msg":"ready"/);
    expect(uidOf(daemon!.pid!)).to.equal(uid);
    const pm = postmasterPid();
    expect(uidOf(pm)).to.equal(uid);
    // Its backends too (children of the postmaster).
    const children = run('ps', ['-o', 'pid=', '--ppid', String(pm)]).split('\n').map((s) => Number(s.trim())).filter(Boolean);
    expect(children.length).to.be.greaterThan(0);
    for (const c of children) expect(uidOf(c), `backend ${c}`).to.equal(uid);
  });

  it('everything in data_dir belongs to that user (cluster, secrets, port file)', () => {
    expect(existsSync(join(dataDir, 'postgres', 'PG_VERSION'))).to.equal(true);
    expect(notOwnedBy(dataDir, uid)).to.deep.equal([]);
  });

  it('ran inside the sandbox: /proc subset=pid,hidepid=invisible and a private user namespace (as root)', () => {
    if (!isRoot) {
      throw new Error('test/e2e/embedded-postgres-user.test.ts must run as root to check the sandbox: it creates a system user (useradd), mounts /proc and enters a user namespace (unshare, setpriv); the daemon ran as the current user without them');
    }
    // The last proc mount on /proc is the one the daemon sees (mounted over the host's).
    const procMount = readFileSync(`/proc/${daemon!.pid}/mountinfo`, 'utf8').split('\n').filter((l) => / \/proc .* - proc /.test(l)).pop();
    expect(procMount, 'the daemon\'s /proc mount').to.match(/subset=pid/).and.match(/hidepid=(invisible|2)/);
    const ns = (pid: number | 'self') => run('readlink', [`/proc/${pid}/ns/user`]).trim();
    expect(ns(daemon!.pid!)).to.not.equal(ns('self'));
    expect(ns(postmasterPid())).to.equal(ns(daemon!.pid!));
  });

  it('told systemd it is ready from there, and PostgreSQL never saw NOTIFY_SOCKET', async () => {
    const deadline = Date.now() + 10_000;
    while (!receiver.received().some((r) => r.listening !== null) && Date.now() < deadline) await sleep(50);
    const ready = receiver.received().filter((r) => r.listening !== null);
    expect(ready).to.have.length(1);
    expect(ready[0].listening).to.equal(true);
    // The daemon started with it (its initial environment), its PostgreSQL did not inherit it.
    expect(environOf(daemon!.pid!).some((e) => e.startsWith('NOTIFY_SOCKET='))).to.equal(true);
    expect(environOf(postmasterPid()).filter((e) => e.startsWith('NOTIFY_SOCKET='))).to.deep.equal([]);
  });

  it('stops on SIGTERM with exit 0, its PostgreSQL with it, and logged no warning or error', async () => {
    const pm = postmasterPid();
    daemon!.kill('SIGTERM');
    expect(await exited).to.equal(0);
    let alive = true;
    try {
      process.kill(pm, 0);
    } catch {
      alive = false;
    }
    expect(alive).to.equal(false);
    const lines = out.split('\n').filter(Boolean);
    // Every line is one JSON record; nothing at warning or worse.
    expect(lines.filter((l) => !/^\{.*\}$/.test(l) || !['info', 'debug', 'trace'].includes((JSON.parse(l) as { level: string }).level)), out).to.deep.equal([]);
  });
});
