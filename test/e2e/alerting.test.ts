import { expect } from 'chai';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import { expectProblem, type ApiClient, type Problem } from '../support/http.js';
import { freePort, smtpEnv, TestSmtp } from '../support/smtp.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { WebhookReceiver as Receiver, type WebhookHit as Hit } from '../support/webhook-receiver.js';

/**
 * Alerting end to end, against real servers on 127.0.0.1 and through the HTTP API of the whole
 * app with its background evaluation on (a 100 ms tick, rules with a 1 s interval): points
 * ingested over HTTP fire a threshold rule; a local webhook receiver gets the Alertmanager v4
 * payload, signed (the HMAC is checked here with the channel's secret); the SMTP server gets the
 * email; recovery past recovery_threshold sends one resolved notification, and values between the
 * threshold and the recovery threshold send nothing (no flapping). Then a restart with an alert
 * firing, a notification queued for a receiver that is down and a resolve that happens while no
 * instance runs; then tenancy (same metric name in two orgs; channels of another org cannot be
 * named); then SSRF at save time. Everything else about each part is in the features' own tests.
 */

const uniq = () => randomBytes(3).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Per-IP API limit out of the way: the feeders ingest five times a second. */
const MANY = { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000000' };
const ALERTING = { SENTINEL_ALERTS_ENABLED: 'true', SENTINEL_ALERTS_TICK_MS: '100', SENTINEL_NOTIFICATIONS_ALLOW_PRIVATE_NETWORKS: 'true' };

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** The check a receiver makes: HMAC-SHA256(secret, timestamp + "." + body), hex, in X-Sentinel-Signature. */
function signatureValid(hit: Hit, secret: string): boolean {
  const ts = hit.headers['x-sentinel-timestamp'];
  const sig = hit.headers['x-sentinel-signature'];
  if (typeof ts !== 'string' || typeof sig !== 'string') return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${ts}.${hit.raw}`).digest('hex')}`);
  const got = Buffer.from(sig);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

interface Series {
  name: string;
  labels: Record<string, string>;
  /** The value to send at the n-th send. */
  value: (n: number) => number;
}

/** Ingests one point per series over HTTP every 200 ms (ts = now), until stopped. */
class Feeder {
  error: unknown = null;
  lastTs = 0;
  #n = 0;
  #running: Promise<void> | null = null;
  #stop = false;

  constructor(
    private readonly api: ApiClient,
    private readonly token: string,
    private readonly org: string,
    readonly series: Series[],
  ) {}

  start(): this {
    this.#running = (async () => {
      while (!this.#stop) {
        try {
          await this.once();
        } catch (err) {
          this.error = err;
          return;
        }
        await sleep(200);
      }
    })();
    return this;
  }

  async once(): Promise<void> {
    const n = this.#n++;
    const ts = Date.now();
    await ingest(this.api, this.token, this.org, this.series.map((s) => ({ name: s.name, labels: s.labels, value: s.value(n), ts })));
    this.lastTs = ts;
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#running;
    if (this.error) throw this.error;
  }
}

async function ingest(api: ApiClient, token: string, org: string, metrics: { name: string; labels: Record<string, string>; value: number; ts: number }[]): Promise<void> {
  const res = await api.post(`/organizations/${org}/telemetry`, token, { metrics });
  expect(res.status, res.text).to.equal(202);
}

interface Rule {
  id: string;
  name: string;
  state: string;
  last_eval_at: string | null;
}
interface Alert {
  id: string;
  rule_id: string;
  state: string;
  labels: Record<string, string>;
  value: number | null;
  fired_at: string | null;
  resolved_at: string | null;
}
interface Delivery {
  id: string;
  channel_id: string;
  rule_id: string | null;
  status: string;
  state: string;
  dedup_key: string;
  attempts: { attempt: number; outcome: string; status_code: number | null; error: string | null }[];
}

/** An org, its owner's token, and helpers over the API. */
class Tenant {
  constructor(
    readonly api: ApiClient,
    readonly slug: string,
    readonly orgId: string,
    readonly token: string,
    private readonly owner: { email: string; password: string },
  ) {}

  static async create(t: TestApp, prefix: string): Promise<Tenant> {
    const org = await createOrg(t.app.services, `${prefix}-${uniq()}`);
    const owner = await createUser(t.app.services, { org: org.slug, role: 'owner' });
    const token = (await t.api.login(owner.email, owner.password)).access_token;
    return new Tenant(t.api, org.slug, org.id, token, owner);
  }

  /** The same org and owner through another app (a restarted one): logged in again there. */
  async on(t: TestApp): Promise<Tenant> {
    const token = (await t.api.login(this.owner.email, this.owner.password)).access_token;
    return new Tenant(t.api, this.slug, this.orgId, token, this.owner);
  }

  async channel(body: unknown): Promise<string> {
    const res = await this.api.post<{ id: string }>(`/organizations/${this.slug}/channels`, this.token, body);
    expect(res.status, res.text).to.equal(201);
    return res.body.id;
  }

  async rule(body: Record<string, unknown>): Promise<Rule> {
    const res = await this.api.post<Rule>(`/organizations/${this.slug}/alert-rules`, this.token, body);
    expect(res.status, res.text).to.equal(201);
    return res.body;
  }

  async getRule(id: string): Promise<Rule> {
    const res = await this.api.get<Rule>(`/organizations/${this.slug}/alert-rules/${id}`, this.token);
    expect(res.status, res.text).to.equal(200);
    return res.body;
  }

  async alerts(ruleId: string): Promise<Alert[]> {
    const res = await this.api.get<{ items: Alert[] }>(`/organizations/${this.slug}/alerts?rule_id=${ruleId}`, this.token);
    expect(res.status, res.text).to.equal(200);
    return res.body.items;
  }

  async deliveries(ruleId: string): Promise<Delivery[]> {
    const res = await this.api.get<{ items: Delivery[] }>(`/organizations/${this.slug}/notifications?rule_id=${ruleId}`, this.token);
    expect(res.status, res.text).to.equal(200);
    return res.body.items;
  }

  /** Waits until the rule has been evaluated `n` more times (last_eval_at moved on n times). */
  async evaluations(ruleId: string, n: number, timeoutMs = 10_000): Promise<Rule> {
    let last = (await this.getRule(ruleId)).last_eval_at;
    let seen = 0;
    return until(`${n} evaluations of rule ${ruleId}`, async () => {
      const r = await this.getRule(ruleId);
      if (r.last_eval_at !== last) {
        last = r.last_eval_at;
        seen++;
      }
      return seen >= n ? r : undefined;
    }, timeoutMs);
  }
}

/** A threshold rule on one metric as the e2e tests use it: 1 s interval, notified at once, hysteresis 90 / 70. */
const thresholdRule = (name: string, metric: string, channels: string[], extra: Record<string, unknown> = {}) => ({
  name,
  kind: 'threshold',
  query: { name: metric, agg: 'max', window: '2s' },
  op: '>',
  threshold: 90,
  recovery_threshold: 70,
  interval: 1,
  for: 0,
  group_wait: 0,
  group_interval: 1,
  repeat_interval: '1h',
  severity: 'critical',
  labels: { team: 'e2e' },
  annotations: { summary: 'CPU above 90' },
  channels,
  ...extra,
});

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

describe('alerting end to end (real HTTP, SMTP and PostgreSQL on 127.0.0.1)', function () {
  this.timeout(120_000);

  describe('fire, notify, resolve once, no flapping; tenancy', () => {
    let url: string;
    let t: TestApp;
    let smtp: TestSmtp;
    const hooks = new Receiver();
    let A: Tenant;
    const feeders: Feeder[] = [];

    before(async () => {
      url = await cloneDatabase();
      smtp = await new TestSmtp(await freePort()).start();
      await hooks.start();
      t = await startTestApp(url, { ...MANY, ...ALERTING, ...smtpEnv(smtp.port) });
      A = await Tenant.create(t, 'a');
    });
    after(async () => {
      for (const f of feeders) await f.stop().catch(() => undefined);
      await t?.stop();
      await hooks.stop();
      await smtp?.stop();
      if (url) await dropDatabase(url);
    });

    it('points over HTTP fire the rule; the webhook gets the signed v4 payload and SMTP the email; recovery past recovery_threshold sends one resolved; values between the thresholds send nothing', async () => {
      const secret = `whsec-${uniq()}-${uniq()}`;
      const webhook = await A.channel({ name: 'hook', type: 'webhook', config: { url: hooks.url, secret } });
      const mailTo = `oncall-${uniq()}@example.test`;
      const email = await A.channel({ name: 'mail', type: 'email', config: { to: [mailTo] } });
      const ruleName = `cpu-high-${uniq()}`;
      const rule = await A.rule(thresholdRule(ruleName, 'e2e.cpu', [webhook, email]));
      // The control: the same rule without a recovery threshold resolves as soon as the value is
      // between the two (so the "no resolve between the thresholds" check below can fail).
      const plainName = `cpu-no-hysteresis-${uniq()}`;
      await A.rule(thresholdRule(plainName, 'e2e.cpu', [webhook], { recovery_threshold: undefined }));

      // Phases of the fed value: breach, then between the thresholds while firing (no resolve),
      // then below the recovery threshold (resolve), then between the thresholds again (no fire).
      let phase: (n: number) => number = () => 95;
      const band = (n: number) => [80, 88, 72, 85, 89, 75][n % 6];
      const feeder = new Feeder(A.api, A.token, A.slug, [{ name: 'e2e.cpu', labels: { host: 'h1' }, value: (n) => phase(n) }]);
      feeders.push(feeder);
      const sentAt = Date.now();
      feeder.start();

      const fired = await hooks.waitFor(ruleName, 'firing');
      expect(fired.body).to.include({ version: '4', status: 'firing', receiver: ruleName, truncatedAlerts: 0 });
      expect(fired.body.groupKey).to.be.a('string').and.not.equal('');
      expect(fired.body.externalURL).to.be.a('string');
      expect(fired.headers['content-type']).to.match(/^application\/json/);
      expect(fired.body.alerts).to.have.length(1);
      const [a] = fired.body.alerts;
      expect(a.status).to.equal('firing');
      expect(a.labels).to.include({ alertname: ruleName, team: 'e2e', host: 'h1', severity: 'critical' });
      expect(a.annotations).to.include({ summary: 'CPU above 90' });
      expect(fired.body.commonLabels).to.include({ alertname: ruleName });
      expect(a.startsAt).to.match(RFC3339);
      expect(Date.parse(a.startsAt)).to.be.within(sentAt - 1000, fired.at);
      expect(a.endsAt).to.equal('0001-01-01T00:00:00Z');
      expect(a.fingerprint).to.match(/^[0-9a-f]{16}$/);
      expect(a.generatorURL).to.be.a('string').and.not.equal('');
      // The signature: valid with the channel's secret, over this exact body, with a fresh timestamp; not with another secret.
      expect(signatureValid(fired, secret), 'X-Sentinel-Signature verifies with the channel secret').to.equal(true);
      expect(signatureValid(fired, `${secret}x`)).to.equal(false);
      expect(signatureValid({ ...fired, raw: fired.raw.replace('firing', 'resolved') }, secret), 'a changed body does not verify').to.equal(false);
      expect(Math.abs(Number(fired.headers['x-sentinel-timestamp']) - fired.at / 1000)).to.be.below(30);
      expect(fired.raw, 'the secret is never sent').to.not.contain(secret);

      const mail = await smtp.waitFor((m) => m.to.includes(mailTo));
      expect(mail.subject + mail.raw).to.contain(ruleName);

      const firing = await A.alerts(rule.id);
      expect(firing.map((x) => x.state)).to.deep.equal(['firing']);
      expect(firing[0].labels).to.include({ host: 'h1' });

      // Between the thresholds while firing: for the 2 s window plus three evaluations, no resolve.
      phase = band;
      await sleep(2100);
      await A.evaluations(rule.id, 3);
      expect((await A.alerts(rule.id)).map((x) => x.state), 'still firing between the thresholds').to.deep.equal(['firing']);
      expect(hooks.of(ruleName).map((h) => h.body.status)).to.deep.equal(['firing']);
      await hooks.waitFor(plainName, 'resolved');
      expect(hooks.of(ruleName).map((h) => h.body.status), 'still no resolve with the recovery threshold').to.deep.equal(['firing']);

      // Below the recovery threshold: one resolved notification per channel.
      phase = () => 50;
      const resolved = await hooks.waitFor(ruleName, 'resolved');
      expect(resolved.body).to.include({ version: '4', status: 'resolved', receiver: ruleName, groupKey: fired.body.groupKey });
      expect(resolved.body.alerts).to.have.length(1);
      expect(resolved.body.alerts[0]).to.include({ status: 'resolved', fingerprint: a.fingerprint, startsAt: a.startsAt });
      expect(resolved.body.alerts[0].endsAt).to.match(RFC3339);
      expect(Date.parse(resolved.body.alerts[0].endsAt)).to.be.at.least(Date.parse(a.startsAt));
      expect(signatureValid(resolved, secret)).to.equal(true);
      await until('the resolved email', () => (smtp.received.filter((m) => m.to.includes(mailTo)).length >= 2 ? true : undefined));

      // Between the thresholds again, after the resolve: for the window plus three evaluations, nothing fires.
      phase = band;
      await sleep(2100);
      await A.evaluations(rule.id, 3);
      expect(hooks.of(ruleName).map((h) => h.body.status), 'one firing and one resolved, nothing more').to.deep.equal(['firing', 'resolved']);
      expect(hooks.of(plainName).map((h) => h.body.status), 'the control: fired once, resolved once').to.deep.equal(['firing', 'resolved']);
      expect(smtp.received.filter((m) => m.to.includes(mailTo))).to.have.length(2);
      expect((await A.alerts(rule.id)).map((x) => x.state)).to.not.include('firing');

      // The delivery log: two per channel (firing, resolved), each sent at its first attempt.
      const log = await A.deliveries(rule.id);
      const summary = log.map((d) => `${d.channel_id === webhook ? 'webhook' : d.channel_id === email ? 'email' : d.channel_id} ${d.status} ${d.state} ${d.attempts.map((x) => x.outcome).join(',')}`).sort();
      expect(summary).to.deep.equal(['email firing sent sent', 'email resolved sent sent', 'webhook firing sent sent', 'webhook resolved sent sent']);
      await feeder.stop();
    });

    it("tenancy: org A's rule never reads org B's points of the same metric; A cannot name B's channels (400); B's receiver gets only B's alerts", async () => {
      const B = await Tenant.create(t, 'b');
      const hooksB = await new Receiver().start();
      try {
        const whA = await A.channel({ name: 'tenancy-a', type: 'webhook', config: { url: hooks.url } });
        const whB = await B.channel({ name: 'tenancy-b', type: 'webhook', config: { url: hooksB.url } });
        const ruleA = `load-a-${uniq()}`;
        const ruleB = `load-b-${uniq()}`;

        // A cannot reference B's channel, on create or update: a bad reference with its path.
        const refused = await A.api.post<Problem>(`/organizations/${A.slug}/alert-rules`, A.token, thresholdRule(ruleA, 'shared.load', [whB]));
        expectProblem(refused, 400, "A's rule naming B's channel");
        expect(refused.body.errors?.map((e) => e.path).join(' ')).to.match(/channels\/0/);
        expect(refused.text).to.not.contain(B.slug);

        // Same metric name in both orgs: A's stays at 1, B's breaches at 1000.
        let valueA = 1;
        const feedA = new Feeder(A.api, A.token, A.slug, [{ name: 'shared.load', labels: { tenant: 'a' }, value: () => valueA }]);
        const feedB = new Feeder(B.api, B.token, B.slug, [{ name: 'shared.load', labels: { tenant: 'b' }, value: () => 1000 }]);
        feeders.push(feedA, feedB);
        feedA.start();
        feedB.start();
        const a = await A.rule(thresholdRule(ruleA, 'shared.load', [whA], { threshold: 500, recovery_threshold: 400 }));
        const patched = await A.api.call<Problem>('PATCH', `/organizations/${A.slug}/alert-rules/${a.id}`, A.token, { channels: [whA, whB] });
        expectProblem(patched, 400, "A's rule patched to name B's channel");
        expect(patched.body.errors?.map((e) => e.path).join(' ')).to.match(/channels\/1/);
        await B.rule(thresholdRule(ruleB, 'shared.load', [whB], { threshold: 500, recovery_threshold: 400 }));

        // The control: B's rule fires on B's points (so they breach, and evaluation runs).
        const firedB = await hooksB.waitFor(ruleB, 'firing');
        expect(firedB.body.alerts[0].labels).to.include({ tenant: 'b' });
        // A's rule, evaluated three more times after that, is still ok: it never saw 1000.
        await A.evaluations(a.id, 3);
        expect((await A.getRule(a.id)).state).to.equal('ok');
        expect((await A.alerts(a.id)).filter((x) => x.state === 'firing' || x.state === 'pending')).to.deep.equal([]);
        expect(hooks.of(ruleA)).to.deep.equal([]);

        // A's own breach fires A's rule, with A's series only, to A's receiver only.
        valueA = 600;
        const firedA = await hooks.waitFor(ruleA, 'firing');
        expect(firedA.body.alerts.map((x) => x.labels.tenant)).to.deep.equal(['a']);
        const alertsA = await A.alerts(a.id);
        expect(alertsA.map((x) => [x.state, x.value])).to.deep.equal([['firing', 600]]);
        await A.evaluations(a.id, 2);
        expect(hooksB.hits.map((h) => h.body.receiver), "B's receiver got B's alerts only").to.satisfy((xs: string[]) => xs.length > 0 && xs.every((x) => x === ruleB));
        expect(hooksB.hits.map((h) => h.raw).join('\n')).to.not.contain(A.slug);
        await feedA.stop();
        await feedB.stop();
      } finally {
        await hooksB.stop();
      }
    });
  });

  describe('restart: an alert firing, a notification queued for a receiver that is down, a resolve while no instance runs', () => {
    let url: string;
    let t: TestApp | null = null;
    const up = new Receiver();
    const down = new Receiver();
    let feeder: Feeder | null = null;

    before(async () => {
      url = await cloneDatabase();
      await up.start();
    });
    after(async () => {
      await feeder?.stop().catch(() => undefined);
      await t?.stop();
      await up.stop();
      await down.stop();
      if (url) await dropDatabase(url);
    });

    /*
     * How the resolve "during the downtime" is made honestly: nothing can be ingested over HTTP
     * while the app is down, so the recovering points are ingested before the stop, dated in the
     * future (ingest.max_future allows 10 min): from 1 s after the last breaching point on. The
     * rule's window is 5 s, so until 5 s after the last breach the window still holds a breach
     * and the alert fires; the app is stopped before then (checked in the database: still firing,
     * its resolve not notified), and started again only once the window holds nothing but the
     * recovered values (5.6 s after the last breach). So the condition recovered while no instance was running, and the new
     * instance's first evaluation resolves it: the resolved notification must come once.
     */
    it('no duplicate firing notification, the queued one is delivered, the resolve that happened while down is sent once', async () => {
      const env = { ...MANY, ...ALERTING, SENTINEL_NOTIFICATIONS_BACKOFF_MS: '200', SENTINEL_NOTIFICATIONS_MAX_ATTEMPTS: '30' };
      t = await startTestApp(url, env);
      const A = await Tenant.create(t, 'r');
      const downPort = await freePort();
      const whUp = await A.channel({ name: 'up', type: 'webhook', config: { url: up.url } });
      const whDown = await A.channel({ name: 'down', type: 'webhook', config: { url: `http://127.0.0.1:${downPort}/hook` } });
      const resolving = `resolves-while-down-${uniq()}`;
      const queued = `queued-while-down-${uniq()}`;
      const r1 = await A.rule(thresholdRule(resolving, 'e2e.r1', [whUp], { query: { name: 'e2e.r1', agg: 'max', window: '5s' } }));
      const r2 = await A.rule(thresholdRule(queued, 'e2e.r2', [whDown], { query: { name: 'e2e.r2', agg: 'max', window: '5s' } }));
      feeder = new Feeder(A.api, A.token, A.slug, [
        { name: 'e2e.r1', labels: {}, value: () => 95 },
        { name: 'e2e.r2', labels: {}, value: () => 95 },
      ]).start();

      await up.waitFor(resolving, 'firing');
      // r2's notification is in the outbox and its first attempt failed (nothing listens there).
      const failing = await until("a failed attempt at r2's receiver", async () => {
        const d = await A.deliveries(r2.id);
        return d.length === 1 && d[0].attempts.length >= 1 && d[0].state !== 'sent' ? d[0] : undefined;
      });
      expect(failing.status).to.equal('firing');
      expect(failing.attempts[0].outcome).to.equal('retrying');
      const firedAt = (await A.alerts(r2.id))[0].fired_at;

      // Last breaching points now; recovered r1 points from 1 s on and breaching r2 points, dated ahead.
      await feeder.stop();
      feeder = null;
      const last = Date.now();
      await ingest(A.api, A.token, A.slug, [{ name: 'e2e.r1', labels: {}, value: 95, ts: last }, { name: 'e2e.r2', labels: {}, value: 95, ts: last }]);
      const ahead = Array.from({ length: 240 }, (_, i) => last + 1000 + i * 250);
      await ingest(A.api, A.token, A.slug, [
        ...ahead.map((ts) => ({ name: 'e2e.r1', labels: {}, value: 10, ts })),
        ...ahead.map((ts) => ({ name: 'e2e.r2', labels: {}, value: 95, ts })),
      ]);
      await t.stop();
      t = null;
      const stoppedAfter = Date.now() - last;
      // The precondition: the app stopped while r1 still fired (its window still held a breach).
      const [r1Alert] = await query<{ state: string; resolved_notified_at: Date | null }>(url, 'select state, resolved_notified_at from alerts where rule_id = $1', [r1.id]);
      expect(r1Alert, `r1 still firing when the app stopped (${stoppedAfter} ms after the last breach)`).to.deep.equal({ state: 'firing', resolved_notified_at: null });
      const pending = await query<{ state: string }>(url, 'select state from notifications where rule_id = $1', [r2.id]);
      expect(pending.map((p) => p.state)).to.deep.equal(['retrying']);

      // Down until the window holds only recovered r1 points; then r2's receiver comes up and the app starts again.
      await sleep(Math.max(0, last + 5600 - Date.now()));
      await down.start(downPort);
      t = await startTestApp(url, env);
      const A2 = await A.on(t);

      await up.waitFor(resolving, 'resolved');
      const delivered = await down.waitFor(queued, 'firing', 30_000);
      expect(delivered.body.alerts.map((x) => x.status)).to.deep.equal(['firing']);
      // A few more evaluations of both rules: nothing more arrives.
      await A2.evaluations(r1.id, 3);
      await A2.evaluations(r2.id, 1);
      expect(up.of(resolving).map((h) => h.body.status), 'r1: one firing (before the stop), one resolved (after)').to.deep.equal(['firing', 'resolved']);
      expect(down.of(queued).map((h) => h.body.status), 'r2: the queued notification, once').to.deep.equal(['firing']);

      // The outbox row that was queued is the one delivered (no second notification), after failed attempts.
      const log = await A2.deliveries(r2.id);
      expect(log).to.have.length(1);
      expect(log[0].id).to.equal(failing.id);
      expect(log[0].state).to.equal('sent');
      expect(log[0].attempts.at(-1)?.outcome).to.equal('sent');
      expect(log[0].attempts.slice(0, -1).every((x) => x.outcome === 'retrying')).to.equal(true);
      // r2 still fires, since the same moment (not re-fired by the restart).
      const r2Alerts = await A2.alerts(r2.id);
      expect(r2Alerts.map((x) => [x.state, x.fired_at])).to.deep.equal([['firing', firedAt]]);
      expect((await A2.alerts(r1.id)).map((x) => x.state)).to.not.include('firing');
    });
  });

  describe('SSRF at save time', () => {
    let url: string;
    let t: TestApp;
    const guard = new Receiver();
    before(async () => {
      url = await cloneDatabase();
      await guard.start();
      t = await startTestApp(url, { ...MANY });
    });
    after(async () => {
      await t?.stop();
      await guard.stop();
      if (url) await dropDatabase(url);
    });

    it('with allow_private_networks false, a webhook channel to 127.0.0.1 is refused when saved (400 at config/url) and nothing connects to it', async () => {
      const A = await Tenant.create(t, 's');
      const res = await A.api.post<Problem>(`/organizations/${A.slug}/channels`, A.token, { name: 'loopback', type: 'webhook', config: { url: guard.url } });
      expectProblem(res, 400, 'a loopback webhook');
      expect(res.body.errors?.map((e) => e.path)).to.satisfy((ps: string[]) => ps.some((p) => /(^|\/)config\/url$/.test(p)));
      const listed = await A.api.get<{ items: unknown[] }>(`/organizations/${A.slug}/channels`, A.token);
      expect(listed.status, listed.text).to.equal(200);
      expect(listed.body.items).to.deep.equal([]);
      expect(guard.connections, 'nothing connected to the refused address').to.equal(0);
    });
  });
});
