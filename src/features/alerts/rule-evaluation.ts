import { INITIAL_RECORD, nextState, type Observation, type Transition } from './alert-state.js';
import { renderAnnotations } from './alert-template.js';
import { groupKeyOf, type AlertRow, type GroupSettings, type RuleRow } from './alert-types.js';
import type { AlertWrite } from './alerts-repository.js';
import { alertLabels, groupLabelsOf, type ConditionResult } from './rule-condition.js';

/*
 * One evaluation of a rule as rows to write, pure: the rule, its stored alerts rows, what its
 * condition said (or the error of its read) → the rows to write and delete and the notification
 * groups whose alerts changed state.
 *
 * The rule-level record: an alerts row of the rule with fingerprint RULE_RECORD_FINGERPRINT
 * (labels: the rule's, alertname, severity) that exists only while the rule as a whole is in
 * `error` (its read failed: `error` holds the message, as the rule's last_error does) or in
 * `no_data` (a threshold or rate_of_change read answered no series at all). It is never
 * notified (the policy sends firing and resolved alerts only) and is deleted once the rule reads
 * data again. Its instances meanwhile keep their state: a failing read never resolves them.
 */

export const RULE_RECORD_FINGERPRINT = 'rule';

export interface RuleEvaluationPlan {
  writes: AlertWrite[];
  removals: string[];
  transitions: { labels: Record<string, string>; transition: Transition; value: number | null }[];
  /** The groups to touch (one entry per group key). */
  groups: GroupSettings[];
}

export function ruleGroupSettings(rule: RuleRow, groupLabels: Record<string, string>): GroupSettings {
  return {
    orgId: rule.org_id,
    source: 'rule',
    sourceId: rule.id,
    receiver: rule.name,
    channels: rule.channels,
    groupLabels,
    groupWaitMs: rule.group_wait_ms,
    groupIntervalMs: rule.group_interval_ms,
    repeatIntervalMs: rule.repeat_interval_ms,
  };
}

export function planRuleEvaluation(rule: RuleRow, existing: AlertRow[], result: ConditionResult | null, error: string | null, now: Date): RuleEvaluationPlan {
  const plan: RuleEvaluationPlan = { writes: [], removals: [], transitions: [], groups: [] };
  const ruleRecord = existing.find((r) => r.fingerprint === RULE_RECORD_FINGERPRINT);
  const rows = new Map(existing.filter((r) => r !== ruleRecord).map((r) => [r.fingerprint, r]));
  const base = { org_id: rule.org_id, source: 'rule' as const, source_id: rule.id, rule_id: rule.id, last_eval_at: now };

  const recordState = error !== null ? 'error' : result?.noData && (rule.kind === 'threshold' || rule.kind === 'rate_of_change') ? 'no_data' : null;
  if (recordState) {
    const labels = alertLabels(rule, {});
    plan.writes.push({
      ...base,
      ...INITIAL_RECORD,
      id: ruleRecord?.id,
      fingerprint: RULE_RECORD_FINGERPRINT,
      group_key: null,
      labels,
      annotations: {},
      error,
      state: recordState,
      active_at: ruleRecord?.state === recordState ? ruleRecord.active_at : now,
    });
  } else if (ruleRecord) plan.removals.push(ruleRecord.id);
  if (error !== null || !result) return plan;

  const timing = { forMs: rule.for_ms, keepFiringForMs: rule.keep_firing_for_ms };
  const groups = new Map<string, GroupSettings>();
  const step = (prev: AlertRow | undefined, labels: Record<string, string>, fingerprint: string, obs: Observation, value: number | null) => {
    const { record, transition } = nextState(prev ?? null, obs, value, timing, now);
    if (!transition && record.state === 'ok') {
      // Still ok: no row is needed (a vanished one goes).
      if (prev && obs === 'no_data') plan.removals.push(prev.id);
      return;
    }
    // Still resolved: nothing to record (it keeps the value it resolved with).
    if (!transition && record.state === 'resolved') return;
    const annotations = renderAnnotations(rule.annotations, record.value, labels);
    const gl = groupLabelsOf(rule.group_by, labels);
    const groupKey = groupKeyOf('rule', rule.id, gl);
    // `record` carries every column of the previous row (nextState spreads it): base's last_eval_at goes after it.
    plan.writes.push({ ...base, ...record, last_eval_at: now, id: prev?.id, fingerprint, group_key: groupKey, labels, annotations, error: null });
    if (transition) plan.transitions.push({ labels, transition, value: record.value });
    // A changed group_by moves the alert to another group: that group must exist and be due, or
    // the alert (firing, no transition) would never be repeated or resolved to anyone.
    if (transition || (prev && prev.group_key !== groupKey)) groups.set(groupKey, ruleGroupSettings(rule, gl));
  };
  for (const inst of result.instances) {
    step(rows.get(inst.fingerprint), inst.labels, inst.fingerprint, inst.observation, inst.value);
    rows.delete(inst.fingerprint);
  }
  // Instances that no longer answer: a firing one resolves (honouring keep_firing_for), others go.
  for (const prev of rows.values()) step(prev, prev.labels, prev.fingerprint, 'no_data', null);
  plan.groups = [...groups.values()];
  return plan;
}
