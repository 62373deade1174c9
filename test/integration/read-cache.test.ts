import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { pino } from 'pino';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import type { OrgRole } from '../../src/core/roles.js';
import { ChangeFeed } from '../../src/db/change-feed.js';
import { ReadCache, writing, type Cacher, type ChangeSource } from '../../src/db/read-cache.js';
import { ApiKeysRepository } from '../../src/features/api-keys/api-keys-repository.js';
import { SessionsRepository } from '../../src/features/auth/sessions-repository.js';
import { InvitationsRepository } from '../../src/features/orgs/invitations-repository.js';
import { OrgsRepository } from '../../src/features/orgs/orgs-repository.js';
import { UsersRepository } from '../../src/features/users/users-repository.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { startOwnPostgres, type OwnPostgres } from '../support/own-postgres.js';
import { createOrg, createUser } from '../support/factories.js';
import type { TokenPair } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/** A change source that only says what the test makes it say. */
class ScriptedSource implements ChangeSource {
  connected = true;
  private readonly changes: ((table: string | null) => void)[] = [];
  private readonly statuses: ((connected: boolean) => void)[] = [];
  onChange(fn: (table: string | null) => void): void {
    this.changes.push(fn);
  }
  onStatus(fn: (connected: boolean) => void): void {
    this.statuses.push(fn);
  }
  status(connected: boolean): void {
    this.connected = connected;
    for (const fn of this.statuses) fn(connected);
  }
}

/**
 * A Cacher that counts the loads the cache really runs (per table list) and can hold the next
 * load after it has read from the database, to interleave a write between its read and its store.
 */
class Probe implements Cacher {
  readonly loads = new Map<string, number>();
  private hold: { read: () => void; release: Promise<void> } | null = null;
  constructor(readonly inner: Cacher) {}

  get<T>(tables: readonly string[], key: string, load: () => Promise<T>): Promise<T> {
    return this.inner.get(tables, key, async () => {
      this.loads.set(tables.join(','), this.count(tables.join(',')) + 1);
      const value = await load();
      const hold = this.hold;
      this.hold = null;
      if (hold) {
        hold.read();
        await hold.release;
      }
      return value;
    });
  }

  invalidate(table: string, key?: string): void {
    this.inner.invalidate(table, key);
  }

  count(tables: string): number {
    return this.loads.get(tables) ?? 0;
  }

  /** The next load pauses once it has its value; `read` resolves then, `release()` lets it finish. */
  holdNext(): { read: Promise<void>; release: () => void } {
    let read!: () => void;
    let release!: () => void;
    const readP = new Promise<void>((r) => (read = r));
    this.hold = { read, release: new Promise<void>((r) => (release = r)) };
    return { read: readP, release };
  }
}

function repos(knex: Knex, cache: Cacher) {
  return {
    orgs: new OrgsRepository(knex, cache),
    users: new UsersRepository(knex, cache),
    sessions: new SessionsRepository(knex, cache),
    apiKeys: new ApiKeysRepository(knex, cache),
    invitations: new InvitationsRepository(knex, cache),
  };
}

let seq = 0;
const uniq = () => `${process.pid}-${Date.now().toString(36)}-${++seq}`;

describe('read cache', () => {
  let url: string;
  let knex: Knex;
  let other: pg.Client;
  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
    other = new pg.Client({ connectionString: url });
    await other.connect();
  });
  after(async () => {
    await other.end();
    await knex.destroy();
    await dropDatabase(url);
  });

  async function orgAndUser(r: ReturnType<typeof repos>) {
    const org = await r.orgs.insert(`o-${uniq()}`, 'Before');
    const user = await r.users.insert({ email: `u-${uniq()}@example.test`, name: null, password_hash: null, superadmin: false });
    return { org, user };
  }

  describe('own writes (explicit invalidation, no notifications at all)', () => {
    // The source never reports a change: only the repositories' own invalidations can make a
    // read after a write see it.
    let probe: Probe;
    let r: ReturnType<typeof repos>;
    beforeEach(() => {
      probe = new Probe(new ReadCache(new ScriptedSource()));
      r = repos(knex, probe);
    });

    it('an org update, by slug and by id, is read right after the write resolves', async () => {
      const { org } = await orgAndUser(r);
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('Before');
      expect((await r.orgs.findById(org.id))?.name).to.equal('Before');
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('Before');
      expect(probe.count('organizations')).to.equal(2);
      await r.orgs.update(org.id, () => ({ name: 'After' }));
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('After');
      expect((await r.orgs.findById(org.id))?.name).to.equal('After');
      expect(probe.count('organizations')).to.equal(4);
    });

    it('"no such org" and "not a member" are forgotten when the org or the membership is created', async () => {
      const slug = `o-${uniq()}`;
      expect(await r.orgs.findBySlug(slug)).to.equal(undefined);
      const org = await r.orgs.insert(slug, 'New');
      expect((await r.orgs.findBySlug(slug))?.id).to.equal(org.id);
      const user = await r.users.insert({ email: `u-${uniq()}@example.test`, name: null, password_hash: null, superadmin: false });
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal(null);
      expect(await r.orgs.addMember(org.id, user.id, 'viewer')).to.deep.equal({ added: true, firstOwner: false });
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('viewer');
    });

    it('membership changes made in transactions (set role, remove, accept an invitation) apply at once', async () => {
      const { org, user } = await orgAndUser(r);
      const owner = await r.users.insert({ email: `o-${uniq()}@example.test`, name: null, password_hash: null, superadmin: false });
      await r.orgs.addMember(org.id, owner.id, 'owner');
      await r.orgs.addMember(org.id, user.id, 'viewer');
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('viewer');
      await r.orgs.setRole(org.id, user.id, 'admin');
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('admin');
      await r.orgs.removeMember(org.id, user.id);
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal(null);
      // The owner's cached role is another key: none of this touched it.
      expect(await r.orgs.roleOf(org.id, owner.id)).to.equal('owner');
      const loads = probe.count('memberships');
      expect(await r.orgs.roleOf(org.id, owner.id)).to.equal('owner');
      expect(probe.count('memberships')).to.equal(loads);
      const inv = await r.invitations.upsert(org.id, user.email, 'editor', owner.id, new Date(Date.now() + 3_600_000));
      await r.invitations.accept(inv.id, user.email, user.id);
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('editor');
    });

    it('deleting an org forgets its memberships and API keys too (they go by ON DELETE CASCADE)', async () => {
      const { org, user } = await orgAndUser(r);
      await r.orgs.addMember(org.id, user.id, 'viewer');
      const hash = `h-${uniq()}`;
      await r.apiKeys.insert(org.id, { name: 'k', prefix: 'snt_x', secret_hash: hash, scopes: ['ingest'], expires_at: null, created_by: null });
      expect((await r.apiKeys.findBySecretHash(hash))?.org_id).to.equal(org.id);
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('viewer');
      expect((await r.orgs.findBySlug(org.slug))?.id).to.equal(org.id);
      await r.orgs.delete(org.id);
      expect(await r.apiKeys.findBySecretHash(hash)).to.equal(undefined);
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal(null);
      expect(await r.orgs.findBySlug(org.slug)).to.equal(undefined);
    });

    it('API key revocation and rotation apply at once', async () => {
      const { org } = await orgAndUser(r);
      const [h1, h2] = [`h-${uniq()}`, `h-${uniq()}`];
      const key = await r.apiKeys.insert(org.id, { name: 'k', prefix: 'snt_x', secret_hash: h1, scopes: ['ingest'], expires_at: null, created_by: null });
      expect((await r.apiKeys.findBySecretHash(h1))?.previous_secret_hash).to.equal(null);
      await r.apiKeys.rotate(org.id, key.id, { prefix: 'snt_y', secret_hash: h2 }, new Date(Date.now() + 60_000));
      expect((await r.apiKeys.findBySecretHash(h1))?.secret_hash).to.equal(h2);
      await r.apiKeys.revoke(org.id, key.id);
      expect((await r.apiKeys.findBySecretHash(h2))?.revoked_at).to.be.instanceOf(Date);
    });

    it('session state follows the user (disable, delete) and the session (revoke)', async () => {
      const { org, user } = await orgAndUser(r);
      await r.orgs.addMember(org.id, user.id, 'owner');
      const other = await r.users.insert({ email: `x-${uniq()}@example.test`, name: null, password_hash: null, superadmin: false });
      await r.orgs.addMember(org.id, other.id, 'owner');
      const expires_at = new Date(Date.now() + 3_600_000);
      const s = await r.sessions.insert({ user_id: user.id, family_id: randomUUID(), refresh_hash: `r-${uniq()}`, expires_at, ip: null, user_agent: null });
      expect((await r.sessions.state(s.id))?.disabled_at).to.equal(null);
      await r.users.update(user.id, { disabled_at: new Date() }, true);
      expect((await r.sessions.state(s.id))?.disabled_at).to.be.instanceOf(Date);
      await r.sessions.revokeAllOfUser(user.id);
      expect((await r.sessions.state(s.id))?.revoked_at).to.be.instanceOf(Date);
      expect((await r.users.deleteUnlessLastOwner(user.id)).deleted).to.equal(true);
      expect(await r.sessions.state(s.id)).to.equal(undefined);
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal(null);
    });

    it('a write that fails after reaching the database still invalidates', async () => {
      const { org } = await orgAndUser(r);
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('Before');
      // As when COMMIT's answer is lost: the row changed, the caller got an error.
      const failed = writing(probe, async (touch) => {
        touch('organizations', org.slug);
        await knex('organizations').where({ id: org.id }).update({ name: 'Changed' });
        throw new Error('connection lost');
      });
      const err = await failed.then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as Error).message).to.equal('connection lost');
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('Changed');
    });
  });

  describe('the load/invalidate race', () => {
    let probe: Probe;
    let r: ReturnType<typeof repos>;
    beforeEach(() => {
      probe = new Probe(new ReadCache(new ScriptedSource()));
      r = repos(knex, probe);
    });

    it('a load that read the row before a write committed, and finishes after it, is not stored', async () => {
      const { org } = await orgAndUser(r);
      const held = probe.holdNext();
      const early = r.orgs.findBySlug(org.slug);
      await held.read; // it has the old row
      await r.orgs.update(org.id, () => ({ name: 'After' })); // commits and invalidates
      held.release();
      // The early read began before the write: it may answer the old row, but must not keep it.
      expect((await early)?.name).to.equal('Before');
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('After');
      expect(probe.count('organizations')).to.equal(2);
    });

    it('the same for a whole-table invalidation (another process, via the feed) and for a clear', async () => {
      for (const [what, cut] of [
        ['invalidate(table)', (c: ReadCache) => c.invalidate('organizations')],
        ['clear()', (c: ReadCache) => c.clear()],
      ] as const) {
        const cache = new ReadCache(new ScriptedSource());
        const p = new Probe(cache);
        const held = p.holdNext();
        const early = p.get(['organizations'], 'k', async () => 'old');
        await held.read;
        cut(cache);
        held.release();
        await early;
        expect(await p.get(['organizations'], 'k', async () => 'new'), what).to.equal('new');
      }
    });

    it('an invalidation of another key or another table does not stop a load from being stored', async () => {
      const cache = new ReadCache(new ScriptedSource());
      const p = new Probe(cache);
      const held = p.holdNext();
      const early = p.get(['organizations'], 'k', async () => 'v');
      await held.read;
      cache.invalidate('organizations', 'other-key');
      cache.invalidate('memberships');
      held.release();
      await early;
      expect(await p.get(['organizations'], 'k', async () => 'reloaded')).to.equal('v');
      expect(p.count('organizations')).to.equal(1);
    });
  });

  describe('bounds', () => {
    it('keeps at most `max` entries, least recently used out first', async () => {
      const p = new Probe(new ReadCache(new ScriptedSource(), { max: 2 }));
      const get = (k: string) => p.get(['t'], k, async () => k);
      await get('a');
      await get('b');
      await get('a'); // a is now the most recent
      await get('c'); // evicts b
      expect(p.count('t')).to.equal(3);
      await get('a');
      await get('c');
      expect(p.count('t')).to.equal(3);
      await get('b');
      expect(p.count('t')).to.equal(4);
    });

    it('serves an entry for `ttlMs` at most', async () => {
      let now = 1_000_000;
      const p = new Probe(new ReadCache(new ScriptedSource(), { ttlMs: 1000, now: () => now }));
      const get = () => p.get(['t'], 'k', async () => 'v');
      await get();
      now += 999;
      await get();
      expect(p.count('t')).to.equal(1);
      now += 2;
      await get();
      expect(p.count('t')).to.equal(2);
    });

    it('a source that is not connected makes every read a load, and a status change drops everything', async () => {
      const source = new ScriptedSource();
      const p = new Probe(new ReadCache(source));
      const get = () => p.get(['t'], 'k', async () => 'v');
      await get();
      await get();
      expect(p.count('t')).to.equal(1);
      source.status(false);
      await get();
      await get();
      expect(p.count('t')).to.equal(3);
      source.status(true);
      await get();
      await get();
      expect(p.count('t')).to.equal(4);
      // Listening again without a loss having been reported (a source that only says "back"): still cleared.
      source.status(true);
      await get();
      expect(p.count('t')).to.equal(5);
    });
  });

  describe('with the change feed (other processes)', () => {
    let feed: ChangeFeed;
    let probe: Probe;
    let r: ReturnType<typeof repos>;
    beforeEach(async () => {
      // A reconnect delay long enough for a test to act while the feed is down.
      feed = new ChangeFeed(url, pino({ level: 'silent' }), { retryMs: 1000 });
      probe = new Probe(new ReadCache(feed));
      r = repos(knex, probe);
      await feed.start();
      expect(feed.connected).to.equal(true);
    });
    afterEach(() => feed.stop());

    const next = <T>(subscribe: (fn: (v: T) => void) => () => void, want: T) =>
      new Promise<void>((resolve) => {
        const off = subscribe((v) => {
          if (v !== want) return;
          off();
          resolve();
        });
      });
    const nextChange = (table: string) => next<string | null>((fn) => feed.onChange(fn), table);
    const nextStatus = (connected: boolean) => next<boolean>((fn) => feed.onStatus(fn), connected);

    it("another connection's commit invalidates the table it changed, and only that table", async () => {
      const { org, user } = await orgAndUser(repos(knex, probe.inner));
      await r.orgs.addMember(org.id, user.id, 'viewer');
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('viewer');
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('Before');
      const [roles, orgs] = [probe.count('memberships'), probe.count('organizations')];
      const heard = nextChange('memberships');
      await other.query("update memberships set role = 'admin' where org_id = $1 and user_id = $2", [org.id, user.id]);
      await heard;
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('admin');
      expect(probe.count('memberships')).to.equal(roles + 1);
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('Before');
      expect(probe.count('organizations')).to.equal(orgs);
    });

    it('while the feed is down every read goes to the database, and a change it missed is not served after it is back', async () => {
      const { org, user } = await orgAndUser(repos(knex, probe.inner));
      await r.orgs.addMember(org.id, user.id, 'viewer');
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('viewer');
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('Before');
      const [roles, orgs] = [probe.count('memberships'), probe.count('organizations')];

      const lost = nextStatus(false);
      const back = nextStatus(true);
      const { rows } = await other.query("select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = 'sentinel-change-feed' and datname = current_database()");
      expect(rows).to.deep.equal([{ ok: true }]);
      // A change nobody is told about (triggers off), made before the feed has even noticed.
      await other.query('begin');
      await other.query('set local session_replication_role = replica');
      await other.query("update memberships set role = 'admin' where org_id = $1 and user_id = $2", [org.id, user.id]);
      await other.query('commit');
      await lost;

      expect(feed.connected).to.equal(false);
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('admin');
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('admin');
      expect((await r.orgs.findBySlug(org.slug))?.name).to.equal('Before');
      expect(probe.count('memberships')).to.equal(roles + 2);
      expect(probe.count('organizations')).to.equal(orgs + 1);
      expect(feed.connected, 'the reads above ran while the feed was down').to.equal(false);

      // Another unannounced change while down; then the feed comes back by itself.
      await other.query('begin');
      await other.query('set local session_replication_role = replica');
      await other.query("update memberships set role = 'editor' where org_id = $1 and user_id = $2", [org.id, user.id]);
      await other.query('commit');
      await back;
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('editor');
      expect(await r.orgs.roleOf(org.id, user.id)).to.equal('editor');
      expect(probe.count('memberships'), 'caching again once listening').to.equal(roles + 3);
    });

    it('a load that began before the feed was lost and ends after it is back is not stored', async () => {
      const held = probe.holdNext();
      const early = probe.get(['organizations'], 'k', async () => 'old');
      await held.read;
      const back = nextStatus(true);
      await other.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'sentinel-change-feed' and datname = current_database()");
      await back;
      held.release();
      await early;
      expect(await probe.get(['organizations'], 'k', async () => 'new')).to.equal('new');
    });
  });
});

/**
 * The daemon end to end: the cache is used on the request path, and changes through this daemon
 * or through another connection (the CLI, another instance) are not served stale.
 */
describe('read cache in the daemon', () => {
  let url: string;
  let t: TestApp;
  let other: pg.Client;
  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '100000' });
    other = new pg.Client({ connectionString: url });
    await other.connect();
  });
  after(async () => {
    await other.end();
    await t.stop();
    await dropDatabase(url);
  });

  async function session(role: OrgRole) {
    const org = await createOrg(t.app.services);
    const u = await createUser(t.app.services, { org: org.slug, role });
    const login = await t.api.post<TokenPair>('/auth/login', null, { email: u.email, password: u.password });
    expect(login.status).to.equal(200);
    const token = login.body.access_token;
    const get = () => t.api.get(`/organizations/${org.slug}`, token);
    return { org, user: u, token, get };
  }

  /** The daemon hears another connection's commit asynchronously: ask until it answers `want` or the deadline passes. */
  async function eventually(fn: () => Promise<number>, want: number, ms = 2000): Promise<number> {
    const deadline = Date.now() + ms;
    let status = await fn();
    while (status !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
      status = await fn();
    }
    return status;
  }

  it('serves repeated authenticated reads without querying PostgreSQL', async () => {
    const s = await session('viewer');
    expect((await s.get()).status).to.equal(200);
    const queries: string[] = [];
    const count = (q: { sql: string }) => queries.push(q.sql);
    t.app.db.knex.on('query', count);
    try {
      for (let i = 0; i < 20; i++) expect((await s.get()).status).to.equal(200);
    } finally {
      t.app.db.knex.off('query', count);
    }
    expect(queries).to.deep.equal([]);
  });

  it('a membership removed by another connection (e.g. the CLI) applies when PostgreSQL notifies, well before the TTL', async () => {
    const s = await session('viewer');
    expect((await s.get()).status).to.equal(200);
    await other.query('delete from memberships where org_id = $1 and user_id = $2', [s.org.id, s.user.id]);
    expect(await eventually(async () => (await s.get()).status, 404)).to.equal(404);
  });

  it('a user disabled by another connection is refused when PostgreSQL notifies', async () => {
    const s = await session('viewer');
    expect((await s.get()).status).to.equal(200);
    await other.query('update users set disabled_at = now() where id = $1', [s.user.id]);
    expect(await eventually(async () => (await s.get()).status, 401)).to.equal(401);
  });

  it("this daemon's own writes (including inside transactions) apply on the very next request", async () => {
    const s = await session('owner');
    // A second owner, so demoting the first is allowed.
    await createUser(t.app.services, { org: s.org.slug, role: 'owner' });
    expect((await s.get()).status).to.equal(200);
    const patch = () => t.api.call('PATCH', `/organizations/${s.org.slug}`, s.token, { name: 'renamed' });
    expect((await patch()).status).to.equal(200);
    // Demote through the service (a transaction locking the owner rows), then ask immediately.
    await t.app.services.orgs.setMemberRole(SYSTEM_ACTOR, s.org.slug, s.user.id, 'viewer');
    expect((await patch()).status).to.equal(403);
    await t.app.services.orgs.delete(SYSTEM_ACTOR, s.org.slug);
    expect((await s.get()).status).to.equal(404);
  });
});

/**
 * A connection that goes silent: the feed's server process is stopped (SIGSTOP), so its socket
 * stays open and the kernel still acknowledges, but nothing answers — what a half-open connection
 * or a hung server looks like to the client. No error and no end arrive; only the heartbeat can
 * notice. On a PostgreSQL of the test's own, whose processes this test may signal.
 */
describe('change feed: a connection that stops answering', function () {
  this.timeout(120_000);
  let own: OwnPostgres;

  before(async () => {
    own = await startOwnPostgres();
  });
  after(async () => {
    await own?.remove();
  });

  it('is reported lost within the heartbeat window (caches stop serving), and the feed comes back on a new connection', async () => {
    const heartbeatMs = 200;
    const heartbeatTimeoutMs = 300;
    const feed = new ChangeFeed(own.url, pino({ level: 'silent' }), { retryMs: 100, heartbeatMs, heartbeatTimeoutMs });
    const c = new pg.Client({ connectionString: own.url });
    await c.connect();
    let stalled: number | undefined;
    try {
      await feed.start();
      expect(feed.connected).to.equal(true);
      const backend = async () => (await c.query<{ pid: number }>("select pid from pg_stat_activity where application_name = 'sentinel-change-feed'")).rows.map((r) => r.pid);
      const [pid] = await backend();
      expect(pid).to.be.a('number');

      const statuses: boolean[] = [];
      const lost = new Promise<number>((resolve) => feed.onStatus((up) => (statuses.push(up), up ? undefined : resolve(Date.now()))));
      const back = new Promise<void>((resolve) => feed.onStatus((up) => up && resolve()));
      process.kill(pid, 'SIGSTOP');
      stalled = pid;
      const stalledAt = Date.now();
      // Bounded wait: without a heartbeat nothing is ever reported and this answers null.
      const window = heartbeatMs + heartbeatTimeoutMs;
      const lostAt = await Promise.race([lost, new Promise<null>((r) => setTimeout(() => r(null), window + 2000))]);
      expect(lostAt, 'reported lost').to.not.equal(null);
      expect(lostAt! - stalledAt).to.be.below(window + 1000);
      expect(feed.connected).to.equal(false);

      await back;
      expect(feed.connected).to.equal(true);
      expect(statuses).to.deep.equal([false, true]);
      // Listening again on another server process: the stalled one is not it.
      expect((await backend()).filter((p) => p !== pid)).to.have.length(1);
    } finally {
      // First: a stopped server process would hold up the feed's and the server's own shutdown.
      if (stalled) process.kill(stalled, 'SIGCONT');
      await feed.stop();
      await c.end();
    }
  });
});
