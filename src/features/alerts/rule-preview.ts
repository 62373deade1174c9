import type { AlertQuerySource } from '../../core/alerting.js';
import { isDomainError } from '../../core/errors.js';
import type { Preview } from './alert-rules-schemas.js';
import type { RulePreviewer } from './alert-rules-service.js';
import type { AlertRow, RuleRow } from './alert-types.js';
import { evaluateCondition, fingerprintOf, type ConditionResult } from './rule-condition.js';
import { RULE_RECORD_FINGERPRINT, planRuleEvaluation } from './rule-evaluation.js';

/** Transitions listed at most (the first ones); the counts cover all of them. Bounds the answer of a rule with many instances. */
export const MAX_PREVIEW_TRANSITIONS = 10_000;

/** Reads in flight at once: a preview of thousands of steps should neither hold the pool nor wait for each read in turn. */
const READ_AHEAD = 8;

type Read = { result: ConditionResult; error: null } | { result: null; error: string };

/**
 * Preview: the stored rule evaluated at start, start + interval, … ≤ end against stored history
 * through the evaluator's own pure parts: rule-condition.ts evaluateCondition (which reads through
 * AlertQuerySource exactly as a live evaluation does) and rule-evaluation.ts planRuleEvaluation
 * (the state machine per instance, vanished instances, the rule-level record), applied to alerts
 * rows kept in memory. Nothing is written or sent.
 *
 * Notifications are counted per alert instance: its first firing, one more every repeat_interval
 * while it keeps firing (at the first evaluation past it), one resolved per firing episode.
 * group_wait, group_interval, grouping, silences, maintenance windows and acks are not simulated.
 * A read refused by telemetry's limits (a DomainError) fails the preview with its answer; any
 * other failed read counts as the evaluator counts it (the rule in error, its alerts unchanged).
 */
export function rulePreviewer(source: AlertQuerySource): RulePreviewer {
  return {
    async preview(rule: RuleRow, startMs: number, endMs: number, signal?: AbortSignal): Promise<Preview> {
      const times: number[] = [];
      for (let t = startMs; t <= endMs; t += rule.interval_ms) times.push(t);
      const out: Preview = { evaluations: 0, transitions: [], fired: 0, resolved: 0, notifications: 0 };
      const rows = new Map<string, AlertRow>();
      /** Per instance fingerprint: when its current firing episode was last (simulated) notified. */
      const notifiedAt = new Map<string, number>();
      let nextId = 0;

      // A client gone away: no further reads are started (those in flight finish and are dropped).
      const read = (i: number): Promise<Read> =>
        (signal?.aborted ? Promise.reject(new Error('preview aborted: the client went away')) : evaluateCondition(rule, source, new Date(times[i]))).then(
          (result) => ({ result, error: null }),
          (err: unknown) => {
            if (isDomainError(err)) throw err;
            return { result: null, error: err instanceof Error ? err.message : String(err) };
          },
        );
      // Reads run READ_AHEAD steps ahead; the plans are applied strictly in time order.
      const reads: Promise<Read>[] = [];
      const queue = (i: number) => {
        const p = read(i);
        p.catch(() => {}); // awaited in order below; an early failure must not go unhandled meanwhile
        reads.push(p);
      };
      for (let i = 0; i < Math.min(READ_AHEAD, times.length); i++) queue(i);

      for (let i = 0; i < times.length; i++) {
        signal?.throwIfAborted();
        const { result, error } = await reads[i];
        if (i + READ_AHEAD < times.length) queue(i + READ_AHEAD);
        const now = new Date(times[i]);
        out.evaluations++;
        const plan = planRuleEvaluation(rule, [...rows.values()], result, error, now);
        const removed = new Set(plan.removals);
        for (const [fp, r] of rows) if (removed.has(r.id)) rows.delete(fp);
        for (const w of plan.writes) {
          const prev = rows.get(w.fingerprint);
          rows.set(w.fingerprint, { ...(prev ?? { created_at: now }), ...w, id: w.id ?? `preview-${nextId++}`, updated_at: now } as AlertRow);
        }
        const changed = new Set<string>();
        for (const t of plan.transitions) {
          const fp = fingerprintOf(t.labels);
          changed.add(fp);
          if (out.transitions.length < MAX_PREVIEW_TRANSITIONS) out.transitions.push({ at: now.toISOString(), state: t.transition.to, labels: t.labels, value: t.value });
          if (t.transition.to === 'firing') {
            out.fired++;
            out.notifications++;
            notifiedAt.set(fp, times[i]);
          } else if (t.transition.from === 'firing') {
            out.resolved++;
            out.notifications++;
            notifiedAt.delete(fp);
          }
        }
        for (const [fp, r] of rows) {
          if (fp === RULE_RECORD_FINGERPRINT || changed.has(fp) || r.state !== 'firing') continue;
          const last = notifiedAt.get(fp);
          if (last !== undefined && times[i] - last >= rule.repeat_interval_ms) {
            out.notifications++;
            notifiedAt.set(fp, times[i]);
          }
        }
      }
      return out;
    },
  };
}
