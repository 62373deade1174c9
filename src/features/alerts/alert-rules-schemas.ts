import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { NOT_BLANK_PATTERN } from '../../core/validation.js';
import { ALERT_STATES, COMPARISONS, RULE_KINDS } from './alert-types.js';

/*
 * Alert rules as the API takes and answers them (DESIGN §6 alert rule). What one schema cannot say
 * (which query fields a kind needs, op/threshold per kind, the recovery side, duration bounds,
 * channels of the org) is checked by the service (alert-rules-service.ts), with the same paths.
 */

/** Closed set; the README lists it. Sent as the `severity` label of every alert of the rule. */
export const SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** As the metric query's `agg`; increase and rate read counters (per series, resets handled). */
export const AGGREGATIONS = ['avg', 'min', 'max', 'sum', 'count', 'p50', 'p90', 'p95', 'p99', 'increase', 'rate'] as const;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;

/** Rule labels and annotations: Prometheus label names (they become the alerts' labels in v4 payloads). */
export const LABEL_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
/** Metric label keys as telemetry stores them (its ingest limits: letters, digits, `_ . / -`). */
export const METRIC_LABEL_PATTERN = '^[A-Za-z_][A-Za-z0-9_./-]*$';
export const METRIC_NAME_PATTERN = '^[A-Za-z_:][A-Za-z0-9_:./-]*$';

export const RULE_LIMITS = {
  nameMax: 200,
  maxLabels: 32,
  labelValueMax: 1024,
  maxAnnotations: 32,
  annotationValueMax: 4096,
  maxChannels: 32,
  maxGroupBy: 16,
  maxFilters: 32,
  maxAttributes: 16,
  qMax: 1024,
} as const;

/** Every duration field's bounds, in ms (integer columns hold at most ~24.8 days). */
const S = 1000;
const DAY = 86_400_000;
export const DURATION_BOUNDS = {
  interval: { min: S, max: DAY },
  window: { min: S, max: 31 * DAY },
  for: { min: 0, max: 7 * DAY },
  keep_firing_for: { min: 0, max: 7 * DAY },
  group_wait: { min: 0, max: DAY },
  group_interval: { min: S, max: DAY },
  repeat_interval: { min: 60 * S, max: 7 * DAY },
} as const;
export type DurationField = keyof typeof DURATION_BOUNDS;

const DURATION_PATTERN = '^\\s*\\d{1,12}(?:\\.\\d{1,6})?(?:ms|s|m|h|d)?\\s*$';
const duration = (description: string) =>
  Type.Union([Type.String({ pattern: DURATION_PATTERN, maxLength: 32 }), Type.Number({ minimum: 0, maximum: 1e9 })], {
    description: `${description} \`30s\`, \`5m\`, \`1h\`, \`7d\`, \`250ms\`, or plain seconds.`,
  });
const bounds = (f: DurationField) => {
  const b = DURATION_BOUNDS[f];
  return `From ${b.min / 1000} s to ${b.max / 1000} s.`;
};

const labelMap = (keyPattern: string, maxProperties: number, valueMax: number, description: string) =>
  Type.Record(Type.String(), Type.String({ maxLength: valueMax }), {
    maxProperties,
    propertyNames: { minLength: 1, maxLength: 100, pattern: keyPattern },
    description,
  } as object);

/**
 * One object for both query shapes, so a mistake gets a path inside `query` rather than ajv's
 * "must match a schema in anyOf". Metric kinds (threshold, no_data, rate_of_change) take name,
 * filter, agg, window, by; log_count takes level, q, attributes, window.
 */
export const RuleQueryInput = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: METRIC_NAME_PATTERN, description: 'Metric name (metric kinds).' })),
    filter: Type.Optional(labelMap(METRIC_LABEL_PATTERN, RULE_LIMITS.maxFilters, RULE_LIMITS.labelValueMax, 'Exact label matches (metric kinds).')),
    agg: Type.Optional(Type.Union(AGGREGATIONS.map((a) => Type.Literal(a)), { description: 'Aggregation over the window (metric kinds; required for threshold and rate_of_change, default count for no_data).' })),
    window: duration(`The window evaluated at each interval. ${bounds('window')}`),
    by: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 100, pattern: METRIC_LABEL_PATTERN }), {
        maxItems: 16,
        uniqueItems: true,
        description: 'Group by these labels: one alert per group (metric kinds).',
      }),
    ),
    level: Type.Optional(Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { description: 'Least log level counted (log_count).' })),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: RULE_LIMITS.qMax, description: 'Substring of the message (log_count).' })),
    attributes: Type.Optional(labelMap(METRIC_LABEL_PATTERN, RULE_LIMITS.maxAttributes, RULE_LIMITS.labelValueMax, 'Exact attribute matches (log_count).')),
  },
  { additionalProperties: false },
);

const nullable = <T extends TSchema>(s: T, description: string) => Type.Union([s, Type.Null()], { description });
const OpSchema = Type.Union(COMPARISONS.map((c) => Type.Literal(c)));

const ruleFields = {
  name: Type.String({ minLength: 1, maxLength: RULE_LIMITS.nameMax, pattern: NOT_BLANK_PATTERN, description: 'Unique in the organization; stored without surrounding blanks.' }),
  kind: Type.Union(RULE_KINDS.map((k) => Type.Literal(k))),
  query: RuleQueryInput,
  op: nullable(OpSchema, 'Comparison of the value with threshold (threshold, log_count, rate_of_change; not no_data).'),
  threshold: nullable(Type.Number(), 'Required with op.'),
  recovery_threshold: nullable(Type.Number(), 'Hysteresis: a firing alert resolves only once the value is past it (for > and >=: at most threshold; for < and <=: at least threshold; not with == or !=). Default: threshold.'),
  interval: duration(`How often the rule is evaluated. ${bounds('interval')}`),
  for: duration(`How long the condition must hold before pending becomes firing. ${bounds('for')} Default 0.`),
  keep_firing_for: duration(`How long a firing alert keeps firing after the condition stops holding. ${bounds('keep_firing_for')} Default 0.`),
  severity: Type.Union(SEVERITIES.map((s) => Type.Literal(s)), { description: 'Sent as the alerts\' `severity` label.' }),
  labels: labelMap(LABEL_NAME_PATTERN, RULE_LIMITS.maxLabels, RULE_LIMITS.labelValueMax, 'Added to every alert of the rule, as given (not templated: labels identify an alert, so they must not change with its value).'),
  annotations: labelMap(LABEL_NAME_PATTERN, RULE_LIMITS.maxAnnotations, RULE_LIMITS.annotationValueMax, 'summary, description, runbook_url … (templated with {{ $value }} and {{ $labels.x }}).'),
  channels: Type.Array(Type.String({ format: 'uuid' }), { maxItems: RULE_LIMITS.maxChannels, uniqueItems: true, description: "Channel ids of the organization that receive the rule's notifications." }),
  group_by: Type.Array(Type.String({ minLength: 1, maxLength: 100, pattern: METRIC_LABEL_PATTERN }), {
    maxItems: RULE_LIMITS.maxGroupBy,
    uniqueItems: true,
    description: 'Alert labels that split notifications into groups (default []: one group per rule).',
  }),
  group_wait: duration(`Wait before the first notification of a new group. ${bounds('group_wait')} Default 30s.`),
  group_interval: duration(`Least time between notifications of a group when its alerts change. ${bounds('group_interval')} Default 5m.`),
  repeat_interval: duration(`Re-notify a still-firing group this often. ${bounds('repeat_interval')} Default 4h.`),
  enabled: Type.Boolean({ description: 'false: not evaluated; its firing alerts resolve (a resolved notification goes out once), pending ones return to ok. Default true.' }),
};

const { name, kind, query, interval, severity, ...optional } = ruleFields;
export const CreateRuleBody = Type.Object({ name, kind, query, interval, severity, ...Type.Partial(Type.Object(optional)).properties }, { additionalProperties: false });
export type CreateRuleInput = Static<typeof CreateRuleBody>;

/** Fields given replace the stored ones (query as a whole); null removes op, threshold, recovery_threshold. */
export const UpdateRuleBody = Type.Object(Type.Partial(Type.Object(ruleFields)).properties, { additionalProperties: false, minProperties: 1 });
export type UpdateRuleInput = Static<typeof UpdateRuleBody>;

const Timestamp = (description: string) => Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description });
const Seconds = (description: string) => Type.Number({ minimum: 0, description: `${description} In seconds.` });
const StringMap = Type.Record(Type.String(), Type.String());

export const RULE_STATES = ['firing', 'pending', 'error', 'no_data', 'ok'] as const;

export const RuleSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  kind: Type.Union(RULE_KINDS.map((k) => Type.Literal(k))),
  query: Type.Object(
    {
      name: Type.Optional(Type.String()),
      filter: Type.Optional(StringMap),
      agg: Type.Optional(Type.String()),
      window: Seconds('The window.'),
      by: Type.Optional(Type.Array(Type.String())),
      level: Type.Optional(Type.String()),
      q: Type.Optional(Type.String()),
      attributes: Type.Optional(StringMap),
    },
    { description: 'As sent, with defaults filled in and the window in seconds.' },
  ),
  op: Type.Union([OpSchema, Type.Null()]),
  threshold: Type.Union([Type.Number(), Type.Null()]),
  recovery_threshold: Type.Union([Type.Number(), Type.Null()]),
  interval: Seconds('Evaluation interval.'),
  for: Seconds('Pending duration.'),
  keep_firing_for: Seconds('Keep firing for.'),
  severity: Type.Union(SEVERITIES.map((s) => Type.Literal(s))),
  labels: StringMap,
  annotations: StringMap,
  channels: Type.Array(Type.String({ format: 'uuid' })),
  group_by: Type.Array(Type.String()),
  group_wait: Seconds('Group wait.'),
  group_interval: Seconds('Group interval.'),
  repeat_interval: Seconds('Repeat interval.'),
  enabled: Type.Boolean(),
  state: Type.Union(RULE_STATES.map((s) => Type.Literal(s)), { description: 'The worst state of its alerts: firing > pending > error > no_data > ok (ok also without alerts, and for resolved ones).' }),
  last_eval_at: Timestamp('Last evaluation; null: not yet.'),
  next_eval_at: Timestamp('Next evaluation; null while disabled.'),
  last_error: Type.Union([Type.String(), Type.Null()], { description: 'Why the last evaluation failed (the query); null when it succeeded.' }),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});
export type Rule = Static<typeof RuleSchema>;

export const PreviewQuery = Type.Object(
  {
    start: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'RFC 3339 or Unix epoch milliseconds: the first evaluation. Default: an hour before end.' })),
    end: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'RFC 3339 or Unix epoch milliseconds: no evaluation after it. Default: now.' })),
  },
  { additionalProperties: false },
);
export type PreviewInput = Static<typeof PreviewQuery>;

export const PreviewSchema = Type.Object({
  evaluations: Type.Integer({ minimum: 0, description: 'Evaluations run: one per interval from start to end.' }),
  transitions: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time' }),
      state: Type.Union(ALERT_STATES.map((s) => Type.Literal(s))),
      labels: StringMap,
      value: Type.Union([Type.Number(), Type.Null()]),
    }),
    { description: 'Every change of state of every alert instance, in time order (the first 10,000; the counts cover all).' },
  ),
  fired: Type.Integer({ minimum: 0, description: 'Times an alert started firing.' }),
  resolved: Type.Integer({ minimum: 0, description: 'Times a firing alert resolved.' }),
  notifications: Type.Integer({
    minimum: 0,
    description: 'Notifications it would have sent: one per firing episode, one more every repeat_interval while it fires, and one resolved per episode. Per alert: group_wait, group_interval, grouping, silences, maintenance windows and acks are not simulated.',
  }),
});
export type Preview = Static<typeof PreviewSchema>;
