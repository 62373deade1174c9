import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Clock } from '../../src/core/clock.js';
import type { AlertRow, RuleRow } from '../../src/features/alerts/alert-types.js';
import { RULE_RECORD_FINGERPRINT } from '../../src/features/alerts/rule-evaluation.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createOrg, createUser } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The alert evaluation engine against a real PostgreSQL, fed through the real ingest API, with a
 * pinned clock driven by hand (no sleeps): `for`, recovery threshold and keep_firing_for,
 * no_data, log_count, rate_of_change, one instance per group, a failing query (error, instances
 * kept), a restart (a second app on the database keeps a firing alert firing), two apps ticking
 * the same due rule evaluate it once, and an org's rule never reads another org's data.
 */

const ENV = { SENTINEL_QUERY_MAX_SERIES: '5' };
const FAR = new Date('2100-01-01T00:00:00Z');

describe('alert evaluation', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let nowMs = 0;
  const clock: Clock = { now: () => new Date(nowMs) };
  // Whole seconds, 20 min ago: inside ingest.max_age and max_future of the real clock.
  const BASE = Math.floor(Date.now() / 1000) * 1000 - 20 * 60_000;
  const at = (s: number) => new Date(BASE + s * 1000);
  let orgA: { id: string; slug: string };
  let orgB: { id: string; slug: string };
  let tokenA: string;
  let tokenB: string;

  const ingest = async (token: string, slug: string, body: unknown) => {
    const res = await t.api.post(`/organizations/${slug}/telemetry`, token, body);
    expect(res.status, res.text).to.equal(202);
  };
  const point = (name: string, s: number, value: number, labels: Record<string, string> = {}) => ({ name, value, ts: BASE + s * 1000, labels });

  async function addRule(orgId: string, over: Partial<RuleRow> & Pick<RuleRow, 'query'>): Promise<string> {
    const r = {
      name: `rule-${randomUUID().slice(0, 8)}`,
      kind: 'threshold',
      op: '>',
      threshold: 80,
      recovery_threshold: null,
      interval_ms: 10_000,
      for_ms: 0,
      keep_firing_for_ms: 0,
      severity: 'critical',
      labels: { team: 'ops' },
      annotations: { summary: 'value {{ $value }} on {{ $labels.host }}' },
      group_by: [],
      next_eval_at: FAR,
      ...over,
    };
    const [row] = await query<{ id: string }>(
      url,
      `insert into alert_rules (org_id, name, kind, query, op, threshold, recovery_threshold, interval_ms, for_ms, keep_firing_for_ms, severity, labels, annotations,
                                group_by, group_wait_ms, group_interval_ms, repeat_interval_ms, next_eval_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, 60000, 3600000, $15) returning id`,
      [orgId, r.name, r.kind, JSON.stringify(r.query), r.op, r.threshold, r.recovery_threshold, r.interval_ms, r.for_ms, r.keep_firing_for_ms, r.severity, JSON.stringify(r.labels), JSON.stringify(r.annotations), r.group_by, r.next_eval_at],
    );
    return row.id;
  }
  const ruleRow = async (id: string) => (await query<RuleRow>(url, 'select * from alert_rules where id = $1', [id]))[0];
  const alertsOf = (ruleId: string) => query<AlertRow>(url, `select * from alerts where rule_id = $1 and fingerprint <> '${RULE_RECORD_FINGERPRINT}' order by labels::text`, [ruleId]);
  const ruleRecord = async (ruleId: string) => (await query<AlertRow>(url, 'select * from alerts where rule_id = $1 and fingerprint = $2', [ruleId, RULE_RECORD_FINGERPRINT]))[0];
  /** Evaluates the rule (as stored now) at BASE + s seconds; answers its alerts. */
  const evaluate = async (app: TestApp, id: string, s: number) => {
    nowMs = at(s).getTime();
    const outcome = await app.app.services.alertEngine.evaluateRule(await ruleRow(id), at(s));
    return { outcome, alerts: await alertsOf(id) };
  };
  const states = (alerts: AlertRow[]) => alerts.map((a) => a.state);

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url, ENV, { clock });
    orgA = await createOrg(t.app.services);
    orgB = await createOrg(t.app.services);
    const a = await createUser(t.app.services, { org: orgA.slug, role: 'editor' });
    const b = await createUser(t.app.services, { org: orgB.slug, role: 'editor' });
    tokenA = (await t.api.login(a.email, a.password)).access_token;
    tokenB = (await t.api.login(b.email, b.password)).access_token;
  });

  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  it('for: pending until the condition has held for `for`, then firing; labels, annotations and fingerprint as documented', async () => {
    await ingest(tokenA, orgA.slug, { metrics: [point('cpu_for', -10, 90, { host: 'web-1' })] });
    const id = await addRule(orgA.id, { query: { name: 'cpu_for', filter: {}, agg: 'max', window_ms: 60_000, by: [] }, for_ms: 30_000 });
    let r = await evaluate(t, id, 0);
    expect(r.outcome).to.equal('ok');
    expect(states(r.alerts)).to.deep.equal(['pending']);
    expect(r.alerts[0].active_at).to.deep.equal(at(0));
    r = await evaluate(t, id, 20);
    expect(states(r.alerts)).to.deep.equal(['pending']);
    r = await evaluate(t, id, 30);
    expect(states(r.alerts)).to.deep.equal(['firing']);
    const alert = r.alerts[0];
    expect(alert.fired_at).to.deep.equal(at(30));
    expect(alert.value).to.equal(90);
    const rule = await ruleRow(id);
    expect(alert.labels).to.deep.equal({ host: 'web-1', team: 'ops', alertname: rule.name, severity: 'critical' });
    expect(alert.annotations).to.deep.equal({ summary: 'value 90 on web-1' });
    expect(alert.fingerprint).to.match(/^[0-9a-f]{16}$/);
    expect(alert.group_key).to.equal(`rule:${id}:{}`);
    expect(rule.last_eval_at).to.deep.equal(at(30));
    expect(rule.last_error).to.equal(null);
  });

  it('recovery threshold (no flapping in the band) and keep_firing_for', async () => {
    // > 80 fires, resolves at ≤ 60, keeps firing 20 s after the last breach. 10 s windows.
    await ingest(tokenA, orgA.slug, { metrics: [point('lat', 0, 90), point('lat', 15, 70), point('lat', 25, 75), point('lat', 35, 50), point('lat', 55, 50)] });
    const id = await addRule(orgA.id, { query: { name: 'lat', filter: {}, agg: 'max', window_ms: 10_000, by: [] }, recovery_threshold: 60, keep_firing_for_ms: 20_000 });
    expect(states((await evaluate(t, id, 5)).alerts)).to.deep.equal(['firing']); // last breach at 5
    expect(states((await evaluate(t, id, 20)).alerts)).to.deep.equal(['firing']); // 70: in the band
    expect(states((await evaluate(t, id, 30)).alerts)).to.deep.equal(['firing']); // 75: in the band
    const kept = await evaluate(t, id, 39); // 39 s: 50 recovered, but 34 s since the last breach ≥ 20 s
    expect(states(kept.alerts)).to.deep.equal(['resolved']);
    expect(kept.alerts[0].resolved_at).to.deep.equal(at(39));

    // keep_firing_for on its own: a breach at 100, recovered at 110, still firing until 120.
    await ingest(tokenA, orgA.slug, { metrics: [point('lat2', 100, 90), point('lat2', 108, 10), point('lat2', 118, 10), point('lat2', 119, 10)] });
    const id2 = await addRule(orgA.id, { query: { name: 'lat2', filter: {}, agg: 'max', window_ms: 5_000, by: [] }, keep_firing_for_ms: 20_000 });
    expect(states((await evaluate(t, id2, 100)).alerts)).to.deep.equal(['firing']);
    expect(states((await evaluate(t, id2, 110)).alerts)).to.deep.equal(['firing']);
    expect(states((await evaluate(t, id2, 119)).alerts)).to.deep.equal(['firing']);
    expect(states((await evaluate(t, id2, 120)).alerts)).to.deep.equal(['resolved']);
  });

  it('no_data: fires when the window holds no point, resolves when points return', async () => {
    await ingest(tokenA, orgA.slug, { metrics: [point('beat', 0, 1, { job: 'etl' })] });
    const id = await addRule(orgA.id, { kind: 'no_data', op: null, threshold: null, query: { name: 'beat', filter: { job: 'etl' }, agg: 'count', window_ms: 30_000, by: [] } });
    expect((await evaluate(t, id, 10)).alerts).to.deep.equal([]);
    const fired = await evaluate(t, id, 40);
    expect(states(fired.alerts)).to.deep.equal(['firing']);
    expect(fired.alerts[0].value).to.equal(null);
    await ingest(tokenA, orgA.slug, { metrics: [point('beat', 45, 1, { job: 'etl' })] });
    expect(states((await evaluate(t, id, 50)).alerts)).to.deep.equal(['resolved']);
  });

  it('log_count: logs of at least the level holding the substring over the window', async () => {
    await ingest(tokenA, orgA.slug, {
      logs: [
        { ts: BASE, level: 'error', message: 'db BOOM one' },
        { ts: BASE + 1000, level: 'fatal', message: 'boom two' },
        { ts: BASE + 2000, level: 'error', message: 'boom three', attributes: { svc: 'api' } },
        { ts: BASE + 3000, level: 'info', message: 'boom but info' },
        { ts: BASE + 4000, level: 'error', message: 'something else' },
      ],
    });
    // Org B's matching logs are never counted for A.
    await ingest(tokenB, orgB.slug, { logs: Array.from({ length: 5 }, (_, i) => ({ ts: BASE + i, level: 'error', message: 'boom' })) });
    const id = await addRule(orgA.id, { kind: 'log_count', op: '>=', threshold: 3, query: { level: 'error', q: 'boom', attributes: {}, window_ms: 60_000 } });
    const fired = await evaluate(t, id, 10);
    expect(states(fired.alerts)).to.deep.equal(['firing']);
    expect(fired.alerts[0].value).to.equal(3);
    const withAttr = await addRule(orgA.id, { kind: 'log_count', op: '>=', threshold: 1, query: { level: 'error', q: 'boom', attributes: { svc: 'api' }, window_ms: 60_000 } });
    expect((await evaluate(t, withAttr, 10)).alerts[0].value).to.equal(1);
    const resolved = await evaluate(t, id, 70);
    expect(states(resolved.alerts)).to.deep.equal(['resolved']);
    expect(resolved.alerts[0].value).to.equal(0);
  });

  it('rate_of_change: change per minute over the window', async () => {
    // +10 per minute for 10 minutes.
    await ingest(tokenA, orgA.slug, { metrics: Array.from({ length: 10 }, (_, i) => point('queue', 200 + i * 60, i * 10)) });
    const id = await addRule(orgA.id, { kind: 'rate_of_change', op: '>', threshold: 5, query: { name: 'queue', filter: {}, agg: 'avg', window_ms: 600_000, by: [] } });
    const r = await evaluate(t, id, 200 + 9 * 60 + 1);
    expect(states(r.alerts)).to.deep.equal(['firing']);
    expect(r.alerts[0].value).to.be.closeTo(10, 1e-9);
  });

  it('group by: one alert per group; a group that stops answering resolves (firing) or goes (ok)', async () => {
    await ingest(tokenA, orgA.slug, {
      metrics: [point('disk', 300, 95, { host: 'a', dev: 'sda' }), point('disk', 300, 50, { host: 'b', dev: 'sda' }), point('disk', 300, 85, { host: 'c', dev: 'sda' }), point('disk', 300, 99, { host: 'c', dev: 'sdb' })],
    });
    const id = await addRule(orgA.id, { query: { name: 'disk', filter: {}, agg: 'avg', window_ms: 30_000, by: ['host'] }, group_by: ['host'] });
    const r = await evaluate(t, id, 310);
    expect(r.alerts.map((a) => [a.labels.host, a.state, a.value])).to.deep.equal([
      ['a', 'firing', 95],
      ['c', 'firing', 92],
    ]);
    expect(r.alerts[0].labels).to.not.have.property('dev');
    expect(r.alerts[0].group_key).to.equal(`rule:${id}:{host="a"}`);
    // Only b and c answer now: a resolves, b stays without a row.
    await ingest(tokenA, orgA.slug, { metrics: [point('disk', 340, 40, { host: 'b', dev: 'sda' }), point('disk', 340, 90, { host: 'c', dev: 'sda' })] });
    const later = await evaluate(t, id, 345);
    expect(later.alerts.map((a) => [a.labels.host, a.state])).to.deep.equal([
      ['a', 'resolved'],
      ['c', 'firing'],
    ]);
  });

  it('a failing query: the rule records its error and a rule-level error record; its alerts keep their state; metrics count it', async () => {
    // query.max_series is 5 here: five series fire, a sixth makes the read fail.
    await ingest(tokenA, orgA.slug, { metrics: Array.from({ length: 5 }, (_, i) => point('many', 400, 90, { i: String(i) })) });
    const id = await addRule(orgA.id, { query: { name: 'many', filter: {}, agg: 'max', window_ms: 60_000, by: [] } });
    expect(states((await evaluate(t, id, 405)).alerts)).to.deep.equal(Array(5).fill('firing'));
    await ingest(tokenA, orgA.slug, { metrics: [point('many', 401, 1, { i: '5' })] });
    const failed = await evaluate(t, id, 410);
    expect(failed.outcome).to.equal('error');
    expect(states(failed.alerts)).to.deep.equal(Array(5).fill('firing'));
    const rule = await ruleRow(id);
    expect(rule.last_error).to.match(/max_series/);
    const record = await ruleRecord(id);
    expect(record).to.include({ state: 'error', group_key: null });
    expect(record.error).to.equal(rule.last_error);
    // Still failing: no flapping resolve, the record stays.
    expect(states((await evaluate(t, id, 415)).alerts)).to.deep.equal(Array(5).fill('firing'));
    const metrics = await t.api.raw('GET', '/metrics');
    expect(metrics.text).to.match(/sentinel_alert_evaluations_total\{outcome="error"\} [1-9]/);
    expect(metrics.text).to.match(/sentinel_alerts\{state="firing"\} [1-9]/);
    expect(metrics.text).to.match(/sentinel_alert_evaluation_seconds_count [1-9]/);
    // The read works again (a filter narrows it): the record goes, rule.last_error clears.
    await query(url, `update alert_rules set query = jsonb_set(query, '{filter}', '{"i": "0"}') where id = $1`, [id]);
    const back = await evaluate(t, id, 420);
    expect(back.outcome).to.equal('ok');
    expect(await ruleRecord(id)).to.equal(undefined);
    expect((await ruleRow(id)).last_error).to.equal(null);
  });

  it('a rule disabled (or deleted) after it was claimed is skipped: nothing written', async () => {
    await ingest(tokenA, orgA.slug, { metrics: [point('skip_m', 650, 95)] });
    const id = await addRule(orgA.id, { query: { name: 'skip_m', filter: {}, agg: 'max', window_ms: 60_000, by: [] } });
    const claimed = await ruleRow(id);
    await query(url, 'update alert_rules set enabled = false where id = $1', [id]);
    expect(await t.app.services.alertEngine.evaluateRule(claimed, at(655))).to.equal('skipped');
    expect(await alertsOf(id)).to.deep.equal([]);
    expect((await ruleRow(id)).last_eval_at).to.equal(null);
  });

  it('a touch that fails rolls the alert state back, so the next evaluation makes the transition again and the group is due', async () => {
    await ingest(tokenA, orgA.slug, { metrics: [point('touch_m', 700, 95)] });
    const id = await addRule(orgA.id, { query: { name: 'touch_m', filter: {}, agg: 'max', window_ms: 60_000, by: [] } });
    const policy = t.app.services.notificationPolicy;
    const real = policy.touch.bind(policy);
    policy.touch = async () => {
      throw new Error('database gone for a moment');
    };
    try {
      const failed = await evaluate(t, id, 705);
      expect(failed.outcome).to.equal('failure');
      expect(failed.alerts, 'the state is not saved without its group').to.deep.equal([]);
    } finally {
      policy.touch = real;
    }
    const again = await evaluate(t, id, 715);
    expect(states(again.alerts)).to.deep.equal(['firing']);
    const groups = await query<{ next_flush_at: Date | null }>(url, 'select next_flush_at from alert_groups where group_key = $1', [`rule:${id}:{}`]);
    expect(groups.map((g) => g.next_flush_at?.toISOString())).to.deep.equal([at(715).toISOString()]);
  });

  it('an evaluation older than the last one is skipped, not written over it', async () => {
    await ingest(tokenA, orgA.slug, { metrics: [point('stale_m', 720, 95)] });
    const id = await addRule(orgA.id, { query: { name: 'stale_m', filter: {}, agg: 'max', window_ms: 60_000, by: [] } });
    const claimedEarly = await ruleRow(id);
    expect(states((await evaluate(t, id, 730)).alerts)).to.deep.equal(['firing']);
    // A slow evaluation that started at 725 finishes after the one at 730 (or at the same instant).
    expect(await t.app.services.alertEngine.evaluateRule(claimedEarly, at(725))).to.equal('skipped');
    expect(await t.app.services.alertEngine.evaluateRule(claimedEarly, at(730))).to.equal('skipped');
    const rows = await alertsOf(id);
    expect(rows.map((a) => [a.state, a.last_eval_at?.toISOString()])).to.deep.equal([['firing', at(730).toISOString()]]);
    expect((await ruleRow(id)).last_eval_at).to.deep.equal(at(730));
  });

  it("a source's write never updates another org's alerts row, even given its id (org_id in the WHERE)", async () => {
    const { AlertsRepository } = await import('../../src/features/alerts/alerts-repository.js');
    const repo = new AlertsRepository(t.app.db.knex);
    await t.app.services.alertSink.raise({ orgId: orgA.id, source: 'heartbeat', sourceId: randomUUID(), name: 'hb-a', severity: 'critical', labels: {}, annotations: {}, channelIds: [], at: at(740) });
    const [theirs] = await query<AlertRow>(url, "select * from alerts where org_id = $1 and source = 'heartbeat' and labels->>'alertname' = 'hb-a'", [orgA.id]);
    await repo.inSourceTx(orgB.id, 'heartbeat', theirs.source_id, async (_rows, write) => {
      await write([{ ...theirs, org_id: orgB.id, state: 'resolved', resolved_at: at(741) }]);
    });
    const [after] = await query<AlertRow>(url, 'select * from alerts where id = $1', [theirs.id]);
    expect(after).to.include({ state: 'firing', org_id: orgA.id });
  });

  it('a tick writes each claimed batch in one transaction: states per rule and org, a rule evaluated later skipped; a failing batch is written rule by rule', async () => {
    await ingest(tokenA, orgA.slug, { metrics: [point('batch_m', 900, 95, { host: 'a' }), point('batch_m', 900, 90, { host: 'b' }), point('batch_m', 900, 10, { host: 'c' }), point('batch_ok', 900, 10)] });
    await ingest(tokenB, orgB.slug, { metrics: [point('batch_b', 900, 99)] });
    const due = at(900);
    const r1 = await addRule(orgA.id, { query: { name: 'batch_m', filter: {}, agg: 'max', window_ms: 60_000, by: ['host'] }, group_by: ['host'], next_eval_at: due });
    const r2 = await addRule(orgA.id, { query: { name: 'batch_ok', filter: {}, agg: 'max', window_ms: 60_000, by: [] }, next_eval_at: due });
    const r3 = await addRule(orgA.id, { query: { name: 'batch_m', filter: {}, agg: 'max', window_ms: 60_000, by: [] }, next_eval_at: due });
    const r4 = await addRule(orgB.id, { query: { name: 'batch_b', filter: {}, agg: 'max', window_ms: 60_000, by: [] }, next_eval_at: due });
    // r3 was evaluated at a later time by another instance: this tick's older result is not written.
    await query(url, 'update alert_rules set last_eval_at = $2 where id = $1', [r3, at(950)]);
    const tick = async (s: number) => {
      nowMs = at(s).getTime();
      await query(url, 'update alert_rules set next_eval_at = $2 where id = any($1::uuid[])', [[r1, r2, r3, r4], at(s)]);
      return t.app.services.alertEngine.tick(at(s));
    };
    const first = await tick(905);
    expect(first.outcomes.skipped).to.be.at.least(1);
    expect((await alertsOf(r1)).map((a) => [a.labels.host, a.state, a.group_key])).to.deep.equal([
      ['a', 'firing', `rule:${r1}:{host="a"}`],
      ['b', 'firing', `rule:${r1}:{host="b"}`],
    ]);
    expect(await alertsOf(r2)).to.deep.equal([]);
    expect(await alertsOf(r3)).to.deep.equal([]);
    expect((await ruleRow(r3)).last_eval_at).to.deep.equal(at(950));
    expect(states(await alertsOf(r4))).to.deep.equal(['firing']);
    expect((await alertsOf(r4))[0].org_id).to.equal(orgB.id);
    for (const id of [r1, r2, r4]) expect((await ruleRow(id)).last_eval_at, id).to.deep.equal(at(905));
    const groups = await query<{ group_key: string }>(url, 'select group_key from alert_groups where source_id = any($1::text[]) order by group_key', [[r1, r4]]);
    expect(groups.map((g) => g.group_key).sort()).to.deep.equal([`rule:${r1}:{host="a"}`, `rule:${r1}:{host="b"}`, `rule:${r4}:{}`].sort());

    // Nothing changes: still firing, evaluated again (its last_eval_at moves on: it used to keep the first evaluation's).
    await tick(915);
    expect((await alertsOf(r1)).map((a) => [a.state, a.last_eval_at?.toISOString()])).to.deep.equal([
      ['firing', at(915).toISOString()],
      ['firing', at(915).toISOString()],
    ]);

    // r2 breaches, but its group's touch fails: the batch is rolled back and written rule by rule; only r2 fails.
    await ingest(tokenA, orgA.slug, { metrics: [point('batch_ok', 921, 99)] });
    const policy = t.app.services.notificationPolicy;
    const real = policy.touch.bind(policy);
    policy.touch = async (settings, now, db) => {
      if (settings.sourceId === r2) throw new Error('touch failed');
      return real(settings, now, db);
    };
    try {
      const third = await tick(925);
      expect(third.outcomes.failure).to.equal(1);
    } finally {
      policy.touch = real;
    }
    expect(await alertsOf(r2)).to.deep.equal([]);
    expect((await ruleRow(r2)).last_eval_at).to.deep.equal(at(915));
    expect((await ruleRow(r1)).last_eval_at).to.deep.equal(at(925));
    expect((await ruleRow(r4)).last_eval_at).to.deep.equal(at(925));
    await tick(935);
    expect(states(await alertsOf(r2))).to.deep.equal(['firing']);
  });

  it("an org's rule never reads another org's data", async () => {
    await ingest(tokenB, orgB.slug, { metrics: [point('b_only', 600, 99), point('shared_name', 600, 99)] });
    await ingest(tokenA, orgA.slug, { metrics: [point('shared_name', 600, 1)] });
    const onlyB = await addRule(orgA.id, { query: { name: 'b_only', filter: {}, agg: 'max', window_ms: 60_000, by: [] } });
    expect((await evaluate(t, onlyB, 610)).alerts).to.deep.equal([]);
    expect((await ruleRecord(onlyB)).state).to.equal('no_data');
    const shared = await addRule(orgA.id, { query: { name: 'shared_name', filter: {}, agg: 'max', window_ms: 60_000, by: [] } });
    expect((await evaluate(t, shared, 610)).alerts).to.deep.equal([]);
    expect(await ruleRecord(shared)).to.equal(undefined);
  });

  it('alert sink: raise fires once (idempotent), resolve resolves, a new raise is a new episode; instance-level alerts have no org', async () => {
    const sink = t.app.services.alertSink;
    const sourceId: string = randomUUID();
    const raise = (s: number, orgId: string | null = orgA.id, id: string = sourceId) =>
      sink.raise({ orgId, source: orgId ? 'heartbeat' : 'instance', sourceId: id, name: 'nightly-etl', severity: 'critical', labels: { job: 'etl' }, annotations: { summary: 'missed' }, channelIds: [], at: at(s) });
    const rows = (id: string = sourceId) => query<AlertRow>(url, 'select * from alerts where source_id = $1', [id]);
    await raise(900);
    await raise(910);
    let [row] = await rows();
    expect(row).to.include({ state: 'firing', source: 'heartbeat', org_id: orgA.id, rule_id: null, group_key: `heartbeat:${sourceId}:{}` });
    expect(row.fired_at).to.deep.equal(at(900));
    expect(row.labels).to.deep.equal({ job: 'etl', alertname: 'nightly-etl', severity: 'critical' });
    expect(row.fingerprint).to.match(/^[0-9a-f]{16}$/);
    await query(url, 'update alerts set ack_by = $2, ack_at = $3, firing_notified_at = $3 where id = $1', [row.id, null, at(911)]);
    await sink.resolve({ orgId: orgA.id, source: 'heartbeat', sourceId, at: at(920) });
    [row] = await rows();
    expect(row.state).to.equal('resolved');
    expect(row.resolved_at).to.deep.equal(at(920));
    await sink.resolve({ orgId: orgA.id, source: 'heartbeat', sourceId, at: at(925) });
    expect((await rows())[0].resolved_at).to.deep.equal(at(920));
    await raise(930);
    [row] = await rows();
    expect(row).to.include({ state: 'firing', firing_notified_at: null, ack_at: null });
    expect(row.fired_at).to.deep.equal(at(930));
    expect(await rows()).to.have.length(1);

    await raise(940, null, 'backup');
    const [instance] = await rows('backup');
    expect(instance).to.include({ org_id: null, source: 'instance', state: 'firing' });
  });

  describe('with a second app on the same database', () => {
    let t2: TestApp;
    before(async () => {
      t2 = await startTestApp(url, ENV, { clock });
    });
    after(async () => {
      await t2?.stop();
    });

    it('restart: a firing, notified alert stays firing with its fired_at and notification mark', async () => {
      await ingest(tokenA, orgA.slug, { metrics: [point('restart_m', 700, 95)] });
      const id = await addRule(orgA.id, { query: { name: 'restart_m', filter: {}, agg: 'max', window_ms: 60_000, by: [] } });
      const [first] = (await evaluate(t, id, 705)).alerts;
      await query(url, 'update alerts set firing_notified_at = $2 where id = $1', [first.id, at(706)]);
      const [again] = (await evaluate(t2, id, 715)).alerts;
      expect(again).to.include({ id: first.id, state: 'firing' });
      expect(again.fired_at).to.deep.equal(first.fired_at);
      expect(again.firing_notified_at).to.deep.equal(at(706));
    });

    it('two apps ticking the same due rule evaluate it once; it is due again one interval later', async () => {
      await ingest(tokenA, orgA.slug, { metrics: [point('tick_m', 800, 95)] });
      const id = await addRule(orgA.id, { query: { name: 'tick_m', filter: {}, agg: 'max', window_ms: 60_000, by: [] }, next_eval_at: at(800) });
      nowMs = at(805).getTime();
      const [a, b] = await Promise.all([t.app.services.alertEngine.tick(at(805)), t2.app.services.alertEngine.tick(at(805))]);
      expect(a.evaluated + b.evaluated).to.equal(1);
      expect((await ruleRow(id)).next_eval_at).to.deep.equal(at(815));
      expect(states(await alertsOf(id))).to.deep.equal(['firing']);
      const [c, d] = await Promise.all([t.app.services.alertEngine.tick(at(810)), t2.app.services.alertEngine.tick(at(810))]);
      expect(c.evaluated + d.evaluated).to.equal(0);
      const [e, f] = await Promise.all([t.app.services.alertEngine.tick(at(815)), t2.app.services.alertEngine.tick(at(815))]);
      expect(e.evaluated + f.evaluated).to.equal(1);
      expect((await ruleRow(id)).last_eval_at).to.deep.equal(at(815));
    });

    it('the daemon loop (alerts.enabled) evaluates due rules by itself and stops cleanly', async () => {
      await ingest(tokenA, orgA.slug, { metrics: [point('loop_m', 1000, 95)] });
      const id = await addRule(orgA.id, { query: { name: 'loop_m', filter: {}, agg: 'max', window_ms: 60_000, by: [] }, next_eval_at: at(1000) });
      nowMs = at(1001).getTime();
      const t3 = await startTestApp(url, { ...ENV, SENTINEL_ALERTS_ENABLED: 'true', SENTINEL_ALERTS_TICK_MS: '50' }, { clock });
      try {
        const deadline = Date.now() + 10_000;
        while ((await alertsOf(id)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        expect(states(await alertsOf(id))).to.deep.equal(['firing']);
        expect((await ruleRow(id)).last_eval_at).to.deep.equal(at(1001));
      } finally {
        await t3.stop();
      }
      // Stopped: a rule due now is left alone.
      await query(url, 'update alert_rules set next_eval_at = $2 where id = $1', [id, at(1001)]);
      await new Promise((r) => setTimeout(r, 200));
      expect((await ruleRow(id)).next_eval_at).to.deep.equal(at(1001));
    });
  });
});
