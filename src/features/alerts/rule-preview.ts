import type { AlertQuerySource } from '../../core/alerting.js';
import { nextState, type StateRecord } from './alert-state.js';
import type { Preview } from './alert-rules-schemas.js';
import type { RulePreviewer } from './alert-rules-service.js';
import type { RuleRow } from './alert-types.js';
import { evaluateCondition, type ConditionResult } from './rule-condition.js';

/** Reads in flight at once: a preview of thousands of steps should not hold the pool, nor take a read per step in series. */
const READ_AHEAD = 8;

interface Instance {
  labels: Record<string, string>;
  record: StateRecord | null;
  /** When its current firing episode was last (simulated) notified. */
  notifiedAt: number | null;
}

/**
 * Preview: the stored rule evaluated at start, start + interval, … ≤ end against stored history
 * through the evaluator's own condition (rule-condition.ts evaluateCondition, which reads through
 * AlertQuerySource exactly as a live evaluation does) and state machine (alert-state.ts
 * nextState). Nothing is written or sent. An instance seen before that no longer answers is
 * observed as no_data, as the evaluator does.
 *
 * Notifications are counted per alert instance: its first firing, one more every repeat_interval
 * while it keeps firing (at the first evaluation past it), one resolved per firing episode.
 * group_wait, group_interval, grouping, silences, maintenance windows and acks are not simulated.
 */
export function rulePreviewer(source: AlertQuerySource): RulePreviewer {
  return {
    async preview(rule: RuleRow, startMs: number, endMs: number): Promise<Preview> {
      const times: number[] = [];
      for (let t = startMs; t <= endMs; t += rule.interval_ms) times.push(t);
      const timing = { forMs: rule.for_ms, keepFiringForMs: rule.keep_firing_for_ms };
      const instances = new Map<string, Instance>();
      const out: Preview = { evaluations: 0, transitions: [], fired: 0, resolved: 0, notifications: 0 };

      // Reads run READ_AHEAD steps ahead; the state machine consumes them strictly in time order.
      const pending: Promise<ConditionResult>[] = [];
      const read = (i: number) => evaluateCondition(rule, source, new Date(times[i]));
      for (let i = 0; i < Math.min(READ_AHEAD, times.length); i++) pending.push(read(i));
      // A read that fails after an earlier one already failed must not go unhandled.
      for (const p of pending) p.catch(() => {});
      for (let i = 0; i < times.length; i++) {
        const result = await pending[i];
        if (i + READ_AHEAD < times.length) {
          const p = read(i + READ_AHEAD);
          p.catch(() => {});
          pending.push(p);
        }
        const now = new Date(times[i]);
        out.evaluations++;
        const seen = new Set<string>();
        const step = (inst: Instance, obs: Parameters<typeof nextState>[1], value: number | null) => {
          const { record, transition } = nextState(inst.record, obs, value, timing, now);
          inst.record = record;
          if (!transition) {
            if (record.state === 'firing' && inst.notifiedAt !== null && times[i] - inst.notifiedAt >= rule.repeat_interval_ms) {
              out.notifications++;
              inst.notifiedAt = times[i];
            }
            return;
          }
          out.transitions.push({ at: now.toISOString(), state: record.state, labels: inst.labels, value: record.value });
          if (transition.to === 'firing') {
            out.fired++;
            out.notifications++;
            inst.notifiedAt = times[i];
          } else if (transition.from === 'firing' && transition.to === 'resolved') {
            out.resolved++;
            out.notifications++;
            inst.notifiedAt = null;
          }
        };
        for (const o of result.instances) {
          seen.add(o.fingerprint);
          let inst = instances.get(o.fingerprint);
          if (!inst) instances.set(o.fingerprint, (inst = { labels: o.labels, record: null, notifiedAt: null }));
          step(inst, o.observation, o.value);
        }
        for (const [fp, inst] of instances) if (!seen.has(fp)) step(inst, 'no_data', null);
      }
      return out;
    },
  };
}
