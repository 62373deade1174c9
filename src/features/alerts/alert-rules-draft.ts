import { parseDuration } from '../../core/duration.js';
import type { ErrorDetail } from '../../core/errors.js';
import type { RuleColumns } from './alert-rules-repository.js';
import { DURATION_BOUNDS, type CreateRuleInput, type DurationField } from './alert-rules-schemas.js';
import type { LogRuleQuery, MetricRuleQuery, RuleRow } from './alert-types.js';

/**
 * A rule as the API writes it, after the schema passed: a create body, or a stored rule with a
 * PATCH body laid over it. normalizeRule turns it into columns or lists what is wrong, with the
 * paths a client sent (`body/query/agg`, `body/recovery_threshold`).
 */
export type RuleDraft = CreateRuleInput;

/** Defaults (the plan): for 0, keep_firing_for 0, group_wait 30s, group_interval 5m, repeat_interval 4h. */
const DEFAULTS = { for: 0, keep_firing_for: 0, group_wait: 30, group_interval: 300, repeat_interval: 4 * 3600 } as const;

const METRIC_ONLY = ['name', 'filter', 'agg', 'by'] as const;
const LOG_ONLY = ['level', 'q', 'attributes'] as const;

/** A stored rule in the shape of a create body (durations in seconds), for PATCH to lay fields over. */
export function ruleToDraft(r: RuleRow): RuleDraft {
  const { window_ms, ...q } = r.query as (MetricRuleQuery | LogRuleQuery) & { window_ms: number };
  return {
    name: r.name,
    kind: r.kind,
    query: { ...q, window: window_ms / 1000 } as RuleDraft['query'],
    op: r.op,
    threshold: r.threshold,
    recovery_threshold: r.recovery_threshold,
    interval: r.interval_ms / 1000,
    for: r.for_ms / 1000,
    keep_firing_for: r.keep_firing_for_ms / 1000,
    severity: r.severity as RuleDraft['severity'],
    labels: r.labels,
    annotations: r.annotations,
    channels: r.channels,
    group_by: r.group_by,
    group_wait: r.group_wait_ms / 1000,
    group_interval: r.group_interval_ms / 1000,
    repeat_interval: r.repeat_interval_ms / 1000,
    enabled: r.enabled,
  };
}

function durationMs(field: DurationField, raw: string | number | undefined, path: string, errors: ErrorDetail[], fallbackSeconds = 0): number {
  const ms = parseDuration(raw ?? fallbackSeconds);
  const b = DURATION_BOUNDS[field];
  if (ms === null) {
    errors.push({ path, message: 'must be a duration: 30s, 5m, 1h, 7d, 250ms or plain seconds' });
    return 0;
  }
  const rounded = Math.round(ms);
  if (rounded < b.min || rounded > b.max) errors.push({ path, message: `must be from ${b.min / 1000} s to ${b.max / 1000} s` });
  return rounded;
}

export function normalizeRule(d: RuleDraft, errors: ErrorDetail[]): RuleColumns {
  const metric = d.kind !== 'log_count';
  const q = d.query as Record<string, unknown>;
  const notFor = (field: string, path: string) => errors.push({ path, message: `is not allowed for kind ${d.kind}` });
  for (const k of metric ? LOG_ONLY : METRIC_ONLY) if (q[k] !== undefined) notFor(k, `body/query/${k}`);
  const windowMs = durationMs('window', d.query.window, 'body/query/window', errors);

  let query: MetricRuleQuery | LogRuleQuery;
  if (metric) {
    if (d.query.name === undefined) errors.push({ path: 'body/query/name', message: 'is required' });
    if (d.query.agg === undefined && d.kind !== 'no_data') errors.push({ path: 'body/query/agg', message: `is required for kind ${d.kind}` });
    query = { name: d.query.name ?? '', filter: d.query.filter ?? {}, agg: d.query.agg ?? 'count', window_ms: windowMs, by: d.query.by ?? [] };
  } else {
    query = { ...(d.query.level ? { level: d.query.level } : {}), ...(d.query.q !== undefined ? { q: d.query.q } : {}), attributes: d.query.attributes ?? {}, window_ms: windowMs };
  }

  const op = d.op ?? null;
  const threshold = d.threshold ?? null;
  const recovery = d.recovery_threshold ?? null;
  if (d.kind === 'no_data') {
    if (op !== null) notFor('op', 'body/op');
    if (threshold !== null) notFor('threshold', 'body/threshold');
    if (recovery !== null) notFor('recovery_threshold', 'body/recovery_threshold');
  } else {
    if (op === null) errors.push({ path: 'body/op', message: `is required for kind ${d.kind}` });
    if (threshold === null) errors.push({ path: 'body/threshold', message: `is required for kind ${d.kind}` });
    if (recovery !== null && op !== null && threshold !== null) {
      if (op === '==' || op === '!=') errors.push({ path: 'body/recovery_threshold', message: `is not allowed with op ${op}` });
      else if ((op === '>' || op === '>=') && recovery > threshold) errors.push({ path: 'body/recovery_threshold', message: `must be at most threshold (${threshold}) with op ${op}` });
      else if ((op === '<' || op === '<=') && recovery < threshold) errors.push({ path: 'body/recovery_threshold', message: `must be at least threshold (${threshold}) with op ${op}` });
    }
  }

  return {
    name: d.name.trim(),
    kind: d.kind,
    query,
    op,
    threshold,
    recovery_threshold: recovery,
    interval_ms: durationMs('interval', d.interval, 'body/interval', errors),
    for_ms: durationMs('for', d.for, 'body/for', errors, DEFAULTS.for),
    keep_firing_for_ms: durationMs('keep_firing_for', d.keep_firing_for, 'body/keep_firing_for', errors, DEFAULTS.keep_firing_for),
    severity: d.severity,
    labels: d.labels ?? {},
    annotations: d.annotations ?? {},
    channels: (d.channels ?? []).map((c) => c.toLowerCase()),
    group_by: d.group_by ?? [],
    group_wait_ms: durationMs('group_wait', d.group_wait, 'body/group_wait', errors, DEFAULTS.group_wait),
    group_interval_ms: durationMs('group_interval', d.group_interval, 'body/group_interval', errors, DEFAULTS.group_interval),
    repeat_interval_ms: durationMs('repeat_interval', d.repeat_interval, 'body/repeat_interval', errors, DEFAULTS.repeat_interval),
    enabled: d.enabled ?? true,
  };
}
