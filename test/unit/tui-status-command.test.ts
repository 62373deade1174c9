import { expect } from 'chai';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { isLocalAdminToken } from '../../src/core/local-admin-token.js';
import { daemonUrl, mayMintFor } from '../../src/cli/status.js';
import { cli } from '../support/cli.js';
import { testConfig } from '../support/config.js';
import { freePort } from '../support/daemon.js';
import { healthyStatus } from './tui-fixtures.js';
import { scratchDir } from '../support/scratch.js';

/**
 * `sentinel status --json` in process against a local server playing the daemon: where the URL
 * and the token come from, what it refuses, and that it needs no database.
 */

/** Never connected to: the command must not open the database. */
const NO_DATABASE = 'postgres://sentinel@127.0.0.1:1/no-database';
const SECRET = 'k'.repeat(48);

describe('sentinel status (command)', () => {
  let server: Server;
  let port: number;
  const seen: IncomingMessage[] = [];
  let answer = { status: 200, body: JSON.stringify(healthyStatus()) };

  before(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise((r) => server.close(r)));
  beforeEach(() => {
    seen.length = 0;
    answer = { status: 200, body: JSON.stringify(healthyStatus()) };
  });

  /** A data_dir holding the secret the daemon generated. */
  function dataDirWithSecret(secret = SECRET): string {
    const dir = scratchDir('sentinel-status-');
    mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
    writeFileSync(join(dir, 'secrets', 'jwt_secret'), `${secret}\n`, { mode: 0o600 });
    return dir;
  }
  const env = (extra: Record<string, string>) => ({ SENTINEL_DATABASE_URL: NO_DATABASE, ...extra });

  it('finds the daemon from http.host/http.port (0.0.0.0 → 127.0.0.1) and mints a local admin token from data_dir/secrets', async () => {
    const dataDir = dataDirWithSecret();
    const r = await cli(['status', '--json'], env({ SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_HOST: '0.0.0.0', SENTINEL_HTTP_PORT: String(port) }));
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal(healthyStatus());
    expect(seen).to.have.length(1);
    expect(seen[0].url).to.equal('/api/v1/admin/status');
    const token = /^Bearer (.+)$/.exec(seen[0].headers.authorization ?? '')?.[1] ?? '';
    expect(isLocalAdminToken(SECRET, token)).to.equal(true);
    expect(isLocalAdminToken('x'.repeat(48), token)).to.equal(false);
  });

  it('a configured auth.jwt_secret wins over the file; --url and --token are used as given', async () => {
    const configured = 'c'.repeat(40);
    let r = await cli(['status', '--json', '--url', `http://127.0.0.1:${port}/`], env({ SENTINEL_DATA_DIR: dataDirWithSecret(), SENTINEL_AUTH_JWT_SECRET: configured, SENTINEL_HTTP_PORT: String(port) }));
    expect(r.code).to.equal(0);
    expect(isLocalAdminToken(configured, seen[0].headers.authorization!.slice(7))).to.equal(true);
    // Both given: no configuration needed at all (an invalid one is not even read).
    r = await cli(['status', '--json', '--url', `http://127.0.0.1:${port}`, '--token', 'abc.def.ghi'], { SENTINEL_HTTP_PORT: 'not-a-port' });
    expect(r.code, r.stderr).to.equal(0);
    expect(seen[1].headers.authorization).to.equal('Bearer abc.def.ghi');
  });

  it('unreachable: exit 1, the URL and the reason on stderr, nothing on stdout', async () => {
    const free = await freePort();
    const r = await cli(['status', '--json'], env({ SENTINEL_DATA_DIR: dataDirWithSecret(), SENTINEL_HTTP_HOST: '127.0.0.1', SENTINEL_HTTP_PORT: String(free) }));
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.equal(`error: cannot reach Sentinel at http://127.0.0.1:${free}: ECONNREFUSED\n`);
  });

  it('refused: exit 1 with the answer and where the token came from', async () => {
    answer = { status: 403, body: JSON.stringify({ title: 'Forbidden', status: 403, detail: 'superadmin only' }) };
    const dataDir = dataDirWithSecret();
    const r = await cli(['status', '--json', '--url', `http://127.0.0.1:${port}`], env({ SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_PORT: String(port) }));
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain('refused the status request: 403 Forbidden: superadmin only');
    expect(r.stderr).to.contain(join(dataDir, 'secrets', 'jwt_secret'));
  });

  it('no secret in data_dir: exit 1 naming the file, and nothing is created there', async () => {
    const dataDir = join(scratchDir('sentinel-status-'), 'never-started');
    const r = await cli(['status', '--json', '--url', `http://127.0.0.1:${port}`], env({ SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_PORT: String(port) }));
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain(`no local secret at ${join(dataDir, 'secrets', 'jwt_secret')}`);
    expect(r.stderr).to.contain('--token');
    expect(existsSync(dataDir)).to.equal(false);
    expect(seen).to.have.length(0);
  });

  it('a local admin token is minted only for this host: --url elsewhere without --token is a usage error (exit 2), nothing sent', async () => {
    const dataDir = dataDirWithSecret();
    // 192.0.2.1 (TEST-NET-1): refused before any connection is tried.
    const r = await cli(['status', '--json', '--url', 'http://192.0.2.1:8080'], env({ SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_HOST: '127.0.0.1', SENTINEL_HTTP_PORT: '8080' }));
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.equal(
      "error: --url: 192.0.2.1:8080 is not a loopback address or http.host (127.0.0.1) on http.port (8080), and a local admin token is minted only for this host's daemon: pass --token with a superadmin's access token\n",
    );
    // Another port of this host (another local user's process may listen there): refused alike.
    const otherPort = await cli(['status', '--json', '--url', `http://127.0.0.1:${port}`], env({ SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_PORT: String(port + 1) }));
    expect(otherPort.code, otherPort.stderr).to.equal(2);
    expect(otherPort.stderr).to.contain(`on http.port (${port + 1})`);
    expect(seen).to.have.length(0);
    // With --token it goes there (and, nobody answering in time, is unreachable: exit 1, not 2).
    const withToken = await cli(['status', '--json', '--url', 'http://192.0.2.1:8080', '--token', 'abc.def.ghi'], env({ SENTINEL_DATA_DIR: dataDir }));
    expect(withToken.code, withToken.stderr).to.equal(1);
    expect(withToken.stderr).to.contain('cannot reach Sentinel at http://192.0.2.1:8080');
    // localhost is loopback: minted and sent.
    const local = await cli(['status', '--json', '--url', `http://localhost:${port}`], env({ SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_PORT: String(port) }));
    expect(local.code, local.stderr).to.equal(0);
    expect(seen).to.have.length(1);
    expect(isLocalAdminToken(SECRET, seen[0].headers.authorization!.slice(7))).to.equal(true);
  });

  it('where a local admin token may be sent: loopback and the configured http.host, on http.port only', () => {
    const yes: [string, string, number][] = [
      ['http://127.0.0.1:8080', '0.0.0.0', 8080],
      ['http://127.255.0.9:8080', '0.0.0.0', 8080],
      ['http://LOCALHOST:8080', '0.0.0.0', 8080],
      ['http://[::1]:8080', '0.0.0.0', 8080],
      ['http://[::ffff:127.0.0.1]:8080', '0.0.0.0', 8080],
      ['https://mon.internal/sentinel', 'mon.internal', 443],
      ['http://localhost/', '127.0.0.1', 80],
      ['http://10.1.2.3:8080', '10.1.2.3', 8080],
      ['http://[fd00::5]:8080', '[fd00::5]', 8080],
      ['http://[fd00::5]:8080', 'fd00::5', 8080],
    ];
    const no: [string, string, number][] = [
      ['http://10.1.2.3:8080', '10.1.2.4', 8080],
      ['http://128.0.0.1:8080', '0.0.0.0', 8080],
      ['http://localhost.evil.example:8080', '0.0.0.0', 8080],
      ['http://127.0.0.1.nip.io:8080', '0.0.0.0', 8080],
      ['http://mon.example.com:8080', 'mon.internal', 8080],
      ['http://[::2]:8080', '::', 8080],
      ['http://0.0.0.0:8080', '127.0.0.1', 8080],
      ['http://127.0.0.1:9999', '127.0.0.1', 8080],
      ['http://localhost:8081', '0.0.0.0', 8080],
      ['https://mon.internal/sentinel', 'mon.internal', 8080],
    ];
    expect(yes.filter(([u, h, p]) => !mayMintFor(u, h, p))).to.deep.equal([]);
    expect(no.filter(([u, h, p]) => mayMintFor(u, h, p))).to.deep.equal([]);
  });

  it('the URL from http.host: wildcards on loopback, IPv6 in brackets, names as they are', () => {
    const url = (host: string) => daemonUrl(testConfig(undefined, {}, { host, port: 8080 }));
    expect(url('0.0.0.0')).to.equal('http://127.0.0.1:8080');
    expect(url('::')).to.equal('http://127.0.0.1:8080');
    expect(url('::1')).to.equal('http://[::1]:8080');
    expect(url('10.1.2.3')).to.equal('http://10.1.2.3:8080');
    expect(url('mon.internal')).to.equal('http://mon.internal:8080');
  });

  it('http.port 0 cannot be found: usage error (exit 2) asking for --url', async () => {
    const r = await cli(['status', '--json'], env({ SENTINEL_DATA_DIR: dataDirWithSecret(), SENTINEL_HTTP_PORT: '0' }));
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('pass --url');
  });

  it('bad --url and --token values: exit 2, nothing sent', async () => {
    const dataDir = dataDirWithSecret();
    for (const url of ['not a url', 'ftp://127.0.0.1/', 'http://user:pw@127.0.0.1:1', 'http://127.0.0.1:1/?q=1', 'http://127.0.0.1\0:1', '', 'x'.repeat(100_000)]) {
      const r = await cli(['status', '--json', '--url', url], env({ SENTINEL_DATA_DIR: dataDir }));
      expect(r.code, url.slice(0, 40)).to.equal(2);
      expect(r.stderr).to.contain('--url');
      expect(r.stderr.length).to.be.lessThan(500);
    }
    for (const token of ['', 'has space', 'nul\0byte', 'line\nbreak', 'é', 't'.repeat(8193)]) {
      const r = await cli(['status', '--json', '--url', `http://127.0.0.1:${port}`, '--token', token], {});
      expect(r.code, token.slice(0, 40)).to.equal(2);
      expect(r.stderr).to.contain('--token');
    }
    expect(seen).to.have.length(0);
  });
});

describe('what loads the dashboard', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const sources = (dir: string): string[] =>
    readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [join(dir, e.name)] : []));

  it('ink and React are imported by src/tui only, and the CLI reaches the screen by a dynamic import (every other command starts without them)', () => {
    const staticImport = /^import [^;]*from '(ink|react|react\/[^']*|[^']*\/tui\/run\.js)';/m;
    const offenders = sources('src')
      .filter((f) => !f.startsWith('src/tui/') || f === 'src/tui/status-client.ts' || f === 'src/tui/format.ts' || f === 'src/tui/panels.ts')
      .filter((f) => staticImport.test(readFileSync(join(root, f), 'utf8')));
    expect(offenders).to.deep.equal([]);
    expect(readFileSync(join(root, 'src/cli/status.ts'), 'utf8')).to.contain("await import('../tui/run.js')");
  });
});

describe('import zones of the dashboard', function () {
  this.timeout(60_000);
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const eslint = new ESLint({ cwd: root });
  const restricted = async (path: string, source: string) =>
    (await eslint.lintText(source, { filePath: `${root}${path}` }))[0].messages.filter((m) => m.ruleId === 'import-x/no-restricted-paths');

  it('src/tui imports core only; the CLI may import the dashboard', async () => {
    expect(await restricted('src/tui/lint-fixture.tsx', "import { loadConfig } from '../config/loader.js';\nexport const x = loadConfig;\n")).to.have.length(1);
    expect(await restricted('src/tui/lint-fixture.ts', "import { buildApp } from '../app/build-app.js';\nexport const x = buildApp;\n")).to.have.length(1);
    expect(await restricted('src/tui/lint-fixture.ts', "import { SEVERITIES } from '../core/status.js';\nexport const x = SEVERITIES;\n")).to.deep.equal([]);
    expect(await restricted('src/cli/lint-fixture.ts', "import { StatusApp } from '../tui/dashboard.js';\nexport const x = StatusApp;\n")).to.deep.equal([]);
    expect(await restricted('src/features/orgs/lint-fixture.ts', "import { StatusApp } from '../../tui/dashboard.js';\nexport const x = StatusApp;\n")).to.have.length(1);
  });
});
