import { expect } from 'chai';
import { generate } from 'otplib';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createUser } from '../support/factories.js';
import { ApiClient, expectProblem, type Answer } from '../support/http.js';
import { createTenant, type Tenant } from '../support/tenants.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Account takeover paths (issue 8, item 3), over real HTTP on a real PostgreSQL:
 * - a stolen access token alone cannot turn 2FA on (the password is needed too);
 * - wrong current passwords count against the per-account login failure limit;
 * - an org admin adding an email creates an invitation the invitee accepts, with the same
 *   answer and the same database work whether or not the address has an account;
 * - `bearer` in any case is accepted; an API key on a user-only route is 403.
 */

/** The per-account failure limit these tests run with (the numbers: 6 wrong, the 7th refused). */
const FAILURES = 6;
const ENV = {
  SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000',
  SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '100000',
  SENTINEL_RATE_LIMITS_LOGIN_FAILURES_PER_ACCOUNT: String(FAILURES),
  SENTINEL_RATE_LIMITS_LOGIN_WINDOW: '15m',
};

interface Sent {
  status: string;
  id: string;
  email: string;
  role: string;
  expires_at: string;
}
interface Invitation {
  id: string;
  org: { slug: string; name: string };
  role: string;
  created_at: string;
  expires_at: string;
}
interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('account takeover paths', () => {
  let url: string;
  let t: TestApp;
  let api: ApiClient;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, ENV);
    api = t.api.withUserAgent('account-takeover/1.0');
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  const login = (email: string, password: string) => api.call<{ access_token: string }>('POST', '/auth/login', null, { email, password });

  describe('stolen access token', () => {
    it('cannot turn 2FA on without the password: the owner still signs in with the password alone', async () => {
      const owner = await createUser(t.app.services);
      const stolen = (await api.login(owner.email, owner.password)).access_token;

      // The thief sets up a seed of their own (setup alone changes nothing about login) …
      const setup = await api.call<{ secret: string }>('POST', '/auth/totp/setup', stolen);
      expect(setup.status, setup.text).to.equal(200);
      const code = await generate({ secret: setup.body.secret });
      // … and cannot confirm it: no password, or a guessed one.
      const noPassword = await api.call('POST', '/auth/totp/enable', stolen, { code });
      expectProblem(noPassword, 400, 'enable without password');
      expect(noPassword.text).to.contain('body/password');
      const guessed = await api.call('POST', '/auth/totp/enable', stolen, { code, password: 'guessed-password' });
      expectProblem(guessed, 400, 'enable with a wrong password');
      expect((guessed.body as { errors: { path: string }[] }).errors.map((e) => e.path)).to.deep.equal(['body/password']);

      const state = await api.call<{ enabled: boolean }>('GET', '/auth/totp', stolen);
      expect(state.body.enabled).to.equal(false);
      expect((await login(owner.email, owner.password)).status, 'the owner signs in without a code').to.equal(200);

      // Control: the owner, who knows the password, can enable with the same kind of request.
      const mine = (await api.login(owner.email, owner.password)).access_token;
      const own = await api.call<{ secret: string }>('POST', '/auth/totp/setup', mine);
      const enabled = await api.call<{ recovery_codes: string[] }>('POST', '/auth/totp/enable', mine, { code: await generate({ secret: own.body.secret }), password: owner.password });
      expect(enabled.status, enabled.text).to.equal(200);
      expect((await login(owner.email, owner.password)).status, 'now a code is needed').to.equal(401);
    });

    it(`${FAILURES} wrong current passwords → 429 with Retry-After on the next try (even the right one), and the account's logins are limited too`, async () => {
      const victim = await createUser(t.app.services);
      const bystander = await createUser(t.app.services);
      const stolen = (await api.login(victim.email, victim.password)).access_token;
      const change = (current: string) => api.call('POST', '/users/me/password', stolen, { current_password: current, new_password: 'taken-over-password' });

      for (let i = 1; i <= FAILURES; i++) {
        const res = await change(`guess-${i}`);
        expectProblem(res, 400, `wrong current password #${i}`);
      }
      const res = await change(victim.password);
      expect(res.status, res.text).to.equal(429);
      expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
      expect(Number(res.headers.get('retry-after'))).to.be.within(1, 15 * 60);
      // The password did not change, and logging in to the account waits out the window too.
      const locked = await login(victim.email, victim.password);
      expectProblem(locked, 429, "the victim's login");
      // Per account: another user's login is not affected.
      expect((await login(bystander.email, bystander.password)).status).to.equal(200);
      const failed = await query<{ n: number }>(url, "select count(*)::int as n from audit_log where target_id = $1 and action = 'user.password_change_failed'", [victim.id]);
      expect(failed[0].n).to.equal(FAILURES);
    });

    it(`${FAILURES * 4} wrong current passwords sent at once: at most ${FAILURES} are checked (400), the rest 429 with Retry-After; the right one is 429 afterwards`, async () => {
      const victim = await createUser(t.app.services);
      const stolen = (await api.login(victim.email, victim.password)).access_token;
      const change = (current: string) => api.call('POST', '/users/me/password', stolen, { current_password: current, new_password: 'taken-over-password' });
      // All in flight together: a limit checked before bcrypt and counted after it lets every one through.
      const answers = await Promise.all(Array.from({ length: FAILURES * 4 }, (_, i) => change(`parallel-guess-${i}`)));
      const wrong = answers.filter((r) => r.status === 400);
      const refused = answers.filter((r) => r.status === 429);
      expect(wrong.length + refused.length, answers.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join('\n')).to.equal(answers.length);
      expect(wrong.length, 'password checks that ran').to.be.at.most(FAILURES);
      for (const r of refused) expect(Number(r.headers.get('retry-after')), 'Retry-After').to.be.within(1, 15 * 60);
      expectProblem(await change(victim.password), 429, 'the right password after the limit');
      expectProblem(await login(victim.email, victim.password), 429, "the victim's login");
    });

    it('wrong passwords on 2FA enable count in the same per-account limit as password changes and logins', async () => {
      const victim = await createUser(t.app.services);
      const stolen = (await api.login(victim.email, victim.password)).access_token;
      const setup = await api.call<{ secret: string }>('POST', '/auth/totp/setup', stolen);
      // Half through 2FA enable (its own code-attempt limit is 5), half through password change.
      for (let i = 0; i < FAILURES / 2; i++) {
        expectProblem(await api.call('POST', '/auth/totp/enable', stolen, { code: await generate({ secret: setup.body.secret }), password: `guess-${i}` }), 400, `enable #${i}`);
      }
      for (let i = 0; i < FAILURES / 2; i++) {
        expectProblem(await api.call('POST', '/users/me/password', stolen, { current_password: `guess-${i}`, new_password: 'taken-over-password' }), 400, `change #${i}`);
      }
      expectProblem(await login(victim.email, victim.password), 429, 'login after the limit');
      expectProblem(await api.call('POST', '/auth/totp/enable', stolen, { code: await generate({ secret: setup.body.secret }), password: victim.password }), 429, 'enable after the limit');
      expect((await api.call<{ enabled: boolean }>('GET', '/auth/totp', stolen)).body.enabled).to.equal(false);
    });
  });

  describe('invitations instead of pulling in other tenants’ users', () => {
    let A: Tenant;
    let B: Tenant;
    let adminA: string;

    before(async () => {
      A = await createTenant(t.app.services, { slugPrefix: 'inv-a' });
      B = await createTenant(t.app.services, { slugPrefix: 'inv-b' });
      adminA = (await api.login(A.owner.email, A.owner.password)).access_token;
    });

    const membership = (orgId: string, userId: string) => query<{ role: string }>(url, 'select role from memberships where org_id = $1 and user_id = $2', [orgId, userId]);

    it("A's admin adding B's user creates an invitation, not a membership; B's user lists it, accepts it and then sees org A", async () => {
      const bUser = B.viewer;
      const bToken = (await api.login(bUser.email, bUser.password)).access_token;
      const sent = await api.call<Sent>('POST', `/organizations/${A.org.slug}/members`, adminA, { email: bUser.email, role: 'editor' });
      expect(sent.status, sent.text).to.equal(202);
      expect(sent.body).to.include({ status: 'invited', email: bUser.email.toLowerCase(), role: 'editor' });
      expect(await membership(A.org.id, bUser.id), 'no membership before accepting').to.deep.equal([]);
      expect((await api.call('GET', `/organizations/${A.org.slug}`, bToken)).status, 'A is invisible to B’s user before accepting').to.equal(404);

      const listed = await api.call<Page<Invitation>>('GET', '/auth/invitations', bToken);
      expect(listed.status, listed.text).to.equal(200);
      expect(listed.body.items.map((i) => ({ id: i.id, org: i.org, role: i.role }))).to.deep.equal([{ id: sent.body.id, org: { slug: A.org.slug, name: A.org.name }, role: 'editor' }]);
      expect(listed.body.next_cursor).to.equal(null);

      // Nobody else can see, accept or decline it: A's own owner, B's owner, A's admin key.
      const other = (await api.login(B.owner.email, B.owner.password)).access_token;
      expect((await api.call<Page<Invitation>>('GET', '/auth/invitations', other)).body.items).to.deep.equal([]);
      for (const [who, token] of [['B’s owner', other], ['A’s owner', adminA]] as const) {
        expectProblem(await api.call('POST', `/auth/invitations/${sent.body.id}/accept`, token), 404, `${who} accepts`);
        expectProblem(await api.call('POST', `/auth/invitations/${sent.body.id}/decline`, token), 404, `${who} declines`);
      }
      expectProblem(await api.call('POST', `/auth/invitations/${sent.body.id}/accept`, A.key.secret), 403, 'an API key accepts');
      expect(await membership(A.org.id, B.owner.id)).to.deep.equal([]);

      const accepted = await api.call<{ org: { slug: string }; role: string }>('POST', `/auth/invitations/${sent.body.id}/accept`, bToken);
      expect(accepted.status, accepted.text).to.equal(200);
      expect(accepted.body).to.deep.equal({ org: { slug: A.org.slug, name: A.org.name }, role: 'editor' });
      expect(await membership(A.org.id, bUser.id)).to.deep.equal([{ role: 'editor' }]);
      const orgs = await api.call<Page<{ slug: string }>>('GET', '/organizations', bToken);
      expect(orgs.body.items.map((o) => o.slug)).to.include.members([A.org.slug, B.org.slug]);
      expect((await api.call('GET', `/organizations/${A.org.slug}/members`, bToken)).status).to.equal(200);
      // Used up.
      expect((await api.call<Page<Invitation>>('GET', '/auth/invitations', bToken)).body.items).to.deep.equal([]);
      expectProblem(await api.call('POST', `/auth/invitations/${sent.body.id}/accept`, bToken), 404, 'accepting twice');

      const audit = await query<{ action: string; actor_user_id: string; details: Record<string, unknown> }>(
        url,
        "select action, actor_user_id, details from audit_log where org_id = $1 and action like 'invitation.%' order by id",
        [A.org.id],
      );
      expect(audit.map((r) => [r.action, r.actor_user_id])).to.deep.equal([
        ['invitation.create', A.owner.id],
        ['invitation.accept', bUser.id],
      ]);
      expect(audit[1].details).to.include({ invitation_id: sent.body.id, role: 'editor' });
    });

    it('the invitee may decline (no membership); an expired invitation can be neither listed nor accepted', async () => {
      const bUser = B.coOwner;
      const bToken = (await api.login(bUser.email, bUser.password)).access_token;
      const first = await api.call<Sent>('POST', `/organizations/${A.org.slug}/members`, adminA, { email: bUser.email, role: 'viewer' });
      expect(first.status).to.equal(202);
      expect((await api.call('POST', `/auth/invitations/${first.body.id}/decline`, bToken)).status).to.equal(204);
      expect(await membership(A.org.id, bUser.id)).to.deep.equal([]);
      expectProblem(await api.call('POST', `/auth/invitations/${first.body.id}/accept`, bToken), 404, 'accepting a declined invitation');
      const declined = await query(url, "select 1 from audit_log where org_id = $1 and action = 'invitation.decline' and actor_user_id = $2", [A.org.id, bUser.id]);
      expect(declined).to.have.length(1);

      const second = await api.call<Sent>('POST', `/organizations/${A.org.slug}/members`, adminA, { email: bUser.email, role: 'viewer' });
      expect(second.status).to.equal(202);
      await query(url, "update invitations set expires_at = now() - interval '1 second' where org_id = $1 and id = $2", [A.org.id, second.body.id]);
      expect((await api.call<Page<Invitation>>('GET', '/auth/invitations', bToken)).body.items).to.deep.equal([]);
      expectProblem(await api.call('POST', `/auth/invitations/${second.body.id}/accept`, bToken), 404, 'accepting an expired invitation');
      expect(await membership(A.org.id, bUser.id)).to.deep.equal([]);
    });

    it('an address with an account and one without get the identical answer, from the identical SQL statements, in comparable time', async () => {
      const knex = t.app.db.knex;
      const add = async (email: string): Promise<{ res: Answer<Sent>; sql: string[]; ms: number }> => {
        const sql: string[] = [];
        const onQuery = (q: { sql: string }) => sql.push(q.sql);
        knex.on('query', onQuery);
        const t0 = performance.now();
        try {
          const res = await api.call<Sent>('POST', `/organizations/${A.org.slug}/members`, adminA, { email, role: 'viewer' });
          return { res, sql, ms: performance.now() - t0 };
        } finally {
          knex.off('query', onQuery);
        }
      };
      // Warm the caches (session, org, role) so both sides below start from the same state.
      await add(`warm-up-${A.org.slug}@example.test`);
      const existing = [B.owner.email, B.outsider.email, A.outsider.email];
      const rounds = 7;
      const known: Awaited<ReturnType<typeof add>>[] = [];
      const unknown: Awaited<ReturnType<typeof add>>[] = [];
      for (let i = 0; i < rounds; i++) {
        // Existing addresses repeat after the first three: a repeat refreshes the invitation, as below for unknown ones.
        known.push(await add(existing[i % existing.length]));
        unknown.push(await add(`nobody-${i % existing.length}-${A.org.slug}@example.test`));
      }
      const shape = (r: Answer<Sent>) => ({ status: r.status, contentType: r.contentType, keys: Object.keys(r.body as object).sort(), state: r.body.status, role: r.body.role });
      for (let i = 0; i < rounds; i++) {
        expect(shape(known[i].res), `round ${i}: ${known[i].res.text}`).to.deep.equal(shape(unknown[i].res));
        expect(known[i].res.status).to.equal(202);
        expect(known[i].sql, `round ${i}: the statements run for an existing and an unknown address`).to.deep.equal(unknown[i].sql);
      }
      expect(known[0].sql.length, 'statements were recorded').to.be.greaterThan(0);
      // None of these became members.
      const members = await query<{ n: number }>(url, 'select count(*)::int as n from memberships where org_id = $1', [A.org.id]);
      expect(members[0].n).to.equal(A.memberIds.length + 1); // + B's viewer, who accepted above

      const a = median(known.map((k) => k.ms));
      const b = median(unknown.map((k) => k.ms));
      expect(Math.abs(a - b), `median ${a.toFixed(1)} ms vs ${b.toFixed(1)} ms`).to.be.below(Math.max(10, 0.5 * Math.max(a, b)));
    });

    it('superadmins and the CLI (`sentinel user grant`) still add users of other orgs directly', async () => {
      const su = await createUser(t.app.services, { superadmin: true });
      const root = (await api.login(su.email, su.password)).access_token;
      const direct = await api.call<{ user_id: string; role: string }>('POST', `/organizations/${A.org.slug}/members`, root, { email: B.owner.email, role: 'viewer' });
      expect(direct.status, direct.text).to.equal(201);
      expect(await membership(A.org.id, B.owner.id)).to.deep.equal([{ role: 'viewer' }]);

      const r = await cli(['user', 'grant', B.outsider.email, '--org', A.org.slug, '--role', 'editor'], testEnv(url));
      expect(r.code, r.stderr).to.equal(0);
      expect(await membership(A.org.id, B.outsider.id)).to.deep.equal([{ role: 'editor' }]);
    });
  });

  describe('Authorization header', () => {
    it('accepts the Bearer scheme in any case (RFC 7235), for user tokens and API keys', async () => {
      const u = await createUser(t.app.services);
      const token = (await api.login(u.email, u.password)).access_token;
      const key = await createApiKey(t.app.services, (await createTenant(t.app.services, { slugPrefix: 'hdr' })).org.slug, ['read']);
      for (const scheme of ['bearer', 'BEARER', 'bEaReR', 'Bearer']) {
        const me = await api.raw('GET', '/api/v1/auth/me', { headers: { authorization: `${scheme} ${token}` } });
        expect(me.status, `${scheme} + access token`).to.equal(200);
        const orgs = await api.raw('GET', '/api/v1/organizations', { headers: { authorization: `${scheme} ${key.secret}` } });
        expect(orgs.status, `${scheme} + API key`).to.equal(200);
      }
      expect((await api.raw('GET', '/api/v1/auth/me', { headers: { authorization: `Bearerx ${token}` } })).status).to.equal(401);
    });

    it('an API key on a user-only route is 403 problem+json (not 401); the same key works where keys are accepted', async () => {
      const tenant = await createTenant(t.app.services, { slugPrefix: 'key' });
      const userOnly = t.app.registry!.routes().filter((r) => r.auth === 'user');
      expect(userOnly.length).to.be.greaterThan(5);
      // The key is valid: an `any` route of its own org answers 200.
      expect((await api.call('GET', `/organizations/${tenant.org.slug}`, tenant.key.secret)).status).to.equal(200);
      for (const [label, path] of [
        ['GET /auth/me', '/auth/me'],
        ['GET /auth/invitations', '/auth/invitations'],
        ['GET /users', '/users'],
      ]) {
        const res = await api.call('GET', path, tenant.key.secret);
        expectProblem(res, 403, `API key ${label}`);
        expect((res.body as { request_id?: string }).request_id, label).to.be.a('string');
      }
      const create = await api.call('POST', `/organizations/${tenant.org.slug}/api-keys`, tenant.key.secret, { name: 'made-by-a-key' });
      expectProblem(create, 403, 'API key creates a key');
    });
  });
});
