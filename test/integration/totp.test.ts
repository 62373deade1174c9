import { expect } from 'chai';
import { generate } from 'otplib';
import { TotpRepository } from '../../src/features/totp/totp-repository.js';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { createUser } from '../support/factories.js';
import type { Answer } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * TOTP two-factor authentication over real HTTP: enrolment, login with a code or a recovery code,
 * replay refusal, the ±1 step window, attempt throttling, disable, and no secret at rest or in logs.
 * Codes are computed here with otplib from the secret the API hands out, like an authenticator app.
 */

const PERIOD = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowSec = () => Math.floor(Date.now() / 1000);

/** Codes are computed here and checked there: keep both sides on the same 30 s step. */
async function awayFromStepBoundary(): Promise<void> {
  const into = (Date.now() / 1000) % PERIOD;
  if (into > PERIOD - 4) await sleep((PERIOD - into) * 1000 + 250);
}

/** The code an authenticator shows `offset` steps from now. */
const codeAt = (secret: string, offset = 0): Promise<string> => generate({ secret, epoch: nowSec() + offset * PERIOD });

/** A 6-digit code that is valid for none of the steps in or near the window. */
async function wrongCode(secret: string): Promise<string> {
  const near = new Set(await Promise.all([-2, -1, 0, 1, 2].map((o) => codeAt(secret, o))));
  for (let n = 0; ; n++) {
    const c = String(n).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}


describe('TOTP two-factor authentication', () => {
  let url: string;
  let t: TestApp;
  /** Every secret and recovery code handed out, to look for them at rest and in the logs. */
  const issued: string[] = [];

  async function call<T = Record<string, unknown>>(method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<Answer<T>> {
    const res = await t.api.call<T | null>(method, path, opts.token ?? null, opts.body);
    // An empty answer (204) reads as {} so that property checks on it fail by value, not by TypeError.
    return { ...res, body: res.body ?? ({} as T) };
  }

  const login = (email: string, password: string, totp_code?: string) =>
    call<{ access_token: string; detail?: string; errors?: { path: string }[] }>('POST', '/auth/login', { body: { email, password, ...(totp_code ? { totp_code } : {}) } });

  async function newUser() {
    const u = await createUser(t.app.services);
    const res = await login(u.email, u.password);
    expect(res.status).to.equal(200);
    return { ...u, token: res.body.access_token };
  }

  async function setup(token: string) {
    const res = await call<{ secret: string; otpauth_url: string }>('POST', '/auth/totp/setup', { token });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    issued.push(res.body.secret);
    return res.body;
  }

  /**
   * A user with 2FA on. Enrolled with the previous step's code, so the code the app shows right
   * now is still unused and can be the first login code.
   */
  async function enrolledUser() {
    const u = await newUser();
    const { secret } = await setup(u.token);
    await awayFromStepBoundary();
    const res = await call<{ recovery_codes: string[] }>('POST', '/auth/totp/enable', { token: u.token, body: { code: await codeAt(secret, -1), password: u.password } });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    issued.push(...res.body.recovery_codes);
    return { ...u, secret, recoveryCodes: res.body.recovery_codes };
  }

  const statusOf = async (token: string) => (await call<{ enabled: boolean; pending: boolean; recovery_codes_remaining: number }>('GET', '/auth/totp', { token })).body;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '1000', SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000' });
  });
  after(async () => {
    await t.stop();
    await dropDatabase(url);
  });

  it('setup returns a base32 secret and an otpauth URL naming Sentinel and the user, without turning 2FA on', async () => {
    const u = await newUser();
    const { secret, otpauth_url } = await setup(u.token);
    expect(secret).to.match(/^[A-Z2-7]{32,}$/);
    const uri = new URL(otpauth_url);
    expect(uri.protocol).to.equal('otpauth:');
    expect(uri.host).to.equal('totp');
    expect(decodeURIComponent(uri.pathname.slice(1))).to.equal(`Sentinel:${u.email}`);
    expect(uri.searchParams.get('issuer')).to.equal('Sentinel');
    expect(uri.searchParams.get('secret')).to.equal(secret);
    expect(await statusOf(u.token)).to.include({ enabled: false, pending: true });
    expect((await login(u.email, u.password)).status, 'login still needs no code before enable').to.equal(200);

    // A second setup before enabling replaces the pending secret.
    const again = await setup(u.token);
    expect(again.secret).to.not.equal(secret);
  });

  it('enable refuses a wrong code and leaves 2FA off; enable without a setup is a conflict', async () => {
    const u = await newUser();
    expect((await call('POST', '/auth/totp/enable', { token: u.token, body: { code: '123456', password: u.password } })).status).to.equal(409);
    const { secret } = await setup(u.token);
    await awayFromStepBoundary();
    const res = await call<{ errors: { path: string }[] }>('POST', '/auth/totp/enable', { token: u.token, body: { code: await wrongCode(secret), password: u.password } });
    expect(res.status).to.equal(400);
    expect(res.body.errors.map((e) => e.path)).to.include('body/code');
    expect(await statusOf(u.token)).to.include({ enabled: false });
    expect((await login(u.email, u.password)).status).to.equal(200);
  });

  it('enable needs the current password: a stolen access token alone cannot turn 2FA on (400 body/password, or missing → 400)', async () => {
    const u = await newUser();
    const { secret } = await setup(u.token);
    await awayFromStepBoundary();
    const code = await codeAt(secret);
    const missing = await call<{ errors: { path: string }[] }>('POST', '/auth/totp/enable', { token: u.token, body: { code } });
    expect(missing.status).to.equal(400);
    expect(missing.body.errors.map((e) => e.path)).to.include('body/password');
    const wrong = await call<{ errors: { path: string }[] }>('POST', '/auth/totp/enable', { token: u.token, body: { code, password: 'not-the-password' } });
    expect(wrong.status, JSON.stringify(wrong.body)).to.equal(400);
    expect(wrong.body.errors.map((e) => e.path)).to.deep.equal(['body/password']);
    expect(await statusOf(u.token)).to.include({ enabled: false });
    expect((await login(u.email, u.password)).status, 'the owner still signs in without a code').to.equal(200);
    const failed = (await t.app.db.knex('audit_log').where({ target_id: u.id, action: 'totp.enable_failed' }).select('details')) as { details: Record<string, unknown> }[];
    expect(failed.map((r) => r.details)).to.deep.equal([{ reason: 'wrong password' }]);
  });

  it('enable with a right code returns 10 distinct recovery codes; login then requires totp_code', async () => {
    const u = await enrolledUser();
    expect(u.recoveryCodes).to.have.length(10);
    expect(new Set(u.recoveryCodes).size).to.equal(10);
    for (const c of u.recoveryCodes) expect(c).to.match(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
    expect(await statusOf(u.token)).to.include({ enabled: true, pending: false, recovery_codes_remaining: 10 });

    const res = await login(u.email, u.password);
    expect(res.status).to.equal(401);
    expect(res.body.detail).to.contain('totp_code');
    expect(res.body.errors?.map((e) => e.path)).to.include('body/totp_code');
  });

  it('accepts a valid code once: the same code again is refused (replay)', async () => {
    const u = await enrolledUser();
    const code = await codeAt(u.secret);
    expect((await login(u.email, u.password, code)).status).to.equal(200);
    const replay = await login(u.email, u.password, code);
    expect(replay.status).to.equal(401);
    // The code from the enable call (previous step) is spent too.
    expect((await login(u.email, u.password, await codeAt(u.secret, -1))).status).to.equal(401);
    // The next step's code is new, so it passes.
    expect((await login(u.email, u.password, await codeAt(u.secret, 1))).status).to.equal(200);
  });

  it('lets exactly one of several concurrent logins with the same code through', async () => {
    const u = await enrolledUser();
    const code = await codeAt(u.secret);
    const results = await Promise.all(Array.from({ length: 5 }, () => login(u.email, u.password, code)));
    expect(results.map((r) => r.status).sort()).to.deep.equal([200, 401, 401, 401, 401]);
  });

  it('claims a time step with one atomic compare-and-set: one winner among concurrent claims, never an older step', async () => {
    const u = await enrolledUser();
    const repo = new TotpRepository(t.app.db.knex);
    const step = Math.floor(nowSec() / PERIOD) + 1;
    const wins = await Promise.all(Array.from({ length: 10 }, () => repo.claimStep(u.id, step)));
    expect(wins.filter(Boolean)).to.have.length(1);
    expect(await repo.claimStep(u.id, step - 1)).to.equal(false);
    expect(await repo.claimStep(u.id, step + 1)).to.equal(true);
    expect((await repo.find(u.id))?.last_step).to.equal(step + 1);
  });

  it('accepts codes one step away and refuses codes two steps away', async () => {
    const u = await enrolledUser();
    // As if enrolled long ago, so only the window (not replay protection) decides below.
    await t.app.db.knex('user_totp').where({ user_id: u.id }).update({ last_step: Math.floor(nowSec() / PERIOD) - 100 });
    await awayFromStepBoundary();
    expect((await login(u.email, u.password, await codeAt(u.secret, -2))).status, 'two steps back').to.equal(401);
    expect((await login(u.email, u.password, await codeAt(u.secret, 2))).status, 'two steps ahead').to.equal(401);
    expect((await login(u.email, u.password, await codeAt(u.secret, -1))).status, 'one step back').to.equal(200);
    expect((await login(u.email, u.password, await codeAt(u.secret, 1))).status, 'one step ahead').to.equal(200);
  });

  it('accepts each recovery code once (any case, dashes optional) and counts them down', async () => {
    const u = await enrolledUser();
    const [first, second] = u.recoveryCodes;
    expect((await login(u.email, u.password, first)).status).to.equal(200);
    expect((await login(u.email, u.password, first)).status, 'a spent recovery code').to.equal(401);
    expect((await login(u.email, u.password, second.replace(/-/g, '').toUpperCase())).status).to.equal(200);
    expect((await login(u.email, u.password, second)).status).to.equal(401);
    expect((await statusOf(u.token)).recovery_codes_remaining).to.equal(8);
    // Another user's recovery code is no use here.
    const other = await enrolledUser();
    expect((await login(u.email, u.password, other.recoveryCodes[0])).status).to.equal(401);
  });

  it('throttles code guessing per account with 429 and Retry-After, even for the right code', async () => {
    const u = await newUser();
    const { secret } = await setup(u.token);
    const wrong = await wrongCode(secret);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await call('POST', '/auth/totp/enable', { token: u.token, body: { code: wrong, password: u.password } })).status);
    expect(statuses).to.deep.equal([400, 400, 400, 400, 400]);
    await awayFromStepBoundary();
    const blocked = await call('POST', '/auth/totp/enable', { token: u.token, body: { code: await codeAt(secret), password: u.password } });
    expect(blocked.status).to.equal(429);
    expect(Number(blocked.headers.get('retry-after'))).to.be.within(1, 300);
    expect(blocked.headers.get('ratelimit-limit')).to.equal('5');
    expect(await statusOf(u.token)).to.include({ enabled: false });

    // Guessing at login is throttled the same way.
    const v = await enrolledUser();
    const vWrong = await wrongCode(v.secret);
    const login429: number[] = [];
    for (let i = 0; i < 7; i++) login429.push((await login(v.email, v.password, vWrong)).status);
    expect(login429.slice(0, 5)).to.deep.equal([401, 401, 401, 401, 401]);
    expect(login429.slice(5)).to.deep.equal([429, 429]);
    const locked = await login(v.email, v.password, await codeAt(v.secret));
    expect(locked.status).to.equal(429);
    expect(Number(locked.headers.get('retry-after'))).to.be.greaterThan(0);
  });

  it('disable needs a current code or a recovery code; afterwards login needs no code', async () => {
    const u = await enrolledUser();
    expect((await call('POST', '/auth/totp/disable', { token: u.token, body: {} })).status, 'no code').to.equal(400);
    expect((await call('POST', '/auth/totp/disable', { token: u.token, body: { code: await wrongCode(u.secret) } })).status, 'wrong code').to.equal(400);
    expect((await statusOf(u.token)).enabled).to.equal(true);
    expect((await login(u.email, u.password)).status).to.equal(401);

    const res = await call('POST', '/auth/totp/disable', { token: u.token, body: { code: await codeAt(u.secret) } });
    expect(res.status).to.equal(204);
    expect(await statusOf(u.token)).to.include({ enabled: false, pending: false, recovery_codes_remaining: 0 });
    expect((await login(u.email, u.password)).status).to.equal(200);
    const [{ n }] = await t.app.db.knex('recovery_codes').where({ user_id: u.id }).count<{ n: string | number }[]>({ n: '*' });
    expect(Number(n), 'recovery codes left in the table').to.equal(0);
    expect((await call('POST', '/auth/totp/disable', { token: u.token, body: { code: await codeAt(u.secret) } })).status, 'already off').to.equal(409);

    // A recovery code also proves possession.
    const w = await enrolledUser();
    expect((await call('POST', '/auth/totp/disable', { token: w.token, body: { code: w.recoveryCodes[3] } })).status).to.equal(204);
    expect((await login(w.email, w.password)).status).to.equal(200);

    const actions = (await t.app.db.knex('audit_log').where({ target_id: u.id }).select('action')).map((r: { action: string }) => r.action);
    expect(actions).to.include.members(['totp.setup', 'totp.enable', 'totp.disable']);
  });

  it('refuses setup while 2FA is enabled (409)', async () => {
    const u = await enrolledUser();
    const res = await call('POST', '/auth/totp/setup', { token: u.token });
    expect(res.status).to.equal(409);
    // The enrolment is untouched: the old secret still works.
    expect((await login(u.email, u.password, await codeAt(u.secret))).status).to.equal(200);
  });

  // Last, so it sees every secret and code the tests above were given.
  it('keeps no TOTP secret or recovery code in plain text in the database or the logs', async () => {
    expect(issued.length).to.be.greaterThan(20);
    const rows = await t.app.db.knex.raw(`select (select json_agg(t) from user_totp t) as totp, (select json_agg(r) from recovery_codes r) as codes, (select json_agg(a) from audit_log a) as audit`);
    const dump = JSON.stringify(rows.rows).toLowerCase();
    expect(dump).to.contain('secret_enc');
    const logs = t.logs.text.toLowerCase();
    for (const s of issued) {
      for (const form of [s.toLowerCase(), s.toLowerCase().replace(/-/g, '')]) {
        expect(dump, 'database').to.not.contain(form);
        expect(logs, 'logs').to.not.contain(form);
      }
    }
  });

  it('sentinel user reset-2fa turns 2FA off for a locked-out user (operator recovery); unknown user exits 3', async () => {
    const w = await enrolledUser();
    expect((await login(w.email, w.password)).status).to.equal(401);
    const env = testEnv(url);
    const r = await cli(['user', 'reset-2fa', w.email], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(`two-factor authentication turned off for ${w.email}\n`);
    expect((await login(w.email, w.password)).status).to.equal(200);
    expect(await t.app.db.knex('recovery_codes').where({ user_id: w.id }).count('* as n').first()).to.deep.equal({ n: 0 });
    expect((await cli(['user', 'reset-2fa', w.email], env)).stdout).to.contain('had no two-factor authentication');
    expect((await cli(['user', 'reset-2fa', 'ghost@example.test'], env)).code).to.equal(3);
    const actions = (await t.app.db.knex('audit_log').where({ target_id: w.id }).select('action')).map((x: { action: string }) => x.action);
    expect(actions).to.include('totp.reset');
  });
});
