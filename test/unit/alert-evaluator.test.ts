import { expect } from 'chai';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { AlertQuerySource } from '../../src/core/alerting.js';
import { AlertEvaluator } from '../../src/features/alerts/alert-evaluator.js';
import { groupKeyOf, type AlertRow, type GroupSettings, type NotificationPolicy, type RuleRow } from '../../src/features/alerts/alert-types.js';
import type { AlertsRepository, BatchTx, RuleTx } from '../../src/features/alerts/alerts-repository.js';

/** The evaluation loop without a database: bounded concurrency, one rule's failure stays its own, stop waits for the tick. */

const NOW = new Date('2026-12-01T00:00:00Z');

function rule(id: string): RuleRow {
  return {
    org_id: 'org',
    id,
    name: id,
    kind: 'threshold',
    query: { name: id, filter: {}, agg: 'max', window_ms: 60_000, by: [] },
    op: '>',
    threshold: 1,
    recovery_threshold: null,
    interval_ms: 1000,
    for_ms: 0,
    keep_firing_for_ms: 0,
    severity: 'critical',
    labels: {},
    annotations: {},
    channels: [],
    group_by: [],
    group_wait_ms: 0,
    group_interval_ms: 60_000,
    repeat_interval_ms: 3_600_000,
    enabled: true,
    next_eval_at: NOW,
    last_eval_at: null,
    last_error: null,
    created_by: null,
    created_at: NOW,
    updated_at: NOW,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function harness(opts: { rules: RuleRow[]; failWrite?: Set<string>; failQuery?: Set<string>; concurrency?: number; queryMs?: number; batchSize?: number; claimForever?: boolean; instances?: AlertRow[]; seriesLabels?: Record<string, string> }) {
  let claimed = false;
  let inFlight = 0;
  const seen = { claims: 0, maxInFlight: 0, touched: [] as GroupSettings[], flushes: 0, finished: [] as [string, string | null][] };
  const repo = {
    claimDue: async () => {
      seen.claims++;
      if (claimed && !opts.claimForever) return [];
      claimed = true;
      return opts.rules;
    },
    inRuleTx: async <T>(_org: string, ruleId: string, _at: Date, fn: (tx: RuleTx | null) => Promise<T>) => {
      if (opts.failWrite?.has(ruleId)) throw new Error('connection lost');
      return fn({
        db: undefined as unknown as RuleTx['db'],
        instances: async () => opts.instances ?? [],
        write: async () => {},
        remove: async () => {},
        finish: async (_at, error) => {
          seen.finished.push([ruleId, error]);
        },
      });
    },
    inRulesTx: async <T>(rules: RuleRow[], _at: Date, fn: (tx: BatchTx) => Promise<T>) => {
      if (rules.some((r) => opts.failWrite?.has(r.id))) throw new Error('connection lost');
      return fn({
        db: undefined as unknown as BatchTx['db'],
        locked: new Set(rules.map((r) => r.id)),
        instances: new Map(rules.map((r) => [r.id, (opts.instances ?? []).filter((a) => a.source_id === r.id)])),
        write: async () => {},
        remove: async () => {},
        finish: async (results) => {
          for (const x of results) seen.finished.push([x.ruleId, x.error]);
        },
      });
    },
    countByState: async () => [],
  } as unknown as AlertsRepository;
  const source: AlertQuerySource = {
    metric: async (_org, q) => {
      inFlight++;
      seen.maxInFlight = Math.max(seen.maxInFlight, inFlight);
      await sleep(opts.queryMs ?? 5);
      inFlight--;
      if (opts.failQuery?.has(q.name)) throw new Error('too many series');
      return [{ labels: opts.seriesLabels ?? {}, points: [[NOW.getTime(), 5]] }];
    },
    countLogs: async () => 0,
  };
  const policy: NotificationPolicy = {
    touch: async (s) => {
      seen.touched.push(s);
      return 'k';
    },
    flushDue: async () => {
      seen.flushes++;
      return 0;
    },
    wakeOrg: async () => {},
    reconfigure: async () => {},
  };
  const evaluator = new AlertEvaluator(repo, source, policy, { now: () => NOW }, { tickMs: 10, concurrency: opts.concurrency ?? 2, batchSize: opts.batchSize ?? 100 }, pino({ level: 'silent' }), new Registry());
  return { evaluator, seen };
}

describe('alert evaluator loop', () => {
  it('evaluates at most alerts.concurrency rules at once, touches changed groups, flushes once per tick', async () => {
    const { evaluator, seen } = harness({ rules: ['a', 'b', 'c', 'd', 'e'].map(rule), concurrency: 2 });
    const result = await evaluator.tick(NOW);
    expect(result.evaluated).to.equal(5);
    expect(result.outcomes.ok).to.equal(5);
    expect(seen.maxInFlight).to.equal(2);
    expect(seen.touched.map((g) => g.sourceId).sort()).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    expect(seen.flushes).to.equal(1);
  });

  it("one rule's failed query is its error, a failed write its failure; the others are evaluated", async () => {
    const { evaluator, seen } = harness({ rules: ['a', 'b', 'c'].map(rule), failQuery: new Set(['b']), failWrite: new Set(['c']) });
    const result = await evaluator.tick(NOW);
    expect(result.outcomes).to.deep.equal({ ok: 1, error: 1, failure: 1, skipped: 0 });
    expect(seen.finished).to.deep.include.members([
      ['a', null],
      ['b', 'too many series'],
    ]);
    expect(seen.flushes).to.equal(1);
  });

  it('stop waits for the running tick, which finishes its claimed rules and leaves the flush for the next start', async () => {
    const { evaluator, seen } = harness({ rules: ['a', 'b'].map(rule), queryMs: 100 });
    evaluator.start();
    // Until the first tick is running (its queries take 100 ms).
    for (const deadline = Date.now() + 5000; seen.claims === 0 && Date.now() < deadline; ) await sleep(2);
    await evaluator.stop();
    expect(seen.finished.map(([id]) => id).sort()).to.deep.equal(['a', 'b']);
    expect(seen.flushes).to.equal(0);
    await sleep(50);
    expect(seen.flushes).to.equal(0); // no tick after stop
    expect(seen.claims).to.equal(1);
  });

  it('stop ends a tick at the next batch boundary (rather than claiming up to 10 batches after stop)', async () => {
    const { evaluator, seen } = harness({ rules: ['a', 'b'].map(rule), queryMs: 50, batchSize: 2, claimForever: true });
    evaluator.start();
    for (const deadline = Date.now() + 5000; seen.claims === 0 && Date.now() < deadline; ) await sleep(2);
    await evaluator.stop();
    expect(seen.claims).to.equal(1);
    expect(seen.flushes).to.equal(0);
  });

  it('a firing alert whose group_by changed touches its new group even without a transition', async () => {
    const r = { ...rule('g'), query: { name: 'g', filter: {}, agg: 'max' as const, window_ms: 60_000, by: ['host'] }, group_by: ['host'] };
    const labels = { alertname: 'g', severity: 'critical', host: 'h1' };
    // The stored instance: firing, still grouped under the old (empty) group_by.
    const firing = (fingerprint: string): AlertRow => ({
      id: 'a1', org_id: 'org', source: 'rule', source_id: 'g', rule_id: 'g', fingerprint, group_key: groupKeyOf('rule', 'g', {}), labels,
      annotations: {}, state: 'firing', value: 5, error: null, active_at: NOW, fired_at: new Date(NOW.getTime() - 60_000), resolved_at: null,
      last_breach_at: new Date(NOW.getTime() - 1000), last_eval_at: new Date(NOW.getTime() - 1000), firing_notified_at: NOW, resolved_notified_at: null,
      ack_by: null, ack_at: null, ack_comment: null, ack_expires_at: null, created_at: NOW, updated_at: NOW,
    });
    const { fingerprintOf } = await import('../../src/features/alerts/rule-condition.js');
    const { evaluator, seen } = harness({ rules: [r], instances: [firing(fingerprintOf(labels))], seriesLabels: { host: 'h1' } });
    await evaluator.tick(NOW);
    expect(seen.touched.map((g) => g.groupLabels)).to.deep.equal([{ host: 'h1' }]);
  });
});
