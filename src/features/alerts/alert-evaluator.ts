import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AlertQuerySource } from '../../core/alerting.js';
import type { Clock } from '../../core/clock.js';
import { SerialLoop } from '../../core/serial-loop.js';
import { ALERT_STATES, groupKeyOf, type AlertRow, type GroupSettings, type NotificationPolicy, type RuleRow } from './alert-types.js';
import type { AlertsRepository, AlertWrite } from './alerts-repository.js';
import { evaluateCondition, type ConditionResult } from './rule-condition.js';
import { planRuleEvaluation, type RuleEvaluationPlan } from './rule-evaluation.js';

export interface EvaluatorOptions {
  /** alerts.tick_ms: the pause between the end of one tick and the start of the next. */
  tickMs: number;
  /** alerts.concurrency: rules evaluated at once. */
  concurrency: number;
  /** alerts.batch_size: rules claimed per statement. */
  batchSize: number;
}

/** error: the rule's read failed (recorded on the rule); failure: the evaluation itself failed (logged, retried next interval). */
export type EvaluationOutcome = 'ok' | 'error' | 'failure' | 'skipped';

export interface TickResult {
  evaluated: number;
  outcomes: Record<EvaluationOutcome, number>;
  flushed: number;
}

/** A tick claims at most this many batches, so one tick's length stays bounded; the rest wait for the next. */
const MAX_BATCHES_PER_TICK = 10;

/** A rule's read: its condition's answer, or the error of the read; how long it took. */
interface RuleRead {
  result: ConditionResult | null;
  error: string | null;
  ms: number;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 2000);

/**
 * The evaluation loop (DESIGN §7): every alerts.tick_ms, claim the due rules (SKIP LOCKED, so
 * several instances share the work and each rule is evaluated once per interval), evaluate them
 * at most alerts.concurrency at once, write each rule's alerts rows in one transaction, tell the
 * notification policy which groups changed, then let it flush what is due. A rule's failure is
 * its own: it is logged and counted, the loop goes on.
 */
export class AlertEvaluator {
  private readonly loop: SerialLoop;
  private readonly evaluations: Counter<'outcome'>;
  private readonly seconds: Histogram;

  constructor(
    private readonly repo: AlertsRepository,
    private readonly source: AlertQuerySource,
    private readonly policy: NotificationPolicy,
    private readonly clock: Clock,
    private readonly opts: EvaluatorOptions,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    this.loop = new SerialLoop((signal) => this.tick(this.clock.now(), signal), { name: 'alerts: evaluation tick', intervalMs: opts.tickMs, logger });
    this.evaluations = new Counter({
      name: 'sentinel_alert_evaluations_total',
      help: 'Alert rule evaluations by outcome (ok; error: the rule query failed; failure: the evaluation could not be stored).',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'sentinel_alert_evaluation_seconds',
      help: 'Time to evaluate one alert rule (query and state write).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    new Gauge({
      name: 'sentinel_alerts',
      help: 'Alerts (rule instances, heartbeats, instance checks) by state, read from the database at scrape time.',
      labelNames: ['state'],
      registers: [registry],
      // An unreadable table leaves the series out (and is logged) rather than failing the whole scrape.
      collect: async function (this: Gauge<'state'>) {
        this.reset();
        try {
          const counts = new Map((await repo.countByState()).map((r) => [r.state, r.n]));
          for (const s of ALERT_STATES) this.set({ state: s }, counts.get(s) ?? 0);
        } catch (err) {
          logger.warn({ err }, 'alerts: counting alerts for /metrics failed');
        }
      },
    });
  }

  /**
   * Claims the rules due at `now`, evaluates them, flushes due notification groups. Per batch:
   * the reads (at most alerts.concurrency at once), then one transaction writes the whole
   * batch's state (a handful of statements however many rules); should it fail, each rule is
   * written in its own transaction, so one rule's failure stays its own. Stops between batches
   * once `signal` aborts.
   */
  async tick(now: Date = this.clock.now(), signal?: AbortSignal): Promise<TickResult> {
    const result: TickResult = { evaluated: 0, outcomes: { ok: 0, error: 0, failure: 0, skipped: 0 }, flushed: 0 };
    for (let batch = 0; batch < MAX_BATCHES_PER_TICK && !signal?.aborted; batch++) {
      const rules = await this.repo.claimDue(now, this.opts.batchSize);
      const reads = new Map<string, RuleRead>();
      await this.pool(rules, async (rule) => {
        reads.set(rule.id, await this.read(rule, now));
      });
      const outcomes = await this.storeBatch(rules, reads, now);
      for (const o of outcomes) {
        result.outcomes[o]++;
        result.evaluated++;
      }
      if (rules.length < this.opts.batchSize) break;
    }
    // Stopping: the claimed work is done; due groups stay due for the next start (or another instance).
    if (signal?.aborted) return result;
    try {
      result.flushed = await this.policy.flushDue(now, signal);
    } catch (err) {
      this.logger.error({ err }, 'alerts: flushing notification groups failed');
    }
    return result;
  }

  /**
   * One evaluation of one rule at `now`: read, then in one transaction (holding the rule's row)
   * its alerts rows, last_eval_at/last_error and the touch of the changed groups. Never throws:
   * the outcome says how it went.
   */
  async evaluateRule(rule: RuleRow, now: Date): Promise<EvaluationOutcome> {
    return this.store(rule, await this.read(rule, now), now);
  }

  /** The rule's condition at `now`, or the error of its read (logged). */
  private async read(rule: RuleRow, now: Date): Promise<RuleRead> {
    const started = performance.now();
    try {
      return { result: await evaluateCondition(rule, this.source, now), error: null, ms: performance.now() - started };
    } catch (err) {
      const error = message(err);
      this.logger.warn({ rule_id: rule.id, org_id: rule.org_id, err: error }, 'alerts: rule query failed');
      return { result: null, error, ms: performance.now() - started };
    }
  }

  /** Writes one rule's evaluation in its own transaction (evaluateRule, and a batch's fallback). */
  private async store(rule: RuleRow, read: RuleRead, now: Date): Promise<EvaluationOutcome> {
    const started = performance.now();
    let outcome: EvaluationOutcome;
    try {
      const plan = await this.repo.inRuleTx(rule.org_id, rule.id, now, async (tx): Promise<RuleEvaluationPlan | null> => {
        if (!tx) return null;
        const p = planRuleEvaluation(rule, await tx.instances(), read.result, read.error, now);
        await tx.remove(p.removals);
        await tx.write(p.writes);
        await tx.finish(now, read.error);
        // In the rule's transaction: a failed touch rolls the state back, so the next evaluation
        // makes the same transition and touches again (after a commit, it would be lost for good).
        for (const g of p.groups) await this.policy.touch(g, now, tx.db);
        return p;
      });
      if (!plan) outcome = 'skipped';
      else {
        this.logTransitions(rule, plan);
        outcome = read.error === null ? 'ok' : 'error';
      }
    } catch (err) {
      this.logger.error({ err, rule_id: rule.id, org_id: rule.org_id }, 'alerts: evaluating a rule failed');
      outcome = 'failure';
    }
    this.count(outcome, read.ms + performance.now() - started);
    return outcome;
  }

  /** Writes a claimed batch in one transaction; on failure, rule by rule. Outcomes in no particular order. */
  private async storeBatch(rules: RuleRow[], reads: Map<string, RuleRead>, now: Date): Promise<EvaluationOutcome[]> {
    if (rules.length === 0) return [];
    const started = performance.now();
    let plans: Map<string, RuleEvaluationPlan>;
    try {
      plans = await this.repo.inRulesTx(rules, now, async (tx) => {
        const out = new Map<string, RuleEvaluationPlan>();
        const writes: AlertWrite[] = [];
        const removals: Pick<AlertRow, 'id' | 'org_id'>[] = [];
        const finishes: { orgId: string; ruleId: string; error: string | null }[] = [];
        const groups = new Map<string, GroupSettings>();
        for (const rule of rules) {
          if (!tx.locked.has(rule.id)) continue;
          const read = reads.get(rule.id)!;
          const p = planRuleEvaluation(rule, tx.instances.get(rule.id) ?? [], read.result, read.error, now);
          out.set(rule.id, p);
          writes.push(...p.writes);
          for (const id of p.removals) removals.push({ id, org_id: rule.org_id });
          finishes.push({ orgId: rule.org_id, ruleId: rule.id, error: read.error });
          for (const g of p.groups) groups.set(groupKeyOf(g.source, g.sourceId, g.groupLabels), g);
        }
        await tx.remove(removals);
        await tx.write(writes);
        await tx.finish(finishes);
        // In the batch's transaction, as in store(): state and wake-up commit together.
        for (const g of groups.values()) await this.policy.touch(g, now, tx.db);
        return out;
      });
    } catch (err) {
      this.logger.warn({ err, rules: rules.length }, 'alerts: writing a batch of evaluations failed; writing them rule by rule');
      const outcomes: EvaluationOutcome[] = [];
      await this.pool(rules, async (rule) => {
        outcomes.push(await this.store(rule, reads.get(rule.id)!, now));
      });
      return outcomes;
    }
    // The batch's write time shared out over its rules (the histogram is per rule).
    const share = (performance.now() - started) / rules.length;
    return rules.map((rule) => {
      const plan = plans.get(rule.id);
      const read = reads.get(rule.id)!;
      if (!plan) return 'skipped';
      this.logTransitions(rule, plan);
      const outcome: EvaluationOutcome = read.error === null ? 'ok' : 'error';
      this.count(outcome, read.ms + share);
      return outcome;
    });
  }

  private logTransitions(rule: RuleRow, plan: RuleEvaluationPlan): void {
    for (const t of plan.transitions) this.logger.info({ rule_id: rule.id, labels: t.labels, from: t.transition.from, to: t.transition.to, value: t.value }, 'alert state changed');
  }

  private count(outcome: EvaluationOutcome, ms: number): void {
    if (outcome === 'skipped') return;
    this.evaluations.inc({ outcome });
    this.seconds.observe(ms / 1000);
  }

  /** Starts the loop (the daemon's start hook when alerts.enabled). */
  start(): void {
    this.loop.start();
  }

  /** Stops the loop; resolves once a running tick has finished (it stops between batches). */
  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** Runs `work` over `items`, at most `concurrency` at once. */
  private async pool<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < items.length) await work(items[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(Math.max(1, this.opts.concurrency), items.length) }, worker));
  }
}
