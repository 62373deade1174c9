import { expect } from 'chai';
import pg from 'pg';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import { ReadCache } from '../../src/db/read-cache.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The daemon caches session state, org-by-slug, membership roles and API keys. These tests prove
 * the cache is used and that no change — through this daemon, through another connection (the
 * CLI, another instance), or while notifications are down — is served stale.
 */
describe('auth lookup cache', () => {
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

  async function session(role: string) {
    const org = await createOrg(t.app.services);
    const u = await createUser(t.app.services, { org: org.slug, role });
    const res = await fetch(`${t.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: u.email, password: u.password }) });
    const { access_token } = (await res.json()) as { access_token: string };
    const get = () => fetch(`${t.baseUrl}/api/v1/organizations/${org.slug}`, { headers: { authorization: `Bearer ${access_token}` } });
    return { org, user: u, token: access_token, get };
  }

  async function waitFor(fn: () => Promise<number>, want: number, ms = 2000): Promise<{ status: number; elapsed: number }> {
    const t0 = Date.now();
    let status = await fn();
    while (status !== want && Date.now() - t0 < ms) {
      await sleep(5);
      status = await fn();
    }
    return { status, elapsed: Date.now() - t0 };
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

  it('a membership removed by another connection (e.g. the CLI) applies as soon as PostgreSQL notifies', async () => {
    const s = await session('viewer');
    expect((await s.get()).status).to.equal(200);
    await other.query('delete from memberships where org_id = $1 and user_id = $2', [s.org.id, s.user.id]);
    const r = await waitFor(async () => (await s.get()).status, 404);
    expect(r.status).to.equal(404);
    expect(r.elapsed).to.be.below(1000);
  });

  it('a user disabled by another connection is refused as soon as PostgreSQL notifies', async () => {
    const s = await session('viewer');
    expect((await s.get()).status).to.equal(200);
    await other.query('update users set disabled_at = now() where id = $1', [s.user.id]);
    const r = await waitFor(async () => (await s.get()).status, 401);
    expect(r.status).to.equal(401);
  });

  it("this daemon's own writes (including inside transactions) apply on the very next request", async () => {
    const s = await session('owner');
    const owner2 = await createUser(t.app.services, { org: s.org.slug, role: 'owner' });
    expect((await s.get()).status).to.equal(200);
    // Demote through the service (a transaction locking the owner rows), then ask immediately.
    await t.app.services.orgs.setMemberRole(SYSTEM_ACTOR, s.org.slug, s.user.id, 'viewer');
    const patch = await fetch(`${t.baseUrl}/api/v1/organizations/${s.org.slug}`, { method: 'PATCH', headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'renamed' }) });
    expect(patch.status).to.equal(403);
    await t.app.services.orgs.delete(SYSTEM_ACTOR, s.org.slug);
    expect((await s.get()).status).to.equal(404);
    expect(owner2.id).to.be.a('string');
  });

  it('while the change feed is disconnected nothing is served from the cache', async () => {
    const s = await session('viewer');
    expect((await s.get()).status).to.equal(200);
    await other.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'sentinel-change-feed' and datname = current_database()");
    await sleep(50);
    // Without notifications this change can only be seen by reading through.
    await other.query('set session_replication_role = replica'); // triggers off: no NOTIFY for the next write
    await other.query('delete from memberships where org_id = $1 and user_id = $2', [s.org.id, s.user.id]);
    await other.query('set session_replication_role = origin');
    expect((await s.get()).status).to.equal(404);
    // It reconnects by itself and caches again.
    const back = Date.now();
    while (Date.now() - back < 5000) {
      const { rows } = await other.query("select 1 from pg_stat_activity where application_name = 'sentinel-change-feed' and datname = current_database()");
      if (rows.length) break;
      await sleep(50);
    }
    const s2 = await session('viewer');
    await s2.get();
    const queries: string[] = [];
    const count = (q: { sql: string }) => queries.push(q.sql);
    t.app.db.knex.on('query', count);
    try {
      await s2.get();
    } finally {
      t.app.db.knex.off('query', count);
    }
    expect(queries).to.deep.equal([]);
  });

  it('watch(): writes through the same knex invalidate synchronously, without waiting for NOTIFY', async () => {
    const cache = new ReadCache({ connected: true });
    cache.watch(t.app.db.knex);
    const org = await createOrg(t.app.services);
    let loads = 0;
    const read = () =>
      cache.get(['organizations'], org.slug, async () => {
        loads++;
        return (await t.app.db.knex('organizations').where({ slug: org.slug }).first('name')).name as string;
      });
    expect(await read()).to.equal(org.name);
    expect(await read()).to.equal(org.name);
    expect(loads).to.equal(1);
    await t.app.db.knex('organizations').where({ id: org.id }).update({ name: 'Renamed' });
    expect(await read()).to.equal('Renamed');
    expect(loads).to.equal(2);
    // Inside a transaction the new value is only visible after COMMIT, which clears the cache.
    await t.app.db.knex.transaction(async (trx) => {
      await trx('organizations').where({ id: org.id }).update({ name: 'In a transaction' });
      expect(await read()).to.equal('Renamed');
    });
    expect(await read()).to.equal('In a transaction');
    // A disconnected signal bypasses the cache entirely.
    const off = new ReadCache({ connected: false });
    let offLoads = 0;
    await off.get(['organizations'], 'x', async () => ++offLoads);
    await off.get(['organizations'], 'x', async () => ++offLoads);
    expect(offLoads).to.equal(2);
  });
});
