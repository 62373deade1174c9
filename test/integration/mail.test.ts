import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { pino } from 'pino';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import { MailLogRepository } from '../../src/features/mail/mail-repository.js';
import { MailService, type MailTaskPayload } from '../../src/features/mail/mail-service.js';
import { mailSendTask } from '../../src/features/mail/mail-module.js';
import { smtpSender } from '../../src/features/mail/smtp-sender.js';
import { retryDelayMs } from '../../src/jobs/queue-workers.js';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import { freePort, smtpEnv, TestSmtp } from '../support/smtp.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { scratchDir } from '../support/scratch.js';

/**
 * The mailer against a real SMTP server (smtp-server on 127.0.0.1) and a real PostgreSQL: the
 * welcome email to an org's first owner, retries while the SMTP server is down, every message in
 * mail_log, `sentinel mail test`, and the SMTP password as a write-only, *_FILE-able secret.
 */

const uniq = () => randomBytes(3).toString('hex');

interface MailLog {
  id: string;
  org_id: string | null;
  kind: string;
  to: string[];
  subject: string;
  outcome: string;
  attempts: number;
  last_error: string | null;
  sent_at: Date | null;
}

const mailLogTo = (url: string, address: string) => query<MailLog>(url, 'select * from mail_log where $1 = any("to") order by created_at', [address]);

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('mail', function () {
  this.timeout(60_000);
  let url: string;
  before(async () => {
    url = await cloneDatabase();
  });
  after(() => dropDatabase(url));

  describe('one delivery attempt (the mail.send task)', () => {
    let knex: Knex;
    before(() => {
      knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
    });
    after(() => knex.destroy());

    // The queue's attempt count, as queue-workers passes it to the task (maxAttempts 3 here).
    const nth = (attempt: number) => ({ attempt, maxAttempts: 3 });

    it('counts every attempt in mail_log: retrying with the SMTP error, failed at the last, sent once the server is back, never sent twice', async () => {
      const port = await freePort();
      const queued: MailTaskPayload[] = [];
      const sender = smtpSender({ host: '127.0.0.1', port, secure: false, starttls: false, user: '', password: '', from: 'sentinel@example.test' });
      const mail = new MailService(new MailLogRepository(knex), sender, async (p) => void queued.push(p), pino({ level: 'silent' }));
      try {
        expect(mail.configured).to.equal(true);
        await mail.send({ kind: 'report', to: ['a@example.test'], subject: 'Daily report', text: 'secret figures 42' });
        await mail.send({ kind: 'report', to: ['b@example.test'], subject: 'Daily report', text: 'more figures' });
        expect(queued.map((p) => p.to)).to.deep.equal([['a@example.test'], ['b@example.test']]);
        const [a, b] = queued;
        expect((await knex('mail_log').where({ id: a.logId }).first()).outcome).to.equal('queued');

        for (let i = 1; i <= 2; i++) {
          const err = await mail.deliver(a, nth(i)).then(() => null, (e: unknown) => e as Error);
          expect(err?.message).to.contain('ECONNREFUSED');
          const row = await knex('mail_log').where({ id: a.logId }).first();
          expect(row).to.include({ outcome: 'retrying', attempts: i });
          expect(row.last_error).to.contain('ECONNREFUSED');
        }
        await mail.deliver(a, nth(3)).catch(() => {});
        expect(await knex('mail_log').where({ id: a.logId }).first()).to.include({ outcome: 'failed', attempts: 3 });

        const smtp = await new TestSmtp(port).start();
        try {
          await mail.deliver(b, nth(1));
          const m = await smtp.waitFor((r) => r.to.includes('b@example.test'));
          expect(m.raw).to.contain('more figures');
          const row = await knex('mail_log').where({ id: b.logId }).first();
          expect(row).to.include({ outcome: 'sent', attempts: 1, last_error: null });
          // The task run again (a worker that died after the server accepted it): not sent twice.
          await mail.deliver(b, nth(1));
          expect(smtp.received.filter((r) => r.to.includes('b@example.test'))).to.have.length(1);
          expect((await knex('mail_log').where({ id: b.logId }).first()).attempts).to.equal(1);
        } finally {
          await smtp.stop();
        }
        // Bodies are not kept in the log.
        const logged = JSON.stringify(await knex('mail_log').whereIn('id', [a.logId, b.logId]));
        expect(logged).to.not.contain('figures');
      } finally {
        sender.close();
      }
    });
  });

  describe('mail_log mirrors the queue’s attempt count', () => {
    let knex: Knex;
    before(() => {
      knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
    });
    after(() => knex.destroy());

    it('a claim that failed before deliver ran still counts: the queue’s last attempt marks the row failed, not retrying', async () => {
      const port = await freePort();
      const queued: MailTaskPayload[] = [];
      const sender = smtpSender({ host: '127.0.0.1', port, secure: false, starttls: false, user: '', password: '', from: 'sentinel@example.test' });
      const mail = new MailService(new MailLogRepository(knex), sender, async (p) => void queued.push(p), pino({ level: 'silent' }));
      try {
        await mail.send({ kind: 'report', to: ['gap@example.test'], subject: 'Daily report', text: 'x' });
        const [p] = queued;
        await mail.deliver(p, { attempt: 1, maxAttempts: 3 }).catch(() => {});
        expect(await knex('mail_log').where({ id: p.logId }).first()).to.include({ outcome: 'retrying', attempts: 1 });
        // Attempt 2 was claimed and failed before deliver ran (its worker lost the database):
        // the queue's third attempt is its last, and the row says so.
        const err = await mail.deliver(p, { attempt: 3, maxAttempts: 3 }).then(() => null, (e: unknown) => e as Error);
        expect(err?.message).to.contain('ECONNREFUSED');
        expect(await knex('mail_log').where({ id: p.logId }).first()).to.include({ outcome: 'failed', attempts: 3 });
      } finally {
        sender.close();
      }
    });
  });

  describe('sendNow (one attempt, not queued)', () => {
    let knex: Knex;
    before(() => {
      knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
    });
    after(() => knex.destroy());

    it('sends over SMTP before it resolves and records sent; a refusal rejects with the SMTP error and records failed; an aborted signal rejects; nothing is queued', async () => {
      const smtp = await new TestSmtp(await freePort()).start();
      const queued: MailTaskPayload[] = [];
      const sender = smtpSender({ host: '127.0.0.1', port: smtp.port, secure: false, starttls: false, user: '', password: '', from: 'sentinel@example.test' });
      const mail = new MailService(new MailLogRepository(knex), sender, async (p) => void queued.push(p), pino({ level: 'silent' }));
      const [ok, refused, late] = [`now-${uniq()}@example.test`, `refused-${uniq()}@example.test`, `late-${uniq()}@example.test`];
      try {
        await mail.sendNow({ kind: 'alert', to: [ok], subject: '[FIRING:1] now', text: 'x' }, AbortSignal.timeout(5000));
        expect(smtp.received.filter((m) => m.to.includes(ok))).to.have.length(1);
        expect(await mailLogTo(url, ok)).to.have.length(1);
        expect((await mailLogTo(url, ok))[0]).to.include({ kind: 'alert', outcome: 'sent', attempts: 1, last_error: null });

        smtp.rejectRecipients.set(refused, 'Mailbox unavailable (test)');
        const err = await mail.sendNow({ kind: 'alert', to: [refused], subject: 's', text: 'x' }).then(() => null, (e: unknown) => e as Error);
        expect(err?.message).to.match(/Mailbox unavailable \(test\)/);
        const [row] = await mailLogTo(url, refused);
        expect(row).to.include({ outcome: 'failed', attempts: 1 });
        expect(row.last_error).to.match(/Mailbox unavailable \(test\)/);

        const aborted = await mail.sendNow({ kind: 'alert', to: [late], subject: 's', text: 'x' }, AbortSignal.abort(new Error('gave up'))).then(() => null, (e: unknown) => e as Error);
        expect(aborted?.message).to.equal('gave up');
        expect(queued).to.deep.equal([]);
      } finally {
        sender.close();
        await smtp.stop();
      }
      const unconfigured = new MailService(new MailLogRepository(knex), null, async () => {}, pino({ level: 'silent' }));
      const err = await unconfigured.sendNow({ kind: 'alert', to: [ok], subject: 's', text: 'x' }).then(() => null, (e: unknown) => e as Error);
      expect(err?.message).to.match(/not configured/);
    });
  });

  describe('enqueue fails', () => {
    it('the mail_log row is marked failed with the error (not queued forever) and send() rethrows', async () => {
      const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
      const sender = smtpSender({ host: '127.0.0.1', port: await freePort(), secure: false, starttls: false, user: '', password: '', from: 'sentinel@example.test' });
      try {
        const boom = new Error('queue_tasks: connection terminated');
        const mail = new MailService(new MailLogRepository(knex), sender, async () => Promise.reject(boom), pino({ level: 'silent' }));
        const err = await mail.send({ kind: 'report', to: ['noqueue@example.test'], subject: 'Daily report', text: 'x' }).then(() => null, (e: unknown) => e);
        expect(err).to.equal(boom);
        const [row] = await mailLogTo(url, 'noqueue@example.test');
        expect(row).to.include({ outcome: 'failed', attempts: 0, sent_at: null });
        expect(row.last_error).to.equal('not queued: queue_tasks: connection terminated');
      } finally {
        sender.close();
        await knex.destroy();
      }
    });
  });

  describe('mail_log keys', () => {
    it('the primary key is id alone (rows of no org: test mail), and the per-org index leads with org_id', async () => {
      const idx = await query<{ indexname: string; indexdef: string }>(url, "select indexname, indexdef from pg_indexes where tablename = 'mail_log' order by indexname");
      const def = (name: string) => idx.find((i) => i.indexname === name)?.indexdef ?? '';
      expect(def('mail_log_pkey')).to.match(/\(id\)$/);
      expect(def('mail_log_org')).to.match(/\(org_id, created_at DESC\)/);
      // Every other index either leads with org_id or is the instance-wide one by time.
      for (const i of idx) if (!['mail_log_pkey', 'mail_log_created'].includes(i.indexname)) expect(i.indexdef, i.indexname).to.match(/USING btree \(org_id[,)]/);
    });
  });

  describe('retry horizon', () => {
    it('mail.send retries for hours, each wait capped at 10 min, the first ones quick (as the queue workers compute them)', () => {
      const def = { backoffMs: mailSendTask.backoffMs!, maxBackoffMs: mailSendTask.maxBackoffMs };
      const waits = Array.from({ length: mailSendTask.maxAttempts! - 1 }, (_, i) => retryDelayMs(def, i + 1));
      expect(waits.slice(0, 3)).to.deep.equal([1000, 2000, 4000]);
      expect(Math.max(...waits)).to.equal(600_000);
      expect(waits.at(-1)).to.equal(600_000);
      const total = waits.reduce((a, b) => a + b, 0);
      // An SMTP outage of two hours (not two minutes) loses no mail.
      expect(total).to.be.within(2 * 3_600_000, 3 * 3_600_000);
    });
  });

  describe('sentinel mail test', () => {
    it('delivered → exit 0 and a sent mail_log row; SMTP server down → exit 1 with its error and a failed row; not configured → exit 2', async () => {
      const smtp = await new TestSmtp(await freePort()).start();
      try {
        const env = testEnv(url, smtpEnv(smtp.port));
        const ok = await cli(['mail', 'test', '--to', 'ops@example.test'], env);
        expect(ok.code, ok.stderr).to.equal(0);
        expect(ok.stdout).to.match(/^sent a test message to ops@example\.test \(mail_log [0-9a-f-]{36}\)\n$/);
        const m = await smtp.waitFor((r) => r.to.includes('ops@example.test'));
        expect(m.from).to.equal('sentinel@example.test');
        expect(m.subject).to.equal('Sentinel test message');
        const [row] = await mailLogTo(url, 'ops@example.test');
        expect(row).to.include({ kind: 'test', org_id: null, outcome: 'sent', attempts: 1, last_error: null, subject: 'Sentinel test message' });
        expect(row.sent_at).to.be.an.instanceOf(Date);
      } finally {
        await smtp.stop();
      }

      const downPort = await freePort();
      const down = await cli(['mail', 'test', '--to', 'down@example.test'], testEnv(url, smtpEnv(downPort)));
      expect(down.code).to.equal(1);
      expect(down.stderr).to.match(/^error: mail to down@example\.test was not delivered: .*ECONNREFUSED/);
      const [failed] = await mailLogTo(url, 'down@example.test');
      expect(failed).to.include({ kind: 'test', outcome: 'failed', attempts: 1, sent_at: null });
      expect(failed.last_error).to.contain('ECONNREFUSED');

      const unconfigured = await cli(['mail', 'test', '--to', 'x@example.test'], testEnv(url));
      expect(unconfigured.code).to.equal(2);
      expect(unconfigured.stderr).to.contain('mail is not configured');
      const bad = await cli(['mail', 'test', '--to', 'not an address'], testEnv(url, smtpEnv(downPort)));
      expect(bad.code).to.equal(2);
      expect((await cli(['mail', 'test'], testEnv(url, smtpEnv(downPort)))).code).to.equal(2);
      // A host without a From address is a configuration error, named.
      const noFrom = await cli(['mail', 'test', '--to', 'x@example.test'], testEnv(url, smtpEnv(downPort, { SENTINEL_NOTIFICATIONS_SMTP_FROM: '' })));
      expect(noFrom.code).to.equal(2);
      expect(noFrom.stderr).to.contain('notifications.smtp.from');
    });

    it('the SMTP password: masked by config print, read from SENTINEL_NOTIFICATIONS_SMTP_PASSWORD_FILE and used for AUTH', async () => {
      const password = `smtp-pw-${uniq()}-${uniq()}`;
      const smtp = await new TestSmtp(await freePort(), { user: 'sentinel', password }).start();
      try {
        const file = join(scratchDir('sentinel-smtp-'), 'smtp_password');
        writeFileSync(file, `${password}\n`, { mode: 0o600 });
        const env = testEnv(url, smtpEnv(smtp.port, { SENTINEL_NOTIFICATIONS_SMTP_USER: 'sentinel', SENTINEL_NOTIFICATIONS_SMTP_PASSWORD_FILE: file }));

        const printed = await cli(['config', 'print'], env);
        expect(printed.code, printed.stderr).to.equal(0);
        expect(JSON.parse(printed.stdout).notifications.smtp).to.include({ user: 'sentinel', password: '***', host: '127.0.0.1', port: smtp.port });
        expect(printed.stdout).to.not.contain(password);
        const fromEnv = await cli(['config', 'print'], { ...testEnv(url), SENTINEL_NOTIFICATIONS_SMTP_PASSWORD: password });
        expect(JSON.parse(fromEnv.stdout).notifications.smtp.password).to.equal('***');
        expect(fromEnv.stdout).to.not.contain(password);

        const ok = await cli(['mail', 'test', '--to', 'auth@example.test'], env);
        expect(ok.code, ok.stderr).to.equal(0);
        await smtp.waitFor((r) => r.to.includes('auth@example.test'));

        // The server does check it: a wrong password is refused, and the error says so.
        writeFileSync(file, 'wrong-password\n');
        const refused = await cli(['mail', 'test', '--to', 'auth2@example.test'], env);
        expect(refused.code).to.equal(1);
        expect(refused.stderr).to.contain('Invalid username or password');
        expect(refused.stderr + refused.logs.text).to.not.contain(password);
      } finally {
        await smtp.stop();
      }
    });
  });

  describe('welcome email', () => {
    let t: TestApp;
    let smtp: TestSmtp;
    let rootToken: string;
    before(async () => {
      smtp = await new TestSmtp(await freePort()).start();
      t = await startTestApp(url, smtpEnv(smtp.port));
      const root = await createUser(t.app.services, { superadmin: true });
      rootToken = (await t.api.login(root.email, root.password)).access_token;
    });
    after(async () => {
      await t.stop();
      await smtp.stop();
    });

    it('adding an org’s first owner emails them (to, subject, the org named); a second owner gets nothing', async () => {
      const slug = `acme-${uniq()}`;
      const org = await t.api.post<{ id: string }>('/organizations', rootToken, { slug, name: 'Acme Rockets' });
      expect(org.status, org.text).to.equal(201);
      const first = await createUser(t.app.services);
      const second = await createUser(t.app.services);

      const added = await t.api.post(`/organizations/${slug}/members`, rootToken, { email: first.email, role: 'owner' });
      expect(added.status, added.text).to.equal(201);
      const m = await smtp.waitFor((r) => r.to.includes(first.email));
      expect(m.subject).to.equal('Welcome to Sentinel: you own Acme Rockets');
      expect(m.raw).to.contain(`"Acme Rockets" (${slug})`);
      expect(m.raw).to.match(new RegExp(`^To: ${first.email.replace(/[.]/g, '\\.')}`, 'm'));
      const row = await until('the welcome row to be sent', async () => (await mailLogTo(url, first.email)).find((r) => r.outcome === 'sent'));
      expect(row).to.include({ kind: 'welcome', org_id: org.body.id, attempts: 1 });

      const again = await t.api.post(`/organizations/${slug}/members`, rootToken, { email: second.email, role: 'owner' });
      expect(again.status, again.text).to.equal(201);
      // Recorded before the answer when it is queued at all: nothing recorded, nothing sent.
      expect(await mailLogTo(url, second.email)).to.deep.equal([]);
      await new Promise((r) => setTimeout(r, 300));
      expect(smtp.received.filter((r) => r.to.includes(second.email))).to.deep.equal([]);
      expect(smtp.received.filter((r) => r.to.includes(first.email))).to.have.length(1);
    });

    it('every way of making a first owner sends it once: user grant / user create --org --role owner, a role change to owner; an admin first gets none', async () => {
      const s = t.app.services;
      // user create --org --role owner (the service the CLI calls).
      const a = await createOrg(s);
      const viaCreate = await createUser(s, { org: a.slug, role: 'owner' });
      await smtp.waitFor((r) => r.to.includes(viaCreate.email));

      // An admin first (no welcome), then promoted while the org has no owner: now its first owner.
      const b = await createOrg(s);
      const promoted = await createUser(s, { org: b.slug, role: 'admin' });
      expect(await mailLogTo(url, promoted.email)).to.deep.equal([]);
      await s.orgs.setMemberRole(SYSTEM_ACTOR, b.slug, promoted.id, 'owner');
      await smtp.waitFor((r) => r.to.includes(promoted.email));
      // Already an owner: setting it again sends nothing more.
      await s.orgs.setMemberRole(SYSTEM_ACTOR, b.slug, promoted.id, 'owner');
      await s.users.grant(SYSTEM_ACTOR, viaCreate.email, b.slug, 'owner');
      expect(await mailLogTo(url, promoted.email)).to.have.length(1);
      expect((await mailLogTo(url, viaCreate.email)).map((r) => r.org_id)).to.deep.equal([a.id]);
    });
  });

  describe('welcome email: two first owners at once', () => {
    it('two owners added to an ownerless org at the same moment: the one whose write locks the org first is its first owner and the only one welcomed', async () => {
      const t = await startTestApp(url, smtpEnv(await freePort()));
      const holder = new pg.Client({ connectionString: url });
      await holder.connect();
      try {
        const s = t.app.services;
        /** The app's sessions waiting for a lock (the membership writes queue on the org row the holder locks). */
        const waiting = async () =>
          (await query<{ n: number }>(url, "select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'sentinel' and wait_event_type = 'Lock'"))[0].n;
        const until = async (n: number) => {
          for (let i = 0; i < 500 && (await waiting()) < n; i++) await new Promise((r) => setTimeout(r, 10));
          expect(await waiting(), 'membership writes waiting on the org row').to.equal(n);
        };
        for (let i = 0; i < 4; i++) {
          const org = await createOrg(s);
          const [u1, u2] = [await createUser(s), await createUser(s)];
          const add = { u1: () => s.orgs.addMember(SYSTEM_ACTOR, org.slug, { email: u1.email, role: 'owner' }), u2: () => s.users.grant(SYSTEM_ACTOR, u2.email, org.slug, 'owner') };
          // Both writes queue behind a lock the test holds on the org row, in a known order
          // (PostgreSQL grants a row's waiters in turn): the first in line becomes the first owner.
          const [first, second] = i % 2 === 0 ? (['u1', 'u2'] as const) : (['u2', 'u1'] as const);
          await holder.query('begin');
          await holder.query('select id from organizations where id = $1 for no key update', [org.id]);
          const one = add[first]();
          await until(1);
          const two = add[second]();
          await until(2);
          await holder.query('commit');
          await Promise.all([one, two]);
          const rows = await query<{ to: string[] }>(url, "select \"to\" from mail_log where org_id = $1 and kind = 'welcome'", [org.id]);
          const expected = { u1: u1.email, u2: u2.email }[first];
          expect(rows.map((r) => r.to), `round ${i}: ${first} queued first`).to.deep.equal([[expected]]);
          const owners = await query<{ user_id: string }>(url, "select user_id from memberships where org_id = $1 and role = 'owner' order by user_id", [org.id]);
          expect(owners.map((o) => o.user_id)).to.deep.equal([u1.id, u2.id].sort());
        }
      } finally {
        await holder.query('rollback').catch(() => undefined);
        await holder.end();
        await t.stop();
      }
    });
  });

  describe('welcome email queued by a CLI command', () => {
    it('`sentinel user create --org --role owner` stores the message; the running daemon delivers it', async () => {
      const smtp = await new TestSmtp(await freePort()).start();
      const t = await startTestApp(url, smtpEnv(smtp.port));
      try {
        const org = await createOrg(t.app.services);
        const email = `cli-owner-${uniq()}@example.test`;
        const r = await cli(['user', 'create', email, '--org', org.slug, '--role', 'owner'], testEnv(url, smtpEnv(smtp.port)));
        expect(r.code, r.stderr).to.equal(0);
        // Recorded (and queued) before the command exited.
        expect((await mailLogTo(url, email)).map((row) => row.kind)).to.deep.equal(['welcome']);
        const m = await smtp.waitFor((x) => x.to.includes(email), 20_000);
        expect(m.raw).to.contain(`(${org.slug})`);
      } finally {
        await t.stop();
        await smtp.stop();
      }
    });
  });

  describe('SMTP server down', () => {
    it('the welcome email is retried and recorded (retrying, the error), nothing crashes, and it is delivered once the server is back', async () => {
      const port = await freePort();
      const t = await startTestApp(url, smtpEnv(port));
      let smtp: TestSmtp | null = null;
      try {
        const s = t.app.services;
        const org = await createOrg(s);
        const owner = await createUser(s, { org: org.slug, role: 'owner' });

        const retrying = await until('a second failed attempt', async () => (await mailLogTo(url, owner.email)).find((r) => r.attempts >= 2 && r.outcome === 'retrying'));
        expect(retrying).to.include({ kind: 'welcome', org_id: org.id, sent_at: null });
        expect(retrying.last_error).to.contain('ECONNREFUSED');
        // The daemon still serves.
        expect((await t.api.get('/health')).status).to.equal(200);

        smtp = await new TestSmtp(port).start();
        const m = await smtp.waitFor((r) => r.to.includes(owner.email), 30_000);
        expect(m.raw).to.contain(org.slug);
        const sent = await until('the row to be sent', async () => (await mailLogTo(url, owner.email)).find((r) => r.outcome === 'sent'));
        expect(sent.attempts).to.be.greaterThan(2);
        expect(sent.last_error).to.equal(null);
        // It went through the durable queue: one mail.send task, its attempts the same.
        const tasks = await until('the task to be done', async () => {
          const rows = await query<{ state: string; attempts: number }>(url, "select state, attempts from queue_tasks where task = 'mail.send' and payload->>'logId' = $1", [sent.id]);
          return rows.length === 1 && rows[0].state === 'done' ? rows : undefined;
        });
        expect(tasks[0].attempts).to.equal(sent.attempts);
        expect(smtp.received.filter((r) => r.to.includes(owner.email))).to.have.length(1);
      } finally {
        await t.stop();
        await smtp?.stop();
      }
    });
  });
});
