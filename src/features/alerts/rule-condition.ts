import { createHash } from 'node:crypto';
import type { AlertQuerySource, AlertSeries } from '../../core/alerting.js';
import type { Observation } from './alert-state.js';
import type { Comparison, LogRuleQuery, MetricRuleQuery, RuleRow } from './alert-types.js';

/*
 * What a rule's condition says at one instant: one observation per alert instance (its labels,
 * value and breach/recovered/between). Reads go through AlertQuerySource only (the telemetry
 * feature's limits and timeout apply; the rule's own org id is the only one it can name).
 *
 * The window is (now - window, now]: the query API's ranges are [start, end), so a read runs
 * over [now - window + 1 ms, now + 1 ms).
 */

/** One alert instance as the condition sees it. */
export interface InstanceObservation {
  /** The alert's labels: series/group labels, then the rule's labels, alertname and severity. */
  labels: Record<string, string>;
  fingerprint: string;
  observation: Observation;
  value: number | null;
}

export interface ConditionResult {
  instances: InstanceObservation[];
  /** The query answered nothing at all (a threshold/rate rule shows it as its rule-level no_data record). */
  noData: boolean;
}

export function compare(op: Comparison, value: number, threshold: number): boolean {
  switch (op) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
  }
}

/**
 * Breach past the threshold; recovered past the recovery threshold, i.e. once the value no
 * longer satisfies `op` against it (`> 80` recovering at 70: recovered at ≤ 70, between in
 * (70, 80]); without a recovery threshold (or with == / !=), recovered as soon as not breaching.
 */
export function classify(rule: Pick<RuleRow, 'op' | 'threshold' | 'recovery_threshold'>, value: number): Observation {
  const op = rule.op ?? '>';
  const threshold = rule.threshold ?? 0;
  if (compare(op, value, threshold)) return 'breach';
  if (rule.recovery_threshold === null || op === '==' || op === '!=') return 'recovered';
  return compare(op, value, rule.recovery_threshold) ? 'between' : 'recovered';
}

/** sha256 of the sorted label set, 16 hex characters (as Alertmanager's fingerprints are long). */
export function fingerprintOf(labels: Record<string, string>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16);
}

/** Series labels, then the rule's labels (which win, as in Prometheus), alertname and severity. */
export function alertLabels(rule: Pick<RuleRow, 'name' | 'severity' | 'labels'>, seriesLabels: Record<string, string>): Record<string, string> {
  return { ...seriesLabels, ...rule.labels, alertname: rule.name, severity: rule.severity };
}

/** The values of the rule's group_by labels (the notification group). */
export function groupLabelsOf(groupBy: string[], labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of groupBy) if (Object.hasOwn(labels, k)) out[k] = labels[k];
  return out;
}

/** The read range of a window ending at `now`: (now - window, now] as [start, end). */
export function windowRange(nowMs: number, windowMs: number): { startMs: number; endMs: number } {
  return { startMs: nowMs - windowMs + 1, endMs: nowMs + 1 };
}

/** Buckets a rate_of_change rule reads its window in: about 20, at least 1 s each. */
export function rateStepMs(windowMs: number): number {
  return Math.max(1000, Math.ceil(windowMs / 20));
}

/** (last non-null value − first non-null value) per minute between their buckets; null with fewer than two. */
export function ratePerMinute(points: [number, number | null][]): number | null {
  const present = points.filter((p): p is [number, number] => p[1] !== null);
  if (present.length < 2) return null;
  const [t0, v0] = present[0];
  const [t1, v1] = present[present.length - 1];
  if (t1 === t0) return null;
  return (v1 - v0) / ((t1 - t0) / 60_000);
}

function instance(rule: RuleRow, seriesLabels: Record<string, string>, observation: Observation, value: number | null): InstanceObservation {
  const labels = alertLabels(rule, seriesLabels);
  return { labels, fingerprint: fingerprintOf(labels), observation, value };
}

/** Observations from answer series already read (the pure part: the preview feeds it stored history). */
export function observeSeries(rule: RuleRow, series: AlertSeries[]): ConditionResult {
  const instances: InstanceObservation[] = [];
  for (const s of series) {
    const value = rule.kind === 'rate_of_change' ? ratePerMinute(s.points) : lastValue(s.points);
    if (value === null) continue;
    instances.push(instance(rule, s.labels, classify(rule, value), value));
  }
  return { instances, noData: instances.length === 0 };
}

function lastValue(points: [number, number | null][]): number | null {
  for (let i = points.length - 1; i >= 0; i--) if (points[i][1] !== null) return points[i][1];
  return null;
}

/** Reads the rule's query at `now` and observes it. Throws when the read fails. */
export async function evaluateCondition(rule: RuleRow, source: AlertQuerySource, now: Date): Promise<ConditionResult> {
  const nowMs = now.getTime();
  if (rule.kind === 'log_count') {
    const q = rule.query as LogRuleQuery;
    const count = await source.countLogs(rule.org_id, { level: q.level, q: q.q, attributes: q.attributes ?? {}, ...windowRange(nowMs, q.window_ms) });
    return { instances: [instance(rule, {}, classify(rule, count), count)], noData: false };
  }
  const q = rule.query as MetricRuleQuery;
  const range = windowRange(nowMs, q.window_ms);
  const stepMs = rule.kind === 'rate_of_change' ? rateStepMs(q.window_ms) : q.window_ms;
  const series = await source.metric(rule.org_id, { name: q.name, filter: q.filter ?? {}, agg: q.agg, by: q.by ?? [], stepMs, ...range });
  if (rule.kind === 'no_data') {
    const empty = !series.some((s) => s.points.some((p) => p[1] !== null));
    return { instances: [instance(rule, {}, empty ? 'breach' : 'recovered', null)], noData: false };
  }
  return observeSeries(rule, series);
}
