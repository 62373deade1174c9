import { expect } from 'chai';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The alerting section of the daily report (alerts' `alertingSummary`, which the reports module
 * requires): fired, resolved, the items with their firing time in the day, acknowledgements and
 * the mean times, delivery attempts per channel; one UTC day and one org only. Rows are written
 * here as the evaluator and the outbox write them; then read directly and through a report.
 */

const D = '2026-11-20';
const at = (hhmm: string, day = D) => new Date(`${day}T${hhmm}:00Z`);

describe('alerting summary (the daily report\'s alerting section)', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let org: { id: string; slug: string };
  let other: { id: string; slug: string };
  let admin: string;

  const alert = async (orgId: string, fp: string, rule: string, fired: Date, resolved: Date | null, ack: Date | null) => {
    await query(
      url,
      `insert into alerts (org_id, source, source_id, fingerprint, labels, state, fired_at, resolved_at, ack_at)
       values ($1, 'heartbeat', 'hb', $2, $3, $4, $5, $6, $7)`,
      [orgId, fp, JSON.stringify({ alertname: rule, severity: 'critical' }), resolved ? 'resolved' : 'firing', fired, resolved, ack],
    );
  };

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
    org = await createOrg(t.app.services);
    other = await createOrg(t.app.services);
    const a = await createUser(t.app.services, { org: org.slug, role: 'admin' });
    admin = (await t.api.login(a.email, a.password)).access_token;

    const [ch] = await query<{ id: string }>(url, `insert into notification_channels (org_id, name, type, config) values ($1, 'ops', 'webhook', '{"url": "http://127.0.0.1:1/x"}') returning id`, [org.id]);
    const [ch2] = await query<{ id: string }>(url, `insert into notification_channels (org_id, name, type, config) values ($1, 'theirs', 'webhook', '{"url": "http://127.0.0.1:1/x"}') returning id`, [other.id]);
    // A: fired 10:00, acknowledged 10:05, resolved 10:30. B: fired 23:00, still firing. C: fired
    // the day before, resolved 01:00. Another org's alert and one of the next day: not counted.
    await alert(org.id, 'a', 'DiskFull', at('10:00'), at('10:30'), at('10:05'));
    await alert(org.id, 'b', 'HighCPU', at('23:00'), null, null);
    await alert(org.id, 'c', 'Backlog', at('23:00', '2026-11-19'), at('01:00'), null);
    await alert(org.id, 'd', 'Later', at('00:00', '2026-11-21'), null, null);
    await alert(other.id, 'x', 'Theirs', at('12:00'), at('13:00'), at('12:30'));

    const notification = async (orgId: string, channelId: string, key: string) =>
      (await query<{ id: string }>(url, `insert into notifications (org_id, channel_id, dedup_key, group_key, status, payload, state) values ($1, $2, $3, 'g', 'firing', '{}', 'sent') returning id`, [orgId, channelId, key]))[0].id;
    const n1 = await notification(org.id, ch.id, 'g#0');
    const n2 = await notification(org.id, ch.id, 'g#1');
    const theirs = await notification(other.id, ch2.id, 'g#0');
    const attempt = (orgId: string, id: string, n: number, outcome: string, when: Date) =>
      query(url, 'insert into notification_attempts (org_id, notification_id, attempt, at, outcome, latency_ms) values ($1, $2, $3, $4, $5, 12)', [orgId, id, n, when, outcome]);
    await attempt(org.id, n1, 1, 'retrying', at('10:00'));
    await attempt(org.id, n1, 2, 'sent', at('10:01'));
    await attempt(org.id, n2, 1, 'failed', at('23:59'));
    await attempt(org.id, n2, 2, 'sent', at('00:00', '2026-11-21'));
    await attempt(other.id, theirs, 1, 'sent', at('12:00'));
    // A channel test (POST …/channels/{id}/test) is no delivery of an alert: left out.
    const [probe] = await query<{ id: string }>(url, `insert into notifications (org_id, channel_id, dedup_key, group_key, status, payload, state) values ($1, $2, 'test#1', 'test', 'test', '{}', 'sent') returning id`, [org.id, ch.id]);
    await attempt(org.id, probe.id, 1, 'sent', at('11:00'));
    await attempt(org.id, probe.id, 2, 'failed', at('11:01'));
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  const expected = {
    configured: true,
    note: null,
    alerts: {
      fired: 2,
      resolved: 2,
      items: [
        { rule: 'DiskFull', severity: 'critical', fired_at: '2026-11-20T10:00:00.000Z', resolved_at: '2026-11-20T10:30:00.000Z', duration_seconds: 1800 },
        { rule: 'HighCPU', severity: 'critical', fired_at: '2026-11-20T23:00:00.000Z', resolved_at: null, duration_seconds: 3600 },
      ],
    },
    response: { acknowledged: 1, mean_time_to_acknowledge_seconds: 300, mean_time_to_resolve_seconds: 4500 },
    notifications: { deliveries: 1, failures: 2, by_channel: [{ channel: 'ops', type: 'webhook', deliveries: 1, failures: 2 }] },
  };

  it("counts one org's alerts and delivery attempts of one UTC day", async () => {
    expect(await t.app.services.alertingSummary.daily(org.id, D)).to.deep.equal(expected);
  });

  it('an org without rules or channels: not configured, zeros', async () => {
    const bare = await createOrg(t.app.services);
    const s = await t.app.services.alertingSummary.daily(bare.id, D);
    expect(s).to.deep.include({ configured: false, note: 'alerting not configured' });
    expect(s.alerts).to.deep.equal({ fired: 0, resolved: 0, items: [] });
    expect(s.notifications).to.deep.equal({ deliveries: 0, failures: 0, by_channel: [] });
  });

  it('the daily report carries it', async () => {
    const res = await t.api.post<{ id: string }>(`/organizations/${org.slug}/reports`, admin, { kind: 'daily', date: D });
    expect(res.status, res.text).to.equal(201);
    const report = await t.api.get<{ alerting: unknown }>(`/organizations/${org.slug}/reports/${res.body.id}?format=json`, admin);
    expect(report.status, report.text).to.equal(200);
    expect(report.body.alerting).to.deep.equal(expected);
  });
});
