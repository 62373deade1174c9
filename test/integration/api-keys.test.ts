import { expect } from 'chai';
import { sha256 } from '../../src/core/secrets.js';
import type { Clock } from '../../src/core/clock.js';
import { ReadCache, type Cacher } from '../../src/db/read-cache.js';
import { ApiKeysRepository } from '../../src/features/api-keys/api-keys-repository.js';
import { ApiKeysService } from '../../src/features/api-keys/api-keys-service.js';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import type { Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const MANY = { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '1000' };
const KEY_FORMAT = /^snt_[A-Za-z0-9_-]{32}$/;

interface Key {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  expires_at: string | null;
  last_used_at: string | null;
  last_ip: string | null;
  previous_valid_until: string | null;
  created_by: string | null;
  secret?: string;
}
/** The suite's requests carry their own User-Agent, which the audit rows must record. */
const call = <T = unknown>(t: TestApp, method: string, path: string, token: string | null, body?: unknown) => t.api.withUserAgent('api-keys-test/1').call<T>(method, path, token, body);

async function login(t: TestApp, email: string, password: string): Promise<string> {
  const res = await call<{ access_token: string }>(t, 'POST', '/auth/login', null, { email, password });
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body.access_token;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates a key over HTTP and insists on 201. */
async function createKey(t: TestApp, token: string, org: string, body: Record<string, unknown> = { name: 'k' }): Promise<Key & { secret: string }> {
  const res = await call<Key & { secret: string }>(t, 'POST', `/organizations/${org}/api-keys`, token, body);
  expect(res.status, JSON.stringify(res.body)).to.equal(201);
  return res.body;
}

const listKeys = (t: TestApp, token: string, org: string, qs = '') => call<{ items: Key[]; next_cursor: string | null }>(t, 'GET', `/organizations/${org}/api-keys${qs}`, token);

describe('API keys over HTTP', () => {
  let url: string;
  let t: TestApp;
  let orgA: string;
  let orgB: string;
  let ownerA: string;
  let ownerAId: string;
  let adminA: string;
  let editorA: string;
  let viewerA: string;
  let ownerB: string;
  /** Every secret a test saw, for the "no raw key in the database or logs" check. */
  const secrets: string[] = [];
  const remember = <K extends { secret: string }>(k: K): K => {
    secrets.push(k.secret);
    return k;
  };

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, MANY);
    const s = t.app.services;
    orgA = (await createOrg(s)).slug;
    orgB = (await createOrg(s)).slug;
    const users = {
      ownerA: await createUser(s, { org: orgA, role: 'owner' }),
      adminA: await createUser(s, { org: orgA, role: 'admin' }),
      editorA: await createUser(s, { org: orgA, role: 'editor' }),
      viewerA: await createUser(s, { org: orgA, role: 'viewer' }),
      ownerB: await createUser(s, { org: orgB, role: 'owner' }),
    };
    ownerAId = users.ownerA.id;
    [ownerA, adminA, editorA, viewerA, ownerB] = await Promise.all(Object.values(users).map((u) => login(t, u.email, u.password)));
  });
  after(async () => {
    await t.stop();
    await dropDatabase(url);
  });

  it('create answers 201 with the secret once (no-store); the list never shows a secret or its hash', async () => {
    const created = remember(await createKey(t, ownerA, orgA, { name: 'collector', scopes: ['ingest', 'read'] }));
    expect(created).to.include({ name: 'collector', created_by: ownerAId, expires_at: null, last_used_at: null });
    expect(created.scopes).to.deep.equal(['ingest', 'read']);
    expect(created.secret).to.match(KEY_FORMAT);
    expect(created.prefix).to.equal(created.secret.slice(0, 12));

    const again = await call(t, 'POST', `/organizations/${orgA}/api-keys`, ownerA, { name: 'other' });
    expect(again.headers.get('cache-control')).to.equal('no-store');
    remember(again.body as { secret: string });

    const list = await listKeys(t, ownerA, orgA);
    expect(list.status).to.equal(200);
    const item = list.body.items.find((k) => k.id === created.id);
    expect(item).to.deep.include({ id: created.id, name: 'collector', prefix: created.prefix });
    expect(item).to.not.have.property('secret');
    const text = JSON.stringify(list.body);
    expect(text).to.not.contain(created.secret);
    expect(text).to.not.contain(sha256(created.secret));
    expect(text).to.not.contain('secret_hash');
  });

  it('keys are snt_ + base64url of 24 random bytes (192 bits), all different; scopes default to ingest', async () => {
    const keys = [];
    for (let i = 0; i < 20; i++) keys.push(remember(await createKey(t, adminA, orgA, { name: `bulk-${i}` })));
    for (const k of keys) {
      expect(k.secret).to.match(KEY_FORMAT);
      expect(Buffer.from(k.secret.slice(4), 'base64url')).to.have.length(24);
      expect(k.scopes).to.deep.equal(['ingest']);
    }
    expect(new Set(keys.map((k) => k.secret)).size).to.equal(keys.length);
    // Random bytes: across 20 keys × 24 bytes, far more than half of the 256 byte values appear.
    const bytes = new Set(keys.flatMap((k) => [...Buffer.from(k.secret.slice(4), 'base64url')]));
    expect(bytes.size).to.be.greaterThan(200);
  });

  it('an admin-scoped key lists its org; ingest-, read- and write-only keys get 403; keys cannot use user-only routes', async () => {
    const admin = remember(await createKey(t, ownerA, orgA, { name: 'auditor', scopes: ['admin'] }));
    const ingest = remember(await createKey(t, ownerA, orgA, { name: 'agent', scopes: ['ingest'] }));
    const write = remember(await createKey(t, ownerA, orgA, { name: 'writer', scopes: ['read', 'write'] }));
    const listed = await listKeys(t, admin.secret, orgA);
    expect(listed.status).to.equal(200);
    expect(listed.body.items.map((k) => k.id)).to.include.members([admin.id, ingest.id]);
    expect((await listKeys(t, ingest.secret, orgA)).status).to.equal(403);
    expect((await listKeys(t, write.secret, orgA)).status).to.equal(403);
    // Keys never mint, rotate or revoke keys: those routes take user tokens only, and a key there is 403 (a credential of the wrong kind).
    expect((await call(t, 'POST', `/organizations/${orgA}/api-keys`, admin.secret, { name: 'x' })).status).to.equal(403);
    expect((await call(t, 'POST', `/organizations/${orgA}/api-keys/${ingest.id}/rotate`, admin.secret)).status).to.equal(403);
    expect((await call(t, 'DELETE', `/organizations/${orgA}/api-keys/${ingest.id}`, admin.secret)).status).to.equal(403);
    // Unknown and malformed keys.
    expect((await listKeys(t, `snt_${'A'.repeat(32)}`, orgA)).status).to.equal(401);
    expect((await listKeys(t, 'snt_short', orgA)).status).to.equal(401);
  });

  it('revoke answers 204 and the key gets 401 on its next request; it leaves the list; a second revoke is 404', async () => {
    const k = remember(await createKey(t, ownerA, orgA, { name: 'doomed', scopes: ['admin'] }));
    expect((await listKeys(t, k.secret, orgA)).status).to.equal(200);
    const del = await call(t, 'DELETE', `/organizations/${orgA}/api-keys/${k.id}`, adminA);
    expect(del.status).to.equal(204);
    const after = await listKeys(t, k.secret, orgA);
    expect(after.status).to.equal(401);
    expect(after.headers.get('www-authenticate')).to.match(/^Bearer/);
    expect((await listKeys(t, ownerA, orgA)).body.items.map((i) => i.id)).to.not.include(k.id);
    expect((await call(t, 'DELETE', `/organizations/${orgA}/api-keys/${k.id}`, adminA)).status).to.equal(404);
    expect((await call(t, 'POST', `/organizations/${orgA}/api-keys/${k.id}/rotate`, adminA)).status).to.equal(404);
  });

  it('rotate answers a new secret; the old one keeps working within the default 24 h grace', async () => {
    const k = remember(await createKey(t, ownerA, orgA, { name: 'rotating', scopes: ['admin'] }));
    const before = Date.now();
    const r = await call<Key & { secret: string }>(t, 'POST', `/organizations/${orgA}/api-keys/${k.id}/rotate`, adminA);
    expect(r.status).to.equal(200);
    expect(r.headers.get('cache-control')).to.equal('no-store');
    remember(r.body);
    expect(r.body.id).to.equal(k.id);
    expect(r.body.secret).to.match(KEY_FORMAT).and.not.equal(k.secret);
    expect(r.body.prefix).to.equal(r.body.secret.slice(0, 12));
    const until = Date.parse(r.body.previous_valid_until!);
    expect(until - before).to.be.within(24 * 3600_000 - 5000, 24 * 3600_000 + 5000);
    expect((await listKeys(t, r.body.secret, orgA)).status).to.equal(200);
    expect((await listKeys(t, k.secret, orgA)).status).to.equal(200);
  });

  it('an expired key gets 401; expires_at must be in the future', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const k = remember(await createKey(t, ownerA, orgA, { name: 'short-lived', scopes: ['admin'], expires_at: expiresAt }));
    expect(Date.parse(k.expires_at!)).to.equal(Date.parse(expiresAt));
    expect((await listKeys(t, k.secret, orgA)).status).to.equal(200);
    await sleep(Date.parse(expiresAt) - Date.now() + 100);
    expect((await listKeys(t, k.secret, orgA)).status).to.equal(401);
    // Rotation does not resurrect it.
    expect((await call(t, 'POST', `/organizations/${orgA}/api-keys/${k.id}/rotate`, ownerA)).status).to.equal(409);
  });

  it('records last_used_at and last_ip on the first use, then at most once a minute', async () => {
    const k = remember(await createKey(t, ownerA, orgA, { name: 'tracked', scopes: ['admin'] }));
    const find = async () => (await listKeys(t, ownerA, orgA, '?limit=1000')).body.items.find((i) => i.id === k.id)!;
    expect(await find()).to.include({ last_used_at: null, last_ip: null });
    const t0 = Date.now();
    expect((await listKeys(t, k.secret, orgA)).status).to.equal(200);
    const first = await find();
    expect(Date.parse(first.last_used_at!)).to.be.within(t0 - 2000, Date.now() + 2000);
    expect(first.last_ip).to.match(/127\.0\.0\.1$/);
    await sleep(20);
    expect((await listKeys(t, k.secret, orgA)).status).to.equal(200);
    expect((await find()).last_used_at).to.equal(first.last_used_at);
    const [row] = await query<{ updated_at: Date; created_at: Date }>(url, 'select updated_at, created_at from api_keys where id = $1', [k.id]);
    expect(row.updated_at.getTime(), 'a use is not a change').to.equal(row.created_at.getTime());
  });

  it("another org's key id is 404 on DELETE and rotate (whichever slug is used), and that key keeps working unchanged", async () => {
    const kB = remember(await createKey(t, ownerB, orgB, { name: 'b-key', scopes: ['admin'] }));
    const [before] = await query(url, 'select * from api_keys where id = $1', [kB.id]);
    for (const org of [orgA, orgB]) {
      const del = await call<Problem>(t, 'DELETE', `/organizations/${org}/api-keys/${kB.id}`, ownerA);
      expect(del.status, `DELETE via ${org}`).to.equal(404);
      expect((await call(t, 'POST', `/organizations/${org}/api-keys/${kB.id}/rotate`, ownerA)).status, `rotate via ${org}`).to.equal(404);
    }
    const [after] = await query(url, 'select * from api_keys where id = $1', [kB.id]);
    expect(after).to.deep.equal(before);
    expect((await listKeys(t, kB.secret, orgB)).status).to.equal(200);
    // Nor can org A's owner see B's list.
    expect((await listKeys(t, ownerA, orgB)).status).to.equal(404);
  });

  it("a key of org A gets 404 on org B's keys, not 403", async () => {
    const kA = remember(await createKey(t, ownerA, orgA, { name: 'a-admin', scopes: ['admin'] }));
    const res = await call<Problem & { items?: unknown }>(t, 'GET', `/organizations/${orgB}/api-keys`, kA.secret);
    expect(res.status).to.equal(404);
    expect(res.body.items).to.equal(undefined);
    // Indistinguishable from an org that does not exist.
    const none = await call<Problem>(t, 'GET', '/organizations/no-such-org/api-keys', kA.secret);
    expect(none.status).to.equal(404);
    expect(res.body.detail!.replace(orgB, 'X')).to.equal(none.body.detail!.replace('no-such-org', 'X'));
  });

  it('viewer and editor get 403 on create, rotate, revoke and list; admin and owner get 201', async () => {
    const victim = remember(await createKey(t, ownerA, orgA, { name: 'victim' }));
    for (const [role, token] of [['viewer', viewerA], ['editor', editorA]] as const) {
      expect((await call(t, 'POST', `/organizations/${orgA}/api-keys`, token, { name: role })).status, `${role} create`).to.equal(403);
      expect((await call(t, 'POST', `/organizations/${orgA}/api-keys/${victim.id}/rotate`, token)).status, `${role} rotate`).to.equal(403);
      expect((await call(t, 'DELETE', `/organizations/${orgA}/api-keys/${victim.id}`, token)).status, `${role} revoke`).to.equal(403);
      expect((await listKeys(t, token, orgA)).status, `${role} list`).to.equal(403);
    }
    for (const token of [adminA, ownerA]) remember(await createKey(t, token, orgA, { name: 'allowed' }));
    expect((await call(t, 'POST', `/organizations/${orgA}/api-keys`, ownerB, { name: 'outsider' })).status).to.equal(404);
    expect((await call(t, 'POST', `/organizations/${orgA}/api-keys`, null, { name: 'anon' })).status).to.equal(401);
  });

  it('invalid input → 400 problem naming each field', async () => {
    const cases: [unknown, string][] = [
      [{ name: 'x', colour: 'red' }, 'body/colour'],
      [{ name: 'x', scopes: ['ingest', 'root'] }, 'body/scopes/1'],
      [{ name: 'x', scopes: [] }, 'body/scopes'],
      [{ name: 'x', expires_at: new Date(Date.now() - 60_000).toISOString() }, 'body/expires_at'],
      [{ name: 'x', expires_at: 'next tuesday' }, 'body/expires_at'],
      [{ scopes: ['ingest'] }, 'body/name'],
      [{ name: '' }, 'body/name'],
    ];
    for (const [body, path] of cases) {
      const res = await call<Problem>(t, 'POST', `/organizations/${orgA}/api-keys`, ownerA, body);
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
      expect(res.body.errors?.map((e) => e.path), JSON.stringify(body)).to.include(path);
    }
    const badId = await call<Problem>(t, 'DELETE', `/organizations/${orgA}/api-keys/not-a-uuid`, ownerA);
    expect(badId.status).to.equal(400);
    expect(badId.body.errors?.map((e) => e.path)).to.include('params/id');
    const badCursor = await listKeys(t, ownerA, orgA, '?cursor=bm9wZQ');
    expect(badCursor.status).to.equal(400);
  });

  it('pages with limit and cursor: every live key once, in creation order', async () => {
    const org = (await createOrg(t.app.services)).slug;
    const owner = await createUser(t.app.services, { org, role: 'owner' });
    const token = await login(t, owner.email, owner.password);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(remember(await createKey(t, token, org, { name: `p${i}` })).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await listKeys(t, token, org, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).to.equal(200);
      expect(res.body.items.length).to.be.at.most(2);
      seen.push(...res.body.items.map((k) => k.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(seen).to.deep.equal(ids);
    expect(pages).to.equal(3);
  });

  it('audits create, rotate and revoke with org, actor, target, ip and user agent, never the secret', async () => {
    const k = remember(await createKey(t, adminA, orgA, { name: 'audited' }));
    const rotated = remember((await call<{ secret: string }>(t, 'POST', `/organizations/${orgA}/api-keys/${k.id}/rotate`, adminA)).body);
    expect((await call(t, 'DELETE', `/organizations/${orgA}/api-keys/${k.id}`, adminA)).status).to.equal(204);
    const rows = await query<{ action: string; org_id: string; actor: string; target_type: string; ip: string; user_agent: string; details: unknown }>(
      url,
      "select a.*, o.slug from audit_log a join organizations o on o.id = a.org_id where target_id = $1 order by a.id",
      [k.id],
    );
    expect(rows.map((r) => r.action)).to.deep.equal(['apikey.create', 'apikey.rotate', 'apikey.revoke']);
    for (const r of rows) {
      expect(r).to.include({ slug: orgA, target_type: 'api_key', user_agent: 'api-keys-test/1' });
      expect(r.actor).to.match(/^user:/);
      expect(r.ip).to.match(/127\.0\.0\.1$/);
      expect(JSON.stringify(r)).to.not.contain(k.secret).and.not.contain(rotated.secret);
    }
  });

  it('the database and the logs contain no raw key (only sha256 hashes)', async () => {
    expect(secrets.length).to.be.greaterThan(30);
    const dump = (await query<{ t: string }>(url, 'select row_to_json(k)::text as t from api_keys k')).map((r) => r.t).join('\n');
    const audit = (await query<{ t: string }>(url, 'select row_to_json(a)::text as t from audit_log a')).map((r) => r.t).join('\n');
    const hashes = new Set((await query<{ h: string }>(url, 'select secret_hash as h from api_keys union select previous_secret_hash from api_keys where previous_secret_hash is not null')).map((r) => r.h));
    let hashed = 0;
    for (const s of secrets) {
      expect(dump).to.not.contain(s);
      expect(audit).to.not.contain(s);
      expect(t.logs.text).to.not.contain(s);
      // The random part alone must not be there either.
      expect(dump).to.not.contain(s.slice(4));
      if (hashes.has(sha256(s))) hashed++;
    }
    expect(hashed, 'the secrets are stored as their sha256').to.be.greaterThan(secrets.length / 2);
  });

  it('a lookup of an unknown key is not cached (random keys cannot fill the cache and evict real entries); a known key is', async () => {
    // The read cache as the app runs it (listening change feed), with the loads it really runs counted.
    const cache = new ReadCache({ connected: true, onChange: () => undefined, onStatus: () => undefined });
    let loads = 0;
    const counted: Cacher = { get: (tables, key, load, keep) => cache.get(tables, key, () => (loads++, load()), keep), invalidate: (table, key) => cache.invalidate(table, key) };
    const repo = new ApiKeysRepository(t.app.db.knex, counted);
    const unknown = sha256(`snt_${'u'.repeat(32)}`);
    expect(await repo.findBySecretHash(unknown)).to.equal(undefined);
    expect(await repo.findBySecretHash(unknown)).to.equal(undefined);
    expect(loads, 'both misses went to the database: neither was stored').to.equal(2);
    const k = remember(await createKey(t, ownerA, orgA, { name: 'cached' }));
    expect((await repo.findBySecretHash(sha256(k.secret)))?.id).to.equal(k.id);
    expect((await repo.findBySecretHash(sha256(k.secret)))?.id).to.equal(k.id);
    expect(loads, 'a found key is served from the cache the second time').to.equal(3);
  });

  it('the last-use write is throttled per key and catches up after the interval (service on the same database)', async () => {
    let now = new Date();
    const clock: Clock = { now: () => now };
    // Counts the last-use writes the service asks for: the throttle is about statements, not rows.
    let touches = 0;
    const repo = new (class extends ApiKeysRepository {
      override async touch(...args: Parameters<ApiKeysRepository['touch']>): Promise<void> {
        touches++;
        return super.touch(...args);
      }
    })(t.app.db.knex);
    const svc = new ApiKeysService(repo, t.app.services.orgGuard, t.app.services.audit, { rotationGraceMs: 1000, lastUseIntervalMs: 60_000, clock });
    const k = await svc.create({ kind: 'system' }, orgA, { name: 'clocked', scopes: ['read'] });
    secrets.push(k.secret);
    const lastUse = async () => (await query<{ last_used_at: Date | null; last_ip: string | null }>(url, 'select last_used_at, last_ip from api_keys where id = $1', [k.id]))[0];
    const t0 = now.getTime();
    // A burst of concurrent first uses: all authenticate, the first use is recorded.
    const actors = await Promise.all(Array.from({ length: 5 }, () => svc.authenticate(k.secret, '10.0.0.1')));
    expect(actors.every((a) => a?.kind === 'apikey')).to.equal(true);
    expect(await lastUse()).to.deep.equal({ last_used_at: new Date(t0), last_ip: '10.0.0.1' });
    expect(touches, 'one write for the burst').to.equal(1);
    now = new Date(t0 + 30_000);
    for (let i = 0; i < 10; i++) await svc.authenticate(k.secret, '10.0.0.2');
    expect(await lastUse()).to.deep.equal({ last_used_at: new Date(t0), last_ip: '10.0.0.1' });
    expect(touches, 'no write within the interval').to.equal(1);
    now = new Date(t0 + 61_000);
    await svc.authenticate(k.secret, '10.0.0.3');
    expect(await lastUse()).to.deep.equal({ last_used_at: new Date(t0 + 61_000), last_ip: '10.0.0.3' });
    expect(touches).to.equal(2);
    // And the previous secret after a rotation is refused once the grace has passed.
    const r = await svc.rotate({ kind: 'system' }, orgA, k.id);
    secrets.push(r.secret);
    expect(await svc.authenticate(k.secret, null)).to.not.equal(null);
    now = new Date(now.getTime() + 1001);
    expect(await svc.authenticate(k.secret, null)).to.equal(null);
    expect(await svc.authenticate(r.secret, null)).to.not.equal(null);
  });
});

describe('API key rotation grace (auth.api_key_rotation_grace = 1s)', () => {
  let url: string;
  let t: TestApp;
  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { ...MANY, SENTINEL_AUTH_API_KEY_ROTATION_GRACE: '1s' });
  });
  after(async () => {
    await t.stop();
    await dropDatabase(url);
  });

  it('the old secret works within the grace and gets 401 after it; the new one keeps working', async () => {
    const org = (await createOrg(t.app.services)).slug;
    const owner = await createUser(t.app.services, { org, role: 'owner' });
    const token = await login(t, owner.email, owner.password);
    const k = await createKey(t, token, org, { name: 'r', scopes: ['admin'] });
    const r = await call<Key & { secret: string }>(t, 'POST', `/organizations/${org}/api-keys/${k.id}/rotate`, token);
    expect(r.status).to.equal(200);
    expect(Date.parse(r.body.previous_valid_until!) - Date.now()).to.be.within(0, 1000);
    expect((await listKeys(t, k.secret, org)).status).to.equal(200);
    await sleep(Date.parse(r.body.previous_valid_until!) - Date.now() + 100);
    expect((await listKeys(t, k.secret, org)).status).to.equal(401);
    expect((await listKeys(t, r.body.secret, org)).status).to.equal(200);
    // A second rotation drops the first secret's successor after the grace as well.
    const r2 = await call<Key & { secret: string }>(t, 'POST', `/organizations/${org}/api-keys/${k.id}/rotate`, token);
    expect((await listKeys(t, r.body.secret, org)).status).to.equal(200);
    expect((await listKeys(t, k.secret, org)).status).to.equal(401);
    expect((await listKeys(t, r2.body.secret, org)).status).to.equal(200);
  });
});

describe('CLI: apikey and token', () => {
  let url: string;
  let env: Record<string, string>;
  let t: TestApp;
  const email = 'ops@cli.example';
  before(async () => {
    url = await cloneDatabase();
    env = testEnv(url, MANY);
    // The app shares the CLI's data_dir, so tokens the CLI signs verify here.
    t = await startTestApp(url, env);
    expect((await cli(['org', 'create', 'acme'], env)).code).to.equal(0);
    expect((await cli(['user', 'create', email, '--password-stdin', '--org', 'acme', '--role', 'owner'], env, 'correct horse battery\n')).code).to.equal(0);
  });
  after(async () => {
    await t.stop();
    await dropDatabase(url);
  });

  it('apikey create prints the secret once; list never does; the key works over HTTP; revoke <id> ends it', async () => {
    const created = await cli(['apikey', 'create', '--org', 'acme', '--name', 'ci', '--scopes', 'read,admin', '--expires', '90d', '--json'], env);
    expect(created.code, created.stderr).to.equal(0);
    const k = JSON.parse(created.stdout) as Key & { secret: string };
    expect(k.secret).to.match(KEY_FORMAT);
    expect(k.scopes).to.deep.equal(['read', 'admin']);
    expect(k.created_by).to.equal(null);
    expect(Date.parse(k.expires_at!) - Date.now()).to.be.within(90 * 86_400_000 - 60_000, 90 * 86_400_000);
    expect(created.logs.text).to.not.contain(k.secret);

    const plain = await cli(['apikey', 'create', '--org', 'acme', '--name', 'agent'], env);
    expect(plain.code, plain.stderr).to.equal(0);
    const m = /^secret \(shown once\): (snt_\S+)$/m.exec(plain.stdout);
    expect(m, plain.stdout).to.not.equal(null);
    expect(m![1]).to.match(KEY_FORMAT);
    expect(plain.stdout).to.contain('scopes ingest');

    const list = await cli(['apikey', 'list', '--org', 'acme', '--json'], env);
    expect(list.code).to.equal(0);
    const items = JSON.parse(list.stdout) as Key[];
    expect(items.map((i) => i.name)).to.deep.equal(['ci', 'agent']);
    expect(list.stdout).to.not.contain(k.secret).and.not.contain(m![1]).and.not.contain('secret');
    const table = await cli(['apikey', 'list', '--org', 'acme'], env);
    expect(table.stdout).to.match(/^ID\s+NAME\s+PREFIX\s+SCOPES/).and.contain(k.prefix).and.not.contain(k.secret);

    expect((await listKeys(t, k.secret, 'acme')).status).to.equal(200);
    const revoked = await cli(['apikey', 'revoke', k.id], env);
    expect(revoked.code, revoked.stderr).to.equal(0);
    expect(revoked.stdout).to.contain(k.id);
    expect((await listKeys(t, k.secret, 'acme')).status).to.equal(401);
    expect((await cli(['apikey', 'revoke', k.id], env)).code).to.equal(3);
  });

  it('apikey exit codes: unknown org or key 3, bad scope, duration or id 2', async () => {
    expect((await cli(['apikey', 'create', '--org', 'nope', '--name', 'x'], env)).code).to.equal(3);
    expect((await cli(['apikey', 'list', '--org', 'nope'], env)).code).to.equal(3);
    expect((await cli(['apikey', 'revoke', '00000000-0000-4000-8000-000000000000'], env)).code).to.equal(3);
    const badScope = await cli(['apikey', 'create', '--org', 'acme', '--name', 'x', '--scopes', 'ingest,root'], env);
    expect(badScope.code).to.equal(2);
    expect(badScope.stderr).to.equal('error: invalid input: body/scopes/1 must be equal to one of the allowed values\n');
    expect((await cli(['apikey', 'create', '--org', 'acme', '--name', 'x', '--expires', 'soon'], env)).code).to.equal(2);
    expect((await cli(['apikey', 'create', '--org', 'acme', '--name', 'x', '--expires', '0'], env)).code).to.equal(2);
    expect((await cli(['apikey', 'create', '--org', 'acme', '--name', 'x', '--expires', '2001-01-01T00:00:00Z'], env)).code).to.equal(2);
    expect((await cli(['apikey', 'create', '--name', 'x'], env)).code).to.equal(2);
    expect((await cli(['apikey', 'revoke', 'not-an-id'], env)).code).to.equal(2);
    const [{ n }] = await query<{ n: string }>(url, "select count(*) as n from api_keys where name = 'x'");
    expect(Number(n)).to.equal(0);
  });

  it('token create prints only an access token that works as a Bearer token against /auth/me, for --ttl', async () => {
    const r = await cli(['token', 'create', '--user', email, '--ttl', '10m'], env);
    expect(r.code, r.stderr).to.equal(0);
    const token = r.stdout.trim();
    expect(r.stdout).to.equal(`${token}\n`);
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { exp: number; iat: number };
    expect(claims.exp - claims.iat).to.equal(600);
    const me = await call<{ email: string }>(t, 'GET', '/auth/me', token);
    expect(me.status).to.equal(200);
    expect(me.body.email).to.equal(email);
    expect(r.logs.text).to.not.contain(token);
    const [audit] = await query<{ action: string }>(url, "select action from audit_log where action = 'auth.token_create'");
    expect(audit).to.deep.equal({ action: 'auth.token_create' });

    const json = await cli(['token', 'create', '--user', email, '--json'], env);
    expect(JSON.parse(json.stdout)).to.include({ token_type: 'Bearer', expires_in: 900 });
  });

  it('token create exit codes: unknown user 3, bad --ttl 2, disabled user 4', async () => {
    expect((await cli(['token', 'create', '--user', 'nobody@cli.example'], env)).code).to.equal(3);
    expect((await cli(['token', 'create', '--user', email, '--ttl', 'forever'], env)).code).to.equal(2);
    expect((await cli(['token', 'create', '--user', email, '--ttl', '0'], env)).code).to.equal(2);
    expect((await cli(['token', 'create', '--user', email, '--ttl', '400d'], env)).code).to.equal(2);
    expect((await cli(['token', 'create'], env)).code).to.equal(2);
    expect((await cli(['user', 'create', 'gone@cli.example'], env)).code).to.equal(0);
    expect((await cli(['user', 'disable', 'gone@cli.example'], env)).code).to.equal(0);
    const disabled = await cli(['token', 'create', '--user', 'gone@cli.example'], env);
    expect(disabled.code).to.equal(4);
    expect(disabled.stdout).to.equal('');
  });
});
