import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AlertQuerySource } from '../../core/alerting.js';
import type { Clock } from '../../core/clock.js';
import { SerialLoop } from '../../core/serial-loop.js';
import { ALERT_STATES, type NotificationPolicy, type RuleRow } from './alert-types.js';
import type { AlertsRepository } from './alerts-repository.js';
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

  /** Claims the rules due at `now`, evaluates them, flushes due notification groups. */
  async tick(now: Date = this.clock.now(), signal?: AbortSignal): Promise<TickResult> {
    const result: TickResult = { evaluated: 0, outcomes: { ok: 0, error: 0, failure: 0, skipped: 0 }, flushed: 0 };
    for (let batch = 0; batch < MAX_BATCHES_PER_TICK && !signal?.aborted; batch++) {
      const rules = await this.repo.claimDue(now, this.opts.batchSize);
      await this.pool(rules, async (rule) => {
        const outcome = await this.evaluateRule(rule, now);
        result.outcomes[outcome]++;
        result.evaluated++;
      });
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
   * its alerts rows and last_eval_at/last_error, then the changed groups to the policy. Never
   * throws: the outcome says how it went.
   */
  async evaluateRule(rule: RuleRow, now: Date): Promise<EvaluationOutcome> {
    const end = this.seconds.startTimer();
    let outcome: EvaluationOutcome;
    try {
      let result: ConditionResult | null = null;
      let error: string | null = null;
      try {
        result = await evaluateCondition(rule, this.source, now);
      } catch (err) {
        error = message(err);
        this.logger.warn({ rule_id: rule.id, org_id: rule.org_id, err: error }, 'alerts: rule query failed');
      }
      const plan = await this.repo.inRuleTx(rule.org_id, rule.id, now, async (tx): Promise<RuleEvaluationPlan | null> => {
        if (!tx) return null;
        const p = planRuleEvaluation(rule, await tx.instances(), result, error, now);
        await tx.remove(p.removals);
        await tx.write(p.writes);
        await tx.finish(now, error);
        // In the rule's transaction: a failed touch rolls the state back, so the next evaluation
        // makes the same transition and touches again (after a commit, it would be lost for good).
        for (const g of p.groups) await this.policy.touch(g, now, tx.db);
        return p;
      });
      if (!plan) outcome = 'skipped';
      else {
        for (const t of plan.transitions) this.logger.info({ rule_id: rule.id, labels: t.labels, from: t.transition.from, to: t.transition.to, value: t.value }, 'alert state changed');
        outcome = error === null ? 'ok' : 'error';
      }
    } catch (err) {
      this.logger.error({ err, rule_id: rule.id, org_id: rule.org_id }, 'alerts: evaluating a rule failed');
      outcome = 'failure';
    }
    end();
    if (outcome !== 'skipped') this.evaluations.inc({ outcome });
    return outcome;
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
