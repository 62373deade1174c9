import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { expect } from 'chai';
import type { Notifier } from '../../src/core/alerting.js';
import type { Clock } from '../../src/core/clock.js';
import { AlertGroupsRepository, type AlertGroupRow, type GroupTx } from '../../src/features/alerts/alert-groups-repository.js';
import { groupKeyOf, type GroupSettings } from '../../src/features/alerts/alert-types.js';
import { MaintenanceWindowsRepository } from '../../src/features/alerts/maintenance-windows-repository.js';
import { NotificationPolicyService, suppressionSource } from '../../src/features/alerts/notification-policy.js';
import { SilencesRepository } from '../../src/features/alerts/silences-repository.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The notification policy (issue 10 points 3, 4, 6) against a real PostgreSQL, with a pinned
 * clock and a real webhook receiver on 127.0.0.1: group_wait holds the first notification,
 * group_interval batches later changes, repeat_interval repeats; a silence suppresses and its
 * end while the alert fires lets it through; an open maintenance window suppresses; an ack
 * suppresses until it expires or the alert resolves; a resolve is sent once; a crash between
 * dispatch and commit sends nothing twice. Alerts rows are written here as the evaluator writes
 * them (state, fired_at, group_key), then the group is touched and flushed as a tick does.
 */

interface Stored {
  dedup_key: string;
  group_key: string;
  status: string;
  payload: { status: string; groupKey: string; alerts: { status: string; labels: Record<string, string>; endsAt: string }[] };
}

const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
// A Monday, 10:00 UTC.
const T0 = Date.parse('2026-12-07T10:00:00Z');

/** A webhook receiver on 127.0.0.1 recording each body. */
async function receiver(): Promise<{ url: string; bodies: unknown[]; server: Server }> {
  const bodies: unknown[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, bodies, server };
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

describe('notification policy: grouping, timers, silences, maintenance windows, acks', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let at = T0;
  const clock: Clock = { now: () => new Date(at) };
  let org: { id: string; slug: string };
  let editor: string;
  let channelId: string;
  let hook: Awaited<ReturnType<typeof receiver>>;

  before(async () => {
    hook = await receiver();
    url = await cloneDatabase();
    t = await startTestApp(
      url,
      { SENTINEL_NOTIFICATIONS_ALLOW_PRIVATE_NETWORKS: 'true', SENTINEL_QUEUE_POLL_INTERVAL_MS: '50', SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000' },
      { clock },
    );
    org = await createOrg(t.app.services, `np-${randomBytes(3).toString('hex')}`);
    const admin = await createUser(t.app.services, { org: org.slug, role: 'admin' });
    const ed = await createUser(t.app.services, { org: org.slug, role: 'editor' });
    const adminToken = (await t.api.login(admin.email, admin.password)).access_token;
    editor = (await t.api.login(ed.email, ed.password)).access_token;
    const ch = await t.api.post<{ id: string }>(`/organizations/${org.slug}/channels`, adminToken, { name: 'hook', type: 'webhook', config: { url: hook.url } });
    expect(ch.status, ch.text).to.equal(201);
    channelId = ch.body.id;
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
    hook?.server.close();
  });
  beforeEach(() => {
    at = T0;
  });

  const policy = () => t.app.services.notificationPolicy;

  /** A rule's group with these timers: of `rule`, or of a fresh (disabled) rule row. */
  function group(timers: { wait: number; interval: number; repeat: number }, groupLabels: Record<string, string> = {}, rule?: { id: string; name: string }) {
    const settings: GroupSettings = {
      orgId: org.id,
      source: 'rule',
      sourceId: rule?.id ?? randomUUID(),
      receiver: rule?.name ?? 'High CPU',
      channels: [channelId],
      groupLabels,
      groupWaitMs: timers.wait,
      groupIntervalMs: timers.interval,
      repeatIntervalMs: timers.repeat,
    };
    const key = groupKeyOf('rule', settings.sourceId, groupLabels);
    const touch = () => policy().touch(settings, new Date(at));
    return {
      key,
      settings,
      /** Fires (a new episode) an alert with these labels; returns its id. */
      async fire(labels: Record<string, string>, state: 'firing' | 'pending' = 'firing'): Promise<string> {
        const all = { alertname: 'HighCPU', severity: 'critical', ...labels };
        // As the evaluator's rows, they carry their rule's id: a (disabled) rule row stands for it.
        if (!rule) {
          await query(
            url,
            `insert into alert_rules (org_id, id, name, kind, query, interval_ms, severity, group_wait_ms, group_interval_ms, repeat_interval_ms, enabled)
             values ($1, $2, $3, 'threshold', '{}', 60000, 'critical', $4, $5, $6, false) on conflict do nothing`,
            [org.id, settings.sourceId, `np-${settings.sourceId}`, timers.wait, timers.interval, timers.repeat],
          );
        }
        const [row] = await query<{ id: string }>(
          url,
          `insert into alerts (org_id, source, source_id, rule_id, fingerprint, group_key, labels, state, active_at, fired_at, last_breach_at)
           values ($1, 'rule', $2, $7, $3, $4, $5, $8, $6, case when $8 = 'firing' then $6::timestamptz end, $6)
           on conflict (coalesce(org_id, '00000000-0000-0000-0000-000000000000'::uuid), source, source_id, fingerprint)
           do update set state = 'firing', fired_at = $6, resolved_at = null, firing_notified_at = null, resolved_notified_at = null,
                         ack_by = null, ack_at = null, ack_comment = null, ack_expires_at = null
           returning id`,
          [org.id, settings.sourceId, JSON.stringify(all), key, JSON.stringify(all), new Date(at), settings.sourceId, state],
        );
        await touch();
        return row.id;
      },
      async resolve(id: string): Promise<void> {
        await query(url, "update alerts set state = 'resolved', resolved_at = $2, active_at = null where id = $1", [id, new Date(at)]);
        await touch();
      },
      async ack(id: string, expiresAt: number | null): Promise<void> {
        await query(url, 'update alerts set ack_at = $2, ack_comment = $3, ack_expires_at = $4 where id = $1', [id, new Date(at), 'on it', expiresAt === null ? null : new Date(expiresAt)]);
      },
      /** The group's notifications, oldest first. */
      async sent(): Promise<Stored[]> {
        return query<Stored>(url, 'select dedup_key, group_key, status, payload from notifications where group_key = $1 order by created_at, dedup_key', [key]);
      },
      /** Flushes every due group at T0 + `offset`; answers how many notifications this group sent. */
      async flushAt(offset: number): Promise<number> {
        const before = await this.seq();
        at = T0 + offset;
        await policy().flushDue(new Date(at));
        return (await this.seq()) - before;
      },
      async seq(): Promise<number> {
        const [row] = await query<{ seq: number }>(url, 'select seq from alert_groups where group_key = $1', [key]);
        return row?.seq ?? 0;
      },
      async nextFlush(): Promise<string | null> {
        const [g] = await query<{ next_flush_at: Date | null }>(url, 'select next_flush_at from alert_groups where group_key = $1', [key]);
        return g.next_flush_at?.toISOString() ?? null;
      },
    };
  }

  /** `#<seq>` of a dedup key `<group>#<seq>.<content hash>`. */
  const seqOf = (dedupKey: string) => dedupKey.slice(dedupKey.lastIndexOf('#')).replace(/\.[0-9a-f]{16}$/, '');
  const summary = (n: Stored) => ({ key: seqOf(n.dedup_key), status: n.payload.status, alerts: n.payload.alerts.map((a) => `${a.labels.host}:${a.status}`).sort() });

  it('group_wait holds the first notification, group_interval batches later changes, repeat_interval repeats; a resolve is sent once', async () => {
    const g = group({ wait: 30 * S, interval: 5 * MIN, repeat: HOUR });
    const a = await g.fire({ host: 'a' });
    expect(await g.flushAt(0)).to.equal(0);
    expect(await g.flushAt(29 * S)).to.equal(0);
    expect(await g.flushAt(30 * S)).to.equal(1);
    expect((await g.sent()).map(summary)).to.deep.equal([{ key: '#0', status: 'firing', alerts: ['a:firing'] }]);

    // The webhook receiver gets the v4 payload.
    const body = await until('the webhook', () => hook.bodies.find((b) => (b as { groupKey: string }).groupKey === g.key) as Record<string, unknown> | undefined);
    expect(body).to.include({ version: '4', status: 'firing', receiver: 'High CPU', groupKey: g.key, truncatedAlerts: 0 });
    expect((body.alerts as { labels: Record<string, string>; endsAt: string; generatorURL: string }[])[0]).to.deep.include({
      labels: { alertname: 'HighCPU', severity: 'critical', host: 'a' },
      endsAt: '0001-01-01T00:00:00Z',
    });

    // B fires a minute later, A resolves at 4.5 min: both wait for group_interval after the first.
    at = T0 + MIN;
    await g.fire({ host: 'b' });
    expect(await g.flushAt(MIN)).to.equal(0);
    at = T0 + 4.5 * MIN;
    await g.resolve(a);
    expect(await g.flushAt(5 * MIN)).to.equal(0);
    expect(await g.flushAt(5.5 * MIN)).to.equal(1);
    expect(await g.flushAt(6 * MIN)).to.equal(0);
    // Repeated while B fires, every repeat_interval; A's resolve is not sent again.
    expect(await g.flushAt(5.5 * MIN + HOUR - S)).to.equal(0);
    expect(await g.flushAt(5.5 * MIN + HOUR)).to.equal(1);
    // B resolves: one resolved notification, group_interval after the repeat.
    at = T0 + HOUR + 6 * MIN;
    const [b] = await query<{ id: string }>(url, "select id from alerts where group_key = $1 and labels->>'host' = 'b'", [g.key]);
    await g.resolve(b.id);
    expect(await g.flushAt(HOUR + 10 * MIN)).to.equal(0);
    expect(await g.flushAt(HOUR + 10.5 * MIN)).to.equal(1);
    for (const later of [HOUR + 16 * MIN, 3 * HOUR, 10 * HOUR]) expect(await g.flushAt(later), 'nothing more').to.equal(0);
    expect(await g.nextFlush(), 'nothing fires: the group sleeps').to.equal(null);

    expect((await g.sent()).map(summary)).to.deep.equal([
      { key: '#0', status: 'firing', alerts: ['a:firing'] },
      { key: '#1', status: 'firing', alerts: ['a:resolved', 'b:firing'] },
      { key: '#2', status: 'firing', alerts: ['b:firing'] },
      { key: '#3', status: 'resolved', alerts: ['b:resolved'] },
    ]);
  });

  /** A real rule (channels: the webhook; group_wait 0) made over the API, answering its id and name. */
  async function realRule(groupWait: string): Promise<{ id: string; name: string }> {
    const name = `deleted-${randomBytes(3).toString('hex')}`;
    const res = await t.api.post<{ id: string }>(`/organizations/${org.slug}/alert-rules`, editor, {
      name,
      kind: 'threshold',
      query: { name: 'cpu', agg: 'avg', window: '5m' },
      op: '>',
      threshold: 80,
      interval: '1m',
      severity: 'critical',
      channels: [channelId],
      group_wait: groupWait,
      group_interval: '5m',
      repeat_interval: '1h',
    });
    expect(res.status, res.text).to.equal(201);
    return { id: res.body.id, name };
  }
  const alertsOf = (ruleId: string) => query<{ state: string; rule_id: string | null }>(url, "select state, rule_id from alerts where source = 'rule' and source_id = $1", [ruleId]);
  const groupsOf = (ruleId: string) => query<{ id: string }>(url, "select id from alert_groups where source = 'rule' and source_id = $1", [ruleId]);

  it('deleting a rule whose alert was notified firing sends it resolved once at the next flush, then its alert and group go', async () => {
    at = T0;
    const rule = await realRule('0s');
    const g = group({ wait: 0, interval: 5 * MIN, repeat: HOUR }, {}, rule);
    const id = await g.fire({ host: 'a' });
    expect(await g.flushAt(0)).to.equal(1);

    at = T0 + MIN;
    expect((await t.api.call('DELETE', `/organizations/${org.slug}/alert-rules/${rule.id}`, editor)).status).to.equal(204);
    // Kept (rule_id null) until its resolve is sent; the list shows it resolved, named by its alertname.
    expect(await alertsOf(rule.id)).to.deep.equal([{ state: 'resolved', rule_id: null }]);
    const listed = await t.api.get<{ source: string; rule_id: string | null; rule_name: string | null; state: string }>(`/organizations/${org.slug}/alerts/${id}`, editor);
    expect(listed.status, listed.text).to.equal(200);
    expect(listed.body).to.include({ source: 'rule', rule_id: null, rule_name: 'HighCPU', state: 'resolved' });

    // Due group_interval after the firing notification: one resolved notification reaches the receiver.
    at = T0 + 5 * MIN;
    await policy().flushDue(new Date(at));
    expect((await g.sent()).map(summary)).to.deep.equal([
      { key: '#0', status: 'firing', alerts: ['a:firing'] },
      { key: '#1', status: 'resolved', alerts: ['a:resolved'] },
    ]);
    const resolved = await until('the resolved webhook', () => hook.bodies.find((b) => (b as { groupKey: string; status: string }).groupKey === g.key && (b as { status: string }).status === 'resolved'));
    expect(resolved).to.deep.include({ status: 'resolved', receiver: rule.name, groupKey: g.key });
    expect(await alertsOf(rule.id), 'sent: the alert goes').to.deep.equal([]);
    expect(await groupsOf(rule.id), 'and its group').to.deep.equal([]);

    for (const later of [6 * MIN, HOUR, 3 * HOUR]) await policy().flushDue(new Date(T0 + later));
    expect(await g.sent(), 'nothing more').to.have.length(2);
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.bodies.filter((b) => (b as { groupKey: string }).groupKey === g.key), 'the receiver got two').to.have.length(2);
  });

  it('deleting a rule whose alerts were never notified (pending, or firing within group_wait) sends nothing and leaves nothing', async () => {
    at = T0;
    const rule = await realRule('30s');
    const g = group({ wait: 30 * S, interval: 5 * MIN, repeat: HOUR }, {}, rule);
    await g.fire({ host: 'a' });
    await g.fire({ host: 'b' }, 'pending');
    at = T0 + 10 * S;
    expect((await t.api.call('DELETE', `/organizations/${org.slug}/alert-rules/${rule.id}`, editor)).status).to.equal(204);
    expect(await alertsOf(rule.id)).to.deep.equal([]);
    expect(await groupsOf(rule.id)).to.deep.equal([]);
    for (const later of [30 * S, 5 * MIN, 2 * HOUR]) await policy().flushDue(new Date(T0 + later));
    expect(await g.sent()).to.deep.equal([]);
  });

  it('a group that fires again after a quiet time waits group_wait again', async () => {
    const g = group({ wait: 30 * S, interval: 5 * MIN, repeat: HOUR });
    const a = await g.fire({ host: 'a' });
    expect(await g.flushAt(30 * S)).to.equal(1);
    at = T0 + MIN;
    await g.resolve(a);
    expect(await g.flushAt(5.5 * MIN)).to.equal(1);
    at = T0 + 2 * HOUR;
    await g.fire({ host: 'a' });
    expect(await g.flushAt(2 * HOUR + 29 * S)).to.equal(0);
    expect(await g.flushAt(2 * HOUR + 30 * S)).to.equal(1);
    expect((await g.sent()).map(summary).map((s) => s.alerts)).to.deep.equal([['a:firing'], ['a:resolved'], ['a:firing']]);
  });

  it('a silence suppresses the alerts it matches; when it ends while one fires, that one is sent then', async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    const res = await t.api.post(`/organizations/${org.slug}/silences`, editor, { matchers: [{ name: 'host', op: '=~', value: 'db-.*' }], ends_at: new Date(T0 + 10 * MIN).toISOString(), comment: 'maintenance' });
    expect(res.status, res.text).to.equal(201);
    await g.fire({ host: 'db-1' });
    const web = await g.fire({ host: 'web-1' });
    expect(await g.flushAt(0)).to.equal(1);
    expect(await g.nextFlush(), 'woken when the silence ends (before the repeat)').to.equal(new Date(T0 + 10 * MIN).toISOString());
    // A silenced alert that fires and resolves under the silence is never sent.
    at = T0 + 2 * MIN;
    const brief = await g.fire({ host: 'db-2' });
    at = T0 + 3 * MIN;
    await g.resolve(brief);
    expect(await g.flushAt(4 * MIN)).to.equal(0);
    expect(await g.flushAt(10 * MIN - S)).to.equal(0);
    expect(await g.flushAt(10 * MIN)).to.equal(1);
    at = T0 + 11 * MIN;
    await g.resolve(web);
    expect(await g.flushAt(11 * MIN)).to.equal(1);
    expect((await g.sent()).map(summary)).to.deep.equal([
      { key: '#0', status: 'firing', alerts: ['web-1:firing'] },
      { key: '#1', status: 'firing', alerts: ['db-1:firing', 'web-1:firing'] },
      { key: '#2', status: 'firing', alerts: ['db-1:firing', 'web-1:resolved'] },
    ]);
  });

  it('an open maintenance window suppresses the alerts it matches until it closes', async () => {
    // Mondays 10:00–10:30 UTC: open at T0.
    const res = await t.api.post<{ active: boolean }>(`/organizations/${org.slug}/maintenance-windows`, editor, {
      name: `mw-${randomBytes(3).toString('hex')}`,
      matchers: [{ name: 'service', op: '=', value: 'db' }],
      weekdays: [1],
      start: '10:00',
      end: '10:30',
      time_zone: 'UTC',
    });
    expect(res.status, res.text).to.equal(201);
    expect(res.body.active).to.equal(true);
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    await g.fire({ host: 'pg-1', service: 'db' });
    expect(await g.flushAt(0)).to.equal(0);
    expect(await g.nextFlush()).to.equal(new Date(T0 + 30 * MIN).toISOString());
    expect(await g.flushAt(29 * MIN)).to.equal(0);
    expect(await g.flushAt(30 * MIN)).to.equal(1);
    expect((await g.sent()).map(summary)).to.deep.equal([{ key: '#0', status: 'firing', alerts: ['pg-1:firing'] }]);
  });

  it('an acknowledged alert is not re-notified until the ack expires; acked again, its resolve is still sent once', async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    const a = await g.fire({ host: 'a' });
    expect(await g.flushAt(0)).to.equal(1);
    at = T0 + 10 * MIN;
    await g.ack(a, T0 + 2 * HOUR);
    expect(await g.flushAt(HOUR)).to.equal(0);
    expect(await g.flushAt(HOUR + 30 * MIN)).to.equal(0);
    expect(await g.nextFlush(), 'woken when the ack expires').to.equal(new Date(T0 + 2 * HOUR).toISOString());
    expect(await g.flushAt(2 * HOUR)).to.equal(1);
    // Acked without expiry: no repeats at all, but the resolve goes out once.
    at = T0 + 2 * HOUR + MIN;
    await g.ack(a, null);
    expect(await g.flushAt(3 * HOUR + MIN)).to.equal(0);
    expect(await g.flushAt(5 * HOUR)).to.equal(0);
    at = T0 + 5 * HOUR;
    await g.resolve(a);
    expect(await g.flushAt(5 * HOUR)).to.equal(1);
    expect(await g.flushAt(6 * HOUR)).to.equal(0);
    // A new firing episode clears the ack (the state machine does): notified again.
    at = T0 + 7 * HOUR;
    await g.fire({ host: 'a' });
    expect(await g.flushAt(7 * HOUR)).to.equal(1);
    expect((await g.sent()).map(summary).map((s) => `${s.key} ${s.alerts.join(',')}`)).to.deep.equal(['#0 a:firing', '#1 a:firing', '#2 a:resolved', '#3 a:firing']);
  });

  it('an ack keeps one alert out while the others of its group are sent', async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    const a = await g.fire({ host: 'a' });
    await g.ack(a, null);
    await g.fire({ host: 'b' });
    expect(await g.flushAt(0)).to.equal(1);
    expect((await g.sent()).map(summary)).to.deep.equal([{ key: '#0', status: 'firing', alerts: ['b:firing'] }]);
  });

  it('a crash between dispatch and commit dispatches the same key again, which the outbox stores and sends once', async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    await g.fire({ host: 'crash' });
    const real: Notifier = t.app.services.notifications;
    const keys: string[] = [];
    let crash = true;
    const crashing = new NotificationPolicyService({
      groups: new AlertGroupsRepository(t.app.db.knex),
      suppression: suppressionSource(new SilencesRepository(t.app.db.knex), new MaintenanceWindowsRepository(t.app.db.knex)),
      notifier: {
        dispatch: async (n) => {
          keys.push(n.dedupKey);
          const ids = await real.dispatch(n);
          if (crash) throw new Error('crash after dispatch');
          return ids;
        },
      },
      externalUrl: 'http://sentinel.test',
      logger: t.app.logger,
    });
    await crashing.flushDue(new Date(at));
    expect(await g.seq(), 'rolled back').to.equal(0);
    crash = false;
    await crashing.flushDue(new Date(at));
    expect(await g.seq()).to.equal(1);
    expect(keys[0]).to.match(/#0\.[0-9a-f]{16}$/);
    expect(keys, 'the same content: the same key').to.deep.equal([keys[0], keys[0]]);
    expect((await g.sent()).map(summary)).to.deep.equal([{ key: '#0', status: 'firing', alerts: ['crash:firing'] }]);
    expect(await g.flushAt(0)).to.equal(0);
    await until('the delivery', async () => {
      const [n] = await query<{ state: string }>(url, 'select state from notifications where group_key = $1', [g.key]);
      return n?.state === 'sent';
    });
    expect(hook.bodies.filter((b) => (b as { groupKey: string }).groupKey === g.key)).to.have.length(1);
  });

  it('flushes running at once (several daemons) take each due group once (SKIP LOCKED)', async () => {
    const groups = await Promise.all(Array.from({ length: 5 }, async (_, i) => {
      const g = group({ wait: 0, interval: MIN, repeat: HOUR });
      await g.fire({ host: `many-${i}` });
      return g;
    }));
    const other = new NotificationPolicyService({
      groups: new AlertGroupsRepository(t.app.db.knex),
      suppression: suppressionSource(new SilencesRepository(t.app.db.knex), new MaintenanceWindowsRepository(t.app.db.knex)),
      notifier: t.app.services.notifications,
      externalUrl: 'http://sentinel.test',
      logger: t.app.logger,
    });
    await Promise.all([policy().flushDue(new Date(at)), other.flushDue(new Date(at)), policy().flushDue(new Date(at)), other.flushDue(new Date(at))]);
    for (const g of groups) {
      expect(await g.seq()).to.equal(1);
      expect((await g.sent()).map((n) => n.dedup_key.replace(/\.[0-9a-f]{16}$/, ''))).to.deep.equal([`${g.key}#0`]);
    }
  });

  it('a flush whose commit failed and whose group changed since sends the new content under a new key', async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    await g.fire({ host: 'first' });
    class FailingFinish extends AlertGroupsRepository {
      fail = true;
      override async withDueGroup<T>(now: Date, skip: string[], fn: (g: AlertGroupRow, tx: GroupTx) => Promise<T>) {
        return super.withDueGroup<T>(now, skip, (row, tx) =>
          fn(row, {
            ...tx,
            finish: async (o) => {
              if (this.fail) {
                this.fail = false;
                throw new Error('commit failed');
              }
              return tx.finish(o);
            },
          }),
        );
      }
    }
    const flaky = new NotificationPolicyService({
      groups: new FailingFinish(t.app.db.knex),
      suppression: suppressionSource(new SilencesRepository(t.app.db.knex), new MaintenanceWindowsRepository(t.app.db.knex)),
      notifier: t.app.services.notifications,
      externalUrl: 'http://sentinel.test',
      logger: t.app.logger,
    });
    await flaky.flushDue(new Date(at));
    expect(await g.seq(), 'rolled back').to.equal(0);
    await g.fire({ host: 'second' });
    await flaky.flushDue(new Date(at));
    expect(await g.seq()).to.equal(1);
    const sent = (await g.sent()).map(summary);
    expect(sent.map((n) => n.alerts)).to.deep.include(['first:firing', 'second:firing']);
  });

  it('an alert sent by a flush whose now is before its fired_at counts as sent: no second page, its resolve goes out once', async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    const a = await g.fire({ host: 'skew' });
    // Raised by another daemon whose clock is 2 s ahead of this tick's now.
    await query(url, 'update alerts set fired_at = $2, active_at = $2 where id = $1', [a, new Date(T0 + 2 * S)]);
    expect(await g.flushAt(0)).to.equal(1);
    expect(await g.flushAt(2 * MIN), 'not paged again').to.equal(0);
    at = T0 + 3 * MIN;
    await g.resolve(a);
    expect(await g.flushAt(3 * MIN)).to.equal(1);
    expect(await g.flushAt(10 * MIN)).to.equal(0);
    expect((await g.sent()).map(summary)).to.deep.equal([
      { key: '#0', status: 'firing', alerts: ['skew:firing'] },
      { key: '#1', status: 'resolved', alerts: ['skew:resolved'] },
    ]);
  });

  it('wakeOrg after a silence is deleted early releases the held alert at once', async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    const host = `held-${randomBytes(3).toString('hex')}`;
    const res = await t.api.post<{ id: string }>(`/organizations/${org.slug}/silences`, editor, { matchers: [{ name: 'host', op: '=', value: host }], ends_at: new Date(T0 + HOUR).toISOString(), comment: 'quiet' });
    expect(res.status, res.text).to.equal(201);
    await g.fire({ host });
    expect(await g.flushAt(0)).to.equal(0);
    at = T0 + 10 * MIN;
    const del = await t.api.call('DELETE', `/organizations/${org.slug}/silences/${res.body.id}`, editor);
    expect(del.status, del.text).to.equal(204);
    await policy().wakeOrg(org.id, new Date(at));
    expect(await g.nextFlush()).to.equal(new Date(T0 + 10 * MIN).toISOString());
    expect(await g.flushAt(11 * MIN)).to.equal(1);
    expect((await g.sent()).map(summary)).to.deep.equal([{ key: '#0', status: 'firing', alerts: [`${host}:firing`] }]);
  });

  it("wakeOrg also wakes a group with a firing alert and no flush pending, and no other org's group", async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    await g.fire({ host: 'asleep' });
    await query(url, 'update alert_groups set next_flush_at = null where group_key = $1', [g.key]);
    const other = await createOrg(t.app.services, `np-o-${randomBytes(3).toString('hex')}`);
    await policy().touch({ ...g.settings, orgId: other.id, sourceId: randomUUID() }, new Date(at + HOUR));
    at = T0 + MIN;
    await policy().wakeOrg(org.id, new Date(at));
    expect(await g.nextFlush()).to.equal(new Date(T0 + MIN).toISOString());
    const [theirs] = await query<{ next_flush_at: Date }>(url, 'select next_flush_at from alert_groups where org_id = $1', [other.id]);
    expect(theirs.next_flush_at.toISOString(), 'untouched').to.equal(new Date(T0 + HOUR).toISOString());
  });

  it("reconfigure gives a source's existing groups its new receiver, channels and timers", async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR }, { host: 'x' });
    await g.fire({ host: 'x' });
    const { groupLabels: _gl, ...rest } = g.settings;
    await policy().reconfigure({ ...rest, receiver: 'Renamed', channels: [], groupIntervalMs: 2 * MIN, repeatIntervalMs: 2 * HOUR });
    const [row] = await query<Record<string, unknown>>(url, 'select receiver, channels, group_wait_ms, group_interval_ms, repeat_interval_ms, group_labels from alert_groups where group_key = $1', [g.key]);
    expect(row).to.deep.equal({ receiver: 'Renamed', channels: [], group_wait_ms: 0, group_interval_ms: 2 * MIN, repeat_interval_ms: 2 * HOUR, group_labels: { host: 'x' } });
  });

  it('flushDue with an aborted signal (shutdown) claims no group; they stay due', async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    await g.fire({ host: 'stopping' });
    expect(await policy().flushDue(new Date(at), AbortSignal.abort())).to.equal(0);
    expect(await g.seq()).to.equal(0);
    expect(await g.nextFlush()).to.equal(new Date(T0).toISOString());
  });

  it("a flush gives way to an evaluation holding the group's alerts (no deadlock with its touch) and sends at the next tick", async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    const id = await g.fire({ host: 'busy' });
    const trx = await t.app.db.knex.transaction();
    try {
      await trx('alerts').where({ id }).forUpdate().first('id');
      const started = Date.now();
      await policy().flushDue(new Date(at));
      expect(Date.now() - started, 'did not wait for the lock').to.be.below(5000);
      expect(await g.seq()).to.equal(0);
      // What an evaluation does next while holding them: touch the group; the flush holds nothing it waits for.
      await policy().touch(g.settings, new Date(at), trx);
    } finally {
      await trx.commit();
    }
    expect(await g.flushAt(0)).to.equal(1);
  });

  it('a group without channels is flushed (its timers move on) without dispatching', async () => {
    const g = group({ wait: 0, interval: MIN, repeat: HOUR });
    g.settings.channels = [];
    await g.fire({ host: 'quiet' });
    expect(await g.flushAt(0)).to.equal(1);
    expect(await g.sent()).to.deep.equal([]);
    expect(await g.nextFlush()).to.equal(new Date(T0 + HOUR).toISOString());
  });
});
