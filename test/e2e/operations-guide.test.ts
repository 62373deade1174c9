import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/loader.js';
import { packageRoot } from '../../src/config/paths.js';
import { freePort } from '../support/daemon.js';
import { NGINX, writeNginxConf } from '../support/nginx.js';

/**
 * docs/operations.md followed on this machine, as far as it goes without systemd as PID 1.
 *
 * The guide's install steps are fenced blocks with the info string `sh install:<step>`; this test
 * runs those blocks themselves (with `sh -eu`), rewritten to a temporary root: /opt/sentinel,
 * /etc/sentinel, /var/lib/sentinel and /usr/local/sbin/sentinel move under it and the system user
 * `sentinel` becomes a throwaway `sentinel-guide-<random>`, removed afterwards. `install:code` (the
 * clone and npm ci) is replaced by a link to this checkout, built by `npm run build`, and
 * `install:unit` (systemctl) is the one step that needs systemd: in its place the unit's own
 * ExecStartPre and ExecStart lines (read from sentinel.service, same rewriting) run as the unit's
 * User= with the unit's Environment= and EnvironmentFile=. Then Debian's nginx runs the site from
 * config/nginx.example.conf (hostname, certificate and listen addresses substituted, a
 * self-signed certificate made here with openssl) on 127.0.0.1, and the first administrator the
 * guide created logs in through it over TLS.
 *
 * Needs root (useradd, setpriv): it fails, saying so, when run as another user.
 */

const ROOT_DIR = packageRoot();
const GUIDE = readFileSync(join(ROOT_DIR, 'docs', 'operations.md'), 'utf8');
const NGINX_EXAMPLE = readFileSync(join(ROOT_DIR, 'config', 'nginx.example.conf'), 'utf8');
const CLIENT = '127.0.0.5';
const HOSTNAME = 'sentinel-guide.test';
const STEPS = ['user', 'code', 'dirs', 'config', 'cli', 'admin', 'unit'];

interface Block {
  step: string;
  body: string;
}

/** The guide's `sh install:<step>` blocks, in document order. */
function installBlocks(markdown: string): Block[] {
  const out: Block[] = [];
  const re = /^```sh install:([a-z-]+)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) out.push({ step: m[1], body: m[2] });
  return out;
}

function block(step: string): string {
  const found = installBlocks(GUIDE).filter((b) => b.step === step);
  if (found.length !== 1) throw new Error(`docs/operations.md has ${found.length} blocks \`sh install:${step}\` (expected one)`);
  return found[0].body;
}

/** The JSON the guide's install:config step writes into sentinel.json. */
function guideConfigJson(): string {
  const m = /<<'EOF'\n([\s\S]*?)^EOF$/m.exec(block('config'));
  if (!m) throw new Error('the install:config block writes no heredoc');
  return m[1];
}

/** nginx size syntax (bytes, k, m, g) to bytes. */
function nginxSize(text: string, directive: string): number {
  const all = [...text.matchAll(new RegExp(`^\\s*${directive}\\s+(\\d+)([kKmMgG]?)\\s*;`, 'gm'))];
  if (all.length !== 1) throw new Error(`${directive} appears ${all.length} times in config/nginx.example.conf (expected once)`);
  const unit = all[0][2].toLowerCase();
  return Number(all[0][1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1);
}

interface Rewrite {
  root: string;
  user: string;
  port: number;
}

const PATHS = ['/usr/local/sbin/sentinel', '/opt/sentinel', '/etc/sentinel', '/var/lib/sentinel'];
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A guide or unit line moved under the temporary root, with the throwaway user and the daemon's port. */
function rewrite(text: string, r: Rewrite): string {
  let out = text;
  for (const p of PATHS) out = out.replace(new RegExp(`(?<![\\w./-])${escapeRe(p)}(?![\\w-])`, 'g'), r.root + p);
  // The user and group: the word `sentinel` standing alone (not in a path, file name or hostname).
  out = out.replace(/(?<![\w./-])sentinel(?![\w./-])/g, r.user);
  out = out.replace(/"port": 8000\b/g, `"port": ${r.port}`);
  // Nothing may still point at the real system's paths.
  const rootRe = escapeRe(r.root);
  const leftover = new RegExp(`(?<!${rootRe})(?:${PATHS.map(escapeRe).join('|')})(?![\\w-])`).exec(out);
  if (leftover) throw new Error(`rewriting left a real path (${leftover[0]}) in:\n${out}`);
  return out;
}

function sh(script: string, what: string): string {
  const r = spawnSync('sh', ['-eu', '-c', script], { encoding: 'utf8', env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root' }, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}, signal ${r.signal}):\n${script}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

interface Unit {
  user: string | null;
  group: string | null;
  execStartPre: string[];
  execStart: string[];
  environment: Record<string, string>;
  environmentFiles: string[];
  workingDirectory: string | null;
  stateDirectoryMode: string | null;
  configurationDirectoryMode: string | null;
  umask: string | null;
}

/** Split a systemd command line or Environment= value into words (double and single quotes). */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]));
  return out;
}

function parseUnit(text: string): Unit {
  const unit: Unit = { user: null, group: null, execStartPre: [], execStart: [], environment: {}, environmentFiles: [], workingDirectory: null, stateDirectoryMode: null, configurationDirectoryMode: null, umask: null };
  let section = '';
  // Continuation lines (a trailing backslash) joined first.
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1];
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === 'User') unit.user = value;
    else if (key === 'Group') unit.group = value;
    else if (key === 'ExecStartPre') unit.execStartPre = value === '' ? [] : [...unit.execStartPre, value];
    else if (key === 'ExecStart') unit.execStart = value === '' ? [] : [...unit.execStart, value];
    else if (key === 'Environment') for (const w of words(value)) unit.environment[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
    else if (key === 'EnvironmentFile') unit.environmentFiles.push(value);
    else if (key === 'WorkingDirectory') unit.workingDirectory = value;
    else if (key === 'StateDirectoryMode') unit.stateDirectoryMode = value;
    else if (key === 'ConfigurationDirectoryMode') unit.configurationDirectoryMode = value;
    else if (key === 'UMask') unit.umask = value;
  }
  return unit;
}

/** KEY=value lines of an EnvironmentFile (comments and blank lines skipped). */
function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq).trim()] = words(line.slice(eq + 1))[0] ?? '';
  }
  return out;
}

function uidOf(pid: number): number {
  const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no Uid in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Every process running as `uid`. */
function processesOf(uid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (uidOf(Number(name)) === uid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface Call {
  port: number;
  method?: string;
  path: string;
  from?: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  ca?: string;
}

function call(c: Call): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const options = {
      host: '127.0.0.1',
      port: c.port,
      method: c.method ?? 'GET',
      path: c.path,
      localAddress: c.from,
      headers: { host: HOSTNAME, ...(c.body !== undefined ? { 'content-length': Buffer.byteLength(c.body) } : {}), ...c.headers },
      agent: false as const,
    };
    const onAnswer = (res: import('node:http').IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    };
    // TLS verified against the test's own certificate, for the hostname nginx serves.
    const req = c.ca ? httpsRequest({ ...options, ca: c.ca, servername: HOSTNAME }, onAnswer) : httpRequest(options, onAnswer);
    req.once('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer to ${c.method ?? 'GET'} ${c.path} in 30 s`)));
    req.end(c.body);
  });
}

async function waitFor<T>(what: string, deadlineMs: number, probe: () => Promise<T | null>): Promise<T> {
  const until = Date.now() + deadlineMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`${what}: not within ${deadlineMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopChild(child: ChildProcess | null, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

describe('the operations guide (docs/operations.md) and config/nginx.example.conf', () => {
  it('marks the install steps as blocks the guide test can run, once each and in order', () => {
    expect(installBlocks(GUIDE).map((b) => b.step)).to.deep.equal(STEPS);
  });

  it('sets client_max_body_size to the http.body_limit_bytes of the configuration the guide installs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sentinel-guide-config-'));
    try {
      writeFileSync(join(dir, 'sentinel.json'), guideConfigJson());
      const { config } = loadConfig({ file: join(dir, 'sentinel.json'), env: {} });
      expect(nginxSize(NGINX_EXAMPLE, 'client_max_body_size')).to.equal(config.http.body_limit_bytes);
      // The guide's config puts nginx in front: the client address comes from X-Forwarded-For, one hop.
      expect(config.http.trust_proxy).to.equal(true);
      expect(config.http.proxy_hops).to.equal(1);
      expect(config.data_dir).to.equal('/var/lib/sentinel');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('restricts /metrics in the nginx example to an allow-list that ends in deny all', () => {
    const m = /location = \/metrics \{([^}]*)\}/.exec(NGINX_EXAMPLE);
    expect(m, 'a `location = /metrics` block').to.not.equal(null);
    const lines = m![1].split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
    const rules = lines.filter((l) => /^(allow|deny) /.test(l));
    expect(rules.length).to.be.greaterThan(1);
    expect(rules[rules.length - 1]).to.equal('deny all;');
    expect(rules.slice(0, -1).every((r) => r.startsWith('allow ') && r !== 'allow all;')).to.equal(true);
  });

  it('is linked from the README', () => {
    expect(readFileSync(join(ROOT_DIR, 'README.md'), 'utf8')).to.contain('](docs/operations.md)');
  });

  it('rewrites every path and the user name when moved under a temporary root, and leaves file and host names alone', () => {
    const r = { root: '/tmp/sentinel-guide-x', user: 'sentinel-guide-abc', port: 1234 };
    expect(rewrite('install -d -o sentinel -g sentinel -m 0750 /var/lib/sentinel', r)).to.equal(
      'install -d -o sentinel-guide-abc -g sentinel-guide-abc -m 0750 /tmp/sentinel-guide-x/var/lib/sentinel',
    );
    expect(rewrite('exec setpriv --reuid=sentinel -- /usr/bin/node /opt/sentinel/dist/src/main.js "$@" # /etc/sentinel/sentinel.json', r)).to.equal(
      'exec setpriv --reuid=sentinel-guide-abc -- /usr/bin/node /tmp/sentinel-guide-x/opt/sentinel/dist/src/main.js "$@" # /tmp/sentinel-guide-x/etc/sentinel/sentinel.json',
    );
    expect(rewrite('"external_url": "https://sentinel.example.com", "port": 8000', r)).to.equal('"external_url": "https://sentinel.example.com", "port": 1234');
    expect(rewrite('/usr/local/sbin/sentinel user create', r)).to.equal('/tmp/sentinel-guide-x/usr/local/sbin/sentinel user create');
  });
});

describe('the operations guide followed on this machine: install, first admin, the unit as its user, login through nginx', function () {
  this.timeout(300_000);

  const user = `sentinel-guide-${randomBytes(4).toString('hex')}`;
  let root = '';
  let port = 0;
  let uid = -1;
  let userCreated = false;
  let daemon: ChildProcess | null = null;
  let nginx: ChildProcess | null = null;
  let nginxDir = '';
  let tlsPort = 0;
  let httpPort = 0;
  let adminPassword = '';
  let cert = '';
  let daemonLog = '';
  const r = (): Rewrite => ({ root, user, port });

  before(async function () {
    if (process.getuid?.() !== 0) {
      throw new Error('test/e2e/operations-guide.test.ts must run as root: it creates a system user (useradd) and runs the daemon as that user (setpriv), as the guide does');
    }
    if (!NGINX) throw new Error("nginx is not installed (apt-get install nginx-light): the guide's proxy step needs Debian's nginx and cannot pass without it");
    for (const tool of ['useradd', 'userdel', 'setpriv', 'openssl', 'install']) {
      if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing: the guide's steps need it`);
    }
    if (!existsSync(join(ROOT_DIR, 'dist', 'src', 'main.js'))) throw new Error('dist/src/main.js is missing: run `npm run build` first (the guide runs the compiled daemon)');
    root = mkdtempSync(join(tmpdir(), 'sentinel-guide-'));
    // The throwaway user must reach the code through the temporary root, as it reaches /opt.
    chmodSync(root, 0o755);
    for (const d of ['opt', 'etc', 'var/lib', 'usr/local/sbin']) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
    port = await freePort();
  });

  after(async () => {
    await stopChild(daemon, 'SIGTERM', 30_000);
    await stopChild(nginx, 'SIGTERM', 10_000);
    const problems: string[] = [];
    if (uid >= 0) {
      // Anything the guide's daemon (or its embedded PostgreSQL) left behind is a failure, then killed.
      const left = processesOf(uid);
      if (left.length) {
        problems.push(`processes still running as ${user}: ${left.join(', ')}`);
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
    }
    if (userCreated) {
      const del = spawnSync('userdel', [user], { encoding: 'utf8' });
      if (del.status !== 0) problems.push(`userdel ${user}: ${del.stderr}`);
    }
    if (root) rmSync(root, { recursive: true, force: true });
    if (nginxDir) rmSync(nginxDir, { recursive: true, force: true });
    if (problems.length) throw new Error(problems.join('\n'));
  });

  it('install:user creates the system user (no login shell, its home the state directory)', () => {
    sh(rewrite(block('user'), r()), 'install:user');
    userCreated = true;
    const entry = sh(`getent passwd ${user}`, 'getent').trim().split(':');
    uid = Number(entry[2]);
    expect(uid).to.be.greaterThan(0).and.lessThan(1000); // a system user
    expect(entry[5]).to.equal(`${root}/var/lib/sentinel`);
    expect(entry[6]).to.equal('/usr/sbin/nologin');
    expect(sh(`id -gn ${user}`, 'id').trim()).to.equal(user);
  });

  it('install:code: this checkout, built, in place of the clone', () => {
    // The guide's clone and `npm ci` are what `npm run build` before this test stands for.
    expect(block('code')).to.match(/git clone .* \/opt\/sentinel/).and.to.match(/\bnpm ci\b/);
    symlinkSync(ROOT_DIR, join(root, 'opt', 'sentinel'));
  });

  it('install:dirs makes /etc/sentinel 0750 root:sentinel, /var/lib/sentinel 0750 sentinel:sentinel and an empty env file 0640', () => {
    sh(rewrite(block('dirs'), r()), 'install:dirs');
    const gid = Number(sh(`getent group ${user}`, 'getent').split(':')[2]);
    const etc = statSync(`${root}/etc/sentinel`);
    expect([etc.mode & 0o7777, etc.uid, etc.gid]).to.deep.equal([0o750, 0, gid]);
    const state = statSync(`${root}/var/lib/sentinel`);
    expect([state.mode & 0o7777, state.uid, state.gid]).to.deep.equal([0o750, uid, gid]);
    const env = statSync(`${root}/etc/sentinel/sentinel.env`);
    expect([env.mode & 0o7777, env.uid, env.gid, env.size]).to.deep.equal([0o640, 0, gid, 0]);
  });

  it('install:config writes sentinel.json 0640 root:sentinel, a configuration config check accepts', () => {
    sh(rewrite(block('config'), r()), 'install:config');
    const gid = Number(sh(`getent group ${user}`, 'getent').split(':')[2]);
    const st = statSync(`${root}/etc/sentinel/sentinel.json`);
    expect([st.mode & 0o7777, st.uid, st.gid]).to.deep.equal([0o640, 0, gid]);
    const { config } = loadConfig({ file: `${root}/etc/sentinel/sentinel.json`, env: {} });
    expect(config.data_dir).to.equal(`${root}/var/lib/sentinel`);
    expect(config.http.port).to.equal(port);
  });

  it('install:cli installs the wrapper, which runs the CLI as the user with the configuration (and refuses non-root callers)', () => {
    sh(rewrite(block('cli'), r()), 'install:cli');
    const wrapper = `${root}/usr/local/sbin/sentinel`;
    expect(statSync(wrapper).mode & 0o7777).to.equal(0o755);
    const checked = sh(`${wrapper} config check`, 'sentinel config check');
    expect(checked.trim()).to.equal(`configuration is valid (${root}/etc/sentinel/sentinel.json)`);
    // The configuration it reads is the guide's file (its port), not the defaults.
    const printed = JSON.parse(sh(`${wrapper} config print`, 'sentinel config print')) as { http: { port: number }; data_dir: string };
    expect([printed.http.port, printed.data_dir]).to.deep.equal([port, `${root}/var/lib/sentinel`]);
    const asUser = spawnSync('setpriv', [`--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', wrapper, 'config', 'check'], { encoding: 'utf8' });
    expect(asUser.status).to.equal(2);
    expect(asUser.stderr).to.contain('run it as root');
  });

  it('install:admin migrates as the user and creates the first administrator, printing its password once', () => {
    const out = sh(rewrite(block('admin'), r()), 'install:admin');
    const m = /password \(shown once\): (\S+)/.exec(out);
    expect(m, `a generated password in:\n${out}`).to.not.equal(null);
    adminPassword = m![1];
    // Everything the CLI made in the state directory belongs to the user, not to root.
    const rootOwned = sh(`find ${root}/var/lib/sentinel -not -user ${user} -print`, 'find').trim();
    expect(rootOwned).to.equal('');
    const secrets = statSync(`${root}/var/lib/sentinel/secrets`);
    expect([secrets.mode & 0o7777, secrets.uid]).to.deep.equal([0o700, uid]);
  });

  it("runs the unit's ExecStartPre and ExecStart as the unit's User= with its environment: the daemon and its PostgreSQL run as that user", async () => {
    const unit = parseUnit(readFileSync(join(ROOT_DIR, 'sentinel.service'), 'utf8'));
    expect(unit.user, 'User= of sentinel.service').to.equal('sentinel');
    expect(unit.group ?? 'sentinel').to.equal('sentinel');
    // systemd sets the state and configuration directories' modes on every start: they must keep the guide's.
    if (unit.stateDirectoryMode !== null || /^StateDirectory=/m.test(readFileSync(join(ROOT_DIR, 'sentinel.service'), 'utf8'))) {
      expect(unit.stateDirectoryMode, 'StateDirectoryMode= (else systemd makes /var/lib/sentinel 0755)').to.equal('0750');
    }
    if (/^ConfigurationDirectory=/m.test(readFileSync(join(ROOT_DIR, 'sentinel.service'), 'utf8'))) {
      expect(unit.configurationDirectoryMode, 'ConfigurationDirectoryMode= (else systemd makes /etc/sentinel 0755)').to.equal('0750');
    }
    expect(unit.execStart).to.have.length(1);
    expect(unit.execStart[0]).to.match(/^\/usr\/bin\/node \/opt\/sentinel\/dist\/src\/main\.js serve\b/);

    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      USER: user,
      LOGNAME: user,
      HOME: `${root}/var/lib/sentinel`,
      SHELL: '/usr/sbin/nologin',
    };
    for (const [k, v] of Object.entries(unit.environment)) env[k] = rewrite(v, r());
    for (const spec of unit.environmentFiles) {
      const optional = spec.startsWith('-');
      const path = rewrite(optional ? spec.slice(1) : spec, r());
      if (existsSync(path)) Object.assign(env, readEnvFile(path));
      else if (!optional) throw new Error(`EnvironmentFile=${spec}: ${path} does not exist`);
    }
    expect(env.SENTINEL_CONFIG, 'the unit names the configuration file').to.equal(`${root}/etc/sentinel/sentinel.json`);
    const cwd = unit.workingDirectory ? rewrite(unit.workingDirectory, r()) : '/';
    // The unit's UMask= (systemd's default 0022 without one), then setpriv to its user, as systemd does.
    const umask = unit.umask ?? '0022';
    expect(umask).to.match(/^[0-7]{3,4}$/);
    const asUser = (cmd: string): string[] => {
      const argv = words(rewrite(cmd, r()));
      return ['-c', `umask ${umask} && exec "$@"`, 'sh', 'setpriv', '--reuid', user, '--regid', user, '--init-groups', '--', ...argv];
    };

    for (const pre of unit.execStartPre) {
      const ignoreFailure = pre.startsWith('-');
      const cmd = pre.replace(/^[-]/, '');
      if (/^[+!@:]/.test(cmd)) throw new Error(`ExecStartPre=${pre}: prefix not handled by this test`);
      const res = spawnSync('sh', asUser(cmd), { env, cwd, encoding: 'utf8', timeout: 120_000 });
      if (res.status !== 0 && !ignoreFailure) throw new Error(`ExecStartPre=${pre} failed (${res.status}): ${res.stderr}`);
    }

    daemonLog = join(root, 'daemon.log');
    const logFd = openSync(daemonLog, 'a');
    daemon = spawn('sh', asUser(unit.execStart[0]), { env, cwd, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    const pid = daemon.pid!;
    await waitFor('the daemon answering /api/v1/health/ready', 90_000, async () => {
      if (daemon!.exitCode !== null) throw new Error(`the daemon exited ${daemon!.exitCode}: ${readFileSync(daemonLog, 'utf8').slice(-3000)}`);
      const a = await call({ port, path: '/api/v1/health/ready' });
      if (a.status !== 200) throw new Error(`/api/v1/health/ready answered ${a.status}: ${a.body}`);
      return a;
    });
    // sh and setpriv exec node: the pid is the daemon's, and it is not root.
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 2)).to.deep.equal(['/usr/bin/node', `${root}/opt/sentinel/dist/src/main.js`]);
    expect(uidOf(pid)).to.equal(uid);
    const postmaster = Number(readFileSync(`${root}/var/lib/sentinel/postgres/postmaster.pid`, 'utf8').split('\n')[0]);
    expect(uidOf(postmaster)).to.equal(uid);
  });

  it('`sentinel status --json` through the wrapper (the CLI as the user, no password) reads the running daemon', () => {
    // The wrapper reaches the daemon's secret (the local admin token) and its address from the guide's configuration.
    const snapshot = JSON.parse(sh(`${root}/usr/local/sbin/sentinel status --json`, 'sentinel status --json')) as {
      pid: number;
      database: { mode: string; migrations: { pending: number } };
    };
    expect([snapshot.pid, snapshot.database.mode, snapshot.database.migrations.pending]).to.deep.equal([daemon!.pid, 'embedded', 0]);
  });

  it('serves the site of config/nginx.example.conf from Debian\'s nginx on 127.0.0.1 with TLS', async () => {
    nginxDir = mkdtempSync(join(tmpdir(), 'sentinel-guide-nginx-'));
    tlsPort = await freePort();
    httpPort = await freePort();
    sh(
      `openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=${HOSTNAME} -addext subjectAltName=DNS:${HOSTNAME} -keyout ${nginxDir}/privkey.pem -out ${nginxDir}/fullchain.pem 2>/dev/null`,
      'openssl',
    );
    cert = readFileSync(join(nginxDir, 'fullchain.pem'), 'utf8');

    // What the guide's sed does (hostname, and with it the certificate paths), then this machine's addresses.
    let site = NGINX_EXAMPLE.replace(/sentinel\.example\.com/g, HOSTNAME);
    const subst = (from: RegExp, to: string): void => {
      if (!from.test(site)) throw new Error(`config/nginx.example.conf has no ${from}: the test cannot place it on 127.0.0.1`);
      site = site.replace(from, to);
    };
    subst(new RegExp(`/etc/letsencrypt/live/${escapeRe(HOSTNAME)}/`, 'g'), `${nginxDir}/`);
    subst(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${httpPort};`);
    subst(/^\s*listen \[::\]:80;\n/m, '');
    subst(/^(\s*)listen 443 ssl( http2)?;$/m, `$1listen 127.0.0.1:${tlsPort} ssl$2;`);
    subst(/^\s*listen \[::\]:443 ssl( http2)?;\n/m, '');
    subst(/server 127\.0\.0\.1:8000;/, `server 127.0.0.1:${port};`);
    writeFileSync(join(nginxDir, 'sentinel.conf'), site);
    const args = writeNginxConf(nginxDir, `include ${nginxDir}/sentinel.conf;`);
    const check = spawnSync(NGINX!, ['-t', ...args], { encoding: 'utf8' });
    expect(check.status, `nginx -t: ${check.stderr}`).to.equal(0);
    nginx = spawn(NGINX!, args, { stdio: 'ignore' });
    await waitFor('nginx answering over TLS', 15_000, async () => {
      const a = await call({ port: tlsPort, path: '/api/v1/health', ca: cert });
      if (a.status !== 200) throw new Error(`/api/v1/health through nginx answered ${a.status}`);
      return a;
    });

    const redirect = await call({ port: httpPort, path: '/api/v1/health' });
    expect([redirect.status, redirect.headers.location]).to.deep.equal([301, `https://${HOSTNAME}/api/v1/health`]);
    const docs = await call({ port: tlsPort, path: '/docs', ca: cert });
    expect(docs.status).to.equal(200);
    expect(docs.body).to.contain('swagger-ui');
    const otlp = await call({ port: tlsPort, method: 'POST', path: '/v1/metrics', ca: cert, headers: { 'content-type': 'application/json' }, body: '{}' });
    // Sentinel's OTLP route answered (no API key: 401 in google.rpc.Status), not nginx's catch-all 404.
    expect(otlp.status).to.equal(401);
    expect(JSON.parse(otlp.body)).to.have.property('code', 16);
    const other = await call({ port: tlsPort, path: '/anything-else', ca: cert });
    expect(other.status).to.equal(404);
    expect(other.headers['x-request-id'], 'answered by nginx, not by Sentinel').to.equal(undefined);
  });

  it('logs the first administrator in through nginx over TLS; the audit log has the address nginx saw, not the one the client wrote', async () => {
    const login = await call({
      port: tlsPort,
      method: 'POST',
      path: '/api/v1/auth/login',
      from: CLIENT,
      ca: cert,
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.77' },
      body: JSON.stringify({ email: 'admin@example.com', password: adminPassword }),
    });
    expect(login.status, login.body).to.equal(200);
    const answer = JSON.parse(login.body) as { access_token: string; user: { email: string; superadmin: boolean } };
    expect([answer.user.email, answer.user.superadmin]).to.deep.equal(['admin@example.com', true]);
    expect(login.headers['strict-transport-security'], 'HSTS: Sentinel saw X-Forwarded-Proto https').to.match(/max-age=/);

    const wrong = await call({
      port: tlsPort,
      method: 'POST',
      path: '/api/v1/auth/login',
      ca: cert,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'admin@example.com', password: `${adminPassword}x` }),
    });
    expect(wrong.status).to.equal(401);

    const audit = await call({ port: tlsPort, path: '/api/v1/admin/audit-log?limit=20', ca: cert, headers: { authorization: `Bearer ${answer.access_token}` } });
    expect(audit.status, audit.body).to.equal(200);
    const logins = (JSON.parse(audit.body) as { items: { action: string; ip: string | null }[] }).items.filter((e) => e.action === 'auth.login');
    expect(logins.map((e) => e.ip)).to.deep.equal([CLIENT]);
  });

  it('refuses /metrics through nginx from an address outside the allow-list, and serves it to 127.0.0.1', async () => {
    const refused = await call({ port: tlsPort, path: '/metrics', from: CLIENT, ca: cert });
    expect(refused.status).to.equal(403);
    expect(refused.body).to.not.contain('sentinel_');
    const allowed = await call({ port: tlsPort, path: '/metrics', ca: cert });
    expect(allowed.status).to.equal(200);
    expect(allowed.body).to.contain('sentinel_http_request_duration_seconds');
  });

  it('lets an ingest body of exactly http.body_limit_bytes through nginx to Sentinel, and stops one byte more at nginx', async () => {
    const limit = loadConfig({ file: `${root}/etc/sentinel/sentinel.json`, env: {} }).config.http.body_limit_bytes;
    const at = await call({ port: tlsPort, method: 'POST', path: '/api/v1/telemetry', ca: cert, headers: { 'content-type': 'application/json' }, body: Buffer.alloc(limit, 0x20) });
    // Reached Sentinel: no credential, so its 401 problem (the body is never read before that).
    expect(at.status).to.equal(401);
    expect(at.headers['content-type']).to.match(/problem\+json/);
    const over = await call({ port: tlsPort, method: 'POST', path: '/api/v1/telemetry', ca: cert, headers: { 'content-type': 'application/json' }, body: Buffer.alloc(limit + 1, 0x20) });
    expect(over.status).to.equal(413);
    expect(over.headers['x-request-id'], "nginx's 413, before Sentinel").to.equal(undefined);
  });

  it('stops the daemon with SIGTERM (what systemctl stop sends): it exits 0 and leaves nothing running as the user', async () => {
    const child = daemon!;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await exited;
    expect(code, readFileSync(daemonLog, 'utf8').slice(-2000)).to.equal(0);
    await waitFor('the embedded PostgreSQL stopping', 10_000, async () => (processesOf(uid).length === 0 ? true : null));
  });
});
