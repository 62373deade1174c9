import { expect } from 'chai';
import type { AlertLogQuery, AlertMetricQuery, AlertQuerySource, AlertSeries } from '../../src/core/alerting.js';
import { renderAnnotations, renderTemplate } from '../../src/features/alerts/alert-template.js';
import type { AlertRow, RuleRow } from '../../src/features/alerts/alert-types.js';
import {
  alertLabels,
  classify,
  compare,
  evaluateCondition,
  fingerprintOf,
  observeSeries,
  ratePerMinute,
  windowRange,
} from '../../src/features/alerts/rule-condition.js';
import { planRuleEvaluation, RULE_RECORD_FINGERPRINT } from '../../src/features/alerts/rule-evaluation.js';

/** The pure parts of rule conditions: comparisons, hysteresis, fingerprints, windows, rates, templates, one evaluation's rows. */

const NOW = new Date('2026-12-01T12:00:00Z');

function rule(over: Partial<RuleRow> = {}): RuleRow {
  return {
    org_id: '00000000-0000-4000-8000-00000000000a',
    id: '00000000-0000-4000-8000-000000000001',
    name: 'HighCpu',
    kind: 'threshold',
    query: { name: 'cpu', filter: {}, agg: 'avg', window_ms: 60_000, by: [] },
    op: '>',
    threshold: 80,
    recovery_threshold: null,
    interval_ms: 10_000,
    for_ms: 0,
    keep_firing_for_ms: 0,
    severity: 'critical',
    labels: { team: 'ops' },
    annotations: { summary: 'cpu {{ $value }} on {{ $labels.host }}' },
    channels: [],
    group_by: [],
    group_wait_ms: 30_000,
    group_interval_ms: 300_000,
    repeat_interval_ms: 14_400_000,
    enabled: true,
    next_eval_at: NOW,
    last_eval_at: null,
    last_error: null,
    created_by: null,
    created_at: NOW,
    updated_at: NOW,
    ...over,
  };
}

function source(series: AlertSeries[] | Error, count = 0): AlertQuerySource & { metricCalls: AlertMetricQuery[]; logCalls: AlertLogQuery[] } {
  const s = {
    metricCalls: [] as AlertMetricQuery[],
    logCalls: [] as AlertLogQuery[],
    metric: async (_org: string, q: AlertMetricQuery) => {
      s.metricCalls.push(q);
      if (series instanceof Error) throw series;
      return series;
    },
    countLogs: async (_org: string, q: AlertLogQuery) => {
      s.logCalls.push(q);
      return count;
    },
  };
  return s;
}

describe('rule conditions', () => {
  it('compare covers the six operators', () => {
    expect([compare('>', 2, 1), compare('>', 1, 1), compare('>=', 1, 1), compare('<', 0, 1), compare('<=', 1, 1), compare('==', 1, 1), compare('!=', 1, 1)]).to.deep.equal([
      true,
      false,
      true,
      true,
      true,
      true,
      false,
    ]);
  });

  it('classify: breach past the threshold, between in the hysteresis band, recovered past the recovery threshold', () => {
    const r = { op: '>' as const, threshold: 80, recovery_threshold: 70 };
    expect([81, 80, 75, 70.0001, 70, 10].map((v) => classify(r, v))).to.deep.equal(['breach', 'between', 'between', 'between', 'recovered', 'recovered']);
    const low = { op: '<' as const, threshold: 10, recovery_threshold: 20 };
    expect([5, 15, 20, 25].map((v) => classify(low, v))).to.deep.equal(['breach', 'between', 'recovered', 'recovered']);
    expect(classify({ op: '>', threshold: 80, recovery_threshold: null }, 80)).to.equal('recovered');
    expect(classify({ op: '==', threshold: 1, recovery_threshold: 5 }, 2)).to.equal('recovered');
  });

  it('fingerprints: 16 hex, independent of label order, different for different labels', () => {
    const a = fingerprintOf({ a: '1', b: '2' });
    expect(a).to.match(/^[0-9a-f]{16}$/);
    expect(fingerprintOf({ b: '2', a: '1' })).to.equal(a);
    expect(fingerprintOf({ a: '1', b: '3' })).to.not.equal(a);
    // No ambiguity from concatenation.
    expect(fingerprintOf({ a: 'b=c' })).to.not.equal(fingerprintOf({ 'a=b': 'c' }));
  });

  it('alert labels: series labels, then the rule labels (which win), alertname and severity', () => {
    expect(alertLabels(rule(), { host: 'h1', team: 'dev', alertname: 'x' })).to.deep.equal({ host: 'h1', team: 'ops', alertname: 'HighCpu', severity: 'critical' });
  });

  it('the window is (now - window, now] as a half-open read range', () => {
    expect(windowRange(100_000, 60_000)).to.deep.equal({ startMs: 40_001, endMs: 100_001 });
  });

  it('rate per minute: last minus first non-null value over the minutes between them', () => {
    expect(
      ratePerMinute([
        [0, null],
        [60_000, 10],
        [120_000, null],
        [180_000, 30],
        [240_000, null],
      ]),
    ).to.equal(10);
    expect(ratePerMinute([[0, 5]])).to.equal(null);
    expect(
      ratePerMinute([
        [0, null],
        [1, null],
      ]),
    ).to.equal(null);
  });

  it('observeSeries: one instance per answer series with a value; none answers → noData', () => {
    const r = rule();
    const out = observeSeries(r, [
      { labels: { host: 'a' }, points: [[0, 90]] },
      { labels: { host: 'b' }, points: [[0, 50]] },
      { labels: { host: 'c' }, points: [[0, null]] },
    ]);
    expect(out.noData).to.equal(false);
    expect(out.instances.map((i) => [i.labels.host, i.observation, i.value])).to.deep.equal([
      ['a', 'breach', 90],
      ['b', 'recovered', 50],
    ]);
    expect(observeSeries(r, []).noData).to.equal(true);
  });

  it('evaluateCondition reads one bucket of the window for threshold, about 20 for rate_of_change, the log count for log_count', async () => {
    const s = source([{ labels: {}, points: [[NOW.getTime() - 59_999, 85]] }], 7);
    const t = await evaluateCondition(rule(), s, NOW);
    expect(s.metricCalls[0]).to.include({ startMs: NOW.getTime() - 59_999, endMs: NOW.getTime() + 1, stepMs: 60_000, name: 'cpu', agg: 'avg' });
    expect(t.instances[0]).to.include({ observation: 'breach', value: 85 });

    await evaluateCondition(rule({ kind: 'rate_of_change', query: { name: 'q', filter: {}, agg: 'max', window_ms: 600_000, by: [] } }), s, NOW);
    expect(s.metricCalls[1].stepMs).to.equal(30_000);

    const lc = await evaluateCondition(rule({ kind: 'log_count', query: { level: 'error', q: 'boom', attributes: { svc: 'api' }, window_ms: 300_000 }, op: '>=', threshold: 5 }), s, NOW);
    expect(s.logCalls[0]).to.include({ level: 'error', q: 'boom', startMs: NOW.getTime() - 299_999, endMs: NOW.getTime() + 1 });
    expect(lc.instances).to.have.length(1);
    expect(lc.instances[0]).to.include({ observation: 'breach', value: 7 });
  });

  it('no_data: breach when the window holds no point at all, recovered otherwise', async () => {
    const r = rule({ kind: 'no_data', op: null, threshold: null });
    expect((await evaluateCondition(r, source([]), NOW)).instances[0].observation).to.equal('breach');
    expect((await evaluateCondition(r, source([{ labels: {}, points: [[0, null]] }]), NOW)).instances[0].observation).to.equal('breach');
    expect((await evaluateCondition(r, source([{ labels: {}, points: [[0, 1]] }]), NOW)).instances[0].observation).to.equal('recovered');
  });

  it('a failing read throws (the evaluator records it as the rule error)', async () => {
    let caught: unknown;
    await evaluateCondition(rule(), source(new Error('too many series')), NOW).catch((e: unknown) => (caught = e));
    expect((caught as Error).message).to.equal('too many series');
  });
});

describe('annotation templates', () => {
  it('substitutes $value and $labels.name; a missing label is empty; nothing else is evaluated', () => {
    expect(renderTemplate('cpu {{ $value }} on {{$labels.host}}', 91.123456789, { host: 'web-1' })).to.equal('cpu 91.1235 on web-1');
    expect(renderTemplate('{{ $labels.nope }}!', 1, {})).to.equal('!');
    expect(renderTemplate('{{ $value }}', null, {})).to.equal('');
    expect(renderTemplate('{{ constructor.constructor("return process")() }} {{ $labels.__proto__ }} {{ $labels.toString }}', 1, {})).to.equal(
      '{{ constructor.constructor("return process")() }}  ',
    );
    expect(renderAnnotations({ a: '{{ $value }}', b: 'x' }, 3, {})).to.deep.equal({ a: '3', b: 'x' });
  });
});

describe('one rule evaluation as rows', () => {
  const row = (over: Partial<AlertRow>): AlertRow => ({
    id: over.id ?? 'row-1',
    org_id: rule().org_id,
    source: 'rule',
    source_id: rule().id,
    rule_id: rule().id,
    fingerprint: 'f',
    group_key: null,
    labels: {},
    annotations: {},
    state: 'ok',
    value: null,
    error: null,
    active_at: null,
    fired_at: null,
    resolved_at: null,
    last_breach_at: null,
    last_eval_at: null,
    firing_notified_at: null,
    resolved_notified_at: null,
    ack_by: null,
    ack_at: null,
    ack_comment: null,
    ack_expires_at: null,
    created_at: NOW,
    updated_at: NOW,
    ...over,
  });

  it('a new breaching instance is written firing with rendered annotations and its group touched; a quiet one is not written', () => {
    const r = rule({ group_by: ['host'] });
    const result = observeSeries(r, [
      { labels: { host: 'a' }, points: [[0, 90]] },
      { labels: { host: 'b' }, points: [[0, 10]] },
    ]);
    const plan = planRuleEvaluation(r, [], result, null, NOW);
    expect(plan.writes).to.have.length(1);
    expect(plan.writes[0]).to.include({ state: 'firing', value: 90 });
    expect(plan.writes[0].annotations).to.deep.equal({ summary: 'cpu 90 on a' });
    expect(plan.writes[0].group_key).to.equal(`rule:${r.id}:{host="a"}`);
    expect(plan.groups.map((g) => g.groupLabels)).to.deep.equal([{ host: 'a' }]);
  });

  it('a query error writes the rule-level error record and leaves instances alone; the next good read removes the record', () => {
    const r = rule();
    const firing = row({ id: 'i1', fingerprint: 'x', state: 'firing', fired_at: NOW, last_breach_at: NOW, value: 90 });
    const plan = planRuleEvaluation(r, [firing], null, 'the query matches more than 1 series', NOW);
    expect(plan.writes).to.have.length(1);
    expect(plan.writes[0]).to.include({ fingerprint: RULE_RECORD_FINGERPRINT, state: 'error', error: 'the query matches more than 1 series', group_key: null });
    expect(plan.removals).to.deep.equal([]);
    expect(plan.groups).to.deep.equal([]);

    const record = row({ id: 'rec', fingerprint: RULE_RECORD_FINGERPRINT, state: 'error' });
    const ok = planRuleEvaluation(r, [firing, record], observeSeries(r, [{ labels: {}, points: [[0, 90]] }]), null, NOW);
    expect(ok.removals).to.deep.equal(['rec']);
  });

  it('a threshold read with no series at all shows no_data on the rule record; a vanished ok instance is dropped, a firing one resolves', () => {
    const r = rule();
    const gone = row({ id: 'ok1', fingerprint: 'a', state: 'ok' });
    const firing = row({ id: 'f1', fingerprint: 'b', state: 'firing', fired_at: NOW, last_breach_at: new Date(NOW.getTime() - 1000), value: 90 });
    const plan = planRuleEvaluation(r, [gone, firing], observeSeries(r, []), null, NOW);
    expect(plan.removals).to.deep.equal(['ok1']);
    expect(plan.writes.map((w) => [w.fingerprint, w.state])).to.deep.equal([
      [RULE_RECORD_FINGERPRINT, 'no_data'],
      ['b', 'resolved'],
    ]);
    expect(plan.transitions.map((t) => t.transition)).to.deep.equal([{ from: 'firing', to: 'resolved' }]);
  });
});
