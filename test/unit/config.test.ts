import { expect } from 'chai';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, configKeys, defaultDataDir, envNameFor, loadConfig, maskSecrets } from '../../src/config/loader.js';
import { packageRoot } from '../../src/config/paths.js';
import { readOrCreateSecret, withSecrets } from '../../src/config/secrets.js';
import { DomainError } from '../../src/core/errors.js';
import { scratchDir } from '../support/scratch.js';

const dir = scratchDir('sentinel-config-');
function file(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config loader', () => {
  it('loads the defaults when nothing is configured', () => {
    const { config, file: f } = loadConfig({ env: { HOME: '/home/x' }, uid: 1000 });
    expect(f).to.equal(null);
    expect(config.http).to.deep.equal({ host: '127.0.0.1', port: 8000, cors_origins: [], trust_proxy: false, proxy_hops: 1, body_limit_bytes: 10485760, api_body_limit_bytes: 1048576 });
    expect(config.auth.bcrypt_rounds).to.equal(12);
    expect(config.data_dir).to.equal('/home/x/.local/share/sentinel');
  });

  it('default.json holds exactly the keys of the schema', () => {
    const defaults = JSON.parse(readFileSync(join(packageRoot(), 'config', 'default.json'), 'utf8'));
    const leaves = (o: Record<string, unknown>, p = ''): string[] =>
      // An empty object is a leaf: a key whose names are free (jobs.<name>), empty by default.
      Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length ? leaves(v as Record<string, unknown>, `${p}${k}.`) : [`${p}${k}`]));
    expect(leaves(defaults).sort()).to.deep.equal(configKeys().map((k) => k.path).sort());
  });

  it('maps keys to SENTINEL_* names, and no two keys (or their _FILE forms) share a name', () => {
    expect(envNameFor('http.port')).to.equal('SENTINEL_HTTP_PORT');
    expect(envNameFor('data_dir')).to.equal('SENTINEL_DATA_DIR');
    const names = configKeys().flatMap((k) => [k.env, `${k.env}_FILE`]);
    expect(new Set(names).size).to.equal(names.length);
    expect(names).to.not.include('SENTINEL_CONFIG');
  });

  it('layers defaults → file → env → *_FILE, recording where each value came from', () => {
    const cfg = file('layers.json', { http: { port: 9001, host: '0.0.0.0' }, log: { level: 'debug' } });
    const secret = file('jwt.txt', 'from-a-file-from-a-file-from-a-file\n');
    const { config, sources } = loadConfig({
      env: { SENTINEL_CONFIG: cfg, SENTINEL_HTTP_PORT: '9002', SENTINEL_HTTP_TRUST_PROXY: 'true', SENTINEL_HTTP_CORS_ORIGINS: 'https://a.example, https://b.example', SENTINEL_AUTH_JWT_SECRET_FILE: secret, SENTINEL_AUTH_JWT_SECRET: 'from-env-from-env-from-env-from-env' },
    });
    expect(config.http.host).to.equal('0.0.0.0');
    expect(config.http.port).to.equal(9002);
    expect(config.http.trust_proxy).to.equal(true);
    expect(config.http.cors_origins).to.deep.equal(['https://a.example', 'https://b.example']);
    expect(config.log.level).to.equal('debug');
    expect(config.auth.jwt_secret).to.equal('from-a-file-from-a-file-from-a-file');
    expect(sources['http.host']).to.equal(`file ${cfg}`);
    expect(sources['http.port']).to.equal('env SENTINEL_HTTP_PORT');
    expect(sources['auth.jwt_secret']).to.equal(`file SENTINEL_AUTH_JWT_SECRET_FILE (${secret})`);
  });

  it('accepts DATABASE_URL as an alias, SENTINEL_DATABASE_URL winning', () => {
    expect(loadConfig({ env: { DATABASE_URL: 'postgres://a/b' } }).config.database.url).to.equal('postgres://a/b');
    expect(loadConfig({ env: { DATABASE_URL: 'postgres://a/b', SENTINEL_DATABASE_URL: 'postgres://c/d' } }).config.database.url).to.equal('postgres://c/d');
  });

  it('uses /var/lib/sentinel for root and XDG_DATA_HOME otherwise', () => {
    expect(defaultDataDir({}, 0)).to.equal('/var/lib/sentinel');
    expect(defaultDataDir({ XDG_DATA_HOME: '/xdg', HOME: '/h' }, 1000)).to.equal('/xdg/sentinel');
    expect(defaultDataDir({ HOME: '/h' }, 1000)).to.equal('/h/.local/share/sentinel');
  });

  describe('rejects bad configuration with the key, the value and its source', () => {
    const bad = file('bad-port.json', { http: { port: 70000 } });
    const unknown = file('unknown.json', { http: { prot: 80 } });
    const topUnknown = file('top-unknown.json', { colour: 'blue' });
    const wrongType = file('wrong-type.json', { http: { cors_origins: 'https://x' } });
    const notJson = file('not-json.json', '{ "http": ');
    const notObject = file('array.json', '[1,2]');
    const cases: { name: string; opts: Parameters<typeof loadConfig>[0]; messages: string[] }[] = [
      { name: 'out of range (file)', opts: { file: bad }, messages: [`http.port: 70000 (from file ${bad}): must be <= 65535`] },
      { name: 'out of range (env)', opts: { env: { SENTINEL_HTTP_PORT: '-1' } }, messages: ['http.port: -1 (from env SENTINEL_HTTP_PORT): must be >= 0'] },
      { name: 'not a number (env)', opts: { env: { SENTINEL_HTTP_PORT: 'eighty' } }, messages: ['http.port: "eighty" (from env SENTINEL_HTTP_PORT): must be integer'] },
      { name: 'not a boolean (env)', opts: { env: { SENTINEL_HTTP_TRUST_PROXY: 'maybe' } }, messages: ['http.trust_proxy: "maybe" (from env SENTINEL_HTTP_TRUST_PROXY): must be boolean'] },
      { name: 'enum', opts: { env: { SENTINEL_LOG_LEVEL: 'loud' } }, messages: ['log.level: "loud" (from env SENTINEL_LOG_LEVEL): must be equal to one of the allowed values: fatal, error, warn, info, debug, trace, silent'] },
      { name: 'unknown nested key', opts: { file: unknown }, messages: [`http.prot: unknown key (from file ${unknown})`] },
      { name: 'unknown top-level key', opts: { file: topUnknown }, messages: [`colour: unknown key (from file ${topUnknown})`] },
      { name: 'wrong type', opts: { file: wrongType }, messages: [`http.cors_origins: "https://x" (from file ${wrongType}): must be array`] },
      { name: 'unknown SENTINEL_ variable', opts: { env: { SENTINEL_HTTP_PROT: '1' } }, messages: ['SENTINEL_HTTP_PROT: unknown environment variable (no such config key)'] },
      { name: 'bcrypt cost too low', opts: { env: { SENTINEL_AUTH_BCRYPT_ROUNDS: '3' } }, messages: ['auth.bcrypt_rounds: 3 (from env SENTINEL_AUTH_BCRYPT_ROUNDS): must be >= 4'] },
      { name: 'bad duration', opts: { env: { SENTINEL_AUTH_ACCESS_TTL: 'soon' } }, messages: ['auth.access_ttl: "soon" (from env SENTINEL_AUTH_ACCESS_TTL): must match pattern "^\\d+(ms|s|m|h|d)?$"'] },
      { name: 'missing file', opts: { file: join(dir, 'nope.json') }, messages: [`(file): cannot read config file ${join(dir, 'nope.json')}: ENOENT: no such file or directory, open '${join(dir, 'nope.json')}'`] },
      { name: 'invalid JSON', opts: { file: notJson }, messages: [`(file): config file ${notJson} is not valid JSON: Unexpected end of JSON input`] },
      { name: 'not an object', opts: { file: notObject }, messages: [`(file): config file ${notObject} must hold a JSON object`] },
      { name: 'unreadable *_FILE', opts: { env: { SENTINEL_AUTH_JWT_SECRET_FILE: join(dir, 'missing-secret') } }, messages: [`SENTINEL_AUTH_JWT_SECRET_FILE: cannot read ${join(dir, 'missing-secret')}: ENOENT: no such file or directory, open '${join(dir, 'missing-secret')}'`] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const err = errorOf(() => loadConfig(c.opts));
        expect(err.details.errors?.map((e) => `${e.path}: ${e.message}`)).to.deep.equal(c.messages);
        expect(err.message).to.contain(c.messages[0]);
      });
    }

    it('never prints a secret value in an error', () => {
      const err = errorOf(() => loadConfig({ env: { SENTINEL_AUTH_JWT_SECRET: 'x'.repeat(10), SENTINEL_DATABASE_POOL_MAX: '0' } }));
      expect(err.message).to.not.contain('xxxxxxxxxx');
      const enc = errorOf(() => loadConfig({ env: { SENTINEL_AUTH_ENCRYPTION_KEY: 'correct-horse-battery-staple', DATABASE_URL: 'mysql://root:hunter2@db/x' } }));
      expect(enc.message).to.not.contain('correct-horse').and.not.contain('hunter2');
    });

    // Secrets and the database URL: rules JSON Schema cannot state, reported the same way.
    const hex64 = 'ab'.repeat(32);
    const b64 = Buffer.alloc(32, 7).toString('base64');
    const shortJwt = file('short-jwt.json', { auth: { jwt_secret: 'only-31-bytes-long-aaaaaaaaaaaa' } });
    const keyFile = file('passphrase.txt', 'my passphrase\n');
    const secretCases: { name: string; env: Record<string, string>; file?: string; messages: string[] }[] = [
      { name: 'jwt_secret shorter than 32 bytes (file)', env: {}, file: shortJwt, messages: [`auth.jwt_secret: "***" (from file ${shortJwt}): must be at least 32 bytes (it has 31); e.g. 'openssl rand -base64 32', or leave it empty to have one generated`] },
      { name: 'jwt_secret shorter than 32 bytes (env)', env: { SENTINEL_AUTH_JWT_SECRET: 'short' }, messages: [`auth.jwt_secret: "***" (from env SENTINEL_AUTH_JWT_SECRET): must be at least 32 bytes (it has 5); e.g. 'openssl rand -base64 32', or leave it empty to have one generated`] },
      { name: 'jwt_secret counted in bytes, not characters', env: { SENTINEL_AUTH_JWT_SECRET: 'é'.repeat(15) }, messages: [`auth.jwt_secret: "***" (from env SENTINEL_AUTH_JWT_SECRET): must be at least 32 bytes (it has 30); e.g. 'openssl rand -base64 32', or leave it empty to have one generated`] },
      ...[
        ['a passphrase', 'correct-horse-battery-staple'],
        ['63 hex digits', hex64.slice(1)],
        ['65 hex digits', `${hex64}a`],
        ['base64 of 31 bytes', Buffer.alloc(31, 7).toString('base64')],
        ['base64 of 33 bytes', Buffer.alloc(33, 7).toString('base64')],
      ].map(([what, key]) => ({
        name: `encryption_key: ${what}`,
        env: { SENTINEL_AUTH_ENCRYPTION_KEY: key },
        messages: [`auth.encryption_key: "***" (from env SENTINEL_AUTH_ENCRYPTION_KEY): must be 32 random bytes as 64 hex digits or 43-44 base64 characters (e.g. 'openssl rand -hex 32'), or empty to have one generated`],
      })),
      { name: 'encryption_key from a *_FILE', env: { SENTINEL_AUTH_ENCRYPTION_KEY_FILE: keyFile }, messages: [`auth.encryption_key: "***" (from file SENTINEL_AUTH_ENCRYPTION_KEY_FILE (${keyFile})): must be 32 random bytes as 64 hex digits or 43-44 base64 characters (e.g. 'openssl rand -hex 32'), or empty to have one generated`] },
      ...[
        ['DATABASE_URL', 'notaurl'],
        ['SENTINEL_DATABASE_URL', 'notaurl'],
        ['DATABASE_URL', 'mysql://root@db/x'],
        ['SENTINEL_DATABASE_URL', '127.0.0.1:5432/sentinel'],
      ].map(([name, url]) => ({
        name: `database.url ${JSON.stringify(url)} in ${name}`,
        env: { [name]: url },
        messages: [`database.url: "***" (from env ${name}): must be a postgres:// URL (postgres://user:password@host:5432/database), or empty for the embedded server`],
      })),
    ];
    for (const c of secretCases) {
      it(c.name, () => {
        const err = errorOf(() => loadConfig({ env: c.env, file: c.file }));
        expect(err.code).to.equal('invalid_config');
        expect(err.details.errors?.map((e) => `${e.path}: ${e.message}`)).to.deep.equal(c.messages);
      });
    }

    it('accepts the documented forms: 32+ byte jwt_secret, 32-byte hex/base64/base64url encryption_key, postgres(ql):// URLs', () => {
      for (const key of [hex64, hex64.toUpperCase(), b64, b64.replace(/=$/, ''), Buffer.alloc(32, 0xfb).toString('base64url')]) {
        expect(loadConfig({ env: { SENTINEL_AUTH_ENCRYPTION_KEY: key } }).config.auth.encryption_key).to.equal(key);
      }
      expect(loadConfig({ env: { SENTINEL_AUTH_JWT_SECRET: 'j'.repeat(32) } }).config.auth.jwt_secret).to.have.length(32);
      for (const url of ['postgres://u:p@db:5432/x', 'postgresql://db/x', 'postgres:///x?host=/run/postgresql']) {
        expect(loadConfig({ env: { DATABASE_URL: url } }).config.database.url).to.equal(url);
      }
    });

    it('holds a hand-edited secret file in <data_dir>/secrets to the same rule, naming the file', () => {
      const dataDir = scratchDir('sentinel-secrets-');
      mkdirSync(join(dataDir, 'secrets'), { mode: 0o700 });
      writeFileSync(join(dataDir, 'secrets', 'encryption_key'), 'changeme\n', { mode: 0o600 });
      const { config } = loadConfig({ env: { SENTINEL_DATA_DIR: dataDir } });
      let caught: unknown;
      try {
        withSecrets(config);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(DomainError);
      expect((caught as DomainError).code).to.equal('invalid_config');
      expect((caught as DomainError).message).to.contain(`auth.encryption_key: "***" (from file ${join(dataDir, 'secrets', 'encryption_key')}): must be 32 random bytes`);
      expect((caught as DomainError).message).to.not.contain('changeme');
    });
  });

  it('masks secrets and the password of database.url in config print', () => {
    const { config } = loadConfig({ env: { SENTINEL_DATABASE_URL: 'postgres://u:hunter2@db/x', SENTINEL_AUTH_JWT_SECRET: 'topsecret-topsecret-topsecret-topsecret' } });
    const masked = maskSecrets(config);
    expect(masked.database.url).to.equal('postgres://u:***@db/x');
    expect(masked.auth.jwt_secret).to.equal('***');
    expect(masked.auth.encryption_key).to.equal('');
    expect(JSON.stringify(masked)).to.not.contain('hunter2').and.not.contain('topsecret');
  });

  it('generates missing secrets into <data_dir>/secrets with mode 0600, once', () => {
    const dataDir = scratchDir('sentinel-secrets-');
    const { config } = loadConfig({ env: { SENTINEL_DATA_DIR: dataDir } });
    const filled = withSecrets(config);
    expect(filled.auth.jwt_secret).to.have.length.greaterThan(40);
    // What Sentinel generates passes its own rules (loading it back as configured values).
    expect(() => loadConfig({ env: { SENTINEL_AUTH_JWT_SECRET: filled.auth.jwt_secret, SENTINEL_AUTH_ENCRYPTION_KEY: filled.auth.encryption_key } })).to.not.throw();
    expect(filled.auth.encryption_key).to.not.equal(filled.auth.jwt_secret);
    expect(statSync(join(dataDir, 'secrets', 'jwt_secret')).mode & 0o777).to.equal(0o600);
    expect(statSync(join(dataDir, 'secrets')).mode & 0o777).to.equal(0o700);
    expect(withSecrets(config).auth.jwt_secret).to.equal(filled.auth.jwt_secret);
    expect(readOrCreateSecret(config.data_dir, 'jwt_secret')).to.equal(filled.auth.jwt_secret);
  });
});
