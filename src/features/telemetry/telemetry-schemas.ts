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

const Count = Type.Integer({ minimum: 0 });
export const AcceptedSchema = Type.Object({
  accepted: Type.Object({ metrics: Count, logs: Count, events: Count }),
});
export type Accepted = Static<typeof AcceptedSchema>;
