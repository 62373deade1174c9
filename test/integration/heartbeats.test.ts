import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { expect } from 'chai';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import type { Clock } from '../../src/core/clock.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import { expectProblem, type Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Heartbeats (issue 10 point 7) against a real PostgreSQL with a pinned clock: CRUD and its bad
 * inputs (400 with paths), tenant isolation, the token kept out of logs and the audit log, the
 * ping (404 for unknown tokens, 429 with Retry-After beyond one per second), a missed ping firing
 * an alert through the alerts pipeline and a late ping resolving it; and Sentinel's own
 * heartbeats: the backup one fires when the (disabled) backup job has not succeeded for twice
 * its period and resolves after a successful run, the restore-drill one follows the newest drill;
 * its alert is delivered (firing, then resolved) to the channels in alerts.instance_channels only.
 */

interface Hb {
  id: string;
  name: string;
  period: number;
  grace: number;
  channels: string[];
  labels: Record<string, string>;
  severity: string;
  token: string;
  ping_url: string;
  state: string;
  last_ping_at: string | null;
  due_at: string;
}

const S = 1000;
const HOUR = 3_600_000;

describe('heartbeats', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let at = Date.now();
  const clock: Clock = { now: () => new Date(at) };
  let orgA: { id: string; slug: string };
  let orgB: { id: string; slug: string };
  let editorA: string;
  let viewerA: string;
  let editorB: string;

  const base = () => `/organizations/${orgA.slug}/heartbeats`;
  const create = async (body: Record<string, unknown>, token = editorA) => {
    const res = await t.api.post<Hb>(base(), token, body);
    expect(res.status, res.text).to.equal(201);
    return res.body;
  };
  const alertOf = async (sourceId: string) =>
    (await query<{ state: string; org_id: string | null; source: string; labels: Record<string, string> }>(url, 'select state, org_id, source, labels from alerts where source_id = $1', [sourceId]))[0];

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000' }, { clock });
    orgA = await createOrg(t.app.services);
    orgB = await createOrg(t.app.services);
    const e = await createUser(t.app.services, { org: orgA.slug, role: 'editor' });
    const v = await createUser(t.app.services, { org: orgA.slug, role: 'viewer' });
    const b = await createUser(t.app.services, { org: orgB.slug, role: 'editor' });
    editorA = (await t.api.login(e.email, e.password)).access_token;
    viewerA = (await t.api.login(v.email, v.password)).access_token;
    editorB = (await t.api.login(b.email, b.password)).access_token;
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  it('creates, lists, reads, changes and deletes a heartbeat; the token reads back; audited without it', async () => {
    at = Date.now();
    const t0 = at;
    const hb = await create({ name: ' nightly-etl ', period: '5m', grace: 30, labels: { team: 'data' }, severity: 'warning' });
    expect(hb).to.include({ name: 'nightly-etl', period: 300, grace: 30, severity: 'warning', state: 'new', last_ping_at: null });
    expect(hb.labels).to.deep.equal({ team: 'data' });
    expect(hb.channels).to.deep.equal([]);
    expect(hb.token).to.match(/^hb_[A-Za-z0-9_-]{43}$/);
    expect(hb.ping_url.endsWith(`/api/v1/heartbeats/${hb.token}`), hb.ping_url).to.equal(true);
    expect(hb.due_at).to.equal(new Date(t0 + 330 * S).toISOString());

    at += 1; // listed by creation time
    const defaults = await create({ name: 'defaults', period: 60, grace: '1s' });
    expect(defaults.severity).to.equal('critical');
    expect(defaults.token).to.not.equal(hb.token);

    const list = await t.api.get<{ items: Hb[]; next_cursor: string | null }>(`${base()}?limit=1`, viewerA);
    expect(list.status, list.text).to.equal(200);
    expect(list.body.items.map((h) => h.id)).to.deep.equal([hb.id]);
    expect(list.body.items[0], 'a viewer lists no token').to.not.have.any.keys('token', 'ping_url');
    const page2 = await t.api.get<{ items: Hb[]; next_cursor: string | null }>(`${base()}?limit=1&cursor=${list.body.next_cursor}`, viewerA);
    expect(page2.body.items.map((h) => h.id)).to.deep.equal([defaults.id]);

    const one = await t.api.get<Hb>(`${base()}/${hb.id}`, viewerA);
    expect(one.status, one.text).to.equal(200);
    expect(one.body, 'a viewer (alert.read only) could keep it up with the token').to.not.have.any.keys('token', 'ping_url');
    const byEditor = await t.api.get<Hb>(`${base()}/${hb.id}`, editorA);
    expect(byEditor.body.token, 'an editor can read its token back').to.equal(hb.token);
    expect(byEditor.body.ping_url).to.equal(hb.ping_url);

    const patched = await t.api.call<Hb>('PATCH', `${base()}/${hb.id}`, editorA, { period: '10m', name: 'etl' });
    expect(patched.status, patched.text).to.equal(200);
    expect(patched.body).to.include({ name: 'etl', period: 600, grace: 30, token: hb.token });
    expect(patched.body.due_at, 'counted from the creation (never pinged)').to.equal(new Date(t0 + 630 * S).toISOString());
    const both = await t.api.call<Hb>('PATCH', `${base()}/${hb.id}`, editorA, { period: '1s', grace: '1s' });
    expect(both.status, both.text).to.equal(200);
    expect(both.body.due_at, 'period and grace together').to.equal(new Date(t0 + 2 * S).toISOString());
    const grace = await t.api.call<Hb>('PATCH', `${base()}/${hb.id}`, editorA, { grace: 60, period: 540 });
    expect(grace.body.due_at).to.equal(new Date(t0 + 600 * S).toISOString());

    const dup = await t.api.call('PATCH', `${base()}/${hb.id}`, editorA, { name: 'defaults' });
    expectProblem(dup, 409, 'a taken name');

    const del = await t.api.call('DELETE', `${base()}/${defaults.id}`, editorA);
    expect(del.status, del.text).to.equal(204);
    expectProblem(await t.api.get(`${base()}/${defaults.id}`, viewerA), 404, 'deleted');

    const audit = await query<{ action: string; details: unknown }>(url, "select action, details from audit_log where org_id = $1 and action like 'heartbeat.%' order by id", [orgA.id]);
    expect(audit.map((a) => a.action)).to.deep.equal(['heartbeat.create', 'heartbeat.create', 'heartbeat.update', 'heartbeat.update', 'heartbeat.update', 'heartbeat.delete']);
    expect(JSON.stringify(audit)).to.not.include(hb.token);
  });

  it('refuses bad inputs with their paths (400), a viewer (403) and another org (404)', async () => {
    const cases: [unknown, string][] = [
      [{ name: 'a', period: '0s', grace: 1 }, 'body/period'],
      [{ name: 'a', period: '999ms', grace: 1 }, 'body/period'],
      [{ name: 'a', period: '32d', grace: 1 }, 'body/period'],
      [{ name: 'a', period: 1e12, grace: 1 }, 'body/period'],
      [{ name: 'a', period: 60, grace: 'soon' }, 'body/grace'],
      [{ name: 'a', period: 60, grace: -1 }, 'body/grace'],
      [{ name: 'a', period: 60, grace: true }, 'body/grace'],
      [{ name: 'a', period: 60 }, 'body/grace'],
      [{ name: '', period: 60, grace: 1 }, 'body/name'],
      [{ name: '   ', period: 60, grace: 1 }, 'body/name'],
      [{ name: 'x'.repeat(201), period: 60, grace: 1 }, 'body/name'],
      [{ name: 'nul\u0000', period: 60, grace: 1 }, 'body/name'],
      [{ name: 'a', period: 60, grace: 1, severity: 'page-everyone' }, 'body/severity'],
      [{ name: 'a', period: 60, grace: 1, labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }, 'body/labels'],
      [{ name: 'a', period: 60, grace: 1, labels: { 'bad key': 'v' } }, 'body/labels'],
      [{ name: 'a', period: 60, grace: 1, labels: { k: 'v'.repeat(1025) } }, 'body/labels/k'],
      [{ name: 'a', period: 60, grace: 1, labels: { k: 1 } }, 'body/labels/k'],
      [{ name: 'a', period: 60, grace: 1, channels: ['not-a-uuid'] }, 'body/channels/0'],
      [{ name: 'a', period: 60, grace: 1, channels: [randomUUID()] }, 'body/channels/0'],
      [{ name: 'a', period: 60, grace: 1, token: 'hb_mine' }, 'body'],
    ];
    for (const [body, path] of cases) {
      const res = await t.api.post(base(), editorA, body);
      const label = JSON.stringify(body).slice(0, 120);
      expectProblem(res, 400, label);
      const paths = ((res.body as Problem).errors ?? []).map((e) => e.path);
      expect(paths.some((p) => p === path || p.startsWith(`${path}/`)), `${label}: ${JSON.stringify(paths)} names ${path}`).to.equal(true);
    }
    // The largest: 31 days each (period + grace is past a 32-bit count of ms), created and pinged.
    at = Date.now();
    const monthly = await create({ name: 'monthly', period: '31d', grace: 31 * 86_400 });
    expect(monthly).to.include({ period: 31 * 86_400, grace: 31 * 86_400, due_at: new Date(at + 62 * 86_400 * S).toISOString() });
    expect((await t.api.post(`/heartbeats/${monthly.token}`, null)).status).to.equal(200);
    expect((await t.api.call('PATCH', `${base()}/${monthly.id}`, editorA, { period: '31d', grace: '31d' })).status).to.equal(200);

    const hb = await create({ name: 'inputs', period: 60, grace: 1 });
    expectProblem(await t.api.call('PATCH', `${base()}/${hb.id}`, editorA, {}), 400, 'an empty patch');
    expectProblem(await t.api.call('PATCH', `${base()}/${hb.id}`, editorA, { grace: '40d' }), 400, 'a grace beyond 31 days');
    expectProblem(await t.api.get(`${base()}/not-a-uuid`, viewerA), 400, 'a malformed id');

    expectProblem(await t.api.post(base(), viewerA, { name: 'v', period: 60, grace: 1 }), 403, 'a viewer creating');
    expectProblem(await t.api.call('DELETE', `${base()}/${hb.id}`, viewerA), 403, 'a viewer deleting');

    // Org B's editor: A's heartbeat through B's slug, and A's slug, are both not found.
    const inB = `/organizations/${orgB.slug}/heartbeats/${hb.id}`;
    expectProblem(await t.api.get(inB, editorB), 404, "A's heartbeat under B");
    expectProblem(await t.api.call('PATCH', inB, editorB, { name: 'taken-over' }), 404, "patching A's heartbeat under B");
    expectProblem(await t.api.call('DELETE', inB, editorB), 404, "deleting A's heartbeat under B");
    expectProblem(await t.api.get(`${base()}/${hb.id}`, editorB), 404, "A's slug for B's editor");
    const still = await t.api.get<Hb>(`${base()}/${hb.id}`, viewerA);
    expect(still.body.name).to.equal('inputs');
  });

  it("takes the org's own channels only: another org's channel is refused with its path", async () => {
    const s = t.app.services;
    const mine = await s.channels.create(SYSTEM_ACTOR, orgA.slug, { name: 'ops-mail', type: 'email', config: { to: ['ops@example.test'] } });
    const theirs = await s.channels.create(SYSTEM_ACTOR, orgB.slug, { name: 'b-mail', type: 'email', config: { to: ['b@example.test'] } });
    const hb = await create({ name: 'with-channel', period: 60, grace: 5, channels: [mine.id] });
    expect(hb.channels).to.deep.equal([mine.id]);
    const refused = await t.api.post(base(), editorA, { name: 'stolen', period: 60, grace: 5, channels: [mine.id, theirs.id] });
    expectProblem(refused, 400, "B's channel");
    expect((refused.body as Problem).errors).to.deep.equal([{ path: 'body/channels/1', message: 'no such channel in this organization' }]);
    const patch = await t.api.call('PATCH', `${base()}/${hb.id}`, editorA, { channels: [theirs.id] });
    expectProblem(patch, 400, "patching in B's channel");
    expect((await t.api.get<Hb>(`${base()}/${hb.id}`, viewerA)).body.channels).to.deep.equal([mine.id]);
  });

  it('a PATCH of channels or name while down: the next repeat goes to the new channel only, under the new receiver', async () => {
    const s = t.app.services;
    const old = await s.channels.create(SYSTEM_ACTOR, orgA.slug, { name: 'old-mail', type: 'email', config: { to: ['old@example.test'] } });
    const fresh = await s.channels.create(SYSTEM_ACTOR, orgA.slug, { name: 'new-mail', type: 'email', config: { to: ['new@example.test'] } });
    const hb = await create({ name: 'repeat-me', period: 60, grace: 5, channels: [old.id] });
    at += 66_000;
    await s.heartbeats.check(new Date(at));
    await s.notificationPolicy.flushDue(new Date(at));
    const sent = () =>
      query<{ channel_id: string; dedup_key: string; receiver: string }>(
        url,
        "select channel_id, dedup_key, payload->>'receiver' as receiver from notifications where group_key = $1 order by created_at, dedup_key",
        [`heartbeat:${hb.id}:{}`],
      );
    expect((await sent()).map((n) => n.channel_id), 'paged while down').to.deep.equal([old.id]);

    const patched = await t.api.call<Hb>('PATCH', `${base()}/${hb.id}`, editorA, { channels: [fresh.id], name: 'repeat-me-renamed' });
    expect(patched.status, patched.text).to.equal(200);
    at += 4 * 3_600_000 + 60_000; // past repeat_interval (4 h)
    await s.notificationPolicy.flushDue(new Date(at));
    const after = (await sent()).slice(1);
    expect(after.map((n) => n.channel_id), 'the repeat').to.deep.equal([fresh.id]);
    expect(after[0].receiver).to.equal('repeat-me-renamed');
  });

  it('pings: unknown tokens 404, more than one a second 429 with Retry-After; the token never reaches the logs', async () => {
    at = Date.now();
    const hb = await create({ name: 'pinged', period: 60, grace: 10 });
    const path = `/heartbeats/${hb.token}`;
    const ok = await t.api.post<{ ok: boolean; state: string }>(path, null);
    expect(ok.status, ok.text).to.equal(200);
    expect(ok.body).to.deep.equal({ ok: true, state: 'up' });
    const got = await t.api.get<Hb>(`${base()}/${hb.id}`, viewerA);
    expect(got.body).to.include({ state: 'up', last_ping_at: new Date(at).toISOString(), due_at: new Date(at + 70 * S).toISOString() });

    const again = await t.api.post(path, null);
    expectProblem(again, 429, 'a second ping within the second');
    expect(Number(again.headers.get('retry-after'))).to.be.at.least(1);
    at += 1000;
    expect((await t.api.post(path, null)).status, 'a second later').to.equal(200);

    expectProblem(await t.api.post(`/heartbeats/hb_${'A'.repeat(43)}`, null), 404, 'an unknown token');
    expectProblem(await t.api.post('/heartbeats/nonsense', null), 404, 'a token of another shape');
    expectProblem(await t.api.post(`/heartbeats/${hb.token.slice(0, -1)}x`, null), 404, 'one character off');
    expectProblem(await t.api.post(`/heartbeats/hb_${'x'.repeat(300)}`, null), 400, 'a huge token');
    expectProblem(await t.api.post('/heartbeats/hb_%00', null), 400, 'a NUL in the token');
    // Requests no route takes log their path: a wrong method, a trailing segment.
    expect((await t.api.raw('GET', `/api/v1${path}`)).status).to.equal(405);
    expect((await t.api.raw('POST', `/api/v1${path}/extra`)).status).to.equal(404);

    // A rotation: the old token is refused at once, the new one pings.
    at += 1000;
    const rotated = await t.api.post<Hb>(`${base()}/${hb.id}/rotate-token`, editorA);
    expect(rotated.status, rotated.text).to.equal(200);
    expect(rotated.body.token).to.match(/^hb_[A-Za-z0-9_-]{43}$/).and.not.equal(hb.token);
    expect(rotated.body).to.include({ id: hb.id, state: 'up' });
    expectProblem(await t.api.post(path, null), 404, 'the rotated-out token');
    expect((await t.api.post(`/heartbeats/${rotated.body.token}`, null)).status, 'the new token').to.equal(200);
    expectProblem(await t.api.post(`${base()}/${hb.id}/rotate-token`, viewerA), 403, 'a viewer rotating');
    expectProblem(await t.api.post(`/organizations/${orgB.slug}/heartbeats/${hb.id}/rotate-token`, editorB), 404, "B rotating A's token");

    expect(t.logs.text).to.include('"route":"/heartbeats/{token}"');
    expect(t.logs.text).to.include('/heartbeats/{token}/extra');
    expect(t.logs.text, 'the token in a log line').to.not.include(hb.token);
    expect(t.logs.text, 'the new token in a log line').to.not.include(rotated.body.token);
    const audit = await query<{ details: unknown }>(url, "select details from audit_log where target_id = $1 and action = 'heartbeat.rotate_token'", [hb.id]);
    expect(audit).to.have.length(1);
    expect(JSON.stringify(audit)).to.not.include(rotated.body.token);
  });

  it('a missed ping fires its alert (once), a late ping resolves it', async () => {
    at = Date.now();
    const hb = await create({ name: 'backup-cron', period: '1m', grace: '30s', labels: { env: 'prod' } });
    const services = t.app.services;
    // check() covers every org's heartbeats (earlier tests' too): assertions are on this one's rows.
    at += 89 * S;
    await services.heartbeats.check(clock.now());
    expect(await alertOf(hb.id)).to.equal(undefined);
    expect((await t.api.get<Hb>(`${base()}/${hb.id}`, viewerA)).body.state).to.equal('new');

    at += 2 * S;
    expect(await services.heartbeats.check(clock.now()), 'missed after period + grace').to.be.at.least(1);
    const fired = await alertOf(hb.id);
    expect(fired).to.include({ state: 'firing', org_id: orgA.id, source: 'heartbeat' });
    expect(fired.labels).to.include({ heartbeat: 'backup-cron', env: 'prod' });
    expect((await t.api.get<Hb>(`${base()}/${hb.id}`, viewerA)).body.state).to.equal('down');
    // The org sees it among its alerts, named after the heartbeat; org B does not.
    type AlertItem = { source: string; rule_name: string | null; labels: Record<string, string>; state: string };
    const listed = await t.api.get<{ items: AlertItem[] }>(`/organizations/${orgA.slug}/alerts?state=firing`, viewerA);
    expect(listed.status, listed.text).to.equal(200);
    const mine = listed.body.items.filter((a) => a.source === 'heartbeat' && a.labels.heartbeat === 'backup-cron');
    expect(mine, listed.text).to.have.length(1);
    expect(mine[0]).to.include({ state: 'firing', rule_name: 'backup-cron' });
    expect(mine[0].labels).to.include({ alertname: 'backup-cron', severity: 'critical', env: 'prod' });
    const inB = await t.api.get<{ items: AlertItem[] }>(`/organizations/${orgB.slug}/alerts?state=firing`, editorB);
    expect(inB.body.items.filter((a) => a.source === 'heartbeat')).to.deep.equal([]);
    at += 60 * S;
    expect(await services.heartbeats.check(clock.now()), 'down is not claimed again').to.equal(0);
    expect((await alertOf(hb.id)).state).to.equal('firing');

    at += 60 * S;
    const late = await t.api.post<{ ok: boolean; state: string }>(`/heartbeats/${hb.token}`, null);
    expect(late.body).to.deep.equal({ ok: true, state: 'up' });
    expect((await alertOf(hb.id)).state).to.equal('resolved');

    // Deleted while down: its alert goes with it (resolved), nothing fires on without a heartbeat.
    const gone = await create({ name: 'decommissioned', period: 1, grace: 1 });
    at += 3 * S;
    await services.heartbeats.check(clock.now());
    expect((await alertOf(gone.id)).state).to.equal('firing');
    expect((await t.api.call('DELETE', `${base()}/${gone.id}`, editorA)).status).to.equal(204);
    expect((await alertOf(gone.id)).state).to.equal('resolved');
  });

  it('a stopping check starts no further batch (the loop aborts its signal on shutdown)', async () => {
    at = Date.now();
    const hb = await create({ name: 'stop-between-batches', period: 1, grace: 1 });
    at += 3 * S;
    const stopped = new AbortController();
    stopped.abort();
    expect(await t.app.services.heartbeats.check(clock.now(), stopped.signal), 'stopped: no batch').to.equal(0);
    expect((await t.api.get<Hb>(`${base()}/${hb.id}`, editorA)).body.state).to.not.equal('down');
    expect(await t.app.services.heartbeats.check(clock.now())).to.be.at.least(1);
    expect((await t.api.get<Hb>(`${base()}/${hb.id}`, editorA)).body.state).to.equal('down');
  });

  it('concurrent checks (several daemons) take each missed heartbeat once', async () => {
    at = Date.now();
    const made = await Promise.all(Array.from({ length: 30 }, (_, i) => create({ name: `fleet-${i}`, period: 1, grace: 1 })));
    at += 5 * S;
    const [{ due }] = await query<{ due: number }>(url, "select count(*)::int as due from heartbeats where state <> 'down' and due_at <= $1", [clock.now()]);
    expect(due).to.be.at.least(30);
    const other = await startTestApp(url, {}, { clock });
    try {
      const counts = await Promise.all([t.app.services, other.app.services, t.app.services, other.app.services].map((s) => s.heartbeats.check(clock.now())));
      expect(counts.reduce((a, b) => a + b, 0), `per check: ${counts.join(', ')}`).to.equal(due);
    } finally {
      await other.stop();
    }
    const rows = await query<{ n: number }>(url, "select count(*)::int as n from alerts where source = 'heartbeat' and state = 'firing' and source_id = any($1)", [made.map((h) => h.id)]);
    expect(rows[0].n).to.equal(30);
  });

  it("Sentinel's backup heartbeat fires when the (disabled) backup job has not succeeded for twice its period, and resolves after a success", async () => {
    const [{ installed }] = await query<{ installed: Date }>(url, 'select min(migration_time) as installed from knex_migrations');
    const period = 6 * HOUR; // the backup job's default schedule, every 6 h (disabled in tests)
    const checks = t.app.services.instanceChecks;

    at = installed.getTime() + 2 * period - 60_000;
    expect((await checks.run(clock.now())).backup.firing).to.equal(false);
    expect(await alertOf('backup')).to.equal(undefined);

    at = installed.getTime() + 2 * period + 60_000;
    // As the scheduler would run it: the instance-checks job through the jobs kit (recorded in job_runs).
    const run = await t.app.jobsKit.runNow('instance-checks');
    expect(run.outcome, JSON.stringify(run)).to.equal('ok');
    const r = await checks.run(clock.now());
    expect(r.backup.firing, r.backup.summary).to.equal(true);
    expect(r.backup.summary).to.include('disabled');
    expect(await alertOf('backup')).to.include({ state: 'firing', org_id: null, source: 'instance' });
    expect((await t.api.raw('GET', '/metrics')).text).to.match(/^sentinel_instance_alert_firing\{check="backup"\} 1$/m);

    // A successful backup run (as the jobs kit records one), at the pinned time.
    await query(url, "insert into job_runs (job, trigger, started_at, finished_at, outcome, instance, pid) values ('backup', 'manual', $1, $1, 'ok', 'test', 1)", [clock.now()]);
    expect((await checks.run(clock.now())).backup.firing).to.equal(false);
    expect((await alertOf('backup')).state).to.equal('resolved');
    expect((await t.api.raw('GET', '/metrics')).text).to.match(/^sentinel_instance_alert_firing\{check="backup"\} 0$/m);
  });

  it("Sentinel's restore-drill heartbeat follows the newest finished drill", async () => {
    const checks = t.app.services.instanceChecks;
    const drill = (outcome: string, offset: number) =>
      query(url, "insert into job_runs (job, trigger, started_at, finished_at, outcome, error, instance, pid) values ('restore-drill', 'manual', $1, $1, $2, $3, 'test', 1)", [
        new Date(at + offset),
        outcome,
        outcome === 'ok' ? null : 'checksum mismatch in table points',
      ]);
    expect((await checks.run(clock.now()))['restore-drill'].firing, 'no drill yet').to.equal(false);
    await drill('failed', 1);
    const r = await checks.run(clock.now());
    expect(r['restore-drill'].firing).to.equal(true);
    expect(r['restore-drill'].summary).to.include('checksum mismatch');
    expect(await alertOf('restore-drill')).to.include({ state: 'firing', org_id: null });
    expect((await t.api.raw('GET', '/metrics')).text).to.match(/^sentinel_instance_alert_firing\{check="restore-drill"\} 1$/m);
    await drill('skipped', 2);
    expect((await checks.run(clock.now()))['restore-drill'].firing, 'a skipped run changes nothing').to.equal(true);
    await drill('ok', 3);
    expect((await checks.run(clock.now()))['restore-drill'].firing).to.equal(false);
    expect((await alertOf('restore-drill')).state).to.equal('resolved');
  });

  it('the daemon (alerts.enabled) checks on its own every alerts.tick_ms: a missed heartbeat fires without anyone calling check()', async () => {
    at = Date.now();
    const daemon = await startTestApp(url, { SENTINEL_ALERTS_ENABLED: 'true', SENTINEL_ALERTS_TICK_MS: '50' }, { clock });
    try {
      const hb = await create({ name: 'looped', period: '1s', grace: '1s' });
      at += 2500;
      const deadline = Date.now() + 10_000;
      while ((await alertOf(hb.id))?.state !== 'firing') {
        expect(Date.now(), 'the loop raised the alert within 10 s').to.be.below(deadline);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect((await daemon.api.post<{ state: string }>(`/heartbeats/${hb.token}`, null)).body.state).to.equal('up');
      expect((await alertOf(hb.id)).state).to.equal('resolved');
    } finally {
      await daemon.stop();
    }
  });
});

/** A webhook receiver on 127.0.0.1 recording each request. */
async function receiver(): Promise<{ url: string; hits: { method: string; type: string; body: WebhookBody }[]; connections: () => number; close: () => Promise<void> }> {
  const hits: { method: string; type: string; body: WebhookBody }[] = [];
  let connections = 0;
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ method: req.method ?? '', type: String(req.headers['content-type'] ?? ''), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookBody });
      res.writeHead(200).end('ok');
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    hits,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface WebhookBody {
  version: string;
  groupKey: string;
  truncatedAlerts: number;
  status: string;
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: { status: string; labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string }[];
}

async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("Sentinel's own alert reaches alerts.instance_channels", function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp | undefined;
  let listed: Awaited<ReturnType<typeof receiver>>;
  let unlisted: Awaited<ReturnType<typeof receiver>>;
  let at = Date.now();
  const clock: Clock = { now: () => new Date(at) };
  const PRIVATE_OK = { SENTINEL_NOTIFICATIONS_ALLOW_PRIVATE_NETWORKS: 'true', SENTINEL_QUEUE_POLL_INTERVAL_MS: '50' };

  before(async () => {
    listed = await receiver();
    unlisted = await receiver();
    url = await cloneDatabase();
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
    await listed?.close();
    await unlisted?.close();
  });

  it('the backup check fires to the listed channel (of any org) and resolves there once; an unlisted channel gets nothing', async () => {
    // The channels exist before the app that names one of them in alerts.instance_channels starts.
    const first = await startTestApp(url, PRIVATE_OK);
    let chA: { id: string };
    let chB: { id: string };
    try {
      const orgA = await createOrg(first.app.services);
      const orgB = await createOrg(first.app.services);
      chA = await first.app.services.channels.create(SYSTEM_ACTOR, orgA.slug, { name: 'ops-hook', type: 'webhook', config: { url: listed.url } });
      chB = await first.app.services.channels.create(SYSTEM_ACTOR, orgB.slug, { name: 'b-hook', type: 'webhook', config: { url: unlisted.url } });
    } finally {
      await first.stop();
    }

    const [{ installed }] = await query<{ installed: Date }>(url, 'select min(migration_time) as installed from knex_migrations');
    const period = 6 * HOUR; // the backup job's default schedule (disabled in tests)
    at = installed.getTime() + 2 * period + 60_000;
    t = await startTestApp(url, { ...PRIVATE_OK, SENTINEL_ALERTS_INSTANCE_CHANNELS: chA.id }, { clock });
    const app = t.app;
    const sentTo = (channelId: string) =>
      query<{ state: string; status: string }>(url, 'select state, status from notifications where channel_id = $1 order by created_at', [channelId]);
    const labels = { check: 'backup', alertname: 'SentinelBackupOverdue', severity: 'critical' };

    // The instance-checks job (as the scheduler runs it) raises the alert; the policy's flush sends it.
    const run = await app.jobsKit.runNow('instance-checks');
    expect(run.outcome, JSON.stringify(run)).to.equal('ok');
    const [alert] = await query<{ state: string; org_id: string | null; labels: Record<string, string> }>(url, "select state, org_id, labels from alerts where source = 'instance' and source_id = 'backup'");
    expect(alert).to.deep.include({ state: 'firing', org_id: null, labels });
    const firedAt = clock.now().toISOString();
    expect(await app.services.notificationPolicy.flushDue(clock.now()), 'one group flushed').to.equal(1);
    await until('the firing notification delivered', async () => (await sentTo(chA.id)).some((n) => n.state === 'sent'));
    await until('the receiver got it', () => listed.hits.length >= 1);
    expect(listed.hits).to.have.length(1);
    const firing = listed.hits[0];
    expect(firing.method).to.equal('POST');
    expect(firing.type).to.match(/^application\/json/);
    expect(firing.body).to.include({ version: '4', groupKey: 'instance:backup:{}', truncatedAlerts: 0, status: 'firing', receiver: 'SentinelBackupOverdue' });
    expect(firing.body.groupLabels).to.deep.equal({});
    expect(firing.body.commonLabels).to.deep.equal(labels);
    expect(firing.body.alerts).to.have.length(1);
    expect(firing.body.alerts[0]).to.include({ status: 'firing', startsAt: firedAt, endsAt: '0001-01-01T00:00:00Z' });
    expect(firing.body.alerts[0].labels).to.deep.equal(labels);
    expect(firing.body.alerts[0].annotations.summary).to.include('the backup job is disabled');

    // A successful backup, past group_interval (60 s) since the firing notification: resolved, sent once.
    at += 2 * 60_000;
    await query(url, "insert into job_runs (job, trigger, started_at, finished_at, outcome, instance, pid) values ('backup', 'manual', $1, $1, 'ok', 'test', 1)", [clock.now()]);
    expect((await app.jobsKit.runNow('instance-checks')).outcome).to.equal('ok');
    expect((await query<{ state: string }>(url, "select state from alerts where source = 'instance' and source_id = 'backup'"))[0].state).to.equal('resolved');
    const resolvedAt = clock.now().toISOString();
    expect(await app.services.notificationPolicy.flushDue(clock.now()), 'the resolve flushed').to.equal(1);
    await until('the resolved notification delivered', async () => (await sentTo(chA.id)).filter((n) => n.state === 'sent').length === 2);
    await until('the receiver got it', () => listed.hits.length >= 2);
    const resolved = listed.hits[1];
    expect(resolved.body).to.include({ version: '4', groupKey: 'instance:backup:{}', status: 'resolved', receiver: 'SentinelBackupOverdue' });
    expect(resolved.body.alerts).to.have.length(1);
    expect(resolved.body.alerts[0]).to.include({ status: 'resolved', startsAt: firedAt, endsAt: resolvedAt });
    expect(resolved.body.alerts[0].labels).to.deep.equal(labels);

    // Nothing further: another run and flush while it is resolved send nothing.
    at += 2 * 60_000;
    expect((await app.jobsKit.runNow('instance-checks')).outcome).to.equal('ok');
    expect(await app.services.notificationPolicy.flushDue(clock.now())).to.equal(0);
    await new Promise((r) => setTimeout(r, 300)); // a few queue polls
    expect(listed.hits, 'one firing, one resolved').to.have.length(2);
    expect((await sentTo(chA.id)).map((n) => n.status)).to.deep.equal(['firing', 'resolved']);
    // The other org's channel, not in alerts.instance_channels: no notification, no connection.
    expect(await sentTo(chB.id)).to.deep.equal([]);
    expect(unlisted.hits).to.deep.equal([]);
    expect(unlisted.connections()).to.equal(0);
  });
});
