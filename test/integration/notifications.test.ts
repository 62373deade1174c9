import { createHmac, randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { createServer, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { expect } from 'chai';
import type { NotificationRequest } from '../../src/core/alerting.js';
import { uuidCursor } from '../../src/core/pagination.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import { expectProblem, type Problem } from '../support/http.js';
import { freePort, smtpEnv, TestSmtp } from '../support/smtp.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Notifications against real receivers on 127.0.0.1 (node:http servers, smtp-server) and a real
 * PostgreSQL: channels with write-only secrets, the v4 webhook with its HMAC verified here,
 * Slack and email, retries with backoff and the record of every attempt, 4xx not retried, the
 * outbox surviving a restart, dedup, resend, the delivery log, tenant isolation, and the
 * outbound guard (which must refuse before connecting: no traffic ever leaves 127.0.0.0/8).
 */

const uniq = () => randomBytes(3).toString('hex');

interface Hit {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A webhook receiver on 127.0.0.1: records every request, answers with `reply`. */
class Receiver {
  readonly hits: Hit[] = [];
  connections = 0;
  /** status 0: never answer (the connection stays open until the client gives up). */
  reply: (hit: Hit, n: number) => { status: number; headers?: Record<string, string> } = () => ({ status: 200 });
  #server: Server | null = null;

  constructor(public port = 0) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(): Promise<this> {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const hit = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.hits.push(hit);
        const r = this.reply(hit, this.hits.length);
        if (r.status === 0) return;
        res.writeHead(r.status, r.headers ?? {});
        res.end('answer');
      });
    });
    server.on('connection', () => this.connections++);
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Hosts of the HTTP requests node:http created while `fn` ran (node:diagnostics_channel). */
async function requestsDuring(fn: () => Promise<void>): Promise<string[]> {
  const hosts: string[] = [];
  const onStart = (m: unknown) => hosts.push(String((m as { request: ClientRequest }).request.host));
  diagnostics.subscribe('http.client.request.start', onStart);
  try {
    await fn();
  } finally {
    diagnostics.unsubscribe('http.client.request.start', onStart);
  }
  return hosts;
}

interface ChannelAnswer {
  id: string;
  name: string;
  type: string;
  config: Record<string, unknown>;
  secrets_set: string[];
}
interface Attempt {
  attempt: number;
  at: string;
  outcome: string;
  status_code: number | null;
  error: string | null;
  latency_ms: number;
}
interface NotificationAnswer {
  id: string;
  channel_id: string;
  channel_type: string;
  rule_id: string | null;
  dedup_key: string;
  status: string;
  state: string;
  attempts: Attempt[];
  sent_at: string | null;
  resend_of: string | null;
}
interface TestAnswer {
  ok: boolean;
  status_code: number | null;
  error: string | null;
  latency_ms: number;
  notification_id: string;
}

const SMALL = {
  SENTINEL_NOTIFICATIONS_MAX_ATTEMPTS: '3',
  SENTINEL_NOTIFICATIONS_BACKOFF_MS: '150',
  SENTINEL_NOTIFICATIONS_TIMEOUT_MS: '3000',
  SENTINEL_QUEUE_POLL_INTERVAL_MS: '50',
  SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000',
};
const PRIVATE_OK = { ...SMALL, SENTINEL_NOTIFICATIONS_ALLOW_PRIVATE_NETWORKS: 'true' };

function alertRequest(orgId: string | null, channelIds: string[], dedupKey: string, over: Partial<NotificationRequest> = {}): NotificationRequest {
  return {
    orgId,
    channelIds,
    groupKey: 'rule:{}',
    dedupKey,
    ruleId: null,
    status: 'firing',
    receiver: 'High CPU',
    groupLabels: {},
    commonLabels: { alertname: 'HighCPU', severity: 'critical' },
    commonAnnotations: { summary: 'CPU is high' },
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'HighCPU', severity: 'critical', host: 'web-1' },
        annotations: { summary: 'CPU is high' },
        startsAt: '2026-11-30T04:00:00.000Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://sentinel.example/alerts',
        fingerprint: '0123456789abcdef',
        value: 93.5,
      },
    ],
    ...over,
  };
}

/** An org with an admin's token. */
async function tenant(t: TestApp): Promise<{ id: string; slug: string; token: string; viewer: string }> {
  const org = await createOrg(t.app.services, `nt-${uniq()}`);
  const admin = await createUser(t.app.services, { org: org.slug, role: 'admin' });
  const viewer = await createUser(t.app.services, { org: org.slug, role: 'viewer' });
  return { id: org.id, slug: org.slug, token: (await t.api.login(admin.email, admin.password)).access_token, viewer: (await t.api.login(viewer.email, viewer.password)).access_token };
}

describe('notifications', function () {
  this.timeout(60_000);
  const receivers: Receiver[] = [];
  const receiver = async (port = 0) => {
    const r = await new Receiver(port).start();
    receivers.push(r);
    return r;
  };
  after(async () => {
    for (const r of receivers) await r.stop();
  });

  describe('with private networks allowed (receivers on 127.0.0.1)', () => {
    let url: string;
    let t: TestApp;
    let a: Awaited<ReturnType<typeof tenant>>;
    let b: Awaited<ReturnType<typeof tenant>>;
    let smtp: TestSmtp;

    const createChannel = async (org: { slug: string; token: string }, body: unknown, status = 201) => {
      const res = await t.api.post<ChannelAnswer>(`/organizations/${org.slug}/channels`, org.token, body);
      expect(res.status, res.text).to.equal(status);
      return res.body;
    };
    const notificationsOf = async (org: { slug: string; token: string }, q = '') => {
      const res = await t.api.get<{ items: NotificationAnswer[]; next_cursor: string | null }>(`/organizations/${org.slug}/notifications${q}`, org.token);
      expect(res.status, res.text).to.equal(200);
      return res.body;
    };
    const row = async (id: string) => (await query<{ state: string; attempts: number; last_error: string | null }>(url, 'select * from notifications where id = $1', [id]))[0];
    const attemptsOf = (id: string) => query<{ attempt: number; outcome: string; status_code: number | null; error: string | null; at: Date; latency_ms: number }>(url, 'select * from notification_attempts where notification_id = $1 order by attempt', [id]);

    before(async () => {
      url = await cloneDatabase();
      smtp = await new TestSmtp(await freePort()).start();
      t = await startTestApp(url, { ...PRIVATE_OK, ...smtpEnv(smtp.port) });
      a = await tenant(t);
      b = await tenant(t);
    });
    after(async () => {
      await t?.stop();
      await smtp?.stop();
      if (url) await dropDatabase(url);
    });

    it('channel CRUD: write-only fields never answered nor stored in clear, kept when a PATCH leaves them out, removed with null', async () => {
      const r = await receiver();
      const secret = `s3cret-${uniq()}-${uniq()}-${uniq()}`;
      const created = await createChannel(a, { name: ' ops hook ', type: 'webhook', config: { url: r.url, secret } });
      expect(created).to.include({ name: 'ops hook', type: 'webhook' });
      expect(created.config).to.deep.equal({ url: r.url });
      expect(created.secrets_set).to.deep.equal(['secret']);
      expect(JSON.stringify(created)).not.to.include(secret);

      const slackUrl = `http://127.0.0.1:${r.port}/services/T000/B000/${uniq()}`;
      const slack = await createChannel(a, { name: `slack-${uniq()}`, type: 'slack', config: { webhook_url: slackUrl } });
      expect(slack.config).to.deep.equal({});
      expect(slack.secrets_set).to.deep.equal(['webhook_url']);

      const stored = await query<{ config: unknown; secrets_sealed: string }>(url, 'select config, secrets_sealed from notification_channels where id = any($1)', [[created.id, slack.id]]);
      const dump = JSON.stringify(stored);
      expect(dump).not.to.include(secret);
      expect(dump).not.to.include(slackUrl);
      expect(stored.every((s) => typeof s.secrets_sealed === 'string')).to.equal(true);

      const got = await t.api.get<ChannelAnswer>(`/organizations/${a.slug}/channels/${created.id}`, a.token);
      expect(got.status).to.equal(200);
      expect(JSON.stringify(got.body)).not.to.include(secret);
      const list = await t.api.get<{ items: ChannelAnswer[] }>(`/organizations/${a.slug}/channels?limit=1`, a.token);
      expect(list.status).to.equal(200);
      expect(list.body.items).to.have.length(1);
      expect(JSON.stringify(list.body)).not.to.include(secret);

      const patched = await t.api.call<ChannelAnswer>('PATCH', `/organizations/${a.slug}/channels/${created.id}`, a.token, { name: 'ops hook 2', config: { url: `${r.url}?v=2` } });
      expect(patched.status, patched.text).to.equal(200);
      expect(patched.body.secrets_set).to.deep.equal(['secret']);
      expect(patched.body.config).to.deep.equal({ url: `${r.url}?v=2` });
      const cleared = await t.api.call<ChannelAnswer>('PATCH', `/organizations/${a.slug}/channels/${created.id}`, a.token, { config: { url: r.url, secret: null } });
      expect(cleared.body.secrets_set).to.deep.equal([]);

      const dup = await t.api.post<Problem>(`/organizations/${a.slug}/channels`, a.token, { name: 'ops hook 2', type: 'email', config: { to: ['x@example.test'] } });
      expectProblem(dup, 409, 'duplicate name');
      expect(dup.body.detail).to.equal("a channel named 'ops hook 2' exists in this organization");
      const renamed = await t.api.call<Problem>('PATCH', `/organizations/${a.slug}/channels/${slack.id}`, a.token, { name: 'ops hook 2' });
      expectProblem(renamed, 409, 'rename to a taken name');
      expect(renamed.body.detail).to.equal("a channel named 'ops hook 2' exists in this organization");

      const del = await t.api.call('DELETE', `/organizations/${a.slug}/channels/${slack.id}`, a.token);
      expect(del.status).to.equal(204);
      expectProblem(await t.api.get(`/organizations/${a.slug}/channels/${slack.id}`, a.token), 404, 'deleted');
      expect(t.logs.text).not.to.include(secret);
      expect(t.logs.text).not.to.include(slackUrl);
      const rows = await query<{ action: string; details: unknown }>(url, "select action, details from audit_log where org_id = $1 and action like 'channel.%'", [a.id]);
      expect(rows.map((r) => r.action)).to.include.members(['channel.create', 'channel.update', 'channel.delete']);
      const audit = JSON.stringify(rows);
      expect(audit).not.to.include(secret);
      expect(audit).not.to.include(slackUrl);
    });

    it('refuses bad channels with the path of each mistake (NUL bytes, huge strings, wrong types, unknown fields, non-http URLs)', async () => {
      const cases: [unknown, string][] = [
        [{ name: 'a\u0000b', type: 'email', config: { to: ['a@example.test'] } }, 'body/name'],
        [{ name: 'x', type: 'webhook', config: { url: `http://127.0.0.1/${'a'.repeat(5000)}` } }, 'body/config/url'],
        [{ name: 'x', type: 'webhook', config: { url: 'ftp://127.0.0.1/x' } }, 'body/config/url'],
        [{ name: 'x', type: 'webhook', config: { url: 'http://user:pw@127.0.0.1/x' } }, 'body/config/url'],
        [{ name: 'x', type: 'webhook', config: { url: 'http://127.0.0.1/x', secret: 'short' } }, 'body/config/secret'],
        [{ name: 'x', type: 'email', config: { to: 'a@example.test' } }, 'body/config/to'],
        [{ name: 'x', type: 'email', config: { to: ['not an address'] } }, 'body/config/to/0'],
        [{ name: 'x', type: 'slack', config: { webhook_url: 'http://127.0.0.1/x', extra: 1 } }, 'body/config/extra'],
        [{ name: 'x', type: 'pager', config: {} }, 'body/type'],
        [{ name: 42, type: 'email', config: { to: ['a@example.test'] } }, 'body/name'],
        [{ name: 'x', type: 'email', config: { to: ['a\u0000@example.test'] } }, 'body/config/to/0'],
      ];
      for (const [body, path] of cases) {
        const res = await t.api.post<Problem>(`/organizations/${a.slug}/channels`, a.token, body);
        expectProblem(res, 400, JSON.stringify(body).slice(0, 80));
        expect(res.body.errors?.map((e) => e.path), JSON.stringify(res.body)).to.include(path);
      }
      const ch = await createChannel(a, { name: `mail-${uniq()}`, type: 'email', config: { to: ['ops@example.test'] } });
      const bad = await t.api.call<Problem>('PATCH', `/organizations/${a.slug}/channels/${ch.id}`, a.token, { config: { url: 'http://127.0.0.1/' } });
      expectProblem(bad, 400, 'email config with a url');
      expect(bad.body.errors?.map((e) => e.path)).to.include('body/config/url');
    });

    it('list cursors are uuids (core uuidCursor): anything else is a 400 at query/cursor, never a 500', async () => {
      const id = '0f8fad5b-d9cb-469f-a165-70867728950e';
      expect(uuidCursor(undefined)).to.equal(undefined);
      expect(uuidCursor(Buffer.from(id).toString('base64url'))).to.equal(id);
      for (const bad of [Buffer.from('not-a-uuid').toString('base64url'), Buffer.from(`${id}x`).toString('base64url'), '!!']) {
        for (const path of ['channels', 'notifications']) {
          const res = await t.api.get<Problem>(`/organizations/${a.slug}/${path}?cursor=${bad}`, a.token);
          expectProblem(res, 400, `${path} ${bad}`);
          expect(res.body.errors?.map((e) => e.path)).to.deep.equal(['query/cursor']);
        }
        expect(() => uuidCursor(bad)).to.throw('invalid cursor');
      }
      const fine = await t.api.get<{ items: unknown[] }>(`/organizations/${a.slug}/notifications?cursor=${Buffer.from(id).toString('base64url')}`, a.token);
      expect(fine.status, fine.text).to.equal(200);
    });

    it('webhook: the Alertmanager v4 payload, signed with the secret (verified here), once per dedup key', async () => {
      const r = await receiver();
      const secret = `hook-secret-${uniq()}-${uniq()}`;
      const ch = await createChannel(a, { name: `hook-${uniq()}`, type: 'webhook', config: { url: r.url, secret } });
      const key = `rule:{}#${uniq()}`;
      const ids = await t.app.services.notifications.dispatch(alertRequest(a.id, [ch.id], key));
      expect(ids).to.have.length(1);
      await until('delivered', async () => (await row(ids[0])).state === 'sent');
      // The same key again (a crash between dispatch and the policy's commit): stored and sent once.
      expect(await t.app.services.notifications.dispatch(alertRequest(a.id, [ch.id], key))).to.deep.equal(ids);
      await new Promise((res) => setTimeout(res, 300));
      expect(r.hits).to.have.length(1);

      const hit = r.hits[0];
      expect(hit.method).to.equal('POST');
      expect(hit.headers['content-type']).to.equal('application/json');
      expect(hit.headers['user-agent']).to.match(/^Sentinel\/\d+\.\d+\.\d+/);
      const ts = String(hit.headers['x-sentinel-timestamp']);
      expect(Math.abs(Number(ts) - Date.now() / 1000)).to.be.lessThan(60);
      const expected = `sha256=${createHmac('sha256', secret).update(`${ts}.${hit.body}`).digest('hex')}`;
      expect(hit.headers['x-sentinel-signature']).to.equal(expected);
      const body = JSON.parse(hit.body) as Record<string, unknown>;
      expect(Object.keys(body)).to.deep.equal(['version', 'groupKey', 'truncatedAlerts', 'status', 'receiver', 'groupLabels', 'commonLabels', 'commonAnnotations', 'externalURL', 'alerts']);
      expect(body).to.include({ version: '4', groupKey: 'rule:{}', truncatedAlerts: 0, status: 'firing', receiver: 'High CPU' });
      expect((body.alerts as { labels: Record<string, string> }[])[0].labels.host).to.equal('web-1');

      const log = await notificationsOf(a, `?channel_id=${ch.id}`);
      expect(log.items).to.have.length(1);
      expect(log.items[0]).to.include({ id: ids[0], state: 'sent', status: 'firing', channel_type: 'webhook', dedup_key: key });
      expect(log.items[0].attempts).to.have.length(1);
      expect(log.items[0].attempts[0]).to.include({ attempt: 1, outcome: 'sent', status_code: 200, error: null });
    });

    it('retries with backoff, recording every attempt, then fails after notifications.max_attempts; 4xx fails at once; 429 is retried', async () => {
      const r = await receiver();
      r.reply = (hit) => ({ status: hit.url.includes('bad') ? 400 : hit.url.includes('slow') ? 429 : 503 });
      const down = await createChannel(a, { name: `down-${uniq()}`, type: 'webhook', config: { url: `${r.url}/down` } });
      const bad = await createChannel(a, { name: `bad-${uniq()}`, type: 'webhook', config: { url: `${r.url}/bad` } });
      const slow = await createChannel(a, { name: `slow-${uniq()}`, type: 'webhook', config: { url: `${r.url}/slow` } });
      const [d, x, s] = await t.app.services.notifications.dispatch(alertRequest(a.id, [down.id, bad.id, slow.id], `retry-${uniq()}`));
      for (const id of [d, x, s]) await until(`${id} failed`, async () => (await row(id)).state === 'failed');

      const downAttempts = await attemptsOf(d);
      expect(downAttempts.map((t) => [t.attempt, t.outcome, t.status_code])).to.deep.equal([
        [1, 'retrying', 503],
        [2, 'retrying', 503],
        [3, 'failed', 503],
      ]);
      // backoff_ms 150, doubling: at least 150 ms, then 300 ms between attempts.
      expect(downAttempts[1].at.getTime() - downAttempts[0].at.getTime()).to.be.at.least(140);
      expect(downAttempts[2].at.getTime() - downAttempts[1].at.getTime()).to.be.at.least(290);
      expect(downAttempts[0].error).to.match(/^HTTP 503/);
      expect((await attemptsOf(x)).map((t) => [t.attempt, t.outcome, t.status_code])).to.deep.equal([[1, 'failed', 400]]);
      expect((await attemptsOf(s)).map((t) => t.outcome)).to.deep.equal(['retrying', 'retrying', 'failed']);
      expect(r.hits.filter((h) => h.url.includes('bad'))).to.have.length(1);
      expect(await row(d)).to.include({ attempts: 3, state: 'failed' });

      const failed = await notificationsOf(a, `?state=failed&channel_id=${down.id}`);
      expect(failed.items.map((n) => n.id)).to.deep.equal([d]);
      expect(failed.items[0].attempts.map((t) => t.outcome)).to.deep.equal(['retrying', 'retrying', 'failed']);

      const metrics = await t.api.raw('GET', '/metrics');
      expect(metrics.text).to.match(/sentinel_notification_deliveries_total\{channel_type="webhook",outcome="retrying"\} [1-9]/);
      expect(metrics.text).to.match(/sentinel_notification_deliveries_total\{channel_type="webhook",outcome="failed"\} [1-9]/);
    });

    it('an attempt is bounded by notifications.timeout_ms (a receiver that never answers)', async () => {
      const r = await receiver();
      r.reply = () => ({ status: 0 });
      const ch = await createChannel(a, { name: `hang-${uniq()}`, type: 'webhook', config: { url: r.url } });
      const started = Date.now();
      const res = await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${ch.id}/test`, a.token);
      expect(res.body, res.text).to.include({ ok: false, status_code: null, error: 'timed out after 3000 ms' });
      expect(res.body.latency_ms).to.be.within(2900, 4500);
      expect(Date.now() - started).to.be.below(6000);
      expect(r.hits).to.have.length(1);
    });

    it('Slack gets {text}; email goes through the mailer to a real SMTP server', async () => {
      const r = await receiver();
      const slack = await createChannel(a, { name: `slack-${uniq()}`, type: 'slack', config: { webhook_url: `${r.url}/slack` } });
      const to = `oncall-${uniq()}@example.test`;
      const mail = await createChannel(a, { name: `mail-${uniq()}`, type: 'email', config: { to: [to] } });
      const ids = await t.app.services.notifications.dispatch(alertRequest(a.id, [slack.id, mail.id], `multi-${uniq()}`));
      expect(ids).to.have.length(2);
      await until('slack', () => r.hits.length === 1);
      const text = (JSON.parse(r.hits[0].body) as { text: string }).text;
      expect(text).to.include('[FIRING:1] High CPU');
      expect(text).to.include('host=web-1');
      const m = await smtp.waitFor((x) => x.to.includes(to));
      expect(m.subject).to.equal('[FIRING:1] High CPU');
      expect(m.raw).to.include('host=web-1');
      expect(m.raw).to.include('summary: CPU is high');
      expect(m.raw).to.include('Value: 93.5');
      expect(m.raw).to.include('Started: 2026-11-30T04:00:00.000Z');
      for (const id of ids) await until('sent', async () => (await row(id)).state === 'sent');
      const mailLog = await query<{ kind: string; org_id: string }>(url, 'select kind, org_id from mail_log where $1 = any("to")', [to]);
      expect(mailLog).to.deep.equal([{ kind: 'alert', org_id: a.id }]);

      const base = alertRequest(a.id, [mail.id], `resolved-${uniq()}`, { status: 'resolved' });
      base.alerts[0] = { ...base.alerts[0], status: 'resolved', endsAt: '2026-11-30T04:30:00.000Z' };
      await t.app.services.notifications.dispatch(base);
      const resolved = await smtp.waitFor((x) => x.to.includes(to) && x.subject.startsWith('[RESOLVED]'));
      expect(resolved.subject).to.equal('[RESOLVED] High CPU');
      expect(resolved.raw).to.include('Ended: 2026-11-30T04:30:00.000Z');
    });

    it('email attempts go over SMTP within the attempt: sent once the server took it (with its latency); a refusing server → retrying, then failed, with the SMTP error', async () => {
      const to = `now-${uniq()}@example.test`;
      const mail = await createChannel(a, { name: `mail-${uniq()}`, type: 'email', config: { to: [to] } });
      const [id] = await t.app.services.notifications.dispatch(alertRequest(a.id, [mail.id], `smtp-${uniq()}`));
      await until('sent', async () => (await row(id)).state === 'sent');
      // Recorded as sent only once the SMTP server has it (not when a queue took it).
      expect(smtp.received.filter((m) => m.to.includes(to))).to.have.length(1);
      const [sent] = await attemptsOf(id);
      expect(sent).to.include({ attempt: 1, outcome: 'sent', status_code: null, error: null });
      expect(sent.latency_ms).to.be.a('number').and.within(0, 3000);
      expect(await query(url, "select outcome, attempts from mail_log where $1 = any(\"to\")", [to])).to.deep.equal([{ outcome: 'sent', attempts: 1 }]);

      const refused = `refused-${uniq()}@example.test`;
      smtp.rejectRecipients.set(refused, 'Mailbox unavailable (test)');
      const bad = await createChannel(a, { name: `mail-${uniq()}`, type: 'email', config: { to: [refused] } });
      const [n] = await t.app.services.notifications.dispatch(alertRequest(a.id, [bad.id], `smtp-${uniq()}`));
      await until('failed', async () => (await row(n)).state === 'failed');
      const attempts = await attemptsOf(n);
      expect(attempts.map((x) => [x.attempt, x.outcome])).to.deep.equal([
        [1, 'retrying'],
        [2, 'retrying'],
        [3, 'failed'],
      ]);
      for (const x of attempts) expect(x.error).to.match(/Mailbox unavailable \(test\)/);
      expect((await row(n)).last_error).to.match(/Mailbox unavailable \(test\)/);
      // Each attempt is one message in mail_log, failed with the server's answer.
      const logged = await query<{ outcome: string; last_error: string }>(url, 'select outcome, last_error from mail_log where $1 = any("to")', [refused]);
      expect(logged.map((l) => l.outcome)).to.deep.equal(['failed', 'failed', 'failed']);
    });

    it('the sweep settles what a dead worker left: the interrupted attempt recorded, queued again while attempts remain, else failed; live tasks and recent rows untouched', async () => {
      const r = await receiver();
      const ch = await createChannel(a, { name: `crash-${uniq()}`, type: 'webhook', config: { url: r.url } });
      const [model] = await t.app.services.notifications.dispatch(alertRequest(a.id, [ch.id], `crash-${uniq()}`));
      await until('model sent', async () => (await row(model)).state === 'sent');
      r.hits.length = 0;
      // The crash state, written straight to the tables: attempts counted by beginAttempt, its
      // notification_attempts row missing, and the queue's task failed or spent (lease ran out on its last attempt).
      const crashed = async (o: { attempts: number; idle: string; task: 'failed' | 'spent' | 'pending' | null }) => {
        const [{ id }] = await query<{ id: string }>(
          url,
          `insert into notifications (org_id, channel_id, dedup_key, group_key, status, payload, state, attempts, created_at, updated_at)
           select org_id, channel_id, $2, group_key, status, payload, 'retrying', $3, now() - interval '1 hour', now() - $4::interval from notifications where id = $1 returning id`,
          [model, `crash-${uniq()}`, o.attempts, o.idle],
        );
        for (let n = 1; n < o.attempts; n++) {
          await query(url, `insert into notification_attempts (org_id, notification_id, attempt, at, outcome, error, latency_ms) values ($1, $2, $3, now() - interval '30 minutes', 'retrying', 'HTTP 503', 5)`, [a.id, id, n]);
        }
        if (o.task) {
          const [state, leaseUntil, next] = o.task === 'spent' ? ['running', "now() - interval '1 minute'", 'now()'] : o.task === 'pending' ? ['pending', 'null', "now() + interval '1 hour'"] : ['failed', 'null', 'now()'];
          await query(
            url,
            `insert into queue_tasks (task, payload, state, attempts, max_attempts, dedupe_key, locked_by, lease_until, next_attempt_at)
             values ('notify.deliver', $1, $2, 3, 3, $3, ${state === 'running' ? "'dead-worker'" : 'null'}, ${leaseUntil}, ${next})`,
            [JSON.stringify({ org_id: a.id, id }), state, `notify:${id}`],
          );
        }
        return id;
      };
      const spent = await crashed({ attempts: 2, idle: '10 minutes', task: 'spent' });
      const last = await crashed({ attempts: 3, idle: '10 minutes', task: 'failed' });
      const live = await crashed({ attempts: 2, idle: '10 minutes', task: 'pending' });
      const recent = await crashed({ attempts: 2, idle: '1 second', task: null });
      const [{ began }] = await query<{ began: Date }>(url, 'select updated_at as began from notifications where id = $1', [spent]);

      expect(await t.app.services.notifications.sweep()).to.be.at.least(2);
      await until('queued again and sent', async () => (await row(spent)).state === 'sent');
      const again = await attemptsOf(spent);
      expect(again.map((x) => [x.attempt, x.outcome, x.error])).to.deep.equal([
        [1, 'retrying', 'HTTP 503'],
        [2, 'retrying', 'attempt interrupted (process died)'],
        [3, 'sent', null],
      ]);
      expect(again[1].at.getTime()).to.equal(began.getTime());
      expect(r.hits).to.have.length(1);

      expect(await row(last)).to.include({ state: 'failed', attempts: 3, last_error: 'attempt interrupted (process died)' });
      expect((await attemptsOf(last)).map((x) => [x.attempt, x.outcome])).to.deep.equal([
        [1, 'retrying'],
        [2, 'retrying'],
        [3, 'failed'],
      ]);
      for (const id of [live, recent]) {
        expect(await row(id), id === live ? 'live task' : 'recent').to.include({ state: 'retrying', attempts: 2 });
        expect(await attemptsOf(id)).to.have.length(1);
      }
      // A task the queue claims again after its worker died mid-attempt (not its last): the
      // interrupted attempt is recorded before the next begins.
      const reclaimed = await crashed({ attempts: 2, idle: '3 minutes', task: null });
      await t.app.services.notifications.deliver({ org_id: a.id, id: reclaimed }, { attempt: 2, maxAttempts: 5 });
      expect((await attemptsOf(reclaimed)).map((x) => [x.attempt, x.outcome, x.error])).to.deep.equal([
        [1, 'retrying', 'HTTP 503'],
        [2, 'retrying', 'attempt interrupted (process died)'],
        [3, 'sent', null],
      ]);
      expect(r.hits).to.have.length(2);
      r.hits.length = 1;

      // Settled once: a second sweep finds nothing more of these.
      await t.app.services.notifications.sweep();
      expect((await attemptsOf(last)).length).to.equal(3);
      expect((await attemptsOf(spent)).length).to.equal(3);
      expect(r.hits).to.have.length(1);
    });

    it('channel test answers the outcome and is in the delivery log; resend queues a new notification; the log pages newest first', async () => {
      const r = await receiver();
      const ch = await createChannel(a, { name: `test-${uniq()}`, type: 'webhook', config: { url: r.url } });
      const ok = await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${ch.id}/test`, a.token);
      expect(ok.status, ok.text).to.equal(200);
      expect(ok.body).to.include({ ok: true, status_code: 200, error: null });
      expect(r.hits).to.have.length(1);
      expect((JSON.parse(r.hits[0].body) as { commonLabels: Record<string, string> }).commonLabels.alertname).to.equal('SentinelTest');
      r.reply = () => ({ status: 500 });
      const failed = await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${ch.id}/test`, a.token);
      expect(failed.body).to.include({ ok: false, status_code: 500 });
      expect(failed.body.error).to.match(/^HTTP 500/);

      const log = await notificationsOf(a, `?channel_id=${ch.id}&limit=1`);
      expect(log.items.map((n) => n.id)).to.deep.equal([failed.body.notification_id]);
      expect(log.items[0]).to.include({ status: 'test', state: 'failed' });
      const next = await notificationsOf(a, `?channel_id=${ch.id}&limit=1&cursor=${log.next_cursor}`);
      expect(next.items.map((n) => n.id)).to.deep.equal([ok.body.notification_id]);
      expect(next.next_cursor).to.equal(null);
      // Viewers read the log.
      expect((await t.api.get(`/organizations/${a.slug}/notifications`, a.viewer)).status).to.equal(200);

      r.reply = () => ({ status: 200 });
      // A name (not a literal address) goes through the guard's socket lookup, which lets it through here.
      const byName = await createChannel(a, { name: `name-${uniq()}`, type: 'webhook', config: { url: `http://localhost:${r.port}/named` } });
      const named = await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${byName.id}/test`, a.token);
      expect(named.body, named.text).to.include({ ok: true, status_code: 200 });
      expect(r.hits.map((h) => h.url)).to.include('/named');
      r.hits.splice(r.hits.findIndex((h) => h.url === '/named'), 1);

      const resent = await t.api.post<NotificationAnswer>(`/organizations/${a.slug}/notifications/${failed.body.notification_id}/resend`, a.token);
      expect(resent.status, resent.text).to.equal(202);
      expect(resent.body).to.include({ resend_of: failed.body.notification_id, state: 'queued', channel_id: ch.id });
      await until('resent', async () => (await row(resent.body.id)).state === 'sent');
      expect(r.hits).to.have.length(3);
    });

    it('redirects: followed to another 127.0.0.1 receiver, never to 169.254.169.254, at most 3 hops', async () => {
      const target = await receiver();
      const hop = await receiver();
      hop.reply = (h) =>
        h.url.endsWith('/meta')
          ? { status: 307, headers: { location: 'http://169.254.169.254/latest/meta-data/' } }
          : h.url.endsWith('/loop')
            ? { status: 302, headers: { location: '/loop' } }
            : { status: 308, headers: { location: `${target.url}/landed` } };
      const good = await createChannel(a, { name: `redir-${uniq()}`, type: 'webhook', config: { url: `${hop.url}/go` } });
      const res = await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${good.id}/test`, a.token);
      expect(res.body, res.text).to.include({ ok: true, status_code: 200 });
      expect(target.hits.map((h) => [h.method, h.url])).to.deep.equal([['POST', '/hook/landed']]);
      expect(JSON.parse(target.hits[0].body)).to.have.property('version', '4');

      const meta = await createChannel(a, { name: `meta-${uniq()}`, type: 'webhook', config: { url: `${hop.url}/meta` } });
      let answer: TestAnswer | undefined;
      const hosts = await requestsDuring(async () => {
        answer = (await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${meta.id}/test`, a.token)).body;
      });
      expect(answer).to.include({ ok: false, status_code: null });
      expect(answer!.error).to.match(/redirect.*169\.254\.169\.254.*link-local/);
      expect(hosts).to.deep.equal(['127.0.0.1']);

      const loop = await createChannel(a, { name: `loop-${uniq()}`, type: 'webhook', config: { url: `${hop.url}/loop` } });
      const looped = (await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${loop.id}/test`, a.token)).body;
      expect(looped).to.include({ ok: false });
      expect(looped.error).to.match(/more than 3 redirects/);
      expect(hop.hits.filter((h) => h.url.endsWith('/loop'))).to.have.length(4);
    });

    it('a redirect to another origin gets no signature headers; one within the origin keeps them', async () => {
      const first = await receiver();
      const other = await receiver();
      first.reply = (h) => (h.url.endsWith('/away') ? { status: 307, headers: { location: `${other.url}/landed` } } : h.url.endsWith('/near') ? { status: 308, headers: { location: '/hook/here' } } : { status: 200 });
      const secret = `redir-secret-${uniq()}-${uniq()}`;
      const away = await createChannel(a, { name: `away-${uniq()}`, type: 'webhook', config: { url: `${first.url}/away`, secret } });
      expect((await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${away.id}/test`, a.token)).body).to.include({ ok: true, status_code: 200 });
      expect(first.hits[0].headers).to.include.keys('x-sentinel-signature', 'x-sentinel-timestamp');
      expect(other.hits.map((h) => [h.method, h.url])).to.deep.equal([['POST', '/hook/landed']]);
      expect(other.hits[0].headers).not.to.have.any.keys('x-sentinel-signature', 'x-sentinel-timestamp');
      expect(JSON.parse(other.hits[0].body)).to.have.property('version', '4');

      const near = await createChannel(a, { name: `near-${uniq()}`, type: 'webhook', config: { url: `${first.url}/near`, secret } });
      expect((await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${near.id}/test`, a.token)).body).to.include({ ok: true, status_code: 200 });
      const landed = first.hits.find((h) => h.url === '/hook/here')!;
      const ts = String(landed.headers['x-sentinel-timestamp']);
      expect(landed.headers['x-sentinel-signature']).to.equal(`sha256=${createHmac('sha256', secret).update(`${ts}.${landed.body}`).digest('hex')}`);
    });

    it('169.254.169.254 is refused even with private networks allowed: at save time, and at send time before any request exists', async () => {
      const saved = await t.api.post<Problem>(`/organizations/${a.slug}/channels`, a.token, { name: 'meta', type: 'webhook', config: { url: 'http://169.254.169.254/latest/meta-data/' } });
      expectProblem(saved, 400, 'metadata address');
      expect(saved.body.errors?.[0]).to.include({ path: 'body/config/url' });
      expect(saved.body.errors?.[0].message).to.match(/link-local/);
      const mapped = await t.api.post(`/organizations/${a.slug}/channels`, a.token, { name: 'meta6', type: 'webhook', config: { url: 'http://[::ffff:169.254.169.254]/' } });
      expectProblem(mapped, 400, 'IPv4-mapped metadata address');

      // Stored before a policy change (written straight to the table): refused when it sends.
      const [{ id }] = await query<{ id: string }>(url, `insert into notification_channels (org_id, name, type, config) values ($1, $2, 'webhook', $3) returning id`, [
        a.id,
        `meta-${uniq()}`,
        JSON.stringify({ url: 'http://169.254.169.254/latest/meta-data/' }),
      ]);
      let answer: TestAnswer | undefined;
      const hosts = await requestsDuring(async () => {
        answer = (await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${id}/test`, a.token)).body;
      });
      expect(answer).to.include({ ok: false, status_code: null });
      expect(answer!.error).to.match(/link-local/);
      expect(hosts).to.deep.equal([]);
    });

    it('deliveryStats: attempts per channel in [start, end), channel tests left out, other orgs not counted', async () => {
      const org = await tenant(t);
      const r = await receiver();
      let good = 0;
      r.reply = (hit) => ({ status: hit.url.endsWith('/bad') ? 400 : ++good === 1 ? 503 : 200 });
      const ch = await createChannel(org, { name: `stats-${uniq()}`, type: 'webhook', config: { url: r.url } });
      const down = await createChannel(org, { name: `a-stats-${uniq()}`, type: 'webhook', config: { url: `${r.url}/bad` } });
      const [id] = await t.app.services.notifications.dispatch(alertRequest(org.id, [ch.id], `stats-${uniq()}`));
      const [bad] = await t.app.services.notifications.dispatch(alertRequest(org.id, [down.id], `stats-${uniq()}`));
      await until('sent after a retry', async () => (await row(id)).state === 'sent');
      await until('failed', async () => (await row(bad)).state === 'failed');
      // A channel test is no delivery; another org's attempts are not this org's.
      expect((await t.api.post<TestAnswer>(`/organizations/${org.slug}/channels/${ch.id}/test`, org.token)).body).to.include({ ok: true });
      const hook = await createChannel(b, { name: `stats-${uniq()}`, type: 'webhook', config: { url: r.url } });
      const [other] = await t.app.services.notifications.dispatch(alertRequest(b.id, [hook.id], `stats-${uniq()}`));
      await until('other org sent', async () => (await row(other)).state === 'sent');

      const [first, second] = await attemptsOf(id);
      const day = await t.app.services.deliveryStats.daily(org.id, first.at.getTime() - 60_000, Date.now() + 60_000);
      const [downName, chName] = [down.name, ch.name];
      expect(day).to.deep.equal({
        deliveries: 1,
        failures: 2,
        by_channel: [
          { channel: downName, type: 'webhook', deliveries: 0, failures: 1 },
          { channel: chName, type: 'webhook', deliveries: 1, failures: 1 },
        ],
      });
      // [start, end): the first attempt is in when it starts the window, the second out when it ends it.
      const part = await t.app.services.deliveryStats.daily(org.id, first.at.getTime(), second.at.getTime());
      expect(part.by_channel.find((c) => c.channel === chName)).to.deep.equal({ channel: chName, type: 'webhook', deliveries: 0, failures: 1 });
      expect(await t.app.services.deliveryStats.daily(org.id, 0, first.at.getTime() - 60_000)).to.deep.equal({ deliveries: 0, failures: 0, by_channel: [] });
    });

    it('tenant isolation: an org dispatch never reaches another org’s channel; other orgs’ ids are 404; instance alerts reach any org’s channel', async () => {
      const rb = await receiver();
      const chB = await createChannel(b, { name: `b-${uniq()}`, type: 'webhook', config: { url: rb.url } });
      expect(await t.app.services.notifications.dispatch(alertRequest(a.id, [chB.id], `x-${uniq()}`))).to.deep.equal([]);
      expect(await query(url, 'select 1 from notifications where channel_id = $1', [chB.id])).to.have.length(0);
      expect(t.logs.text).to.include('channels skipped');
      expect(await t.app.services.channels.missing(a.id, [chB.id, 'not-a-uuid'])).to.deep.equal([chB.id, 'not-a-uuid']);
      expect(await t.app.services.channels.missing(b.id, [chB.id])).to.deep.equal([]);

      for (const [method, path] of [
        ['GET', `/organizations/${a.slug}/channels/${chB.id}`],
        ['PATCH', `/organizations/${a.slug}/channels/${chB.id}`],
        ['DELETE', `/organizations/${a.slug}/channels/${chB.id}`],
        ['POST', `/organizations/${a.slug}/channels/${chB.id}/test`],
      ]) {
        expectProblem(await t.api.call(method, path, a.token, method === 'PATCH' ? { name: 'stolen' } : undefined), 404, `${method} ${path}`);
      }
      const [idB] = await t.app.services.notifications.dispatch(alertRequest(null, [chB.id], `instance-${uniq()}`, { receiver: 'backup' }));
      await until('instance alert delivered', () => rb.hits.length === 1);
      expect((await query<{ org_id: string }>(url, 'select org_id from notifications where id = $1', [idB]))[0].org_id).to.equal(b.id);
      expectProblem(await t.api.post(`/organizations/${a.slug}/notifications/${idB}/resend`, a.token), 404, "resend of B's notification by A");
      expect((await notificationsOf(a)).items.map((n) => n.id)).not.to.include(idB);
      expect(rb.hits).to.have.length(1);
    });
  });

  describe('with private networks refused (the default)', () => {
    let url: string;
    let t: TestApp;
    let a: Awaited<ReturnType<typeof tenant>>;
    before(async () => {
      url = await cloneDatabase();
      t = await startTestApp(url, SMALL);
      a = await tenant(t);
    });
    after(async () => {
      await t?.stop();
      if (url) await dropDatabase(url);
    });

    it('an email channel on an instance without SMTP fails at once with a clear error', async () => {
      const ch = await t.api.post<ChannelAnswer>(`/organizations/${a.slug}/channels`, a.token, { name: `mail-${uniq()}`, type: 'email', config: { to: ['ops@example.test'] } });
      expect(ch.status, ch.text).to.equal(201);
      const [n] = await t.app.services.notifications.dispatch(alertRequest(a.id, [ch.body.id], `nosmtp-${uniq()}`));
      await until('failed', async () => (await query<{ state: string }>(url, 'select state from notifications where id = $1', [n]))[0].state === 'failed');
      const attempts = await query<{ outcome: string; error: string }>(url, 'select outcome, error from notification_attempts where notification_id = $1', [n]);
      expect(attempts).to.deep.equal([{ outcome: 'failed', error: 'SMTP is not configured (notifications.smtp.host)' }]);
    });

    it('refuses loopback, private and link-local targets when saved (literal and resolved names)', async () => {
      for (const target of ['http://127.0.0.1:9/x', 'http://localhost:9/x', 'http://10.0.0.1/x', 'http://[::1]/x', 'http://100.64.0.1/', 'http://169.254.169.254/', 'http://0.0.0.0/']) {
        const res = await t.api.post<Problem>(`/organizations/${a.slug}/channels`, a.token, { name: `c-${uniq()}`, type: 'webhook', config: { url: target } });
        expectProblem(res, 400, target);
        expect(res.body.errors?.[0].path).to.equal('body/config/url');
      }
      const slack = await t.api.post<Problem>(`/organizations/${a.slug}/channels`, a.token, { name: 's', type: 'slack', config: { webhook_url: 'http://192.168.1.1/x' } });
      expect(slack.body.errors?.[0].path).to.equal('body/config/webhook_url');
    });

    it('refuses at send time before connecting: a loopback receiver sees no connection, 10.0.0.1 gets no request, a name resolving to loopback is refused in the lookup', async () => {
      const r = await receiver();
      const insert = async (target: string) =>
        (
          await query<{ id: string }>(url, `insert into notification_channels (org_id, name, type, config) values ($1, $2, 'webhook', $3) returning id`, [
            a.id,
            `raw-${uniq()}`,
            JSON.stringify({ url: target }),
          ])
        )[0].id;
      for (const target of [r.url, `http://localhost:${r.port}/hook`, 'http://10.0.0.1/hook']) {
        const id = await insert(target);
        let answer: TestAnswer | undefined;
        const hosts = await requestsDuring(async () => {
          answer = (await t.api.post<TestAnswer>(`/organizations/${a.slug}/channels/${id}/test`, a.token)).body;
        });
        expect(answer, target).to.include({ ok: false, status_code: null });
        expect(answer!.error, target).to.match(/refused.*(loopback|private)/);
        // A literal address is refused before the request exists; a name in the socket's lookup, before it connects.
        expect(hosts, target).to.deep.equal(target.includes('localhost') ? ['localhost'] : []);
      }
      expect(r.connections).to.equal(0);
      expect(r.hits).to.have.length(0);

      // A queued notification to such a channel fails at once (no retries: the policy will not change by itself).
      const id = await insert(r.url);
      const [n] = await t.app.services.notifications.dispatch(alertRequest(a.id, [id], `ssrf-${uniq()}`));
      await until('failed', async () => (await query<{ state: string }>(url, 'select state from notifications where id = $1', [n]))[0].state === 'failed');
      expect(await query(url, 'select 1 from notification_attempts where notification_id = $1', [n])).to.have.length(1);
      expect(r.connections).to.equal(0);
    });
  });

  describe('the outbox survives a restart', () => {
    let url: string;
    before(async () => {
      url = await cloneDatabase();
    });
    after(() => dropDatabase(url));

    it('a notification queued while the receiver is down is delivered by the next app; one stored without a task is enqueued at start', async () => {
      const env = { ...PRIVATE_OK, SENTINEL_NOTIFICATIONS_MAX_ATTEMPTS: '10', SENTINEL_NOTIFICATIONS_BACKOFF_MS: '1000' };
      const port = await freePort();
      let t = await startTestApp(url, env);
      let a: Awaited<ReturnType<typeof tenant>>;
      let n: string;
      let orphan: string;
      try {
        a = await tenant(t);
        const ch = await t.api.post<ChannelAnswer>(`/organizations/${a.slug}/channels`, a.token, { name: 'later', type: 'webhook', config: { url: `http://127.0.0.1:${port}/hook` } });
        expect(ch.status, ch.text).to.equal(201);
        [n] = await t.app.services.notifications.dispatch(alertRequest(a.id, [ch.body.id], `restart-${uniq()}`));
        await until('first attempt failed', async () => (await query<{ state: string }>(url, 'select state from notifications where id = $1', [n]))[0].state === 'retrying');
        // A crash between storing and enqueueing: a row with no task.
        [{ id: orphan }] = await query<{ id: string }>(
          url,
          `insert into notifications (org_id, channel_id, dedup_key, group_key, status, payload, state) select org_id, channel_id, 'orphan', group_key, status, payload, 'queued' from notifications where id = $1 returning id`,
          [n],
        );
      } finally {
        await t.stop();
      }
      const r = await receiver(port);
      t = await startTestApp(url, env);
      try {
        await until('both delivered', async () => (await query(url, "select 1 from notifications where id = any($1) and state = 'sent'", [[n, orphan]])).length === 2, 20_000);
        expect(r.hits).to.have.length(2);
        const attempts = await query<{ attempt: number; outcome: string }>(url, 'select attempt, outcome from notification_attempts where notification_id = $1 order by attempt', [n]);
        expect(attempts.map((x) => x.outcome)).to.deep.equal(['retrying', 'sent']);
      } finally {
        await t.stop();
      }
    });
  });
});
