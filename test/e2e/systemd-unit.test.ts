import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { packageRoot } from '../../src/config/paths.js';

const ROOT = packageRoot();
const UNIT = readFileSync(join(ROOT, 'sentinel.service'), 'utf8');

/** The unit's settings, per section, in order (comments and blank lines left out). */
function parseUnit(text: string): { section: string; key: string; value: string }[] {
  const out: { section: string; key: string; value: string }[] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`not a unit line: ${line}`);
    out.push({ section, key: line.slice(0, eq), value: line.slice(eq + 1) });
  }
  return out;
}

const settings = parseUnit(UNIT);
/** Every value of a key in a section. */
const values = (section: string, key: string) => settings.filter((s) => s.section === section && s.key === key).map((s) => s.value);
const one = (section: string, key: string) => {
  const v = values(section, key);
  expect(v, `${section}.${key}`).to.have.length(1);
  return v[0];
};

/** systemd-analyze, or a loud failure: these checks are part of the suite, never skipped. */
function analyze(args: string[]): { code: number | null; out: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`systemd-analyze could not run (${r.error.message}): install Debian's systemd package (.ci/run does)`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/**
 * sentinel.service as shipped. `systemd-analyze verify` checks that ExecStart's program exists, so
 * it runs on a copy whose paths are rewritten to this checkout (node: the one running the tests;
 * /opt/sentinel: this checkout, built); everything else is the unit as installed.
 */
describe('sentinel.service', function () {
  this.timeout(60_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sentinel-unit-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const localCopy = (text: string, name = 'sentinel.service') => {
    const file = join(dir, name);
    writeFileSync(file, text.replaceAll('/usr/bin/node ', `${process.execPath} `).replaceAll('/opt/sentinel/', `${ROOT}/`));
    return file;
  };

  it('systemd-analyze verify is clean (on a copy pointing at this checkout)', () => {
    expect(existsSync(join(ROOT, 'dist', 'src', 'main.js')), 'run npm run build first').to.equal(true);
    const file = localCopy(UNIT);
    expect(readFileSync(file, 'utf8')).to.contain(`ExecStart=${process.execPath} ${ROOT}/dist/src/main.js serve`);
    const r = analyze(['verify', file]);
    expect(r.out.trim(), r.out).to.equal('');
    expect(r.code).to.equal(0);
  });

  it('systemd-analyze verify would catch a broken unit (the check can fail)', () => {
    const broken = localCopy(UNIT.replace('ExecStart=/usr/bin/node', 'ExecStart=/nonexistent/node').replace('Type=notify', 'Type=notifyy'), 'broken.service');
    const r = analyze(['verify', broken]);
    expect(r.out).to.contain('/nonexistent/node');
    expect(r.out).to.contain('notifyy');
  });

  it('systemd-analyze security --offline=yes: overall exposure ≤ 2.0', () => {
    const r = analyze(['security', '--offline=yes', join(ROOT, 'sentinel.service')]);
    const m = /Overall exposure level for sentinel\.service: (\d+\.\d+) /.exec(r.out);
    expect(m, r.out).to.not.equal(null);
    expect(Number(m![1]), r.out).to.be.at.most(2.0);
    // The parse reads a real score: the unhardened unit the issue started from scores far above it.
    const bare = join(dir, 'bare.service');
    writeFileSync(bare, '[Service]\nType=simple\nExecStart=/bin/true\n');
    const b = /Overall exposure level for bare\.service: (\d+\.\d+) /.exec(analyze(['security', '--offline=yes', bare]).out);
    expect(Number(b![1])).to.be.above(9);
  });

  it('runs as the sentinel system user with no capabilities at all, never MemoryDenyWriteExecute', () => {
    expect(one('Service', 'User')).to.equal('sentinel');
    expect(one('Service', 'Group')).to.equal('sentinel');
    expect(one('Service', 'CapabilityBoundingSet')).to.equal('');
    expect(one('Service', 'AmbientCapabilities')).to.equal('');
    expect(one('Service', 'NoNewPrivileges')).to.equal('yes');
    expect(values('Service', 'MemoryDenyWriteExecute')).to.deep.equal([]);
    for (const [key, value] of [
      ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['PrivateDevices', 'yes'],
      ['ProtectKernelTunables', 'yes'], ['ProtectKernelModules', 'yes'], ['ProtectKernelLogs', 'yes'], ['ProtectControlGroups', 'yes'],
      ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6'], ['SystemCallArchitectures', 'native'], ['UMask', '0027'],
    ]) expect(one('Service', key), key).to.equal(value);
    expect(values('Service', 'SystemCallFilter')).to.deep.equal(['@system-service', '~@privileged @resources']);
    // A filtered system call fails with EPERM instead of killing the daemon.
    expect(one('Service', 'SystemCallErrorNumber')).to.equal('EPERM');
  });

  it('readiness, state, configuration, environment, reload, restart limits', () => {
    expect(one('Service', 'Type')).to.equal('notify');
    expect(one('Service', 'NotifyAccess')).to.equal('all');
    expect(one('Service', 'StateDirectory')).to.equal('sentinel');
    expect(one('Service', 'StateDirectoryMode')).to.equal('0750');
    expect(one('Service', 'ConfigurationDirectory')).to.equal('sentinel');
    // No ReadWritePaths=/var/lib/sentinel: it made the first start fail before the directory existed.
    expect(values('Service', 'ReadWritePaths')).to.deep.equal([]);
    expect(one('Service', 'EnvironmentFile')).to.equal('-/etc/sentinel/sentinel.env');
    expect(values('Service', 'Environment')).to.have.members(['NODE_ENV=production', 'SENTINEL_CONFIG=/etc/sentinel/sentinel.json']);
    expect(one('Service', 'ExecReload')).to.equal('/bin/kill -HUP $MAINPID');
    expect(one('Service', 'Restart')).to.equal('on-failure');
    expect(Number(one('Unit', 'StartLimitIntervalSec'))).to.be.above(0);
    expect(Number(one('Unit', 'StartLimitBurst'))).to.be.above(0);
  });

  it('TimeoutStopSec leaves room for shutdown.grace_ms (its default) and the embedded PostgreSQL stop (30 s)', () => {
    const defaults = JSON.parse(readFileSync(join(ROOT, 'config', 'default.json'), 'utf8')) as { shutdown: { grace_ms: number } };
    const stopSec = Number(one('Service', 'TimeoutStopSec'));
    expect(stopSec).to.be.above(defaults.shutdown.grace_ms / 1000 + 30);
    expect(one('Service', 'KillMode')).to.equal('mixed');
  });

  it('starts the compiled binary at the path docs/operations.md installs, migrating first with the same one', () => {
    const guide = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
    const m = /^(\/\S+\/node) (\/\S+)\/dist\/src\/main\.js serve$/.exec(one('Service', 'ExecStart'));
    expect(m, one('Service', 'ExecStart')).to.not.equal(null);
    const [, node, root] = m!;
    expect(one('Service', 'ExecStartPre')).to.equal(`${node} ${root}/dist/src/main.js migrate latest`);
    // The guide clones into that directory, installs the unit from it, and its CLI runs the same program.
    expect(guide).to.match(new RegExp(`^git clone \\S+ ${root}(\\s|$)`, 'm'));
    expect(guide).to.contain(`${root}/sentinel.service /etc/systemd/system/sentinel.service`);
    expect(guide).to.contain(`${node} ${root}/dist/src/main.js`);
    // The layout table names the same Node.
    expect(guide).to.match(new RegExp(`^\\| Node\\.js[^\\n]*\\| \`${node}\``, 'm'));
    // And this checkout's build produces the script the unit runs.
    expect(existsSync(join(ROOT, 'dist', 'src', 'main.js'))).to.equal(true);
  });
});
