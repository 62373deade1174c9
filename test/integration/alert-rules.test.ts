import { expect } from 'chai';
import { rulePreviewer } from '../../src/features/alerts/rule-preview.js';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { expectProblem, type Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Alert rules through the API: create with defaults, read, list, change, delete; every kind of
 * bad input answered 400 naming the field (channels of another org included); names unique per
 * org; another org's rule is 404; the per-org limit; and preview over ingested history with a
 * known answer (points that cross the threshold at known times).
 */

interface RuleAnswer {
  id: string;
  name: string;
  kind: string;
  query: Record<string, unknown>;
  op: string | null;
  threshold: number | null;
  recovery_threshold: number | null;
  interval: number;
  for: number;
  keep_firing_for: number;
  severity: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  channels: string[];
  group_by: string[];
  group_wait: number;
  group_interval: number;
  repeat_interval: number;
  enabled: boolean;
  state: string;
  last_eval_at: string | null;
  next_eval_at: string | null;
  last_error: string | null;
}
interface PreviewAnswer {
  evaluations: number;
  transitions: { at: string; state: string; labels: Record<string, string>; value: number | null }[];
  fired: number;
  resolved: number;
  notifications: number;
}

const MAX_RULES = 8;
const MIN = 60_000;

describe('alert rules', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let orgA: { id: string; slug: string };
  let orgB: { id: string; slug: string };
  let editorA: string;
  let viewerA: string;
  let adminB: string;
  let writeKeyA: string;
  let readKeyA: string;
  let ingestKeyA: string;
  let channelA: string;
  let channelB: string;

  const addChannel = async (orgId: string, name: string) =>
    (await query<{ id: string }>(url, `insert into notification_channels (org_id, name, type, config) values ($1, $2, 'webhook', '{"url": "http://127.0.0.1:9/hook"}') returning id`, [orgId, name]))[0].id;

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, { SENTINEL_ALERTS_MAX_RULES_PER_ORG: String(MAX_RULES), SENTINEL_ALERTS_PREVIEW_MAX_STEPS: '100', SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000' });
    orgA = await createOrg(t.app.services);
    orgB = await createOrg(t.app.services);
    const e = await createUser(t.app.services, { org: orgA.slug, role: 'editor' });
    const v = await createUser(t.app.services, { org: orgA.slug, role: 'viewer' });
    const b = await createUser(t.app.services, { org: orgB.slug, role: 'admin' });
    editorA = (await t.api.login(e.email, e.password)).access_token;
    viewerA = (await t.api.login(v.email, v.password)).access_token;
    adminB = (await t.api.login(b.email, b.password)).access_token;
    writeKeyA = (await createApiKey(t.app.services, orgA.slug, ['write'])).secret;
    readKeyA = (await createApiKey(t.app.services, orgA.slug, ['read'])).secret;
    ingestKeyA = (await createApiKey(t.app.services, orgA.slug, ['ingest'])).secret;
    channelA = await addChannel(orgA.id, 'ops');
    channelB = await addChannel(orgB.id, 'ops');
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  const rules = (org: string) => `/organizations/${org}/alert-rules`;
  const create = (token: string, body: unknown, org = orgA.slug) => t.api.post<RuleAnswer>(rules(org), token, body);
  const valid = (over: Record<string, unknown> = {}) => ({
    name: `cpu-${Math.random().toString(36).slice(2, 8)}`,
    kind: 'threshold',
    query: { name: 'cpu', filter: { host: 'a' }, agg: 'avg', window: '5m' },
    op: '>',
    threshold: 80,
    interval: '1m',
    severity: 'warning',
    ...over,
  });

  it('creates a rule with the defaults, answers durations in seconds, and reads it back', async () => {
    const before = Date.now();
    const res = await create(editorA, valid({ name: 'High CPU', channels: [channelA], labels: { team: 'infra' }, annotations: { summary: 'CPU at {{ $value }}' } }));
    expect(res.status, res.text).to.equal(201);
    const r = res.body;
    expect(r).to.include({ name: 'High CPU', kind: 'threshold', op: '>', threshold: 80, recovery_threshold: null, interval: 60, for: 0, keep_firing_for: 0 });
    expect(r).to.include({ group_wait: 30, group_interval: 300, repeat_interval: 14_400, enabled: true, state: 'ok', last_eval_at: null, last_error: null, severity: 'warning' });
    expect(r.query).to.deep.equal({ name: 'cpu', filter: { host: 'a' }, agg: 'avg', window: 300, by: [] });
    expect(r.channels).to.deep.equal([channelA]);
    expect(r.group_by).to.deep.equal([]);
    // The first evaluation is spread within one interval.
    const next = Date.parse(r.next_eval_at!);
    expect(next).to.be.within(before - 1000, Date.now() + 60_000);

    const got = await t.api.get<RuleAnswer>(`${rules(orgA.slug)}/${r.id}`, viewerA);
    expect(got.status, got.text).to.equal(200);
    expect(got.body).to.deep.equal(r);
    const list = await t.api.get<{ items: RuleAnswer[]; next_cursor: string | null }>(rules(orgA.slug), viewerA);
    expect(list.status).to.equal(200);
    expect(list.body.items.map((i) => i.id)).to.include(r.id);

    // What a GET answers can be sent back (durations as seconds): a copy under another name.
    const { name: _n, id: _i, state: _s, last_eval_at: _l, next_eval_at: _x, last_error: _e, ...writable } = r as RuleAnswer & Record<string, unknown>;
    delete (writable as Record<string, unknown>).created_at;
    delete (writable as Record<string, unknown>).updated_at;
    const copy = await create(editorA, { ...writable, name: 'High CPU copy' });
    expect(copy.status, copy.text).to.equal(201);
    expect({ ...copy.body, id: r.id, name: r.name, next_eval_at: null, created_at: null, updated_at: null }).to.deep.equal({ ...r, next_eval_at: null, created_at: null, updated_at: null });

    const audit = await query<{ action: string }>(url, `select action from audit_log where org_id = $1 and target_id = $2`, [orgA.id, r.id]);
    expect(audit.map((a) => a.action)).to.deep.equal(['alert_rule.create']);
  });

  it('takes every kind with its own query shape; no_data needs no op or threshold', async () => {
    const kinds = [
      valid({ kind: 'no_data', op: undefined, threshold: undefined, query: { name: 'heartbeat', window: 120 } }),
      valid({ kind: 'log_count', query: { level: 'error', q: 'timeout', attributes: { service: 'api' }, window: '10m' }, op: '>=', threshold: 5 }),
      valid({ kind: 'rate_of_change', query: { name: 'queue_depth', agg: 'max', window: '15m', by: ['queue'] }, op: '>', threshold: 100, recovery_threshold: 50, for: '2m', keep_firing_for: '5m', group_by: ['queue'] }),
    ];
    const answers = [];
    for (const body of kinds) {
      const res = await create(writeKeyA, body);
      expect(res.status, res.text).to.equal(201);
      answers.push(res.body);
    }
    expect(answers[0]).to.include({ kind: 'no_data', op: null, threshold: null });
    expect(answers[0].query).to.deep.equal({ name: 'heartbeat', filter: {}, agg: 'count', window: 120, by: [] });
    expect(answers[1].query).to.deep.equal({ level: 'error', q: 'timeout', attributes: { service: 'api' }, window: 600 });
    expect(answers[2]).to.include({ recovery_threshold: 50, for: 120, keep_firing_for: 300 });
    for (const a of answers) expect((await t.api.call('DELETE', `${rules(orgA.slug)}/${a.id}`, editorA)).status).to.equal(204);
  });

  it('refuses bad input with 400 naming each field', async () => {
    const cases: [string, unknown, string][] = [
      ['NUL in the name', valid({ name: 'a\u0000b' }), 'body/name'],
      ['blank name', valid({ name: '   ' }), 'body/name'],
      ['huge name', valid({ name: 'x'.repeat(201) }), 'body/name'],
      ['unknown kind', valid({ kind: 'bogus' }), 'body/kind'],
      ['unknown field', valid({ extra: 1 }), 'body/extra'],
      ['threshold as a string', valid({ threshold: '80' }), 'body/threshold'],
      ['no threshold', valid({ threshold: undefined }), 'body/threshold'],
      ['no op', valid({ op: undefined }), 'body/op'],
      ['unknown op', valid({ op: '=>' }), 'body/op'],
      ['op for no_data', valid({ kind: 'no_data', threshold: undefined }), 'body/op'],
      ['recovery on the breaching side (>)', valid({ recovery_threshold: 90 }), 'body/recovery_threshold'],
      ['recovery on the breaching side (<)', valid({ op: '<', threshold: 10, recovery_threshold: 5 }), 'body/recovery_threshold'],
      ['recovery with ==', valid({ op: '==', recovery_threshold: 80 }), 'body/recovery_threshold'],
      ['interval 0', valid({ interval: 0 }), 'body/interval'],
      ['interval below 1 s', valid({ interval: '500ms' }), 'body/interval'],
      ['interval above a day', valid({ interval: '2d' }), 'body/interval'],
      ['interval not a duration', valid({ interval: '1 minute' }), 'body/interval'],
      ['interval absurd', valid({ interval: 1e300 }), 'body/interval'],
      ['interval negative', valid({ interval: -5 }), 'body/interval'],
      ['no interval', valid({ interval: undefined }), 'body/interval'],
      ['window above 31 d', valid({ query: { name: 'cpu', agg: 'avg', window: '40d' } }), 'body/query/window'],
      ['window 0', valid({ query: { name: 'cpu', agg: 'avg', window: 0 } }), 'body/query/window'],
      ['no window', valid({ query: { name: 'cpu', agg: 'avg' } }), 'body/query/window'],
      ['for above 7 d', valid({ for: '8d' }), 'body/for'],
      ['keep_firing_for as an object', valid({ keep_firing_for: { s: 1 } }), 'body/keep_firing_for'],
      ['group_wait above a day', valid({ group_wait: '25h' }), 'body/group_wait'],
      ['group_interval 0', valid({ group_interval: 0 }), 'body/group_interval'],
      ['repeat_interval below a minute', valid({ repeat_interval: '10s' }), 'body/repeat_interval'],
      ['metric query without a name', valid({ query: { agg: 'avg', window: 60 } }), 'body/query/name'],
      ['threshold without agg', valid({ query: { name: 'cpu', window: 60 } }), 'body/query/agg'],
      ['unknown agg', valid({ query: { name: 'cpu', agg: 'median', window: 60 } }), 'body/query/agg'],
      ['log field on a metric rule', valid({ query: { name: 'cpu', agg: 'avg', window: 60, level: 'error' } }), 'body/query/level'],
      ['metric field on a log rule', valid({ kind: 'log_count', query: { name: 'cpu', window: 60 } }), 'body/query/name'],
      ['unknown log level', valid({ kind: 'log_count', query: { level: 'panic', window: 60 } }), 'body/query/level'],
      ['bad metric name', valid({ query: { name: '1cpu', agg: 'avg', window: 60 } }), 'body/query/name'],
      ['filter value not a string', valid({ query: { name: 'cpu', agg: 'avg', window: 60, filter: { host: 1 } } }), 'body/query/filter/host'],
      ['unknown severity', valid({ severity: 'urgent' }), 'body/severity'],
      ['label key not a label name', valid({ labels: { 'bad-key': 'x' } }), 'body/labels'],
      ['huge label value', valid({ labels: { team: 'x'.repeat(2000) } }), 'body/labels/team'],
      ['too many annotations', valid({ annotations: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`a${i}`, 'x'])) }), 'body/annotations'],
      ['NUL in an annotation', valid({ annotations: { summary: 'a\u0000' } }), 'body/annotations/summary'],
      ['channel not a uuid', valid({ channels: ['nope'] }), 'body/channels/0'],
      ['channel of another org', valid({ channels: [channelB] }), 'body/channels/0'],
      ['channel that does not exist', valid({ channels: [channelA, '00000000-0000-4000-8000-000000000000'] }), 'body/channels/1'],
      ['channels repeated', valid({ channels: [channelA, channelA] }), 'body/channels'],
      ['group_by not a label', valid({ group_by: ['a b'] }), 'body/group_by/0'],
      ['enabled as a string', valid({ enabled: 'yes' }), 'body/enabled'],
      ['not an object', [1, 2], 'body'],
    ];
    for (const [label, body, path] of cases) {
      const res = await create(editorA, body);
      expectProblem(res, 400, label);
      const paths = (res.body as unknown as Problem).errors?.map((e) => e.path) ?? [];
      expect(paths, `${label}: ${res.text}`).to.include(path);
    }
    const { n } = (await query<{ n: number }>(url, 'select count(*)::int as n from alert_rules where org_id = $1', [orgB.id]))[0];
    expect(n).to.equal(0);
  });

  it('names are unique per organization (409), not across organizations', async () => {
    expect((await create(editorA, valid({ name: 'dup' }))).status).to.equal(201);
    expectProblem(await create(editorA, valid({ name: ' dup ' })), 409, 'same name, blanks around');
    expect((await create(adminB, valid({ name: 'dup' }), orgB.slug)).status).to.equal(201);
  });

  it("changes a rule: fields given replace the stored ones, a new interval reschedules; the org's names stay unique", async () => {
    const r = (await create(editorA, valid({ name: 'to-change', interval: '1h' }))).body;
    const res = await t.api.call<RuleAnswer>('PATCH', `${rules(orgA.slug)}/${r.id}`, editorA, { threshold: 90, recovery_threshold: 70, interval: 30, labels: { team: 'db' } });
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.include({ threshold: 90, recovery_threshold: 70, interval: 30, name: 'to-change' });
    expect(res.body.labels).to.deep.equal({ team: 'db' });
    expect(Date.parse(res.body.next_eval_at!)).to.be.at.most(Date.now() + 30_000);

    expectProblem(await t.api.call('PATCH', `${rules(orgA.slug)}/${r.id}`, editorA, { name: 'dup' }), 409, 'rename onto another rule');
    const bad = await t.api.call('PATCH', `${rules(orgA.slug)}/${r.id}`, editorA, { threshold: null });
    expectProblem(bad, 400, 'threshold removed from a threshold rule');
    expect((bad.body as Problem).errors?.map((e) => e.path)).to.deep.equal(['body/threshold']);
    const bad2 = await t.api.call('PATCH', `${rules(orgA.slug)}/${r.id}`, editorA, { recovery_threshold: 95 });
    expect((bad2.body as Problem).errors?.map((e) => e.path)).to.deep.equal(['body/recovery_threshold']);
    expectProblem(await t.api.call('PATCH', `${rules(orgA.slug)}/${r.id}`, editorA, {}), 400, 'empty patch');
    // Becoming no_data means dropping op and threshold in the same request.
    const nd = await t.api.call<RuleAnswer>('PATCH', `${rules(orgA.slug)}/${r.id}`, editorA, { kind: 'no_data', op: null, threshold: null, recovery_threshold: null });
    expect(nd.status, nd.text).to.equal(200);
    const off = await t.api.call<RuleAnswer>('PATCH', `${rules(orgA.slug)}/${r.id}`, editorA, { enabled: false });
    expect(off.body).to.include({ enabled: false, next_eval_at: null });
    expectProblem(await t.api.call('PATCH', `${rules(orgA.slug)}/${r.id}`, viewerA, { enabled: true }), 403, 'viewer');
  });

  it('a PATCH of channels while firing: the next repeat goes to the new channel only', async () => {
    const first = await addChannel(orgA.id, 'repeat-old');
    const second = await addChannel(orgA.id, 'repeat-new');
    const now = Date.now();
    const ingested = await t.api.post('/telemetry', ingestKeyA, { metrics: [{ name: 'cpu_repeat', labels: { host: 'a' }, value: 99, ts: now - 30_000 }] });
    expect(ingested.status, ingested.text).to.equal(202);
    const r = await create(editorA, valid({ query: { name: 'cpu_repeat', filter: { host: 'a' }, agg: 'max', window: '5m' }, threshold: 50, interval: 60, group_wait: 0, repeat_interval: '1h', channels: [first] }));
    expect(r.status, r.text).to.equal(201);
    // Past its first (spread) evaluation: fires and is notified at once (group_wait 0).
    await t.app.services.alertEngine.tick(new Date(now + 2 * MIN));
    const sent = () => query<{ channel_id: string }>(url, 'select channel_id from notifications where rule_id = $1 order by created_at, dedup_key', [r.body.id]);
    expect((await sent()).map((n) => n.channel_id), 'paged').to.deep.equal([first]);

    const patched = await t.api.call<RuleAnswer>('PATCH', `${rules(orgA.slug)}/${r.body.id}`, editorA, { channels: [second] });
    expect(patched.status, patched.text).to.equal(200);
    await t.app.services.notificationPolicy.flushDue(new Date(now + 2 * MIN + 61 * MIN));
    expect((await sent()).map((n) => n.channel_id), 'the repeat after repeat_interval').to.deep.equal([first, second]);
    // The org's rule count is limited (a later test fills it).
    expect((await t.api.call('DELETE', `${rules(orgA.slug)}/${r.body.id}`, editorA)).status).to.equal(204);
  });

  it("another org's rule is 404 for every route; a deleted rule is gone", async () => {
    const r = (await create(editorA, valid())).body;
    const path = `${rules(orgA.slug)}/${r.id}`;
    const other = `${rules(orgB.slug)}/${r.id}`;
    expectProblem(await t.api.get(path, adminB), 404, 'B reads A');
    expectProblem(await t.api.get(other, adminB), 404, 'B reads it under its own org');
    expectProblem(await t.api.call('PATCH', other, adminB, { threshold: 1 }), 404, 'B changes it');
    expectProblem(await t.api.call('DELETE', other, adminB), 404, 'B deletes it');
    expectProblem(await t.api.post(`${other}/preview?start=0&end=1000`, adminB), 404, 'B previews it');
    expectProblem(await t.api.get(`${rules(orgA.slug)}/not-a-uuid`, editorA), 400, 'not a uuid');

    expect((await t.api.call('DELETE', path, editorA)).status).to.equal(204);
    expectProblem(await t.api.get(path, editorA), 404, 'deleted');
    expectProblem(await t.api.call('DELETE', path, editorA), 404, 'deleted twice');
    const audit = await query<{ action: string }>(url, `select action from audit_log where org_id = $1 and target_id = $2 order by id`, [orgA.id, r.id]);
    expect(audit.map((a) => a.action)).to.deep.equal(['alert_rule.create', 'alert_rule.delete']);
  });

  it('an organization has at most alerts.max_rules_per_org rules (422)', async () => {
    const c = await createOrg(t.app.services);
    for (let i = 0; i < MAX_RULES; i++) await t.app.services.alertRules.create(SYSTEM_ACTOR, c.slug, valid({ name: `r${i}` }) as never);
    expectProblem(await t.api.post(rules(c.slug), (await createApiKey(t.app.services, c.slug, ['write'])).secret, valid()), 422, 'one rule too many');
  });

  describe('preview', () => {
    // Minutes m1 … m10 after `base`; one point per minute, 30 s before each evaluation.
    const base = Math.floor(Date.now() / MIN) * MIN - 3 * 60 * MIN;
    const values = [10, 10, 90, 90, 90, 10, 10, 90, 10, 10];
    const at = (k: number) => new Date(base + k * MIN).toISOString();

    before(async () => {
      const metrics = values.map((value, i) => ({ name: 'cpu', labels: { host: 'a' }, value, ts: base + (i + 1) * MIN - 30_000 }));
      // Org B's series of the same name must not leak into A's preview.
      const res = await t.api.post('/telemetry', ingestKeyA, { metrics });
      expect(res.status, res.text).to.equal(202);
      const keyB = (await createApiKey(t.app.services, orgB.slug, ['ingest'])).secret;
      expect((await t.api.post('/telemetry', keyB, { metrics: metrics.map((m) => ({ ...m, value: 1000 })) })).status).to.equal(202);
    });

    const preview = async (over: Record<string, unknown>, from = 1, to = 10) => {
      const r = await create(editorA, valid({ query: { name: 'cpu', filter: { host: 'a' }, agg: 'max', window: 60 }, interval: 60, ...over }));
      expect(r.status, r.text).to.equal(201);
      const res = await t.api.post<PreviewAnswer>(`${rules(orgA.slug)}/${r.body.id}/preview?start=${encodeURIComponent(at(from))}&end=${base + to * MIN}`, editorA);
      expect(res.status, res.text).to.equal(200);
      return res.body;
    };
    const labels = (name: string) => ({ host: 'a', alertname: name, severity: 'warning' });

    it('fires and resolves at the evaluations where the points cross the threshold', async () => {
      const p = await preview({ name: 'pv-plain' });
      expect(p.evaluations).to.equal(10);
      expect(p.transitions).to.deep.equal([
        { at: at(3), state: 'firing', labels: labels('pv-plain'), value: 90 },
        { at: at(6), state: 'resolved', labels: labels('pv-plain'), value: 10 },
        { at: at(8), state: 'firing', labels: labels('pv-plain'), value: 90 },
        { at: at(9), state: 'resolved', labels: labels('pv-plain'), value: 10 },
      ]);
      expect(p).to.include({ fired: 2, resolved: 2, notifications: 4 });
    });

    it('`for` holds pending; a short breach never fires', async () => {
      const p = await preview({ name: 'pv-for', for: '2m' });
      expect(p.transitions.map((x) => [x.at, x.state])).to.deep.equal([
        [at(3), 'pending'],
        [at(5), 'firing'],
        [at(6), 'resolved'],
        [at(8), 'pending'],
        [at(9), 'ok'],
      ]);
      expect(p).to.include({ fired: 1, resolved: 1, notifications: 2 });
    });

    it('keep_firing_for bridges the gap; repeat_interval adds notifications while firing', async () => {
      const p = await preview({ name: 'pv-keep', keep_firing_for: '3m', repeat_interval: '1m' });
      // Fires at m3, last breach m8; resolves 3 min after it (m11 is past the end): still firing.
      expect(p.transitions.map((x) => [x.at, x.state])).to.deep.equal([[at(3), 'firing']]);
      // m3 first, then one per minute m4 … m10.
      expect(p).to.include({ fired: 1, resolved: 0, notifications: 8 });
    });

    it('stops reading when its signal aborts (the client went away)', async () => {
      let reads = 0;
      const gone = new AbortController();
      const source = {
        metric: async () => {
          if (++reads === 3) gone.abort();
          return [{ labels: { host: 'a' }, points: [[0, 1]] as [number, number | null][] }];
        },
        countLogs: async () => 0,
      };
      // A stored rule's row as the previewer takes it (nothing here touches the database).
      const stored = { org_id: orgA.id, id: 'r', name: 'abort', kind: 'threshold', op: '>', threshold: 0, recovery_threshold: null, interval_ms: MIN, for_ms: 0, keep_firing_for_ms: 0, severity: 'warning', repeat_interval_ms: 3_600_000, query: { name: 'cpu', filter: {}, agg: 'max', by: [], window_ms: MIN }, labels: {}, annotations: {}, group_by: [] };
      const failed = await rulePreviewer(source)
        .preview(stored as never, 0, 999 * MIN, gone.signal)
        .then(() => null, (err: Error) => err);
      expect(failed, 'rejected').to.be.instanceOf(Error);
      expect(reads, 'reads started after the abort: none beyond those already in flight').to.be.below(20);
    });

    it('refuses a range of more than alerts.preview_max_steps evaluations, and bad times', async () => {
      const r = (await create(editorA, valid({ interval: 60 }))).body;
      const path = `${rules(orgA.slug)}/${r.id}/preview`;
      const tooLong = await t.api.post(`${path}?start=${base}&end=${base + 100 * MIN}`, editorA);
      expectProblem(tooLong, 400, '101 evaluations');
      expect((tooLong.body as Problem).errors?.map((e) => e.path)).to.deep.equal(['query/end']);
      expect((await t.api.post<PreviewAnswer>(`${path}?start=${base}&end=${base + 99 * MIN}`, editorA)).body.evaluations).to.equal(100);
      // Reading runs thousands of telemetry queries: not for those who may only read.
      expectProblem(await t.api.post(`${path}?start=${base}&end=${base + MIN}`, viewerA), 403, 'a viewer previews');
      expectProblem(await t.api.post(`${path}?start=${base}&end=${base + MIN}`, readKeyA), 403, 'a read key previews');
      expect((await t.api.post<PreviewAnswer>(`${path}?start=${base}&end=${base + MIN}`, writeKeyA)).status, 'a write key').to.equal(200);
      for (const [qs, param] of [
        ['start=yesterday&end=0', 'query/start'],
        [`start=${base}&end=2026-02-30T00:00:00Z`, 'query/end'],
        [`start=${base + MIN}&end=${base}`, 'query/start'],
        [`start=${Date.now() + 3_600_000}`, 'query/start'],
        [`start=${base}&end=${base}%00`, 'query/end'],
      ]) {
        const res = await t.api.post(`${path}?${qs}`, editorA);
        expectProblem(res, 400, qs);
        expect((res.body as Problem).errors?.map((e) => e.path), qs).to.include(param);
      }

      expect((await t.api.call('DELETE', `${rules(orgA.slug)}/${r.id}`, editorA)).status, 'room for one more rule').to.equal(204);
      // The cost bound: a 1 d window read every minute spans 1440 intervals; 100 steps × 60 allows 4 such evaluations.
      const wide = (await create(editorA, valid({ interval: 60, query: { name: 'cpu', filter: { host: 'a' }, agg: 'max', window: '1d' } }))).body;
      const widePath = `${rules(orgA.slug)}/${wide.id}/preview`;
      const costly = await t.api.post(`${widePath}?start=${base}&end=${base + 4 * MIN}`, editorA);
      expectProblem(costly, 400, 'five evaluations of a 1 d window');
      expect((costly.body as Problem).errors?.[0]).to.include({ path: 'query/end' });
      expect((costly.body as Problem).errors?.[0].message).to.match(/too costly: 5 evaluations .* at most 4 evaluations/);
      expect((await t.api.post<PreviewAnswer>(`${widePath}?start=${base}&end=${base + 3 * MIN}`, editorA)).body.evaluations).to.equal(4);
    });
  });
});
