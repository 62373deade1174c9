import { expect } from 'chai';
import bcrypt from 'bcrypt';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createUser } from '../support/factories.js';
import type { Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

describe('CLI: org and user commands', () => {
  let url: string;
  let env: Record<string, string>;
  before(async () => {
    url = await cloneDatabase();
    env = testEnv(url);
  });
  after(() => dropDatabase(url));

  describe('org', () => {
    it('create, list, show, delete', async () => {
      const created = await cli(['org', 'create', 'acme', '--name', 'Acme Corp'], env);
      expect(created.code, created.stderr).to.equal(0);
      expect(created.stdout).to.match(/^created organization acme \([0-9a-f-]{36}\)\n$/);

      const list = await cli(['org', 'list', '--json'], env);
      expect(JSON.parse(list.stdout).map((o: { slug: string }) => o.slug)).to.include('acme');
      const table = await cli(['org', 'list'], env);
      expect(table.stdout).to.match(/^SLUG\s+NAME\s+ID\s+CREATED\n/).and.match(/\nacme\s+Acme Corp\s/);

      const show = await cli(['org', 'show', 'acme', '--json'], env);
      expect(JSON.parse(show.stdout)).to.include({ slug: 'acme', name: 'Acme Corp' });

      expect((await cli(['org', 'delete', 'acme'], env)).code).to.equal(2);
      const del = await cli(['org', 'delete', 'acme', '--yes'], env);
      expect(del.code).to.equal(0);
      expect((await cli(['org', 'show', 'acme'], env)).code).to.equal(3);
    });

    it('duplicate slug → exit 4; unknown org → exit 3; invalid slug or missing argument → exit 2', async () => {
      expect((await cli(['org', 'create', 'dup'], env)).code).to.equal(0);
      const dup = await cli(['org', 'create', 'dup'], env);
      expect(dup.code).to.equal(4);
      expect(dup.stderr).to.equal("error: organization 'dup' already exists\n");

      const missing = await cli(['org', 'show', 'nope'], env);
      expect(missing.code).to.equal(3);
      expect(missing.stderr).to.equal("error: organization 'nope' not found\n");
      expect((await cli(['org', 'delete', 'nope', '--yes'], env)).code).to.equal(3);

      const invalid = await cli(['org', 'create', 'Not A Slug'], env);
      expect(invalid.code).to.equal(2);
      expect(invalid.stderr).to.match(/^error: invalid input: body\/slug must match pattern /);
      expect((await cli(['org', 'create'], env)).code).to.equal(2);
      expect((await cli(['org', 'frobnicate'], env)).code).to.equal(2);
      expect((await cli(['--log-level', 'loud', 'org', 'list'], env)).code).to.equal(2);
    });
  });

  describe('user', () => {
    before(async () => {
      expect((await cli(['org', 'create', 'team'], env)).code).to.equal(0);
    });

    it('create with --password-stdin stores a bcrypt hash at the configured cost, never the password', async () => {
      const r = await cli(['user', 'create', 'Alice@Example.test', '--password-stdin', '--org', 'team', '--role', 'owner'], env, 'correct horse battery\n');
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^created user Alice@Example\.test/);
      expect(r.stdout).to.not.contain('password');
      const [row] = await query<{ password_hash: string }>(url, "select password_hash from users where email = 'Alice@Example.test'");
      expect(row.password_hash).to.match(/^\$2b\$04\$/);
      expect(await bcrypt.compare('correct horse battery', row.password_hash)).to.equal(true);
      expect(r.logs.text).to.not.contain('correct horse battery');
    });

    it('create without --password-stdin prints a generated password once', async () => {
      const r = await cli(['user', 'create', 'bob@example.test'], env);
      expect(r.code).to.equal(0);
      const pw = /password \(shown once\): (\S+)/.exec(r.stdout)?.[1];
      expect(pw).to.be.a('string').with.length.greaterThan(16);
      const [row] = await query<{ password_hash: string }>(url, "select password_hash from users where email = 'bob@example.test'");
      expect(await bcrypt.compare(pw!, row.password_hash)).to.equal(true);
    });

    it('rejects passwords over 72 bytes instead of truncating them (exit 2)', async () => {
      const long = 'é'.repeat(37); // 74 bytes, 37 characters
      const r = await cli(['user', 'create', 'long@example.test', '--password-stdin'], env, long);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.contain('password is 74 bytes long; the limit is 72 bytes');
      expect(await query(url, "select 1 from users where email = 'long@example.test'")).to.have.length(0);
      expect((await cli(['user', 'create', 'short@example.test', '--password-stdin'], env, 'short\n')).code).to.equal(2);
      expect((await cli(['user', 'create', 'empty@example.test', '--password-stdin'], env, '')).code).to.equal(2);
    });

    it('duplicate email (any case) → 4; bad email, bad role, --org without --role → 2; unknown org → 3', async () => {
      const dup = await cli(['user', 'create', 'alice@example.TEST'], env);
      expect(dup.code).to.equal(4);
      expect(dup.stderr).to.contain("user 'alice@example.TEST' already exists");
      expect((await cli(['user', 'create', 'not-an-email'], env)).code).to.equal(2);
      expect((await cli(['user', 'create', 'c@example.test', '--org', 'team', '--role', 'god'], env)).code).to.equal(2);
      expect((await cli(['user', 'create', 'c@example.test', '--org', 'team'], env)).code).to.equal(2);
      expect((await cli(['user', 'create', 'c@example.test', '--org', 'ghost', '--role', 'viewer'], env)).code).to.equal(3);
    });

    it('list (table, --json, --org)', async () => {
      const all = JSON.parse((await cli(['user', 'list', '--json'], env)).stdout) as { email: string; memberships: unknown[] }[];
      expect(all.map((u) => u.email)).to.include.members(['Alice@Example.test', 'bob@example.test']);
      const team = JSON.parse((await cli(['user', 'list', '--org', 'team', '--json'], env)).stdout) as { email: string; memberships: unknown[] }[];
      expect(team.map((u) => u.email)).to.deep.equal(['Alice@Example.test']);
      expect(team[0].memberships).to.deep.equal([{ org: 'team', role: 'owner' }]);
      const table = await cli(['user', 'list'], env);
      expect(table.stdout).to.match(/^EMAIL\s+NAME\s+SUPERADMIN\s+STATUS\s+MEMBERSHIPS\n/).and.match(/Alice@Example\.test.*active\s+team:owner/);
      expect((await cli(['user', 'list', '--org', 'ghost'], env)).code).to.equal(3);
    });

    it('passwd changes the hash and bumps the token version', async () => {
      const [before] = await query<{ password_hash: string; token_version: number }>(url, "select password_hash, token_version from users where email = 'bob@example.test'");
      const r = await cli(['user', 'passwd', 'bob@example.test', '--password-stdin'], env, 'a brand new password\n');
      expect(r.code, r.stderr).to.equal(0);
      const [after] = await query<{ password_hash: string; token_version: number }>(url, "select password_hash, token_version from users where email = 'bob@example.test'");
      expect(after.password_hash).to.not.equal(before.password_hash);
      expect(await bcrypt.compare('a brand new password', after.password_hash)).to.equal(true);
      expect(after.token_version).to.equal(before.token_version + 1);
      expect((await cli(['user', 'passwd', 'ghost@example.test', '--password-stdin'], env, 'whatever123\n')).code).to.equal(3);
      expect((await cli(['user', 'passwd', 'bob@example.test', '--password-stdin'], env, `${'x'.repeat(73)}\n`)).code).to.equal(2);
    });

    it('disable and enable', async () => {
      expect((await cli(['user', 'disable', 'bob@example.test'], env)).code).to.equal(0);
      expect((await query<{ disabled_at: Date | null }>(url, "select disabled_at from users where email = 'bob@example.test'"))[0].disabled_at).to.be.instanceOf(Date);
      const listed = JSON.parse((await cli(['user', 'list', '--json'], env)).stdout) as { email: string; disabled: boolean }[];
      expect(listed.find((u) => u.email === 'bob@example.test')?.disabled).to.equal(true);
      expect((await cli(['user', 'enable', 'bob@example.test'], env)).code).to.equal(0);
      expect((await query<{ disabled_at: Date | null }>(url, "select disabled_at from users where email = 'bob@example.test'"))[0].disabled_at).to.equal(null);
      expect((await cli(['user', 'disable', 'ghost@example.test'], env)).code).to.equal(3);
    });

    it('grant sets a role; the last owner cannot be demoted (exit 4)', async () => {
      const g = await cli(['user', 'grant', 'bob@example.test', '--org', 'team', '--role', 'editor'], env);
      expect(g.code, g.stderr).to.equal(0);
      expect(g.stdout).to.equal('bob@example.test is now editor of team\n');
      const last = await cli(['user', 'grant', 'alice@example.test', '--org', 'team', '--role', 'viewer'], env);
      expect(last.code).to.equal(4);
      expect(last.stderr).to.contain('last owner');
      expect((await cli(['user', 'grant', 'bob@example.test', '--org', 'team', '--role', 'owner'], env)).code).to.equal(0);
      expect((await cli(['user', 'grant', 'alice@example.test', '--org', 'team', '--role', 'viewer'], env)).code).to.equal(0);
      const roles = await query<{ email: string; role: string }>(url, "select u.email, m.role from memberships m join users u on u.id = m.user_id join organizations o on o.id = m.org_id where o.slug = 'team' order by 1");
      expect(roles).to.deep.equal([{ email: 'Alice@Example.test', role: 'viewer' }, { email: 'bob@example.test', role: 'owner' }]);
      expect((await cli(['user', 'grant', 'bob@example.test', '--org', 'team'], env)).code).to.equal(2);
      expect((await cli(['user', 'grant', 'bob@example.test', '--org', 'team', '--role', 'boss'], env)).code).to.equal(2);
      expect((await cli(['user', 'grant', 'bob@example.test', '--org', 'ghost', '--role', 'viewer'], env)).code).to.equal(3);
    });

    it('every change is in the audit log, without secrets', async () => {
      const rows = await query<{ action: string; details: unknown }>(url, 'select action, details from audit_log order by id');
      const actions = rows.map((r) => r.action);
      expect(actions).to.include.members(['org.create', 'org.delete', 'user.create', 'user.password_change', 'user.disable', 'user.enable', 'member.role_change']);
      const dump = JSON.stringify(rows);
      expect(dump).to.not.contain('correct horse battery').and.not.contain('a brand new password');
    });
  });

  describe('seed and config', () => {
    it('seed creates org demo and an admin whose password is printed once', async () => {
      const r = await cli(['seed'], env);
      expect(r.code, r.stderr).to.equal(0);
      const pw = /admin: {2}admin@demo\.local {2}password \(shown once\): (\S+)/.exec(r.stdout)?.[1];
      expect(pw).to.be.a('string');
      const [row] = await query<{ password_hash: string }>(url, "select password_hash from users where email = 'admin@demo.local'");
      expect(await bcrypt.compare(pw!, row.password_hash)).to.equal(true);
      const owners = await query(url, "select 1 from memberships m join organizations o on o.id = m.org_id where o.slug = 'demo' and m.role = 'owner'");
      expect(owners).to.have.length(1);
      expect((await cli(['seed'], env)).code).to.equal(4);
    });

    it('config check: valid → 0, invalid → 2 naming the key; config print masks secrets', async () => {
      const ok = await cli(['config', 'check'], env);
      expect(ok.code).to.equal(0);
      const bad = await cli(['config', 'check'], { ...env, SENTINEL_HTTP_PORT: '99999' });
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.contain('http.port: 99999 (from env SENTINEL_HTTP_PORT): must be <= 65535');
      expect((await cli(['config', 'check', '/nonexistent/sentinel.json'], env)).code).to.equal(2);
      const printed = await cli(['config', 'print'], { ...env, SENTINEL_AUTH_JWT_SECRET: 'do-not-show-me-do-not-show-me-do-not-show-me' });
      expect(printed.code).to.equal(0);
      expect(JSON.parse(printed.stdout).auth.jwt_secret).to.equal('***');
      expect(printed.stdout).to.not.contain('do-not-show-me');
      const dbUrl = new URL(url);
      if (dbUrl.password) expect(printed.stdout).to.not.contain(dbUrl.password);
    });

    it('a short jwt_secret, a malformed encryption_key or a database URL that is no URL: exit 2 naming the key and its source, value masked', async () => {
      const { SENTINEL_DATABASE_URL: _own, ...withoutUrl } = env;
      const cases: { env: Record<string, string>; line: string }[] = [
        { env: { ...env, SENTINEL_AUTH_JWT_SECRET: 'sixteen-byte-key' }, line: 'auth.jwt_secret: "***" (from env SENTINEL_AUTH_JWT_SECRET): must be at least 32 bytes (it has 16)' },
        { env: { ...env, SENTINEL_AUTH_ENCRYPTION_KEY: 'sixteen-byte-key' }, line: 'auth.encryption_key: "***" (from env SENTINEL_AUTH_ENCRYPTION_KEY): must be 32 random bytes' },
        { env: { ...withoutUrl, DATABASE_URL: 'notaurl' }, line: 'database.url: "***" (from env DATABASE_URL): must be a postgres:// URL' },
        { env: { ...env, SENTINEL_DATABASE_URL: 'notaurl' }, line: 'database.url: "***" (from env SENTINEL_DATABASE_URL): must be a postgres:// URL' },
      ];
      for (const c of cases) {
        // Both offline (config check) and at start: serve must refuse before it opens anything.
        for (const argv of [['config', 'check'], ['serve']]) {
          const r = await cli(argv, c.env);
          expect(r.code, `${argv.join(' ')}: ${r.stderr}`).to.equal(2);
          expect(r.stderr).to.contain(c.line);
          expect(r.stderr).to.not.contain('sixteen-byte-key').and.not.contain('notaurl');
        }
      }
    });
  });

  describe('the CLI and HTTP name the same field for the same bad input', () => {
    let t: TestApp;
    let token: string;
    before(async () => {
      t = await startTestApp(url);
      const root = await createUser(t.app.services, { superadmin: true });
      token = (await t.api.login(root.email, root.password)).access_token;
      expect((await cli(['org', 'create', 'same-paths'], env)).code).to.equal(0);
      expect((await cli(['user', 'create', 'same-paths@example.test'], env)).code).to.equal(0);
    });
    after(() => t?.stop());

    /** The paths a CLI validation error names (its message lists `path message` pairs). */
    const cliPaths = (stderr: string) => [...stderr.matchAll(/(?:^error: invalid input: |; )(body\/\S+) /g)].map((m) => m[1]);

    const userId = async () => (await query<{ id: string }>(url, "select id from users where email = 'same-paths@example.test'"))[0].id;
    const past = '2000-01-01T00:00:00.000Z';
    const cases: { label: string; argv: string[]; http: () => Promise<[string, string, unknown]>; path: string }[] = [
      { label: 'org slug', argv: ['org', 'create', 'Bad_Slug'], http: async () => ['POST', '/organizations', { slug: 'Bad_Slug' }], path: 'body/slug' },
      { label: 'org name', argv: ['org', 'create', 'blank-name', '--name', '   '], http: async () => ['POST', '/organizations', { slug: 'blank-name', name: '   ' }], path: 'body/name' },
      { label: 'org limit', argv: ['org', 'limits', 'same-paths', '--set', 'max_series=0'], http: async () => ['PATCH', '/organizations/same-paths', { limits: { max_series: 0 } }], path: 'body/limits/max_series' },
      { label: 'API key scope', argv: ['apikey', 'create', '--org', 'same-paths', '--name', 'k', '--scopes', 'ingest,root'], http: async () => ['POST', '/organizations/same-paths/api-keys', { name: 'k', scopes: ['ingest', 'root'] }], path: 'body/scopes/1' },
      { label: 'API key expiry', argv: ['apikey', 'create', '--org', 'same-paths', '--name', 'k', '--expires', past], http: async () => ['POST', '/organizations/same-paths/api-keys', { name: 'k', expires_at: past }], path: 'body/expires_at' },
      { label: 'API key name', argv: ['apikey', 'create', '--org', 'same-paths', '--name', ' '], http: async () => ['POST', '/organizations/same-paths/api-keys', { name: ' ' }], path: 'body/name' },
      { label: 'user email', argv: ['user', 'create', 'not-an-email'], http: async () => ['POST', '/users', { email: 'not-an-email', password: 'long enough password' }], path: 'body/email' },
      { label: 'member role', argv: ['user', 'grant', 'same-paths@example.test', '--org', 'same-paths', '--role', 'boss'], http: async () => ['PATCH', `/organizations/same-paths/members/${await userId()}`, { role: 'boss' }], path: 'body/role' },
    ];
    for (const c of cases) {
      it(`${c.label}: ${c.path}`, async () => {
        const r = await cli(c.argv, env);
        expect(r.code, r.stderr).to.equal(2);
        const [method, path, body] = await c.http();
        const res = await t.api.call<Problem>(method, path, token, body);
        expect(res.status, res.text).to.equal(400);
        const httpPaths = (res.body.errors ?? []).map((e) => e.path);
        expect(httpPaths).to.include(c.path);
        expect(cliPaths(r.stderr), r.stderr).to.deep.equal(httpPaths);
      });
    }
  });
});
