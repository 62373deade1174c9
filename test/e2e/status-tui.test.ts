import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AdminStatus } from '../../src/core/status.js';
import { testEnv } from '../support/config.js';
import { BIN, freePort, runBin, startDaemon, type Daemon } from '../support/daemon.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';

/**
 * The real `sentinel status` (the compiled bin/sentinel, `npm run build` first) against a running
 * daemon, a separate process sharing only the configuration and data_dir: the CLI finds the URL
 * in http.host/http.port and mints its token from the daemon's secret in data_dir. The dashboard
 * runs in a tmux pane (a real pseudo-terminal) whose screen is read back with capture-pane; the
 * alert and the failed job on it were made by this test. Then --json (and no terminal), and the
 * unreachable daemon, on the screen and as exit 1.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uniq = () => randomBytes(3).toString('hex');

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000, last: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${last()}`);
    await sleep(100);
  }
}

function tmuxAvailable(): boolean {
  return spawnSync('tmux', ['-V'], { encoding: 'utf8' }).status === 0;
}

/** One tmux server of our own (-L socket name): nothing of the user's tmux is touched. */
class Pane {
  readonly socket = `sentinel-status-${process.pid}-${uniq()}`;
  constructor(readonly name = 'status') {}

  tmux(args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  start(script: string, columns: number, rows: number): void {
    this.tmux(['new-session', '-d', '-s', this.name, '-x', String(columns), '-y', String(rows), `bash ${script}`]);
  }

  screen(): string {
    return this.tmux(['capture-pane', '-p', '-t', this.name]);
  }

  /** alternate_on: the dashboard's full screen is up; cursor_flag: the cursor is shown. */
  flags(): { alternate: boolean; cursor: boolean } {
    const [alt, cur] = this.tmux(['display-message', '-p', '-t', this.name, '#{alternate_on} #{cursor_flag}']).trim().split(' ');
    return { alternate: alt === '1', cursor: cur === '1' };
  }

  keys(...keys: string[]): void {
    this.tmux(['send-keys', '-t', this.name, ...keys]);
  }

  kill(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server']);
  }
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('sentinel status against a running daemon (compiled binary, tmux)', function () {
  this.timeout(180_000);
  let url: string;
  let dir: string;
  let env: Record<string, string>;
  let daemon: Daemon;
  let port: number;
  let base: string;
  let token: string;
  const slug = `tui-${uniq()}`;
  const panes: Pane[] = [];

  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T; text: string }> => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T, text };
  };

  /** A script that runs `sentinel status` in the pane, with a line before it and its exit code after it. */
  function script(args: string[]): string {
    const file = join(dir, `status-${uniq()}.sh`);
    const exports = Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
    writeFileSync(
      file,
      [
        ...exports,
        `export PATH=${shellQuote(process.env.PATH ?? '/usr/bin:/bin')}`,
        // ink draws only the final frame when CI or CONTINUOUS_INTEGRATION is set (is-in-ci), and the
        // pane inherits them from a CI run through the tmux server: a sysadmin's terminal has neither.
        'unset CI CONTINUOUS_INTEGRATION',
        'echo BEFORE-STATUS',
        `${shellQuote(process.execPath)} ${shellQuote(BIN)} status ${args.map(shellQuote).join(' ')}`,
        'echo "STATUS-EXIT $?"',
        'sleep 600',
        '',
      ].join('\n'),
    );
    chmodSync(file, 0o700);
    return file;
  }

  before(async function () {
    if (!tmuxAvailable()) throw new Error('tmux is required for this test (apt-get install tmux)');
    url = await cloneDatabase();
    port = await freePort();
    env = testEnv(url, { SENTINEL_HTTP_HOST: '127.0.0.1', SENTINEL_HTTP_PORT: String(port), SENTINEL_ALERTS_ENABLED: 'true', SENTINEL_ALERTS_TICK_MS: '100' });
    dir = env.SENTINEL_DATA_DIR;
    daemon = await startDaemon(env, ['serve']);
    base = `http://127.0.0.1:${daemon.port}`;
    expect(daemon.port).to.equal(port);

    // An org and its owner (a superadmin too, to run a job), made with the CLI as an operator would.
    const org = runBin(['org', 'create', slug], env);
    expect(org.code, org.stderr).to.equal(0);
    const email = `ops-${uniq()}@example.com`;
    const password = `pw-${uniq()}-${uniq()}-long`;
    const user = runBin(['user', 'create', email, '--password-stdin', '--org', slug, '--role', 'owner', '--superadmin'], env, `${password}\n`);
    expect(user.code, user.stderr).to.equal(0);
    const login = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
    expect(login.status).to.equal(200);
    token = ((await login.json()) as { access_token: string }).access_token;

    // Ingest (20 points, 2 logs) that fires a critical threshold rule.
    const now = Date.now();
    const sent = await api('POST', `/organizations/${slug}/telemetry`, {
      metrics: Array.from({ length: 20 }, (_, i) => ({ name: 'tui.load', value: 50 + i, ts: now - i * 1000 })),
      logs: [
        { level: 'info', message: 'one' },
        { level: 'error', message: 'two' },
      ],
    });
    expect(sent.status, sent.text).to.equal(202);
    const rule = await api('POST', `/organizations/${slug}/alert-rules`, {
      name: 'tui-load-high',
      kind: 'threshold',
      query: { name: 'tui.load', agg: 'max', window: '1h' },
      op: '>',
      threshold: 10,
      interval: '1s',
      severity: 'critical',
    });
    expect(rule.status, rule.text).to.equal(201);
    // A job that fails, and says why: the restore drill with no backup to drill.
    const run = await api('POST', '/admin/jobs/restore-drill/run');
    expect(run.status, run.text).to.equal(202);
  });

  after(async () => {
    for (const p of panes) p.kill();
    if (daemon && daemon.proc.exitCode === null) {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (url) await dropDatabase(url);
  });

  /** `sentinel status --json` the way a script runs it. */
  function json(args: string[] = ['--json']): { code: number | null; stdout: string; stderr: string; status?: AdminStatus } {
    const r = runBin(['status', ...args], env);
    let status: AdminStatus | undefined;
    try {
      status = JSON.parse(r.stdout) as AdminStatus;
    } catch {
      // not JSON: the assertions say so
    }
    return { ...r, status };
  }

  it('--json: one snapshot of this daemon, with the ingest, alert and job this test made', async () => {
    const health = (await (await fetch(`${base}/api/v1/health`)).json()) as { version: string };
    const s = await until(
      'the alert firing and the drill failed in the snapshot',
      () => {
        const r = json();
        expect(r.code, r.stderr).to.equal(0);
        const st = r.status!;
        const drill = st.jobs.find((j) => j.name === 'restore-drill');
        return st.alerts.firing.critical === 1 && drill?.last_run?.outcome === 'failed' ? st : undefined;
      },
      60_000,
    );
    expect(s.version).to.equal(health.version);
    expect(s.pid).to.equal(daemon.proc.pid);
    expect(s.database.mode).to.equal('external');
    // 20 points and 2 logs accepted within the last minute (the daemon is younger than its window,
    // so the rates divide by its age, at least 1 s): ten points per log, and at most 20 per second.
    expect(s.ingest.points_per_second).to.be.greaterThan(0).and.at.most(20);
    expect(s.ingest.points_per_second / s.ingest.logs_per_second).to.be.closeTo(10, 1e-9);
    expect(s.ingest.history.filter((p) => p.points_per_second > 0), 'the sparkline has the ingest').to.not.have.length(0);
    expect(s.alerts.newest.map((a) => [a.org, a.rule, a.severity, a.state])).to.deep.equal([[slug, 'tui-load-high', 'critical', 'firing']]);
    expect(s.jobs.find((j) => j.name === 'restore-drill')!.last_run!.error).to.contain('no complete backup');
  });

  it('no terminal (stdout a pipe, no --json): the same JSON snapshot, exit 0', () => {
    const r = json([]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.status?.pid).to.equal(daemon.proc.pid);
    expect(r.stderr).to.equal('');
  });

  it("refused: a token that is not the daemon's (another data_dir's secret, or garbage) exits 1 saying 401 and why", () => {
    const other = join(dir, 'other-data-dir');
    mkdirSync(join(other, 'secrets'), { recursive: true, mode: 0o700 });
    writeFileSync(join(other, 'secrets', 'jwt_secret'), `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    const r = runBin(['status', '--json'], { ...env, SENTINEL_DATA_DIR: other });
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.contain(`Sentinel at http://127.0.0.1:${port} refused the status request: 401`);
    expect(r.stderr).to.contain(`minted from ${join(other, 'secrets', 'jwt_secret')}`);
    const g = runBin(['status', '--json', '--token', 'not-a-token'], env);
    expect(g.code).to.equal(1);
    expect(g.stderr).to.contain('refused the status request: 401');
    expect(g.stderr).to.contain('The daemon refused --token');
  });

  it('the dashboard in a 100×30 terminal: version, panels, the firing alert and the failed job; tab, ?, and q restores the terminal', async () => {
    const health = (await (await fetch(`${base}/api/v1/health`)).json()) as { version: string };
    const pane = new Pane();
    panes.push(pane);
    pane.start(script([]), 100, 30);
    const screen = await until('the dashboard', () => (pane.screen().includes('Heartbeats') ? pane.screen() : undefined), 30_000, () => pane.screen());
    expect(screen).to.contain(`Sentinel ${health.version}`);
    expect(screen).to.contain(`pid ${daemon.proc.pid}`);
    expect(screen).to.contain('db external PostgreSQL');
    for (const t of ['HTTP', 'Ingest', 'Alerts', 'Jobs', 'Backups', 'Heartbeats']) expect(screen).to.contain(` ${t} `);
    expect(screen).to.contain('firing 1 (critical 1)');
    expect(screen).to.contain(`● critical ${slug}/tui-load-high `);
    expect(screen).to.match(/✗ restore-drill +failed/);
    expect(screen).to.contain('no backups yet');
    expect(screen).to.contain(`http://127.0.0.1:${port}`);
    const lines = screen.replace(/\n$/, '').split('\n');
    expect(lines.length).to.be.at.most(30);
    for (const l of lines) expect([...l].length, l).to.be.at.most(100);
    expect(pane.flags()).to.deep.equal({ alternate: true, cursor: false });

    // The screen refreshes by itself: the "updated" clock moves.
    const clock = () => /updated (\d\d:\d\d:\d\d)/.exec(pane.screen())?.[1];
    const first = clock();
    await until('a refresh', () => (clock() !== first ? true : undefined), 10_000, () => pane.screen());

    expect(screen).to.contain('▶ HTTP');
    pane.keys('Tab');
    await until('focus on Ingest', () => (pane.screen().includes('▶ Ingest') ? true : undefined), 10_000, () => pane.screen());
    // Redrawn in place: the panel that lost the focus still starts right under its title.
    const redrawn = pane.screen().split('\n');
    expect(redrawn[redrawn.findIndex((l) => l.includes('─ HTTP ─')) + 1], pane.screen()).to.match(/^│req\/s [\d.k]+ · p50 /);
    pane.keys('?');
    await until('the help', () => (pane.screen().includes('show or hide this help') ? true : undefined), 10_000, () => pane.screen());
    pane.keys('?');
    await until('the help hidden', () => (pane.screen().includes('▶ Ingest') ? true : undefined), 10_000, () => pane.screen());

    pane.keys('q');
    const after = await until('the exit', () => (pane.screen().includes('STATUS-EXIT') ? pane.screen() : undefined), 10_000, () => pane.screen());
    expect(after).to.contain('STATUS-EXIT 0');
    // The main screen is back as it was: the line printed before, nothing of the dashboard.
    expect(after).to.contain('BEFORE-STATUS');
    expect(after).not.to.contain('Heartbeats');
    expect(after).not.to.contain('╭');
    expect(pane.flags()).to.deep.equal({ alternate: false, cursor: true });
  });

  it('the daemon goes away: the dashboard says it cannot reach it and keeps retrying; --json exits 1 with the message', async () => {
    const pane = new Pane();
    panes.push(pane);
    pane.start(script([]), 80, 24);
    await until('the dashboard', () => (pane.screen().includes('Heartbeats') ? true : undefined), 30_000, () => pane.screen());

    daemon.proc.kill('SIGTERM');
    expect((await daemon.exited).code).to.equal(0);
    const flat = () => pane.screen().replace(/[│\s]+/g, ' ');
    const screen = await until('the unreachable screen', () => (flat().includes('retrying every 1 s') ? flat() : undefined), 15_000, () => pane.screen());
    expect(screen).to.contain(`cannot reach Sentinel at http://127.0.0.1:${port}: ECONNREFUSED — retrying every 1 s`);
    expect(screen).not.to.match(/Error|at .*\.js:\d+/);
    // Still trying: the attempt clock moves.
    const attempt = () => /last attempt (\d\d:\d\d:\d\d)/.exec(flat())?.[1];
    const a1 = attempt();
    await until('another attempt', () => (attempt() !== a1 ? true : undefined), 10_000, () => pane.screen());

    const r = json();
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.equal(`error: cannot reach Sentinel at http://127.0.0.1:${port}: ECONNREFUSED\n`);

    pane.keys('q');
    const after = await until('the exit', () => (pane.screen().includes('STATUS-EXIT') ? pane.screen() : undefined), 10_000, () => pane.screen());
    expect(after).to.contain('STATUS-EXIT 0');
    expect(pane.flags()).to.deep.equal({ alternate: false, cursor: true });
  });

  it('SIGTERM to a running dashboard also restores the terminal', async () => {
    const pane = new Pane();
    panes.push(pane);
    // Port 9 (discard) is not the daemon's: a local token is not minted for it, so one is given.
    pane.start(script(['--url', 'http://127.0.0.1:9', '--token', 'abc.def.ghi']), 80, 24);
    await until('the unreachable screen', () => (pane.screen().includes('Sentinel unreachable') ? true : undefined), 30_000, () => pane.screen());
    const pid = Number(pane.tmux(['display-message', '-p', '-t', pane.name, '#{pane_pid}']).trim());
    // The pane runs bash; its child is node (bin/sentinel status).
    const child = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .map(Number)
      .find((p) => p > 0 && spawnSync('cat', [`/proc/${p}/cmdline`], { encoding: 'utf8' }).stdout.includes('status'));
    expect(child, 'the status process').to.be.a('number');
    process.kill(child!, 'SIGTERM');
    const after = await until('the exit', () => (pane.screen().includes('STATUS-EXIT') ? pane.screen() : undefined), 10_000, () => pane.screen());
    expect(after).to.contain('STATUS-EXIT 0');
    expect(after).not.to.contain('unreachable');
    expect(pane.flags()).to.deep.equal({ alternate: false, cursor: true });
  });
});
