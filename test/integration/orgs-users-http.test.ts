import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import type { Answer, Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Organizations, members, users and the audit log over HTTP, through the same services the CLI
 * uses: RBAC per the permission table, 404 across tenants, pagination, last-owner protection,
 * and changes that take effect on the caller's next request.
 */

const MANY = { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '100000' };
const UA = 'orgs-users-test/1.0';

interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
interface Org {
  id: string;
  slug: string;
  name: string;
  limits: { retention_days?: Record<string, number>; ingest_points_per_second?: number; max_series?: number };
  created_at: string;
  updated_at: string;
}
interface Member {
  user_id: string;
  email: string;
  name: string | null;
  role: string;
  created_at: string;
}
interface UserOut {
  id: string;
  email: string;
  name: string | null;
  superadmin: boolean;
  disabled: boolean;
  memberships: { org: string; role: string }[];
}
interface AuditEntry {
  id: string;
  org_id: string | null;
  actor: { type: string; id: string | null };
  action: string;
  target: { type: string; id: string | null } | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
  created_at: string;
}
interface Tokens {
  access_token: string;
  refresh_token: string;
}

const uniq = () => randomBytes(3).toString('hex');

describe('organizations, members, users and audit log over HTTP', () => {
  let url: string;
  let t: TestApp;

  // The suite's own User-Agent: the audit rows must record it.
  const call = <T = Problem>(method: string, path: string, token: string | null, body?: unknown) => t.api.withUserAgent(UA).call<T>(method, path, token, body);

  async function login(email: string, password: string): Promise<Tokens> {
    const res = await call<Tokens>('POST', '/auth/login', null, { email, password });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body;
  }

  /** Walk a list with limit=1, checking every page holds at most one item. */
  async function walk<T>(path: string, token: string): Promise<T[]> {
    const all: T[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 500; i++) {
      const sep = path.includes('?') ? '&' : '?';
      const res: Answer<Page<T>> = await call<Page<T>>('GET', `${path}${sep}limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, token);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.items.length).to.be.at.most(1);
      all.push(...res.body.items);
      if (res.body.next_cursor === null) return all;
      cursor = res.body.next_cursor;
    }
    throw new Error('pagination did not end');
  }

  function expectErrorAt(res: Answer<Problem>, status: number, path: string): void {
    expect(res.status, JSON.stringify(res.body)).to.equal(status);
    expect(res.body.errors?.map((e) => e.path), JSON.stringify(res.body)).to.include(path);
  }

  // Org A: alice owner, adam admin, eddie editor, vera viewer. Org B: bob owner. root: superadmin.
  let orgA: Org;
  let orgB: Org;
  const who: Record<'root' | 'alice' | 'adam' | 'eddie' | 'vera' | 'bob' | 'loner', { id: string; email: string; password: string; token: string }> = {} as never;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, MANY);
    const s = t.app.services;
    orgA = (await createOrg(s, `a-${uniq()}`)) as Org;
    orgB = (await createOrg(s, `b-${uniq()}`)) as Org;
    const specs = {
      root: { superadmin: true },
      alice: { org: orgA.slug, role: 'owner' },
      adam: { org: orgA.slug, role: 'admin' },
      eddie: { org: orgA.slug, role: 'editor' },
      vera: { org: orgA.slug, role: 'viewer' },
      bob: { org: orgB.slug, role: 'owner' },
      loner: {},
    } as const;
    for (const [name, spec] of Object.entries(specs)) {
      const u = await createUser(s, { email: `${name}-${uniq()}@example.test`, ...spec });
      const tokens = await login(u.email, u.password);
      who[name as keyof typeof who] = { id: u.id, email: u.email, password: u.password, token: tokens.access_token };
    }
  });
  after(async () => {
    await t.stop();
    await dropDatabase(url);
  });

  describe('GET/POST /organizations', () => {
    it('a superadmin sees every org, a user only the orgs they belong to', async () => {
      const all = await call<Page<Org>>('GET', '/organizations?limit=1000', who.root.token);
      expect(all.status).to.equal(200);
      expect(all.body.items.map((o) => o.slug)).to.include.members([orgA.slug, orgB.slug]);
      const alice = await call<Page<Org>>('GET', '/organizations', who.alice.token);
      expect(alice.body.items.map((o) => o.slug)).to.deep.equal([orgA.slug]);
      const bob = await call<Page<Org>>('GET', '/organizations', who.bob.token);
      expect(bob.body.items.map((o) => o.slug)).to.deep.equal([orgB.slug]);
      const loner = await call<Page<Org>>('GET', '/organizations', who.loner.token);
      expect(loner.body).to.deep.equal({ items: [], next_cursor: null });
      expect((await call('GET', '/organizations', null)).status).to.equal(401);
    });

    it('an API key sees only its own org', async () => {
      const key = await call<{ secret: string }>('POST', `/organizations/${orgA.slug}/api-keys`, who.alice.token, { name: 'lister', scopes: ['read'] });
      expect(key.status, JSON.stringify(key.body)).to.equal(201);
      const res = await call<Page<Org>>('GET', '/organizations', key.body.secret);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.items.map((o) => o.slug)).to.deep.equal([orgA.slug]);
      expect((await call('GET', `/organizations/${orgB.slug}`, key.body.secret)).status).to.equal(404);
    });

    it('paginates with limit=1 through every org in slug order; bad cursor or limit → 400', async () => {
      for (let i = 0; i < 3; i++) await createOrg(t.app.services, `p${i}-${uniq()}`);
      const full = await call<Page<Org>>('GET', '/organizations?limit=1000', who.root.token);
      const walked = await walk<Org>('/organizations', who.root.token);
      expect(walked.map((o) => o.slug)).to.deep.equal(full.body.items.map((o) => o.slug));
      expect(walked.length).to.be.at.least(5);
      expect([...walked.map((o) => o.slug)].sort()).to.deep.equal(walked.map((o) => o.slug));
      expectErrorAt(await call('GET', '/organizations?cursor=***', who.root.token), 400, 'query/cursor');
      expectErrorAt(await call('GET', '/organizations?limit=0', who.root.token), 400, 'query/limit');
      expectErrorAt(await call('GET', '/organizations?limit=1001', who.root.token), 400, 'query/limit');
      expectErrorAt(await call('GET', '/organizations?color=red', who.root.token), 400, 'query/color');
    });

    it('POST: superadmins create (201, with limits); others 403; bad input 400 naming the field; taken slug 409', async () => {
      const slug = `new-${uniq()}`;
      const created = await call<Org>('POST', '/organizations', who.root.token, { slug, name: 'New Org', limits: { retention_days: { metrics: 30 }, max_series: 5000 } });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      expect(created.body).to.include({ slug, name: 'New Org' });
      expect(created.body.limits).to.deep.equal({ retention_days: { metrics: 30 }, max_series: 5000 });
      expect(created.body.created_at).to.match(/Z$/);
      // The creator is not made a member (documented): a superadmin can act in every org anyway.
      expect((await call<Page<Member>>('GET', `/organizations/${slug}/members`, who.root.token)).body.items).to.deep.equal([]);

      expect((await call('POST', '/organizations', who.alice.token, { slug: `x-${uniq()}` })).status).to.equal(403);
      expect((await call('POST', '/organizations', who.root.token, { slug })).status).to.equal(409);
      expectErrorAt(await call('POST', '/organizations', who.root.token, { slug: `y-${uniq()}`, colour: 'red' }), 400, 'body/colour');
      expectErrorAt(await call('POST', '/organizations', who.root.token, { slug: 'Not A Slug' }), 400, 'body/slug');
      expectErrorAt(await call('POST', '/organizations', who.root.token, { name: 'no slug' }), 400, 'body/slug');
      expectErrorAt(await call('POST', '/organizations', who.root.token, { slug: `z-${uniq()}`, limits: { retention_days: { metrics: 0 } } }), 400, 'body/limits/retention_days/metrics');
      expectErrorAt(await call('POST', '/organizations', who.root.token, { slug: `z-${uniq()}`, limits: { max_series: 1e12 } }), 400, 'body/limits/max_series');
      expectErrorAt(await call('POST', '/organizations', who.root.token, { slug: `z-${uniq()}`, limits: { cpu: 3 } }), 400, 'body/limits/cpu');
    });
  });

  describe('GET/PATCH/DELETE /organizations/{org}', () => {
    it('GET: any member (viewer and up) 200; another org or a missing one → 404 without its data', async () => {
      const res = await call<Org>('GET', `/organizations/${orgA.slug}`, who.vera.token);
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ id: orgA.id, slug: orgA.slug });
      const other = await call('GET', `/organizations/${orgA.slug}`, who.bob.token);
      expect(other.status).to.equal(404);
      expect(JSON.stringify(other.body)).to.not.contain(orgA.id).and.not.contain(orgA.name);
      const missing = await call('GET', '/organizations/no-such-org', who.bob.token);
      expect(missing.status).to.equal(404);
      // Same answer for "exists but not yours" and "does not exist" (apart from the slug asked for).
      expect(other.body.detail!.replace(orgA.slug, 'X')).to.equal(missing.body.detail!.replace('no-such-org', 'X'));
      expect((await call('GET', `/organizations/${orgA.slug}`, who.loner.token)).status).to.equal(404);
      expect((await call('GET', `/organizations/${orgA.slug}`, who.root.token)).status).to.equal(200);
    });

    it('PATCH: admins rename and merge limits key by key (null removes); editors and viewers 403', async () => {
      const org = await createOrg(t.app.services, `patch-${uniq()}`);
      for (const [name, role] of [['adam', 'admin'], ['eddie', 'editor'], ['vera', 'viewer']] as const) {
        await t.app.services.orgs.setMemberRole({ kind: 'system' }, org.slug, who[name].id, role, {}, true);
      }
      const a = await call<Org>('PATCH', `/organizations/${org.slug}`, who.adam.token, { name: 'Renamed', limits: { retention_days: { metrics: 30, logs: 7 }, ingest_points_per_second: 5000 } });
      expect(a.status, JSON.stringify(a.body)).to.equal(200);
      expect(a.body.name).to.equal('Renamed');
      expect(a.body.limits).to.deep.equal({ retention_days: { metrics: 30, logs: 7 }, ingest_points_per_second: 5000 });
      const b = await call<Org>('PATCH', `/organizations/${org.slug}`, who.adam.token, { limits: { retention_days: { logs: null, events: 90 }, max_series: 100000 } });
      expect(b.body.limits).to.deep.equal({ retention_days: { metrics: 30, events: 90 }, ingest_points_per_second: 5000, max_series: 100000 });
      expect(b.body.name).to.equal('Renamed');
      const c = await call<Org>('PATCH', `/organizations/${org.slug}`, who.adam.token, { limits: { ingest_points_per_second: null } });
      expect(c.body.limits).to.deep.equal({ retention_days: { metrics: 30, events: 90 }, max_series: 100000 });

      expect((await call('PATCH', `/organizations/${org.slug}`, who.eddie.token, { name: 'nope' })).status).to.equal(403);
      expect((await call('PATCH', `/organizations/${org.slug}`, who.vera.token, { name: 'nope' })).status).to.equal(403);
      expect((await call<Org>('GET', `/organizations/${org.slug}`, who.vera.token)).body.name).to.equal('Renamed');
    });

    it('PATCH: unknown fields, bad names and out-of-bounds limits → 400 naming the field', async () => {
      const p = `/organizations/${orgA.slug}`;
      expectErrorAt(await call('PATCH', p, who.alice.token, { slug: 'renamed' }), 400, 'body/slug');
      expectErrorAt(await call('PATCH', p, who.alice.token, { name: '' }), 400, 'body/name');
      expectErrorAt(await call('PATCH', p, who.alice.token, { name: 'x'.repeat(201) }), 400, 'body/name');
      expectErrorAt(await call('PATCH', p, who.alice.token, { limits: { retention_days: { metrics: 0 } } }), 400, 'body/limits/retention_days/metrics');
      expectErrorAt(await call('PATCH', p, who.alice.token, { limits: { retention_days: { logs: 3651 } } }), 400, 'body/limits/retention_days/logs');
      expectErrorAt(await call('PATCH', p, who.alice.token, { limits: { retention_days: { traces: 5 } } }), 400, 'body/limits/retention_days/traces');
      expectErrorAt(await call('PATCH', p, who.alice.token, { limits: { ingest_points_per_second: 1.5 } }), 400, 'body/limits/ingest_points_per_second');
      expectErrorAt(await call('PATCH', p, who.alice.token, { limits: { max_series: '100' } }), 400, 'body/limits/max_series');
      expectErrorAt(await call('PATCH', p, who.alice.token, { limits: { max_series: -1 } }), 400, 'body/limits/max_series');
      const after = await call<Org>('GET', p, who.alice.token);
      expect(after.body.name).to.equal(orgA.name);
      expect(after.body.limits).to.deep.equal({});
    });

    it('DELETE: owners only (admins 403); afterwards 404', async () => {
      const org = await createOrg(t.app.services, `del-${uniq()}`);
      await t.app.services.orgs.setMemberRole({ kind: 'system' }, org.slug, who.alice.id, 'owner', {}, true);
      await t.app.services.orgs.setMemberRole({ kind: 'system' }, org.slug, who.adam.id, 'admin', {}, true);
      expect((await call('DELETE', `/organizations/${org.slug}`, who.adam.token)).status).to.equal(403);
      expect((await call('DELETE', `/organizations/${org.slug}`, who.bob.token)).status).to.equal(404);
      expect((await call('DELETE', `/organizations/${org.slug}`, who.alice.token)).status).to.equal(204);
      expect((await call('GET', `/organizations/${org.slug}`, who.alice.token)).status).to.equal(404);
      expect((await call('DELETE', `/organizations/${org.slug}`, who.root.token)).status).to.equal(404);
    });
  });

  describe('members', () => {
    it('GET: viewers list members with roles; limit=1 walks all; bad cursor → 400', async () => {
      const res = await call<Page<Member>>('GET', `/organizations/${orgA.slug}/members`, who.vera.token);
      expect(res.status).to.equal(200);
      const roles = Object.fromEntries(res.body.items.map((m) => [m.email, m.role]));
      expect(roles).to.deep.equal({ [who.alice.email]: 'owner', [who.adam.email]: 'admin', [who.eddie.email]: 'editor', [who.vera.email]: 'viewer' });
      const walked = await walk<Member>(`/organizations/${orgA.slug}/members`, who.vera.token);
      expect(walked.map((m) => m.user_id)).to.deep.equal(res.body.items.map((m) => m.user_id));
      expectErrorAt(await call('GET', `/organizations/${orgA.slug}/members?cursor=%%%`, who.vera.token), 400, 'query/cursor');
    });

    it('POST: superadmins add by email or user_id (201); admins invite by email (202, no membership yet) and may not add by user_id (403); owner role only by owners; bad input → 400; duplicate 409; unknown user 404 for superadmins', async () => {
      const org = await createOrg(t.app.services, `mem-${uniq()}`);
      await t.app.services.orgs.setMemberRole({ kind: 'system' }, org.slug, who.alice.id, 'owner', {}, true);
      await t.app.services.orgs.setMemberRole({ kind: 'system' }, org.slug, who.adam.id, 'admin', {}, true);
      const p = `/organizations/${org.slug}/members`;
      const memberEmails = async () => (await call<Page<Member>>('GET', `${p}?limit=1000`, who.alice.token)).body.items.map((m) => m.email);

      // Superadmins add directly.
      const byEmail = await call<Member>('POST', p, who.root.token, { email: who.eddie.email.toUpperCase(), role: 'editor' });
      expect(byEmail.status, JSON.stringify(byEmail.body)).to.equal(201);
      expect(byEmail.body).to.include({ user_id: who.eddie.id, role: 'editor' });
      const byId = await call<Member>('POST', p, who.root.token, { user_id: who.vera.id, role: 'viewer' });
      expect(byId.status).to.equal(201);
      expect(byId.body).to.include({ email: who.vera.email, role: 'viewer' });
      expect((await call('POST', p, who.root.token, { email: 'ghost@example.test', role: 'viewer' })).status).to.equal(404);
      expect((await call('POST', p, who.root.token, { user_id: who.vera.id, role: 'editor' })).status).to.equal(409);

      // An admin's email gets an invitation: 202, and the user is not a member until they accept.
      const invited = await call<{ status: string; email: string; role: string; id: string; expires_at: string }>('POST', p, who.adam.token, { email: who.loner.email.toUpperCase(), role: 'viewer' });
      expect(invited.status, JSON.stringify(invited.body)).to.equal(202);
      expect(invited.body).to.include({ status: 'invited', email: who.loner.email.toLowerCase(), role: 'viewer' });
      expect(Date.parse(invited.body.expires_at) - Date.now()).to.be.within(7 * 86_400_000 - 60_000, 7 * 86_400_000 + 60_000);
      expect(await memberEmails()).to.not.include(who.loner.email);
      expect((await call('POST', p, who.adam.token, { email: 'ghost@example.test', role: 'viewer' })).status, 'unknown address: invited all the same').to.equal(202);
      // By user_id: refused before the id is looked at (an unknown id gets the same answer).
      for (const user_id of [who.loner.id, '00000000-0000-4000-8000-000000000000']) {
        const res = await call('POST', p, who.adam.token, { user_id, role: 'viewer' });
        expect(res.status, JSON.stringify(res.body)).to.equal(403);
        expect(res.body.detail).to.contain('invite them by email');
      }

      expect((await call('POST', p, who.adam.token, { email: who.loner.email, role: 'owner' })).status).to.equal(403);
      expect((await call('POST', p, who.vera.token, { email: who.loner.email, role: 'viewer' })).status).to.equal(403);
      expect((await call('POST', p, who.eddie.token, { email: who.loner.email, role: 'viewer' })).status).to.equal(403);
      // A member of the admin's own org (which the admin can list anyway): 409, as before.
      expect((await call('POST', p, who.adam.token, { email: who.vera.email, role: 'editor' })).status).to.equal(409);
      expectErrorAt(await call('POST', p, who.adam.token, { email: 'not an address', role: 'viewer' }), 400, 'body/email');
      expectErrorAt(await call('POST', p, who.adam.token, { user_id: who.loner.id, role: 'god' }), 400, 'body/role');
      expectErrorAt(await call('POST', p, who.adam.token, { user_id: who.loner.id }), 400, 'body/role');
      expectErrorAt(await call('POST', p, who.adam.token, { user_id: 'not-a-uuid', role: 'viewer' }), 400, 'body/user_id');
      expectErrorAt(await call('POST', p, who.adam.token, { user_id: who.loner.id, role: 'viewer', admin: true }), 400, 'body/admin');
      expect((await call('POST', p, who.adam.token, { user_id: who.loner.id, email: who.loner.email, role: 'viewer' })).status).to.equal(400);
      expect((await call('POST', p, who.adam.token, { role: 'viewer' })).status).to.equal(400);
      expect(await memberEmails()).to.not.include(who.loner.email);

      // An owner may invite an owner; accepting makes the invitee one.
      const owner = await call<{ id: string; role: string }>('POST', p, who.alice.token, { email: who.loner.email, role: 'owner' });
      expect(owner.status).to.equal(202);
      expect(owner.body.role).to.equal('owner');
      const accepted = await call<{ org: { slug: string }; role: string }>('POST', `/auth/invitations/${owner.body.id}/accept`, who.loner.token);
      expect(accepted.status, JSON.stringify(accepted.body)).to.equal(200);
      expect(accepted.body).to.deep.equal({ org: { slug: org.slug, name: org.name }, role: 'owner' });
      const roles = await query<{ role: string }>(url, 'select role from memberships where org_id = $1 and user_id = $2', [org.id, who.loner.id]);
      expect(roles).to.deep.equal([{ role: 'owner' }]);
      // The earlier invitation of the same address was replaced by this one.
      expect((await call('POST', `/auth/invitations/${invited.body.id}/accept`, who.loner.token)).status).to.equal(404);
      await t.app.services.orgs.removeMember({ kind: 'system' }, org.slug, who.loner.id);
    });

    it('PATCH: admins change roles but cannot grant or touch owner; the last owner cannot be demoted (409)', async () => {
      const org = await createOrg(t.app.services, `role-${uniq()}`);
      const sys = { kind: 'system' } as const;
      await t.app.services.orgs.setMemberRole(sys, org.slug, who.alice.id, 'owner', {}, true);
      await t.app.services.orgs.setMemberRole(sys, org.slug, who.adam.id, 'admin', {}, true);
      await t.app.services.orgs.setMemberRole(sys, org.slug, who.eddie.id, 'editor', {}, true);
      const m = (u: { id: string }) => `/organizations/${org.slug}/members/${u.id}`;

      const down = await call<Member>('PATCH', m(who.eddie), who.adam.token, { role: 'viewer' });
      expect(down.status, JSON.stringify(down.body)).to.equal(200);
      expect(down.body.role).to.equal('viewer');
      expect((await call('PATCH', m(who.eddie), who.adam.token, { role: 'owner' })).status).to.equal(403);
      expect((await call('PATCH', m(who.alice), who.adam.token, { role: 'viewer' })).status).to.equal(403);
      expect((await call('PATCH', m(who.adam), who.eddie.token, { role: 'viewer' })).status).to.equal(403);

      const last = await call('PATCH', m(who.alice), who.alice.token, { role: 'admin' });
      expect(last.status).to.equal(409);
      expect(last.body.detail).to.contain('last owner');
      expect((await call('PATCH', m(who.eddie), who.alice.token, { role: 'owner' })).status).to.equal(200);
      // Two owners now: alice may step down.
      expect((await call<Member>('PATCH', m(who.alice), who.alice.token, { role: 'admin' })).body.role).to.equal('admin');
      const roles = await query<{ role: string }>(url, 'select role from memberships where org_id = $1 and user_id = $2', [org.id, who.alice.id]);
      expect(roles).to.deep.equal([{ role: 'admin' }]);

      expect((await call('PATCH', m(who.loner), who.eddie.token, { role: 'viewer' })).status).to.equal(404);
      expectErrorAt(await call('PATCH', m(who.adam), who.eddie.token, { role: 'boss' }), 400, 'body/role');
      expectErrorAt(await call('PATCH', m(who.adam), who.eddie.token, { role: 'viewer', note: 'x' }), 400, 'body/note');
      expectErrorAt(await call('PATCH', `/organizations/${org.slug}/members/12345`, who.eddie.token, { role: 'viewer' }), 400, 'params/user_id');
    });

    it('DELETE: admins remove non-owners; owners only by owners; never the last owner; removal applies on the next request', async () => {
      const org = await createOrg(t.app.services, `rm-${uniq()}`);
      const sys = { kind: 'system' } as const;
      await t.app.services.orgs.setMemberRole(sys, org.slug, who.alice.id, 'owner', {}, true);
      await t.app.services.orgs.setMemberRole(sys, org.slug, who.adam.id, 'admin', {}, true);
      await t.app.services.orgs.setMemberRole(sys, org.slug, who.vera.id, 'viewer', {}, true);
      const m = (u: { id: string }) => `/organizations/${org.slug}/members/${u.id}`;

      expect((await call('GET', `/organizations/${org.slug}`, who.vera.token)).status).to.equal(200);
      expect((await call('DELETE', m(who.alice), who.adam.token)).status).to.equal(403);
      expect((await call('DELETE', m(who.adam), who.vera.token)).status).to.equal(403);
      const last = await call('DELETE', m(who.alice), who.alice.token);
      expect(last.status).to.equal(409);
      expect(last.body.detail).to.contain('last owner');

      expect((await call('DELETE', m(who.vera), who.adam.token)).status).to.equal(204);
      // The same access token, the very next request: the org is gone from vera's view.
      expect((await call('GET', `/organizations/${org.slug}`, who.vera.token)).status).to.equal(404);
      expect((await call('GET', `/organizations/${org.slug}/members`, who.vera.token)).status).to.equal(404);
      expect((await call<Page<Org>>('GET', '/organizations', who.vera.token)).body.items.map((o) => o.slug)).to.not.include(org.slug);
      expect((await call('DELETE', m(who.vera), who.adam.token)).status).to.equal(404);
      expectErrorAt(await call('DELETE', `/organizations/${org.slug}/members/nope`, who.adam.token), 400, 'params/user_id');
    });
  });

  describe('tenant isolation', () => {
    it("another org's owner gets 404 from every org route, and the org is unchanged", async () => {
      const samples: Record<string, unknown> = {
        'post /organizations/{org}/members': { email: who.loner.email, role: 'viewer' },
        'patch /organizations/{org}': { name: 'hijacked' },
        'patch /organizations/{org}/members/{user_id}': { role: 'viewer' },
      };
      const routes = t.app.registry!.routes().filter((r) => /^\/organizations\/\{org\}(\/members(\/\{user_id\})?|\/audit-log)?$/.test(r.path));
      expect(routes.length).to.equal(8);
      const snapshot = async () => JSON.stringify([await query(url, 'select * from organizations where id = $1', [orgA.id]), await query(url, 'select * from memberships where org_id = $1 order by user_id', [orgA.id])]);
      const before = await snapshot();
      for (const r of routes) {
        const path = r.path.replace('{org}', orgA.slug).replace('{user_id}', who.adam.id);
        const body = samples[`${r.method} ${r.path}`];
        if (r.method === 'post' || r.method === 'patch') expect(body, `a sample body for ${r.method} ${r.path}`).to.not.equal(undefined);
        const res = await call(r.method.toUpperCase(), path, who.bob.token, body);
        expect(res.status, `${r.method.toUpperCase()} ${r.path}: ${JSON.stringify(res.body)}`).to.equal(404);
        expect(JSON.stringify(res.body)).to.not.contain(orgA.id).and.not.contain(who.adam.email);
      }
      expect(await snapshot()).to.equal(before);
    });
  });

  describe('users', () => {
    it('GET /users: superadmins only; limit=1 walks everyone by email; bad cursor 400', async () => {
      const res = await call<Page<UserOut>>('GET', '/users?limit=1000', who.root.token);
      expect(res.status).to.equal(200);
      expect(res.body.items.map((u) => u.email)).to.include.members(Object.values(who).map((w) => w.email));
      expect(JSON.stringify(res.body)).to.not.contain('password');
      const alice = res.body.items.find((u) => u.id === who.alice.id)!;
      expect(alice.memberships).to.deep.include({ org: orgA.slug, role: 'owner' });
      const walked = await walk<UserOut>('/users', who.root.token);
      expect(walked.map((u) => u.id)).to.deep.equal(res.body.items.map((u) => u.id));
      const members = await call<Page<UserOut>>(`GET`, `/users?org=${orgB.slug}`, who.root.token);
      expect(members.body.items.map((u) => u.id)).to.deep.equal([who.bob.id]);
      expect((await call('GET', '/users', who.alice.token)).status).to.equal(403);
      expectErrorAt(await call('GET', '/users?cursor=!!', who.root.token), 400, 'query/cursor');
    });

    it('POST /users: superadmins create (201); others 403; bad input 400 naming the field; duplicate 409', async () => {
      const email = `made-${uniq()}@example.test`;
      const res = await call<UserOut>('POST', '/users', who.root.token, { email, password: 'a fine password', name: 'Made' });
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      expect(res.body).to.include({ email, name: 'Made', superadmin: false, disabled: false });
      expect(JSON.stringify(res.body)).to.not.contain('a fine password');
      await login(email, 'a fine password');

      expect((await call('POST', '/users', who.alice.token, { email: `x-${uniq()}@example.test`, password: 'whatever123' })).status).to.equal(403);
      expect((await call('POST', '/users', who.root.token, { email: email.toUpperCase(), password: 'whatever123' })).status).to.equal(409);
      expectErrorAt(await call('POST', '/users', who.root.token, { email: `y-${uniq()}@example.test`, password: 'whatever123', role: 'owner' }), 400, 'body/role');
      expectErrorAt(await call('POST', '/users', who.root.token, { email: `y-${uniq()}@example.test`, password: 'short' }), 400, 'body/password');
      expectErrorAt(await call('POST', '/users', who.root.token, { email: `y-${uniq()}@example.test` }), 400, 'body/password');
      expectErrorAt(await call('POST', '/users', who.root.token, { email: 'not-an-email', password: 'whatever123' }), 400, 'body/email');
      const long = await call('POST', '/users', who.root.token, { email: `y-${uniq()}@example.test`, password: 'é'.repeat(37) });
      expect(long.status).to.equal(400);
      expect(long.body.detail).to.contain('74 bytes long; the limit is 72 bytes');
    });

    it('GET /users/{id}: yourself or a superadmin; anyone else → 404; bad id → 400', async () => {
      const self = await call<UserOut>('GET', `/users/${who.vera.id}`, who.vera.token);
      expect(self.status).to.equal(200);
      expect(self.body).to.include({ id: who.vera.id, email: who.vera.email });
      expect((await call<UserOut>('GET', `/users/${who.vera.id}`, who.root.token)).body.email).to.equal(who.vera.email);
      const other = await call('GET', `/users/${who.alice.id}`, who.vera.token);
      expect(other.status).to.equal(404);
      expect(JSON.stringify(other.body)).to.not.contain(who.alice.email);
      expect((await call('GET', '/users/00000000-0000-4000-8000-000000000000', who.root.token)).status).to.equal(404);
      expectErrorAt(await call('GET', '/users/me', who.root.token), 400, 'params/id');
    });

    it('PATCH /users/{id}: own name yes, own disabled/superadmin 403, others 404; superadmins change anything but lock themselves out', async () => {
      const u = await createUser(t.app.services);
      const tok = (await login(u.email, u.password)).access_token;
      const named = await call<UserOut>('PATCH', `/users/${u.id}`, tok, { name: 'New Name' });
      expect(named.status, JSON.stringify(named.body)).to.equal(200);
      expect(named.body.name).to.equal('New Name');
      expect((await call('PATCH', `/users/${u.id}`, tok, { superadmin: true })).status).to.equal(403);
      expect((await call('PATCH', `/users/${u.id}`, tok, { disabled: false })).status).to.equal(403);
      expect((await call('PATCH', `/users/${who.alice.id}`, tok, { name: 'pwned' })).status).to.equal(404);
      expectErrorAt(await call('PATCH', `/users/${u.id}`, tok, { email: 'new@example.test' }), 400, 'body/email');
      expectErrorAt(await call('PATCH', `/users/${u.id}`, tok, { name: 'x'.repeat(201) }), 400, 'body/name');
      expect((await call<UserOut>('PATCH', `/users/${u.id}`, who.root.token, { name: null })).body.name).to.equal(null);
      const promoted = await call<UserOut>('PATCH', `/users/${u.id}`, who.root.token, { superadmin: true });
      expect(promoted.body.superadmin).to.equal(true);
      // Effective at once: the same token now lists every user.
      expect((await call('GET', '/users', tok)).status).to.equal(200);
      expect((await call('PATCH', `/users/${u.id}`, tok, { superadmin: false })).status).to.equal(409);
      expect((await call('PATCH', `/users/${u.id}`, tok, { disabled: true })).status).to.equal(409);
      expect((await call('GET', '/users', tok)).status).to.equal(200);
    });

    it('disable (PATCH disabled: true) → the next request 401, refresh refused, login refused; enable → login works', async () => {
      const u = await createUser(t.app.services);
      const tokens = await login(u.email, u.password);
      expect((await call('GET', '/auth/me', tokens.access_token)).status).to.equal(200);
      const res = await call<UserOut>('PATCH', `/users/${u.id}`, who.root.token, { disabled: true });
      expect(res.status).to.equal(200);
      expect(res.body.disabled).to.equal(true);
      expect((await call('GET', '/auth/me', tokens.access_token)).status).to.equal(401);
      expect((await call('POST', '/auth/refresh', null, { refresh_token: tokens.refresh_token })).status).to.equal(401);
      expect((await call('POST', '/auth/login', null, { email: u.email, password: u.password })).status).to.equal(401);
      expect((await call<UserOut>('PATCH', `/users/${u.id}`, who.root.token, { disabled: false })).body.disabled).to.equal(false);
      const again = await login(u.email, u.password);
      expect((await call('GET', '/auth/me', again.access_token)).status).to.equal(200);
    });

    it('DELETE /users/{id}: superadmins only; not yourself; not the last owner of an org; their tokens die', async () => {
      const u = await createUser(t.app.services);
      const tokens = await login(u.email, u.password);
      // Like GET and PATCH: another user's id is 404 to a non-superadmin, never 403.
      expect((await call('DELETE', `/users/${u.id}`, who.alice.token)).status).to.equal(404);
      expect((await call('DELETE', `/users/${who.alice.id}`, who.alice.token)).status).to.equal(403);
      expect((await call('DELETE', `/users/${who.root.id}`, who.root.token)).status).to.equal(409);
      const owner = await call('DELETE', `/users/${who.bob.id}`, who.root.token);
      expect(owner.status).to.equal(409);
      expect(owner.body.detail).to.contain(orgB.slug);
      expect((await call('DELETE', `/users/${u.id}`, who.root.token)).status).to.equal(204);
      expect((await call('GET', '/auth/me', tokens.access_token)).status).to.equal(401);
      expect((await call('GET', `/users/${u.id}`, who.root.token)).status).to.equal(404);
      expect((await call('DELETE', `/users/${u.id}`, who.root.token)).status).to.equal(404);
      expectErrorAt(await call('DELETE', '/users/xyz', who.root.token), 400, 'params/id');
    });

    it('POST /users/me/password: wrong current → 400; weak new → 400; success ends every session and the new password works', async () => {
      const u = await createUser(t.app.services, { password: 'the old password' });
      const tokens = await login(u.email, 'the old password');
      const second = await login(u.email, 'the old password');
      const p = '/users/me/password';
      expectErrorAt(await call('POST', p, tokens.access_token, { current_password: 'wrong password', new_password: 'the new password' }), 400, 'body/current_password');
      expectErrorAt(await call('POST', p, tokens.access_token, { current_password: 'the old password', new_password: 'short' }), 400, 'body/new_password');
      expectErrorAt(await call('POST', p, tokens.access_token, { current_password: 'the old password', new_password: 'é'.repeat(37) }), 400, 'body/new_password');
      expectErrorAt(await call('POST', p, tokens.access_token, { current_password: 'the old password', new_password: 'the new password', confirm: 'x' }), 400, 'body/confirm');
      // The failures above changed nothing.
      expect((await call('GET', '/auth/me', tokens.access_token)).status).to.equal(200);

      expect((await call('POST', p, tokens.access_token, { current_password: 'the old password', new_password: 'the new password' })).status).to.equal(204);
      expect((await call('GET', '/auth/me', tokens.access_token)).status).to.equal(401);
      expect((await call('GET', '/auth/me', second.access_token)).status).to.equal(401);
      expect((await call('POST', '/auth/refresh', null, { refresh_token: tokens.refresh_token })).status).to.equal(401);
      expect((await call('POST', '/auth/refresh', null, { refresh_token: second.refresh_token })).status).to.equal(401);
      expect((await call('POST', '/auth/login', null, { email: u.email, password: 'the old password' })).status).to.equal(401);
      const fresh = await login(u.email, 'the new password');
      expect((await call('GET', '/auth/me', fresh.access_token)).status).to.equal(200);
    });

    it('CLI `user passwd` and `user disable` end HTTP sessions on the next request too', async () => {
      const env = testEnv(url);
      const u = await createUser(t.app.services);
      const tokens = await login(u.email, u.password);
      const r = await cli(['user', 'passwd', u.email, '--password-stdin'], env, 'set by the operator\n');
      expect(r.code, r.stderr).to.equal(0);
      expect((await call('GET', '/auth/me', tokens.access_token)).status).to.equal(401);
      expect((await call('POST', '/auth/refresh', null, { refresh_token: tokens.refresh_token })).status).to.equal(401);
      const again = await login(u.email, 'set by the operator');
      expect((await cli(['user', 'disable', u.email], env)).code).to.equal(0);
      expect((await call('GET', '/auth/me', again.access_token)).status).to.equal(401);
      expect((await call('POST', '/auth/refresh', null, { refresh_token: again.refresh_token })).status).to.equal(401);
    });
  });

  describe('CLI org limits (the same service as PATCH)', () => {
    it('shows and sets limits; bad keys or values → exit 2', async () => {
      const env = testEnv(url);
      const org = await createOrg(t.app.services, `lim-${uniq()}`);
      const set = await cli(['org', 'limits', org.slug, '--set', 'retention_days.metrics=30', '--set', 'ingest_points_per_second=5000', '--set', 'max_series=100000', '--json'], env);
      expect(set.code, set.stderr).to.equal(0);
      expect(JSON.parse(set.stdout)).to.deep.equal({ retention_days: { metrics: 30 }, ingest_points_per_second: 5000, max_series: 100000 });
      expect((await call<Org>('GET', `/organizations/${org.slug}`, who.root.token)).body.limits).to.deep.equal({ retention_days: { metrics: 30 }, ingest_points_per_second: 5000, max_series: 100000 });

      const table = await cli(['org', 'limits', org.slug], env);
      expect(table.code).to.equal(0);
      expect(table.stdout).to.match(/^LIMIT\s+VALUE\n/).and.match(/\nretention_days\.metrics\s+30\n/).and.match(/\nretention_days\.logs\s+default\n/).and.match(/\nmax_series\s+100000\n/);
      const cleared = await cli(['org', 'limits', org.slug, '--set', 'max_series=default', '--set', 'retention_days.logs=7', '--json'], env);
      expect(JSON.parse(cleared.stdout)).to.deep.equal({ retention_days: { metrics: 30, logs: 7 }, ingest_points_per_second: 5000 });

      for (const bad of ['retention_days.traces=5', 'cpu=1', 'max_series=lots', 'max_series=-5', 'max_series', 'retention_days.metrics=0', 'retention_days.metrics=99999', 'ingest_points_per_second=1.5']) {
        const r = await cli(['org', 'limits', org.slug, '--set', bad], env);
        expect(r.code, `${bad}: ${r.stderr}`).to.equal(2);
      }
      expect((await cli(['org', 'limits', 'no-such-org'], env)).code).to.equal(3);
      expect(JSON.parse((await cli(['org', 'limits', org.slug, '--json'], env)).stdout)).to.deep.equal({ retention_days: { metrics: 30, logs: 7 }, ingest_points_per_second: 5000 });
    });
  });

  describe('audit log', () => {
    it('GET /organizations/{org}/audit-log: each mutation with actor, target, ip, user agent, UTC time; newest first; admins only', async () => {
      const org = await createOrg(t.app.services, `aud-${uniq()}`);
      const sys = { kind: 'system' } as const;
      await t.app.services.orgs.setMemberRole(sys, org.slug, who.alice.id, 'owner', {}, true);
      await t.app.services.orgs.setMemberRole(sys, org.slug, who.vera.id, 'viewer', {}, true);
      const base = `/organizations/${org.slug}`;
      expect((await call('PATCH', base, who.alice.token, { name: 'Audited', limits: { max_series: 10 } })).status).to.equal(200);
      const invited = await call<{ id: string }>('POST', `${base}/members`, who.alice.token, { email: who.eddie.email, role: 'editor' });
      expect(invited.status).to.equal(202);
      expect((await call('POST', `/auth/invitations/${invited.body.id}/accept`, who.eddie.token)).status).to.equal(200);
      expect((await call('PATCH', `${base}/members/${who.eddie.id}`, who.alice.token, { role: 'admin' })).status).to.equal(200);
      expect((await call('DELETE', `${base}/members/${who.eddie.id}`, who.alice.token)).status).to.equal(204);

      const res = await call<Page<AuditEntry>>('GET', `${base}/audit-log`, who.alice.token);
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const mine = res.body.items.filter((e) => e.actor.id === who.alice.id);
      expect(mine.map((e) => e.action)).to.deep.equal(['member.remove', 'member.role_change', 'invitation.create', 'org.update']);
      const acceptance = res.body.items.filter((e) => e.actor.id === who.eddie.id);
      expect(acceptance.map((e) => [e.action, e.target, e.details])).to.deep.equal([
        ['invitation.accept', { type: 'user', id: who.eddie.id }, { invitation_id: invited.body.id, email: who.eddie.email.toLowerCase(), role: 'editor' }],
      ]);
      expect(mine[2].target).to.deep.equal({ type: 'invitation', id: invited.body.id });
      expect(mine[2].details).to.deep.equal({ email: who.eddie.email.toLowerCase(), role: 'editor' });
      for (const e of mine) {
        expect(e.actor).to.deep.equal({ type: 'user', id: who.alice.id });
        expect(e.org_id).to.equal(org.id);
        expect(e.ip).to.match(/127\.0\.0\.1$/);
        expect(e.user_agent).to.equal(UA);
        expect(e.created_at).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      }
      expect(mine[0].target).to.deep.equal({ type: 'user', id: who.eddie.id });
      expect(mine[1].details).to.include({ from: 'editor', to: 'admin' });
      expect(mine[3].details.changes).to.deep.equal({ name: { from: org.name, to: 'Audited' }, limits: { from: {}, to: { max_series: 10 } } });
      const ids = res.body.items.map((e) => BigInt(e.id));
      expect(ids).to.deep.equal([...ids].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)));
      // Only this org's entries.
      expect(res.body.items.every((e) => e.org_id === org.id)).to.equal(true);

      const walked = await walk<AuditEntry>(`${base}/audit-log`, who.alice.token);
      expect(walked.map((e) => e.id)).to.deep.equal(res.body.items.map((e) => e.id));
      expect((await call('GET', `${base}/audit-log`, who.vera.token)).status).to.equal(403);
      expect((await call('GET', `${base}/audit-log`, who.bob.token)).status).to.equal(404);
      expectErrorAt(await call('GET', `${base}/audit-log?cursor=${Buffer.from('abc').toString('base64url')}`, who.alice.token), 400, 'query/cursor');
      expectErrorAt(await call('GET', `${base}/audit-log?cursor=@@`, who.alice.token), 400, 'query/cursor');
    });

    it('GET /admin/audit-log: superadmins see user and org changes across the instance; never a password', async () => {
      const res = await call<Page<AuditEntry>>('GET', '/admin/audit-log?limit=1000', who.root.token);
      expect(res.status).to.equal(200);
      const actions = new Set(res.body.items.map((e) => e.action));
      for (const a of ['org.create', 'org.update', 'org.delete', 'member.add', 'member.role_change', 'member.remove', 'user.create', 'user.update', 'user.disable', 'user.enable', 'user.delete', 'user.password_change', 'user.password_change_failed']) {
        expect(actions, a).to.include(a);
      }
      const del = res.body.items.find((e) => e.action === 'user.delete')!;
      expect(del.actor).to.deep.equal({ type: 'user', id: who.root.id });
      expect(del.user_agent).to.equal(UA);
      const cliEntry = res.body.items.find((e) => e.action === 'user.password_change' && e.details.by === 'admin')!;
      expect(cliEntry.actor).to.deep.equal({ type: 'system', id: null });

      const everything = JSON.stringify(res.body) + JSON.stringify(await query(url, 'select * from audit_log'));
      for (const secret of ['the old password', 'the new password', 'a fine password', 'set by the operator', 'wrong password', ...Object.values(who).map((w) => w.password)]) {
        expect(everything).to.not.contain(secret);
      }
      expect((await call('GET', '/admin/audit-log', who.alice.token)).status).to.equal(403);
      const first = await call<Page<AuditEntry>>('GET', '/admin/audit-log?limit=2', who.root.token);
      expect(first.body.items).to.have.length(2);
      const next = await call<Page<AuditEntry>>('GET', `/admin/audit-log?limit=2&cursor=${first.body.next_cursor}`, who.root.token);
      expect(BigInt(next.body.items[0].id) < BigInt(first.body.items[1].id)).to.equal(true);
    });
  });
});
