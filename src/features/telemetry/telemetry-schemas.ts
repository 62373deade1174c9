import { Type, type Static } from '@sinclair/typebox';
import { INGEST_LIMITS as L } from './telemetry-limits.js';
import { LEVELS } from './telemetry-types.js';

const Timestamp = Type.Unsafe<string | number>({
  type: ['string', 'integer'],
  description: 'RFC 3339 time or Unix epoch milliseconds; the server time when left out.',
  example: '2026-11-28T12:00:00Z',
});

const Labels = Type.Unsafe<Record<string, string>>({
  type: 'object',
  maxProperties: L.maxLabels,
  propertyNames: { minLength: 1, maxLength: L.labelKeyMax, pattern: L.labelKeyPattern },
  additionalProperties: { type: 'string', maxLength: L.labelValueMax },
  description: `Up to ${L.maxLabels} labels; keys ${L.labelKeyPattern} up to ${L.labelKeyMax} characters, values up to ${L.labelValueMax}.`,
});

const Attributes = Type.Unsafe<Record<string, string | number | boolean | null>>({
  type: 'object',
  maxProperties: L.maxAttributes,
  propertyNames: { minLength: 1, maxLength: L.attributeKeyMax },
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'], maxLength: L.attributeValueMax },
  description: `Up to ${L.maxAttributes} attributes with scalar values (strings up to ${L.attributeValueMax} characters).`,
});

export const MetricItem = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: L.metricNameMax, pattern: L.metricNamePattern, example: 'http_requests_total' }),
    value: Type.Number(),
    ts: Type.Optional(Timestamp),
    labels: Type.Optional(Labels),
  },
  { additionalProperties: false },
);

export const LogItem = Type.Object(
  {
    ts: Type.Optional(Timestamp),
    level: Type.Unsafe<keyof typeof LEVELS>({ type: 'string', enum: Object.keys(LEVELS) }),
    message: Type.String({ maxLength: L.logBodyMax }),
    attributes: Type.Optional(Attributes),
  },
  { additionalProperties: false },
);

export const EventItem = Type.Object(
  {
    ts: Type.Optional(Timestamp),
    type: Type.String({ minLength: 1, maxLength: L.eventTypeMax }),
    title: Type.String({ minLength: 1, maxLength: L.eventTitleMax }),
    text: Type.Optional(Type.String({ maxLength: L.eventTextMax })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: L.tagMax }), { maxItems: L.maxTags })),
  },
  { additionalProperties: false },
);

/** Other top-level fields (an `org` a client adds, say) are ignored: the credential decides the org. */
export const TelemetryBody = Type.Object(
  {
    metrics: Type.Optional(Type.Array(MetricItem, { maxItems: L.maxItems })),
    logs: Type.Optional(Type.Array(LogItem, { maxItems: L.maxItems })),
    events: Type.Optional(Type.Array(EventItem, { maxItems: L.maxItems })),
  },
  { description: `Up to ${L.maxItems} items in all.` },
);
export type TelemetryBodyT = Static<typeof TelemetryBody>;

const METRIC_NAME = new RegExp(L.metricNamePattern);
const LABEL_KEY = new RegExp(L.labelKeyPattern);

/**
 * True only for a body TelemetryBody accepts: metrics alone (no `logs` or `events`), each item
 * checked as the schema does, but a name equal to the previous item's and a label key seen before
 * in the body are not checked again, and a string within its limit in UTF-16 units is within it
 * in characters too. False for everything else (the schema then decides and names the error),
 * including valid bodies this does not try to judge. test/unit/telemetry-body-check.test.ts holds
 * it to the compiled schema.
 */
export function isPlainMetricsBody(body: unknown): boolean {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return false;
  const b = body as { metrics?: unknown; logs?: unknown; events?: unknown };
  if (b.logs !== undefined || b.events !== undefined) return false;
  const metrics = b.metrics;
  if (!Array.isArray(metrics) || metrics.length > L.maxItems) return false;
  let checkedName: string | null = null;
  const labelKeys = new Set<string>();
  for (let i = 0; i < metrics.length; i++) {
    const m: unknown = metrics[i];
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return false;
    const item = m as { name?: unknown; value?: unknown; ts?: unknown; labels?: unknown };
    for (const k in item) if (k !== 'name' && k !== 'value' && k !== 'ts' && k !== 'labels') return false;
    const n = item.name;
    if (typeof n !== 'string') return false;
    if (n !== checkedName) {
      if (n.length < 1 || n.length > L.metricNameMax || !METRIC_NAME.test(n)) return false;
      checkedName = n;
    }
    if (typeof item.value !== 'number' || !Number.isFinite(item.value)) return false;
    const ts = item.ts;
    if (ts !== undefined && typeof ts !== 'string' && !Number.isInteger(ts)) return false;
    const labels = item.labels;
    if (labels !== undefined) {
      if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) return false;
      let count = 0;
      for (const k in labels) {
        if (++count > L.maxLabels) return false;
        if (!labelKeys.has(k)) {
          if (k.length < 1 || k.length > L.labelKeyMax || !LABEL_KEY.test(k)) return false;
          labelKeys.add(k);
        }
        const v: unknown = (labels as Record<string, unknown>)[k];
        if (typeof v !== 'string' || v.length > L.labelValueMax) return false;
      }
    }
  }
  return true;
}

const Count = Type.Integer({ minimum: 0 });
export const AcceptedSchema = Type.Object({
  accepted: Type.Object({ metrics: Count, logs: Count, events: Count }),
});
export type Accepted = Static<typeof AcceptedSchema>;
