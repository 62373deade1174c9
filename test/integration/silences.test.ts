import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Clock } from '../../src/core/clock.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { expectProblem, type Answer, type Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Silences and maintenance windows (issue 10 point 3) through the HTTP API with a pinned clock:
 * CRUD, state (pending → active → expired), DELETE expiring a silence, bad inputs answered 400
 * with the path of each field (unsafe and broken regexes at matchers/<i>/value), roles, another
 * org's resources 404, the audit log.
 */

interface Silence {
  id: string;
  matchers: { name: string; op: string; value: string }[];
  starts_at: string;
  ends_at: string;
  comment: string;
  state: 'active' | 'pending' | 'expired';
  created_by: string | null;
}
interface Window {
  id: string;
  name: string;
  weekdays: number[];
  start: string;
  end: string;
  time_zone: string;
  active: boolean;
}
interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

const HOUR = 3_600_000;
// A Monday, 10:00 UTC.
const T0 = Date.parse('2026-12-07T10:00:00Z');

describe('silences and maintenance windows', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let at = T0;
  const clock: Clock = { now: () => new Date(at) };
  let orgA: { id: string; slug: string };
  let orgB: { id: string; slug: string };
  let editorA: { id: string; token: string };
  let viewerA: string;
  let editorB: string;
  let readKeyA: string;
  let writeKeyA: string;

  const silences = (org = orgA.slug) => `/organizations/${org}/silences`;
  const windows = (org = orgA.slug) => `/organizations/${org}/maintenance-windows`;
  const iso = (ms: number) => new Date(ms).toISOString();
  const ok = <T>(res: Answer<T>, status = 200): T => {
    expect(res.status, res.text).to.equal(status);
    return res.body;
  };
  const pathsOf = (res: Answer) => ((res.body as Problem).errors ?? []).map((e) => e.path);

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000' }, { clock });
    orgA = await createOrg(t.app.services);
    orgB = await createOrg(t.app.services);
    const login = async (org: string, role: 'editor' | 'viewer') => {
      const u = await createUser(t.app.services, { org, role });
      return { id: u.id, token: (await t.api.login(u.email, u.password)).access_token };
    };
    editorA = await login(orgA.slug, 'editor');
    viewerA = (await login(orgA.slug, 'viewer')).token;
    editorB = (await login(orgB.slug, 'editor')).token;
    readKeyA = (await createApiKey(t.app.services, orgA.slug, ['read'])).secret;
    writeKeyA = (await createApiKey(t.app.services, orgA.slug, ['write'])).secret;
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });
  afterEach(() => {
    at = T0;
  });

  describe('silences', () => {
    it('create, get, list, update; its state follows the clock; DELETE expires it (204) and it stays listed', async () => {
      const body = { matchers: [{ name: 'alertname', op: '=', value: 'HighCPU' }, { name: 'host', op: '=~', value: 'web-.*' }], ends_at: iso(T0 + 2 * HOUR), comment: ' deploy ' };
      const s = ok(await t.api.post<Silence>(silences(), editorA.token, body), 201);
      expect(s).to.include({ state: 'active', starts_at: iso(T0), ends_at: iso(T0 + 2 * HOUR), comment: 'deploy', created_by: editorA.id });
      expect(s.matchers).to.deep.equal(body.matchers);

      // Starts later (epoch ms in, RFC 3339 out); an API key with the write scope may create: created_by null.
      const later = ok(await t.api.post<Silence>(silences(), writeKeyA, { matchers: [{ name: 'env', op: '!=', value: '' }], starts_at: T0 + HOUR, ends_at: String(T0 + 3 * HOUR), comment: '' }), 201);
      expect(later).to.include({ state: 'pending', starts_at: iso(T0 + HOUR), ends_at: iso(T0 + 3 * HOUR), created_by: null });

      expect(ok(await t.api.get<Silence>(`${silences()}/${s.id}`, viewerA))).to.deep.equal(s);
      const all = ok(await t.api.get<Page<Silence>>(silences(), readKeyA));
      expect(all.items.map((x) => x.id)).to.deep.equal([s.id, later.id]);
      expect(ok(await t.api.get<Page<Silence>>(`${silences()}?state=pending`, viewerA)).items.map((x) => x.id)).to.deep.equal([later.id]);

      // A page at a time.
      const first = ok(await t.api.get<Page<Silence>>(`${silences()}?limit=1`, viewerA));
      expect(first.items.map((x) => x.id)).to.deep.equal([s.id]);
      const second = ok(await t.api.get<Page<Silence>>(`${silences()}?limit=1&cursor=${first.next_cursor}`, viewerA));
      expect(second.items.map((x) => x.id)).to.deep.equal([later.id]);
      expect(second.next_cursor).to.equal(null);

      at = T0 + HOUR;
      expect(ok(await t.api.get<Silence>(`${silences()}/${later.id}`, viewerA)).state).to.equal('active');
      const changed = ok(await t.api.call<Silence>('PATCH', `${silences()}/${s.id}`, editorA.token, { ends_at: iso(T0 + 5 * HOUR), comment: 'longer' }));
      expect(changed).to.include({ ends_at: iso(T0 + 5 * HOUR), comment: 'longer', starts_at: iso(T0) });

      const del = await t.api.call('DELETE', `${silences()}/${s.id}`, editorA.token);
      expect(del.status, del.text).to.equal(204);
      const expired = ok(await t.api.get<Silence>(`${silences()}/${s.id}`, viewerA));
      expect(expired).to.include({ state: 'expired', ends_at: iso(T0 + HOUR) });
      expect(ok(await t.api.get<Page<Silence>>(`${silences()}?state=expired`, viewerA)).items.map((x) => x.id)).to.deep.equal([s.id]);
      // An expired silence is not changed (409), but expiring it again is harmless.
      expectProblem(await t.api.call('PATCH', `${silences()}/${s.id}`, editorA.token, { comment: 'x' }), 409, 'patch expired');
      expect((await t.api.call('DELETE', `${silences()}/${s.id}`, editorA.token)).status).to.equal(204);

      // A pending silence expired before it starts: it starts and ends now.
      const pending = ok(await t.api.post<Silence>(silences(), editorA.token, { matchers: [{ name: 'a', op: '=', value: 'b' }], starts_at: iso(T0 + 4 * HOUR), ends_at: iso(T0 + 5 * HOUR), comment: '' }), 201);
      expect((await t.api.call('DELETE', `${silences()}/${pending.id}`, editorA.token)).status).to.equal(204);
      expect(ok(await t.api.get<Silence>(`${silences()}/${pending.id}`, viewerA))).to.include({ state: 'expired', starts_at: iso(T0 + HOUR), ends_at: iso(T0 + HOUR) });

      const audit = await query<{ action: string; target_id: string }>(url, "select action, target_id from audit_log where target_type = 'silence' and target_id = $1 order by id", [s.id]);
      expect(audit.map((a) => a.action)).to.deep.equal(['silence.create', 'silence.update', 'silence.expire', 'silence.expire']);
    });

    it('refuses bad inputs with their paths (400)', async () => {
      const m = [{ name: 'alertname', op: '=', value: 'X' }];
      const cases: [string, unknown, string[]][] = [
        ['no body fields', {}, ['body/matchers', 'body/ends_at', 'body/comment']],
        ['unknown op', { matchers: [{ name: 'a', op: '==', value: 'x' }], ends_at: iso(T0 + HOUR), comment: '' }, ['body/matchers/0/op']],
        ['bad label name', { matchers: [{ name: '1a', op: '=', value: 'x' }], ends_at: iso(T0 + HOUR), comment: '' }, ['body/matchers/0/name']],
        ['invalid regex', { matchers: [...m, { name: 'a', op: '=~', value: '(web' }], ends_at: iso(T0 + HOUR), comment: '' }, ['body/matchers/1/value']],
        ['catastrophic regex', { matchers: [{ name: 'a', op: '!~', value: '(a+)+$' }, { name: 'b', op: '=~', value: '(x|x)*' }], ends_at: iso(T0 + HOUR), comment: '' }, ['body/matchers/0/value', 'body/matchers/1/value']],
        ['matches everything', { matchers: [{ name: 'a', op: '=~', value: '.*' }, { name: 'b', op: '!=', value: 'x' }], ends_at: iso(T0 + HOUR), comment: '' }, ['body/matchers']],
        ['no matchers', { matchers: [], ends_at: iso(T0 + HOUR), comment: '' }, ['body/matchers']],
        ['ends in the past', { matchers: m, ends_at: iso(T0 - 1000), comment: '' }, ['body/ends_at']],
        ['ends before it starts', { matchers: m, starts_at: iso(T0 + 2 * HOUR), ends_at: iso(T0 + HOUR), comment: '' }, ['body/ends_at']],
        ['not a time', { matchers: m, starts_at: '2026-02-30T00:00:00Z', ends_at: 'tomorrow', comment: '' }, ['body/starts_at', 'body/ends_at']],
        ['huge epoch', { matchers: m, ends_at: 1e20, comment: '' }, ['body/ends_at']],
        ['wrong types', { matchers: 'x', ends_at: true, comment: 5 }, ['body/matchers', 'body/ends_at', 'body/comment']],
        ['NUL bytes', { matchers: [{ name: 'a', op: '=', value: 'x\u0000' }], ends_at: iso(T0 + HOUR), comment: 'c\u0000' }, ['body/matchers/0/value', 'body/comment']],
        ['huge values', { matchers: [{ name: 'a', op: '=', value: 'a'.repeat(2000) }], ends_at: iso(T0 + HOUR), comment: 'c'.repeat(5000) }, ['body/matchers/0/value', 'body/comment']],
        ['huge regex', { matchers: [{ name: 'a', op: '=~', value: 'a'.repeat(600) }], ends_at: iso(T0 + HOUR), comment: '' }, ['body/matchers/0/value']],
        ['too many matchers', { matchers: Array.from({ length: 33 }, () => m[0]), ends_at: iso(T0 + HOUR), comment: '' }, ['body/matchers']],
        ['unknown field', { matchers: m, ends_at: iso(T0 + HOUR), comment: '', extra: 1 }, ['body/extra']],
      ];
      for (const [label, body, paths] of cases) {
        const res = await t.api.post(silences(), editorA.token, body);
        expectProblem(res, 400, label);
        for (const p of paths) expect(pathsOf(res), `${label}: ${res.text}`).to.include(p);
      }
      const res = await t.api.get(`${silences()}?state=whatever`, viewerA);
      expectProblem(res, 400, 'bad state');
      expectProblem(await t.api.get(`${silences()}?cursor=%00`, viewerA), 400, 'bad cursor');
      expect(ok(await t.api.get<Page<Silence>>(silences(), viewerA)).items.filter((s) => s.comment === 'c'.repeat(5000))).to.deep.equal([]);
    });

    it('roles: a viewer and a read key read but may not write (403); another org, an unknown id and a non-uuid are 404', async () => {
      const s = ok(await t.api.post<Silence>(silences(), editorA.token, { matchers: [{ name: 'x', op: '=', value: 'y' }], ends_at: iso(T0 + HOUR), comment: '' }), 201);
      expectProblem(await t.api.post(silences(), viewerA, { matchers: [{ name: 'x', op: '=', value: 'y' }], ends_at: iso(T0 + HOUR), comment: '' }), 403, 'viewer create');
      expectProblem(await t.api.call('PATCH', `${silences()}/${s.id}`, readKeyA, { comment: 'x' }), 403, 'read key patch');
      expectProblem(await t.api.call('DELETE', `${silences()}/${s.id}`, viewerA), 403, 'viewer delete');
      // Org B's editor: A's silence does not exist for them, whichever org they name.
      expectProblem(await t.api.get(`${silences()}/${s.id}`, editorB), 404, 'B reads A');
      expectProblem(await t.api.get(`${silences(orgB.slug)}/${s.id}`, editorB), 404, "A's silence under B");
      expectProblem(await t.api.call('PATCH', `${silences(orgB.slug)}/${s.id}`, editorB, { comment: 'mine' }), 404, "B patches A's");
      expectProblem(await t.api.call('DELETE', `${silences(orgB.slug)}/${s.id}`, editorB), 404, "B expires A's");
      expect(ok(await t.api.get<Page<Silence>>(silences(orgB.slug), editorB)).items).to.deep.equal([]);
      expectProblem(await t.api.get(`${silences()}/${randomUUID()}`, viewerA), 404, 'unknown id');
      expectProblem(await t.api.get(`${silences()}/not-a-uuid`, viewerA), 400, 'not a uuid');
      expect(ok(await t.api.get<Silence>(`${silences()}/${s.id}`, viewerA)).state).to.equal('active');
    });
  });

  it("the alerts list's `silenced` flag: an active silence or an open maintenance window matching the labels", async () => {
    // An org of its own: the other tests count its silences and windows.
    const orgC = await createOrg(t.app.services);
    const ed = await createUser(t.app.services, { org: orgC.slug, role: 'editor' });
    const editor = (await t.api.login(ed.email, ed.password)).access_token;
    const raise = (sourceId: string, labels: Record<string, string>) =>
      t.app.services.alertSink.raise({ orgId: orgC.id, source: 'heartbeat', sourceId, name: `job-${sourceId}`, severity: 'warning', labels, annotations: {}, channelIds: [], at: new Date(at) });
    await raise('etl', { team: 'data' });
    await raise('web', { team: 'web' });
    const silenced = async () => {
      const list = ok(await t.api.get<Page<{ labels: Record<string, string>; silenced: boolean }>>(`/organizations/${orgC.slug}/alerts?state=firing`, editor));
      return Object.fromEntries(list.items.map((a) => [a.labels.team, a.silenced]));
    };
    expect(await silenced()).to.deep.equal({ data: false, web: false });
    ok(await t.api.post(silences(orgC.slug), editor, { matchers: [{ name: 'team', op: '=', value: 'data' }], starts_at: iso(T0 + HOUR), ends_at: iso(T0 + 2 * HOUR), comment: '' }), 201);
    expect(await silenced(), 'pending').to.deep.equal({ data: false, web: false });
    at = T0 + HOUR;
    expect(await silenced(), 'active').to.deep.equal({ data: true, web: false });
    // Mondays 11:00–11:30 UTC; T0 + 1 h is 11:00.
    ok(await t.api.post(windows(orgC.slug), editor, { name: 'web deploys', matchers: [{ name: 'team', op: '=~', value: 'w.b' }], weekdays: [1], start: '11:00', end: '11:30', time_zone: 'UTC' }), 201);
    expect(await silenced(), 'window open').to.deep.equal({ data: true, web: true });
    at = T0 + 2 * HOUR;
    expect(await silenced(), 'both over').to.deep.equal({ data: false, web: false });
  });

  it('ending a silence early or deleting an open maintenance window releases the alerts they held at the next flush', async () => {
    // An org of its own: the other tests count its silences and windows.
    const orgD = await createOrg(t.app.services);
    const ed = await createUser(t.app.services, { org: orgD.slug, role: 'editor' });
    const editor = (await t.api.login(ed.email, ed.password)).access_token;
    const MIN = 60_000;
    const raise = (sourceId: string, team: string) =>
      t.app.services.alertSink.raise({ orgId: orgD.id, source: 'heartbeat', sourceId, name: `job-${team}`, severity: 'warning', labels: { team }, annotations: {}, channelIds: [], at: new Date(at) });
    const flush = () => t.app.services.notificationPolicy.flushDue(new Date(at));
    const notified = async () => {
      const rows = await query<{ team: string; notified: boolean }>(url, "select labels->>'team' as team, firing_notified_at is not null as notified from alerts where org_id = $1", [orgD.id]);
      return Object.fromEntries(rows.map((r) => [r.team, r.notified]));
    };
    const sil = ok(await t.api.post<Silence>(silences(orgD.slug), editor, { matchers: [{ name: 'team', op: '=', value: 'data' }], ends_at: iso(T0 + 2 * HOUR), comment: '' }), 201);
    // Mondays 10:00–12:00 UTC; T0 is Monday 10:00.
    const win = ok(await t.api.post<Window>(windows(orgD.slug), editor, { name: 'web', matchers: [{ name: 'team', op: '=', value: 'web' }], weekdays: [1], start: '10:00', end: '12:00', time_zone: 'UTC' }), 201);
    await raise(randomUUID(), 'data');
    await raise(randomUUID(), 'web');
    await flush();
    expect(await notified(), 'held').to.deep.equal({ data: false, web: false });

    at = T0 + 10 * MIN;
    expect((await t.api.call('DELETE', `${silences(orgD.slug)}/${sil.id}`, editor)).status).to.equal(204);
    at = T0 + 11 * MIN;
    await flush();
    expect(await notified(), 'the silence ended at +10 min').to.deep.equal({ data: true, web: false });

    at = T0 + 20 * MIN;
    expect((await t.api.call('DELETE', `${windows(orgD.slug)}/${win.id}`, editor)).status).to.equal(204);
    at = T0 + 21 * MIN;
    await flush();
    expect(await notified(), 'the window deleted at +20 min').to.deep.equal({ data: true, web: true });
  });

  describe('maintenance windows', () => {
    it('create, get, list, update, delete; `active` follows the clock in the window\'s time zone', async () => {
      // Mondays 11:00–12:00 Berlin (UTC+1 in December): 10:00–11:00 UTC, so open at T0.
      const body = { name: ' db upgrade ', matchers: [{ name: 'service', op: '=', value: 'db' }], weekdays: [3, 1], start: '11:00', end: '12:00', time_zone: 'Europe/Berlin' };
      const w = ok(await t.api.post<Window>(windows(), editorA.token, body), 201);
      expect(w).to.include({ name: 'db upgrade', start: '11:00', end: '12:00', time_zone: 'Europe/Berlin', active: true });
      expect(w.weekdays).to.deep.equal([1, 3]);
      const nightly = ok(await t.api.post<Window>(windows(), writeKeyA, { name: 'nightly', matchers: [{ name: 'env', op: '=~', value: 'staging|dev' }], weekdays: [1, 2, 3, 4, 5, 6, 7], start: '22:00', end: '06:00', time_zone: 'UTC' }), 201);
      expect(nightly.active).to.equal(false);

      expect(ok(await t.api.get<Window>(`${windows()}/${w.id}`, viewerA))).to.deep.equal(w);
      const page = ok(await t.api.get<Page<Window>>(`${windows()}?limit=1`, readKeyA));
      expect(page.items.map((x) => x.name)).to.deep.equal(['db upgrade']);
      expect(ok(await t.api.get<Page<Window>>(`${windows()}?cursor=${page.next_cursor}`, readKeyA)).items.map((x) => x.name)).to.deep.equal(['nightly']);

      at = T0 + HOUR; // 12:00 Berlin: closed
      expect(ok(await t.api.get<Window>(`${windows()}/${w.id}`, viewerA)).active).to.equal(false);
      at = Date.parse('2026-12-08T23:00:00Z'); // Tuesday night
      expect(ok(await t.api.get<Window>(`${windows()}/${nightly.id}`, viewerA)).active).to.equal(true);

      const changed = ok(await t.api.call<Window>('PATCH', `${windows()}/${w.id}`, editorA.token, { time_zone: 'America/New_York', start: '17:00', end: '19:00', weekdays: [2] }));
      expect(changed).to.include({ time_zone: 'America/New_York', start: '17:00', end: '19:00', active: true, name: 'db upgrade' });
      expectProblem(await t.api.call('PATCH', `${windows()}/${w.id}`, editorA.token, { name: 'nightly' }), 409, 'name taken');
      expectProblem(await t.api.post(windows(), editorA.token, { ...body, name: 'nightly' }), 409, 'create with a taken name');

      expect((await t.api.call('DELETE', `${windows()}/${w.id}`, editorA.token)).status).to.equal(204);
      expectProblem(await t.api.get(`${windows()}/${w.id}`, viewerA), 404, 'deleted');
      expectProblem(await t.api.call('DELETE', `${windows()}/${w.id}`, editorA.token), 404, 'deleted twice');
      const audit = await query<{ action: string }>(url, "select action from audit_log where target_type = 'maintenance_window' and target_id = $1 order by id", [w.id]);
      expect(audit.map((a) => a.action)).to.deep.equal(['maintenance_window.create', 'maintenance_window.update', 'maintenance_window.delete']);
    });

    it('refuses bad inputs with their paths (400)', async () => {
      const good = { name: 'w', matchers: [{ name: 'a', op: '=', value: 'b' }], weekdays: [1], start: '01:00', end: '02:00', time_zone: 'UTC' };
      const cases: [string, unknown, string[]][] = [
        ['empty', {}, ['body/name', 'body/matchers', 'body/weekdays', 'body/start', 'body/end', 'body/time_zone']],
        ['weekday 0 and 8', { ...good, weekdays: [0, 8] }, ['body/weekdays/0', 'body/weekdays/1']],
        ['repeated weekday', { ...good, weekdays: [1, 1] }, ['body/weekdays']],
        ['no weekdays', { ...good, weekdays: [] }, ['body/weekdays']],
        ['24:00 and 7:5', { ...good, start: '24:00', end: '7:05' }, ['body/start', 'body/end']],
        ['unknown time zone', { ...good, time_zone: 'Mars/Olympus' }, ['body/time_zone']],
        ['NUL in the zone', { ...good, time_zone: 'UTC\u0000' }, ['body/time_zone']],
        ['bad regex', { ...good, matchers: [{ name: 'a', op: '=~', value: '(.*a)*' }] }, ['body/matchers/0/value']],
        ['blank name', { ...good, name: '   ' }, ['body/name']],
        ['wrong types', { ...good, weekdays: 'mon', start: 1100 }, ['body/weekdays', 'body/start']],
      ];
      for (const [label, body, paths] of cases) {
        const res = await t.api.post(windows(), editorA.token, body);
        expectProblem(res, 400, label);
        for (const p of paths) expect(pathsOf(res), `${label}: ${res.text}`).to.include(p);
      }
      const w = ok(await t.api.post<Window>(windows(), editorA.token, good), 201);
      const res = await t.api.call('PATCH', `${windows()}/${w.id}`, editorA.token, { time_zone: 'Nowhere/City' });
      expectProblem(res, 400, 'patch zone');
      expect(pathsOf(res)).to.deep.equal(['body/time_zone']);
      expectProblem(await t.api.call('PATCH', `${windows()}/${w.id}`, editorA.token, {}), 400, 'empty patch');
    });

    it("roles and tenancy: a viewer may not write (403); another org's window is 404", async () => {
      const w = ok(await t.api.post<Window>(windows(), editorA.token, { name: 'tenancy', matchers: [{ name: 'a', op: '=', value: 'b' }], weekdays: [1], start: '01:00', end: '02:00', time_zone: 'UTC' }), 201);
      expectProblem(await t.api.call('PATCH', `${windows()}/${w.id}`, viewerA, { name: 'x' }), 403, 'viewer patch');
      expectProblem(await t.api.call('DELETE', `${windows()}/${w.id}`, readKeyA), 403, 'read key delete');
      expectProblem(await t.api.get(`${windows(orgB.slug)}/${w.id}`, editorB), 404, "A's window under B");
      expectProblem(await t.api.call('DELETE', `${windows(orgB.slug)}/${w.id}`, editorB), 404, "B deletes A's");
      expectProblem(await t.api.get(`${windows()}/${w.id}`, editorB), 404, 'B reads A');
      expect(ok(await t.api.get<Window>(`${windows()}/${w.id}`, viewerA)).name).to.equal('tenancy');
    });
  });
});
