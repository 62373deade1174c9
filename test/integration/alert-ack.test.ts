import { expect } from 'chai';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { expectProblem, type Problem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Alerts and acknowledgements through the API, with alerts made by the evaluator itself: points
 * ingested at known times, evaluation ticks at pinned times. Listing (state, rule filters),
 * one alert, ack by a user and by an API key (who is recorded, the audit row), the rules of an
 * ack (comment required, expiry in the future, only pending or firing: 409 otherwise), an ack
 * ending with its firing episode, disabling a rule resolving its alerts, and tenancy (404).
 */

interface AlertAnswer {
  id: string;
  rule_id: string | null;
  rule_name: string | null;
  source: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: string;
  value: number | null;
  since: string;
  active_at: string | null;
  fired_at: string | null;
  resolved_at: string | null;
  silenced: boolean;
  ack: { by: string | null; at: string; comment: string; expires_at: string | null } | null;
}
type Page = { items: AlertAnswer[]; next_cursor: string | null };

describe('alerts and acknowledgements', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let orgA: { id: string; slug: string };
  let orgB: { id: string; slug: string };
  let editorA: { id: string; token: string };
  let viewerA: string;
  let adminB: string;
  let writeKeyA: { id: string; secret: string };
  let ingestKeyA: string;
  let ruleId: string;
  /**
   * Evaluation times: T0 breaches for both hosts, T1 only host a (b recovers), T2 a recovers. Set
   * when the suite starts (not when mocha loads the file, which may be more than the minute ahead
   * of T0 earlier on a slow machine: the rule's first evaluation would then be after T0).
   */
  let T0 = 0;
  let T1 = 0;
  let T2 = 0;

  const alertsPath = (org: string) => `/organizations/${org}/alerts`;
  const list = async (token: string, qs = '', org = orgA.slug) => {
    const res = await t.api.get<Page>(`${alertsPath(org)}${qs}`, token);
    expect(res.status, res.text).to.equal(200);
    return res.body.items;
  };
  const ack = (token: string, id: string, body: unknown, org = orgA.slug) => t.api.post<AlertAnswer>(`${alertsPath(org)}/${id}/ack`, token, body);
  const ingest = async (points: { host: string; value: number; ts: number }[]) => {
    const res = await t.api.post('/telemetry', ingestKeyA, { metrics: points.map((p) => ({ name: 'load', labels: { host: p.host }, value: p.value, ts: p.ts })) });
    expect(res.status, res.text).to.equal(202);
  };
  const tick = (at: number) => t.app.services.alertEngine.tick(new Date(at));

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
    T0 = Math.floor(Date.now() / 1000) * 1000 + 60_000;
    T1 = T0 + 60_000;
    T2 = T1 + 60_000;
    orgA = await createOrg(t.app.services);
    orgB = await createOrg(t.app.services);
    const e = await createUser(t.app.services, { org: orgA.slug, role: 'editor' });
    const v = await createUser(t.app.services, { org: orgA.slug, role: 'viewer' });
    const b = await createUser(t.app.services, { org: orgB.slug, role: 'admin' });
    editorA = { id: e.id, token: (await t.api.login(e.email, e.password)).access_token };
    viewerA = (await t.api.login(v.email, v.password)).access_token;
    adminB = (await t.api.login(b.email, b.password)).access_token;
    const k = await createApiKey(t.app.services, orgA.slug, ['write']);
    writeKeyA = { id: k.id, secret: k.secret };
    ingestKeyA = (await createApiKey(t.app.services, orgA.slug, ['ingest'])).secret;

    // load > 5 per host over the last 30 s, evaluated every 10 s (by the ticks below, at T0, T1, T2).
    const rule = await t.api.post<{ id: string; next_eval_at: string }>(`/organizations/${orgA.slug}/alert-rules`, editorA.token, {
      name: 'High load',
      kind: 'threshold',
      query: { name: 'load', agg: 'max', window: '30s', by: ['host'] },
      op: '>',
      threshold: 5,
      interval: '10s',
      severity: 'critical',
      annotations: { summary: 'load {{ $value }} on {{ $labels.host }}' },
    });
    expect(rule.status, rule.text).to.equal(201);
    ruleId = rule.body.id;
    expect(Date.parse(rule.body.next_eval_at)).to.be.below(T0);
    // The points are a few seconds in the future (ingest takes up to ingest.max_future ahead).
    await ingest([
      { host: 'a', value: 9, ts: T0 - 5000 },
      { host: 'b', value: 7, ts: T0 - 5000 },
      { host: 'a', value: 8, ts: T1 - 5000 },
      { host: 'b', value: 1, ts: T1 - 5000 },
      { host: 'a', value: 1, ts: T2 - 5000 },
    ]);
    const r = await tick(T0);
    expect(r.evaluated).to.equal(1);
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  it('lists the firing alerts with their rule, labels, value, since; filters by state and rule; one alert by id', async () => {
    const items = await list(viewerA);
    expect(items.map((a) => [a.labels.host, a.state, a.value]).sort()).to.deep.equal([
      ['a', 'firing', 9],
      ['b', 'firing', 7],
    ]);
    const a = items.find((i) => i.labels.host === 'a')!;
    expect(a).to.include({ rule_id: ruleId, rule_name: 'High load', source: 'rule', silenced: false, ack: null, since: new Date(T0).toISOString(), fired_at: new Date(T0).toISOString() });
    expect(a.labels).to.deep.equal({ host: 'a', alertname: 'High load', severity: 'critical' });
    expect(a.annotations).to.deep.equal({ summary: 'load 9 on a' });
    expect(await list(viewerA, '?state=pending')).to.deep.equal([]);
    expect((await list(viewerA, `?state=firing&rule_id=${ruleId}`)).length).to.equal(2);
    expect(await list(viewerA, '?rule_id=00000000-0000-4000-8000-000000000000')).to.deep.equal([]);
    const one = await t.api.get<AlertAnswer>(`${alertsPath(orgA.slug)}/${a.id}`, viewerA);
    expect(one.status, one.text).to.equal(200);
    expect(one.body).to.deep.equal(a);
    const rule = await t.api.get<{ state: string }>(`/organizations/${orgA.slug}/alert-rules/${ruleId}`, viewerA);
    expect(rule.body.state).to.equal('firing');
    const paged = await t.api.get<Page>(`${alertsPath(orgA.slug)}?limit=1`, viewerA);
    expect(paged.body.items.length).to.equal(1);
    const next = await t.api.get<Page>(`${alertsPath(orgA.slug)}?limit=1&cursor=${paged.body.next_cursor}`, viewerA);
    expect(next.body.items.map((i) => i.id)).to.not.include(paged.body.items[0].id);
    expect(next.body.next_cursor).to.equal(null);
    for (const qs of ['?state=burning', '?rule_id=nope', '?limit=0', '?cursor=%00', '?other=1']) expectProblem(await t.api.get(`${alertsPath(orgA.slug)}${qs}`, viewerA), 400, qs);
  });

  it('refuses bad acknowledgements with 400 naming the field, viewers with 403, other orgs with 404', async () => {
    const [a] = await list(viewerA, '?state=firing');
    const cases: [string, unknown, string][] = [
      ['no comment', {}, 'body/comment'],
      ['blank comment', { comment: '  ' }, 'body/comment'],
      ['NUL in the comment', { comment: 'a\u0000' }, 'body/comment'],
      ['huge comment', { comment: 'x'.repeat(5000) }, 'body/comment'],
      ['expiry in the past', { comment: 'x', expires_at: '2020-01-01T00:00:00Z' }, 'body/expires_at'],
      ['expiry not a time', { comment: 'x', expires_at: 'tomorrow' }, 'body/expires_at'],
      ['expiry on a leap second', { comment: 'x', expires_at: '2099-12-31T23:59:60Z' }, 'body/expires_at'],
      ['unknown field', { comment: 'x', by: 'me' }, 'body/by'],
    ];
    for (const [label, body, path] of cases) {
      const res = await ack(editorA.token, a.id, body);
      expectProblem(res, 400, label);
      expect((res.body as unknown as Problem).errors?.map((e) => e.path), label).to.include(path);
    }
    expectProblem(await ack(viewerA, a.id, { comment: 'x' }), 403, 'viewer');
    expectProblem(await ack(adminB, a.id, { comment: 'x' }), 404, 'B acks A');
    expectProblem(await ack(adminB, a.id, { comment: 'x' }, orgB.slug), 404, "B acks it under B's org");
    expectProblem(await t.api.get(`${alertsPath(orgB.slug)}/${a.id}`, adminB), 404, "B reads it under B's org");
    expect(await list(adminB, '', orgB.slug)).to.deep.equal([]);
    expectProblem(await ack(editorA.token, '00000000-0000-4000-8000-000000000000', { comment: 'x' }), 404, 'no such alert');
    const [fresh] = (await list(viewerA)).filter((x) => x.id === a.id);
    expect(fresh.ack).to.equal(null);
  });

  it('records who acknowledged (a user; null for an API key, named in the audit log), when, why and until when', async () => {
    const items = await list(viewerA, '?state=firing');
    const a = items.find((i) => i.labels.host === 'a')!;
    const b = items.find((i) => i.labels.host === 'b')!;
    const expires = new Date(Date.now() + 3_600_000).toISOString();
    const res = await ack(editorA.token, a.id, { comment: ' looking into it ', expires_at: expires });
    expect(res.status, res.text).to.equal(200);
    expect(res.body.ack).to.include({ by: editorA.id, comment: 'looking into it', expires_at: expires });
    expect(Date.parse(res.body.ack!.at)).to.be.within(Date.now() - 10_000, Date.now() + 1000);

    const byKey = await ack(writeKeyA.secret, b.id, { comment: 'bot: restarting' });
    expect(byKey.status, byKey.text).to.equal(200);
    expect(byKey.body.ack).to.include({ by: null, comment: 'bot: restarting', expires_at: null });

    const audit = await query<{ actor: string; target_id: string; details: Record<string, unknown> }>(
      url,
      `select actor, target_id, details from audit_log where org_id = $1 and action = 'alert.ack' order by id`,
      [orgA.id],
    );
    expect(audit.map((r) => [r.target_id, r.actor])).to.deep.equal([
      [a.id, `user:${editorA.id}`],
      [b.id, `apikey:${writeKeyA.id}`],
    ]);
    expect(audit[0].details).to.include({ comment: 'looking into it', expires_at: expires });
    // A further evaluation while it fires keeps the acknowledgement: 10 s later (the rule's
    // interval), the T0 points are still in the 30 s window, so both hosts still breach.
    expect((await tick(T0 + 10_000)).evaluated).to.equal(1);
    const after = (await list(viewerA, '?state=firing')).find((i) => i.id === a.id)!;
    expect(after).to.include({ state: 'firing', fired_at: new Date(T0).toISOString() });
    expect(after.ack?.comment).to.equal('looking into it');
    expect((await list(viewerA, '?state=firing')).find((i) => i.id === b.id)!.ack?.comment).to.equal('bot: restarting');
  });

  it('a resolved alert cannot be acknowledged (409); its acknowledgement ends with its episode', async () => {
    await tick(T1); // b recovers, a still fires
    const b = (await list(viewerA, '?state=resolved'))[0];
    expect(b.labels.host).to.equal('b');
    expect(b.resolved_at).to.equal(new Date(T1).toISOString());
    const refused = await ack(editorA.token, b.id, { comment: 'late' });
    expectProblem(refused, 409, 'resolved');
    const a = (await list(viewerA, '?state=firing'))[0];
    expect(a.labels.host).to.equal('a');
    expect(a.ack?.comment).to.equal('looking into it');

    // Fires again after resolving: a new episode, not acknowledged.
    await ingest([{ host: 'b', value: 50, ts: T2 - 4000 }]);
    await tick(T2);
    const again = (await list(viewerA, '?state=firing')).find((i) => i.labels.host === 'b')!;
    expect(again.fired_at).to.equal(new Date(T2).toISOString());
    expect(again.ack).to.equal(null);
  });

  it('disabling the rule resolves its firing alerts; deleting it then removes them (resolved already: nothing left to send)', async () => {
    const off = await t.api.call<{ enabled: boolean; state: string }>('PATCH', `/organizations/${orgA.slug}/alert-rules/${ruleId}`, editorA.token, { enabled: false });
    expect(off.status, off.text).to.equal(200);
    expect(off.body).to.include({ enabled: false, state: 'ok' });
    expect(await list(viewerA, '?state=firing')).to.deep.equal([]);
    expect((await list(viewerA, '?state=resolved')).map((a) => a.labels.host).sort()).to.deep.equal(['a', 'b']);
    expect((await t.api.call('DELETE', `/organizations/${orgA.slug}/alert-rules/${ruleId}`, editorA.token)).status).to.equal(204);
    expect(await list(viewerA)).to.deep.equal([]);
    expect(await query(url, 'select id from alert_groups where org_id = $1', [orgA.id])).to.deep.equal([]);
  });
});
