import { expect } from 'chai';
import { createSecretKey, randomBytes } from 'node:crypto';
import { SignJWT, UnsecuredJWT, decodeJwt, generateKeyPair } from 'jose';
import pg from 'pg';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  token_type: string;
  user: { id: string; email: string };
}

const post = (t: TestApp, path: string, body: unknown, headers: Record<string, string> = {}) => t.api.post(path, null, body, headers);

async function login(t: TestApp, email: string, password: string, headers: Record<string, string> = {}): Promise<Tokens> {
  const res = await post(t, '/auth/login', { email, password }, headers);
  expect(res.status, res.text).to.equal(200);
  return res.body as Tokens;
}

const me = (t: TestApp, token: string) => t.api.get('/auth/me', token);

const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('authentication: login, tokens, sessions', () => {
  let url: string;
  let t: TestApp;
  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '100000', SENTINEL_RATE_LIMITS_LOGIN_FAILURES_PER_ACCOUNT: '1000' });
  });
  after(async () => {
    await t.stop();
    await dropDatabase(url);
  });

  it('login returns a Bearer access token (HS256 JWT with exp, iat, jti, sub, iss, aud) and an opaque refresh token', async () => {
    const u = await createUser(t.app.services);
    const tokens = await login(t, u.email, u.password);
    expect(tokens.token_type).to.equal('Bearer');
    expect(tokens.expires_in).to.equal(15 * 60);
    expect(tokens.user).to.deep.include({ id: u.id, email: u.email });
    const header = JSON.parse(Buffer.from(tokens.access_token.split('.')[0], 'base64url').toString());
    expect(header).to.deep.equal({ alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(tokens.access_token);
    expect(claims).to.include.keys('exp', 'iat', 'jti', 'sub', 'iss', 'aud', 'sid');
    expect(claims.exp! - claims.iat!).to.equal(15 * 60);
    expect(claims.sub).to.equal(u.id);
    expect(tokens.refresh_token).to.match(/^sntr_[A-Za-z0-9_-]{40,}$/);
    const res = await me(t, tokens.access_token);
    expect(res.status).to.equal(200);
    expect((res.body as { email: string }).email).to.equal(u.email);
  });

  it('unknown email and wrong password get the same answer in about the same time', async () => {
    const slow = await startTestApp(url, { SENTINEL_AUTH_BCRYPT_ROUNDS: '10', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '1000', SENTINEL_RATE_LIMITS_LOGIN_FAILURES_PER_ACCOUNT: '1000' });
    try {
      const u = await createUser(slow.app.services);
      const attempt = async (email: string) => {
        const t0 = performance.now();
        const res = await post(slow, '/auth/login', { email, password: 'wrong-password-123' });
        const ms = performance.now() - t0;
        const body = res.body as Record<string, unknown>;
        delete body.request_id;
        return { status: res.status, body, ms };
      };
      await attempt('warm-up@example.test');
      const wrong = [];
      const unknown = [];
      for (let i = 0; i < 5; i++) {
        wrong.push(await attempt(u.email));
        unknown.push(await attempt(`nobody-${i}@example.test`));
      }
      expect(wrong[0].status).to.equal(401);
      expect(unknown[0].body).to.deep.equal(wrong[0].body);
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[2];
      const a = median(wrong.map((x) => x.ms));
      const b = median(unknown.map((x) => x.ms));
      expect(Math.min(a, b)).to.be.greaterThan(10, 'bcrypt ran for both');
      expect(Math.abs(a - b) / Math.max(a, b)).to.be.below(0.5);
    } finally {
      await slow.stop();
    }
  });

  it('hostile tokens (built with an independent JOSE library) are all refused; the genuine one works', async () => {
    const u = await createUser(t.app.services);
    const genuine = (await login(t, u.email, u.password)).access_token;
    const c = decodeJwt(genuine);
    const good = { sid: c.sid, tv: c.tv };
    const key = createSecretKey(Buffer.from(t.app.config.auth.jwt_secret, 'utf8'));
    const now = Math.floor(Date.now() / 1000);
    const sign = (alg: string, k: Parameters<SignJWT['sign']>[0], f: (j: SignJWT) => SignJWT = (j) => j) =>
      f(new SignJWT(good).setProtectedHeader({ alg }).setSubject(u.id).setIssuer('sentinel').setAudience('sentinel-api').setIssuedAt().setJti('x').setExpirationTime(now + 600)).sign(k);
    const [h, p] = genuine.split('.');
    const rsa = await generateKeyPair('RS256');

    // The reconstruction itself is valid: otherwise every "refused" below would prove nothing.
    expect((await me(t, await sign('HS256', key))).status).to.equal(200);

    const hostile: Record<string, string> = {
      'alg none': new UnsecuredJWT({ ...good, sub: u.id, iss: 'sentinel', aud: 'sentinel-api', exp: now + 600 }).encode(),
      'stripped signature': `${h}.${p}.`,
      'tampered claim': `${h}.${b64url({ ...c, tv: (c.tv as number) + 0, superadmin: true, sub: '00000000-0000-0000-0000-000000000000' })}.${genuine.split('.')[2]}`,
      'wrong secret': await sign('HS256', createSecretKey(Buffer.from('not-the-secret-not-the-secret!!'))),
      'HS512 with the right secret': await sign('HS512', key),
      RS256: await sign('RS256', rsa.privateKey),
      expired: await sign('HS256', key, (j) => j.setIssuedAt(now - 1200).setExpirationTime(now - 600)),
      'future nbf': await sign('HS256', key, (j) => j.setNotBefore(now + 600)),
      'wrong audience': await sign('HS256', key, (j) => j.setAudience('someone-else')),
      'wrong issuer': await sign('HS256', key, (j) => j.setIssuer('someone-else')),
      'no exp': await new SignJWT(good).setProtectedHeader({ alg: 'HS256' }).setSubject(u.id).setIssuer('sentinel').setAudience('sentinel-api').setIssuedAt().sign(key),
      'garbage': 'abc.def.ghi',
    };
    for (const [name, token] of Object.entries(hostile)) {
      const res = await me(t, token);
      expect(res.status, name).to.equal(401);
      expect(res.headers.get('www-authenticate'), name).to.match(/^Bearer/);
      expect(res.headers.get('content-type'), name).to.match(/^application\/problem\+json/);
    }
    expect((await me(t, genuine)).status).to.equal(200);
  });

  it('refuses tokens in the query string and malformed Authorization headers', async () => {
    const u = await createUser(t.app.services);
    const { access_token } = await login(t, u.email, u.password);
    const q = await t.api.get(`/auth/me?access_token=${access_token}`);
    expect(q.status).to.equal(401);
    expect((q.body as { detail: string }).detail).to.contain('query string');
    const q2 = await t.api.get(`/auth/me?access_token=${access_token}`, access_token);
    expect(q2.status).to.equal(401);
    expect((await t.api.raw('GET', '/api/v1/auth/me', { headers: { authorization: `Basic ${access_token}` } })).status).to.equal(401);
    expect((await t.api.get('/auth/me')).status).to.equal(401);
    // An API key (valid or not) on a user-only route: a credential of the wrong kind → 403, not 401.
    const key = await me(t, 'snt_notarealkey');
    expect(key.status).to.equal(403);
    expect(key.headers.get('content-type')).to.match(/^application\/problem\+json/);
  });

  it('refresh rotates: the new pair works, the spent token is refused and revokes the whole family', async () => {
    const u = await createUser(t.app.services);
    const first = await login(t, u.email, u.password);
    const r1 = await post(t, '/auth/refresh', { refresh_token: first.refresh_token });
    expect(r1.status).to.equal(200);
    const second = r1.body as Tokens;
    expect(second.refresh_token).to.not.equal(first.refresh_token);
    expect((await me(t, second.access_token)).status).to.equal(200);

    const reuse = await post(t, '/auth/refresh', { refresh_token: first.refresh_token });
    expect(reuse.status).to.equal(401);
    // The thief's copy and the legitimate continuation are both dead now.
    expect((await me(t, second.access_token)).status).to.equal(401);
    expect((await post(t, '/auth/refresh', { refresh_token: second.refresh_token })).status).to.equal(401);
    // Other logins of the same user are untouched.
    const other = await login(t, u.email, u.password);
    expect((await me(t, other.access_token)).status).to.equal(200);
    expect((await post(t, '/auth/refresh', { refresh_token: 'sntr_unknown' })).status).to.equal(401);
    expect((await post(t, '/auth/refresh', {})).status).to.equal(400);
  });

  it('logout revokes the session: its access and refresh tokens fail on the next request', async () => {
    const u = await createUser(t.app.services);
    const s = await login(t, u.email, u.password);
    const out = await post(t, '/auth/logout', {}, { authorization: `Bearer ${s.access_token}` });
    expect(out.status).to.equal(204);
    expect((await me(t, s.access_token)).status).to.equal(401);
    expect((await post(t, '/auth/refresh', { refresh_token: s.refresh_token })).status).to.equal(401);
  });

  it('password change (CLI path) and disable take effect on the next request', async () => {
    const { SYSTEM_ACTOR } = await import('../../src/core/actor.js');
    const u = await createUser(t.app.services);
    const s = await login(t, u.email, u.password);
    await t.app.services.users.setPassword(SYSTEM_ACTOR, u.email, 'a-whole-new-password');
    expect((await me(t, s.access_token)).status).to.equal(401);
    const s2 = await login(t, u.email, 'a-whole-new-password');
    await t.app.services.users.setDisabled(SYSTEM_ACTOR, u.email, true);
    expect((await me(t, s2.access_token)).status).to.equal(401);
    expect((await post(t, '/auth/login', { email: u.email, password: 'a-whole-new-password' })).status).to.equal(401);
  });

  it('validates the login body (unknown fields named by path)', async () => {
    const res = await post(t, '/auth/login', { email: 'a@b.c', password: 'x', extra: 1 });
    expect(res.status).to.equal(400);
    const body = res.body as { errors: { path: string }[] };
    expect(body.errors.map((e) => e.path)).to.include('body/extra');
  });

  it('stores refresh tokens only as hashes and logs no token or password', async () => {
    const u = await createUser(t.app.services);
    const s = await login(t, u.email, u.password);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const dump = JSON.stringify((await c.query('select * from sessions')).rows) + JSON.stringify((await c.query('select * from audit_log')).rows);
    await c.end();
    expect(dump).to.not.contain(s.refresh_token).and.not.contain(s.refresh_token.slice(5)).and.not.contain(u.password);
    await new Promise((r) => setTimeout(r, 50));
    expect(t.logs.text).to.not.contain(s.refresh_token).and.not.contain(s.access_token).and.not.contain(u.password);
  });
});

describe('rate limits', () => {
  let url: string;
  before(async () => {
    url = await cloneDatabase();
  });
  after(() => dropDatabase(url));

  it('throttles brute force on one account with 429 + Retry-After; the right password works after the window', async () => {
    const t = await startTestApp(url, { SENTINEL_RATE_LIMITS_LOGIN_FAILURES_PER_ACCOUNT: '3', SENTINEL_RATE_LIMITS_LOGIN_WINDOW: '2s', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '1000' });
    try {
      const u = await createUser(t.app.services);
      for (let i = 0; i < 3; i++) expect((await post(t, '/auth/login', { email: u.email, password: 'wrong-wrong' })).status).to.equal(401);
      const blocked = await post(t, '/auth/login', { email: u.email.toUpperCase(), password: u.password });
      expect(blocked.status).to.equal(429);
      const retry = Number(blocked.headers.get('retry-after'));
      expect(retry).to.be.within(1, 2);
      expect(blocked.headers.get('ratelimit-limit')).to.equal('3');
      expect(blocked.headers.get('ratelimit-remaining')).to.equal('0');
      expect(blocked.headers.get('content-type')).to.match(/problem\+json/);
      await new Promise((r) => setTimeout(r, retry * 1000 + 100));
      expect((await post(t, '/auth/login', { email: u.email, password: u.password })).status).to.equal(200);
    } finally {
      await t.stop();
    }
  });

  it('concurrent wrong passwords on one account: at most the limit are checked (401), the rest 429 with Retry-After; the right password is 429 afterwards', async () => {
    const limit = 3;
    const t = await startTestApp(url, { SENTINEL_RATE_LIMITS_LOGIN_FAILURES_PER_ACCOUNT: String(limit), SENTINEL_RATE_LIMITS_LOGIN_WINDOW: '15m', SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '1000' });
    try {
      const u = await createUser(t.app.services);
      // All in flight together: a limit checked before bcrypt and counted after it lets every one through.
      const answers = await Promise.all(Array.from({ length: limit * 4 }, (_, i) => post(t, '/auth/login', { email: u.email, password: `parallel-guess-${i}` })));
      const wrong = answers.filter((r) => r.status === 401);
      const refused = answers.filter((r) => r.status === 429);
      expect(wrong.length + refused.length, answers.map((r) => r.status).join(',')).to.equal(answers.length);
      expect(wrong.length, 'password checks that ran').to.be.at.most(limit);
      for (const r of refused) expect(Number(r.headers.get('retry-after')), 'Retry-After').to.be.within(1, 15 * 60);
      const right = await post(t, '/auth/login', { email: u.email, password: u.password });
      expect(right.status, 'the right password waits for the window').to.equal(429);
      expect(right.headers.get('retry-after')).to.match(/^\d+$/);
    } finally {
      await t.stop();
    }
  });

  it('limits requests per client IP with RateLimit-* headers; X-Forwarded-For does not bypass it without http.trust_proxy', async () => {
    const t = await startTestApp(url, { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '5' });
    try {
      const hit = (xff: string) => t.api.raw('GET', '/api/v1/auth/me', { headers: { 'x-forwarded-for': xff } });
      const first = await hit('10.0.0.1');
      expect(first.status).to.equal(401);
      expect(first.headers.get('ratelimit-limit')).to.equal('5');
      expect(first.headers.get('ratelimit-remaining')).to.equal('4');
      for (let i = 2; i <= 5; i++) expect((await hit(`10.0.0.${i}`)).status).to.equal(401);
      const over = await hit('10.0.0.99');
      expect(over.status).to.equal(429);
      expect(Number(over.headers.get('retry-after'))).to.be.within(1, 60);
      expect(over.headers.get('ratelimit-remaining')).to.equal('0');
      // Health probes are not counted.
      expect((await t.api.get('/health')).status).to.equal(200);
    } finally {
      await t.stop();
    }
  });

  it('with http.trust_proxy the client address comes from X-Forwarded-For', async () => {
    const t = await startTestApp(url, { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '2', SENTINEL_HTTP_TRUST_PROXY: 'true' });
    try {
      const hit = (xff: string) => t.api.raw('GET', '/api/v1/auth/me', { headers: { 'x-forwarded-for': xff } });
      expect((await hit('203.0.113.1')).status).to.equal(401);
      expect((await hit('203.0.113.1')).status).to.equal(401);
      expect((await hit('203.0.113.1')).status).to.equal(429);
      expect((await hit('203.0.113.2')).status).to.equal(401);
    } finally {
      await t.stop();
    }
  });

  it('failed authentications per client IP are limited on every route, ingest too: random API keys get 401, then 429 with Retry-After; another client is unaffected', async () => {
    const limit = 5;
    const t = await startTestApp(url, { SENTINEL_RATE_LIMITS_AUTH_FAILURES_PER_MINUTE_PER_IP: String(limit), SENTINEL_HTTP_TRUST_PROXY: 'true' });
    try {
      const org = await createOrg(t.app.services);
      const valid = (await createApiKey(t.app.services, org.slug)).secret;
      const batch = { metrics: [{ name: 'auth_failures_m', value: 1 }] };
      const ingest = (key: string, client: string) => t.api.post('/telemetry', key, batch, { 'x-forwarded-for': client });
      const randomKey = () => `snt_${randomBytes(24).toString('base64url')}`;
      // /telemetry is exempt from the per-IP API limit: without this one, every guess costs a lookup.
      for (let i = 1; i <= limit; i++) expect((await ingest(randomKey(), '203.0.113.7')).status, `random key #${i}`).to.equal(401);
      const over = await ingest(randomKey(), '203.0.113.7');
      expect(over.status, over.text).to.equal(429);
      expect(Number(over.headers.get('retry-after'))).to.be.within(1, 60);
      expect(over.headers.get('content-type')).to.match(/problem\+json/);
      // The same address on OTLP (a raw route, answering in its own format): refused before the lookup too.
      const otlp = await t.api.raw('POST', '/v1/metrics', { body: '{}', headers: { 'content-type': 'application/json', authorization: `Bearer ${randomKey()}`, 'x-forwarded-for': '203.0.113.7' } });
      expect(otlp.status).to.equal(429);
      expect(otlp.headers.get('retry-after')).to.match(/^\d+$/);
      // Another client with a valid key is not affected.
      expect((await ingest(valid, '203.0.113.8')).status).to.equal(202);
    } finally {
      await t.stop();
    }
  });

  it('limits login attempts per IP', async () => {
    const t = await startTestApp(url, { SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '2' });
    try {
      expect((await post(t, '/auth/login', { email: 'a@example.test', password: 'x' })).status).to.equal(401);
      expect((await post(t, '/auth/login', { email: 'b@example.test', password: 'x' })).status).to.equal(401);
      const over = await post(t, '/auth/login', { email: 'c@example.test', password: 'x' });
      expect(over.status).to.equal(429);
      expect(over.headers.get('retry-after')).to.match(/^\d+$/);
    } finally {
      await t.stop();
    }
  });
});
