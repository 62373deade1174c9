import { Type, type Static } from '@sinclair/typebox';
import { PageQuerySchema } from '../../core/pagination.js';
import { MAX_ATTR_FILTERS, MAX_BY, MAX_MATCHERS } from './query-params.js';
import { AGGREGATIONS } from './query-repository.js';
import { INGEST_LIMITS } from './telemetry-limits.js';
import { LEVELS, SERIES_KINDS } from './telemetry-types.js';

/** Request (query string) and response schemas of the telemetry query API (DESIGN §6). */

// The list routes' page parameters (the http kit's PageQuerySchema is this one; features' schemas may not import http).
const { limit: Limit, cursor: Cursor } = PageQuerySchema.properties;
const TimeIn = (description: string) => Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: `${description} RFC 3339 or Unix epoch milliseconds.` }));
const Start = TimeIn('Start of the range (inclusive); default one hour before end.');
const End = TimeIn('End of the range (exclusive); default now.');
const TimeOut = Type.String({ format: 'date-time', description: 'RFC 3339, UTC.' });

// ---------------------------------------------------------------------------------------------
// GET /organizations/{org}/metrics

export const MetricNamesQuery = Type.Object(
  {
    limit: Limit,
    cursor: Cursor,
    prefix: Type.Optional(Type.String({ maxLength: INGEST_LIMITS.metricNameMax, description: 'Only names starting with this.' })),
  },
  { additionalProperties: false },
);

const KIND_TEXT =
  'gauge; counter (a monotonic sum); updowncounter (a non-monotonic sum); histogram or exponential_histogram (its _count, _sum and _bucket parts); summary (its _count, _sum and quantile parts); unknown: written before kinds were recorded.';
const Kind = (description: string) => Type.Unsafe<(typeof SERIES_KINDS)[number]>({ type: 'string', enum: [...SERIES_KINDS], description: `${description} ${KIND_TEXT}` });
const TemporalityOut = Type.Union([Type.Literal('cumulative'), Type.Literal('delta'), Type.Null()], {
  description: 'cumulative (each point is the total since the start) or delta (each point counts what happened since the previous one); null for gauges and series of kind unknown.',
});
const Unit = Type.String({ description: "UCUM unit as sent ('' when none)." });

export const MetricNameSchema = Type.Object({
  name: Type.String(),
  kind: Kind('The kind of the series of this name (a name has one kind; `unknown` only when all its series predate kinds).'),
  label_keys: Type.Array(Type.String(), { description: 'Every label key any series of this metric has, sorted.' }),
  series: Type.Integer({ minimum: 0, description: 'Number of series (streams) stored for this name.' }),
  types: Type.Array(
    Type.Object({
      kind: Kind('Kind.'),
      temporality: TemporalityOut,
      monotonic: Type.Boolean({ description: 'Counters and histogram/summary parts: true; gauges and up-down counters: false.' }),
      unit: Unit,
      description: Type.String({ description: 'As the writer described the metric.' }),
      series: Type.Integer({ minimum: 1, description: 'Series of the name with this descriptor.' }),
    }),
    { description: 'One entry per distinct descriptor among the series of this name (e.g. a cumulative and a delta stream), sorted by kind, temporality, monotonic, unit, description.' },
  ),
});

// ---------------------------------------------------------------------------------------------
// GET /organizations/{org}/metrics/query

export const MetricQueryQuery = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: INGEST_LIMITS.metricNameMax, description: 'Metric name.' }),
    start: Start,
    end: End,
    step: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 32,
        description: 'Bucket width: 30s, 5m, 1h or plain seconds (default 60s). Buckets start at `start`; (end - start) / step is bounded by query.max_buckets.',
      }),
    ),
    agg: Type.Optional(
      Type.Unsafe<(typeof AGGREGATIONS)[number]>({
        type: 'string',
        enum: [...AGGREGATIONS],
        description:
          'Aggregation over the raw points of each bucket (default avg); percentiles interpolate. increase: per series, how much a counter grew in the bucket ' +
          '(cumulative series and gauges: the differences between consecutive points, a drop counting as a reset to 0; the range\'s first point only sets the base; ' +
          'delta series: the sum of their values); rate: increase per second of step. With by, the sum of the group\'s per-series increases.',
      }),
    ),
    by: Type.Optional(
      Type.Array(Type.String({ maxLength: 1024 }), {
        maxItems: MAX_BY,
        description: 'Comma-separated label names: one answer series per distinct combination of their values, aggregating the raw points of all its series. Without it: one answer series per stored series.',
      }),
    ),
    filter: Type.Optional(
      Type.Array(Type.String({ maxLength: 4096 }), {
        maxItems: MAX_MATCHERS,
        description:
          'Label matchers, comma-separated and/or repeated, all of which must hold: label=value, label!=value, label=~regex, label!~regex. Regexes (PostgreSQL syntax) match the whole value; a missing label reads as "".',
      }),
    ),
  },
  { additionalProperties: false },
);

const PointValue = Type.Union([Type.Number(), Type.Null()], { description: 'null for NaN or an infinity (JSON has no such numbers).' });
// Not Type.Tuple: it emits draft-07's `items: [...]` + `additionalItems`, which OpenAPI 3.1 readers
// reject; 3.1 (JSON Schema 2020-12) says prefixItems, which the registry's ajv also understands.
const Point = Type.Unsafe<[Static<typeof TimeOut>, Static<typeof PointValue>]>({
  type: 'array',
  prefixItems: [TimeOut, PointValue],
  minItems: 2,
  maxItems: 2,
  description: '[bucket start, value]',
});

export const MetricQueryResultSchema = Type.Object({
  series: Type.Array(
    Type.Object({
      labels: Type.Record(Type.String(), Type.String(), { description: 'The series labels, or with `by` only those labels (a label the group lacks is left out).' }),
      kind: Type.Optional(Kind('The stored series\' kind (without `by` only).')),
      temporality: Type.Optional(TemporalityOut),
      unit: Type.Optional(Unit),
      points: Type.Array(Point, { description: 'Ascending; buckets without points are left out.' }),
    }),
    {
      description:
        'Sorted by labels. Without `by`, one per stored series with its kind, temporality and unit (streams of the same labels that differ in them are separate series); with `by`, groups, without them.',
    },
  ),
});

// ---------------------------------------------------------------------------------------------
// GET /organizations/{org}/logs

const LEVEL_NAMES = Object.keys(LEVELS) as (keyof typeof LEVELS)[];

/** `attr.<key>=<value>` parameters come in through patternProperties (the service checks the keys). */
export const ATTR_PREFIX = 'attr.';

export const LogsQuery = Type.Object(
  {
    start: Start,
    end: End,
    level: Type.Optional(Type.Unsafe<keyof typeof LEVELS>({ type: 'string', enum: LEVEL_NAMES, description: 'Least level: records at this level or above.' })),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Case-insensitive substring of the body (% and _ are literal).' })),
    limit: Limit,
    cursor: Cursor,
  },
  {
    additionalProperties: false,
    patternProperties: {
      '^attr\\.': Type.Array(Type.String({ maxLength: INGEST_LIMITS.attributeValueMax }), { maxItems: MAX_ATTR_FILTERS }),
    },
    description: `Also attr.<key>=<value> (up to ${MAX_ATTR_FILTERS}): the attribute must equal the value (repeated: any of the values).`,
  },
);

const Json = Type.Record(Type.String(), Type.Unknown());

export const LogRecordSchema = Type.Object({
  ts: TimeOut,
  level: Type.Unsafe<keyof typeof LEVELS>({ type: 'string', enum: LEVEL_NAMES, description: 'The level of severity_number; 0 (unspecified) reads as info, and the level filter treats it so.' }),
  severity_number: Type.Integer({ minimum: 0, maximum: 24, description: 'OpenTelemetry severity number; 0: unspecified (an OTLP record that set neither a number nor a level name).' }),
  severity_text: Type.String(),
  body: Type.String(),
  attributes: Json,
  resource: Json,
  trace_id: Type.Union([Type.String(), Type.Null()]),
  span_id: Type.Union([Type.String(), Type.Null()]),
  observed_ts: Type.Union([TimeOut, Type.Null()], { description: 'When the collecting side observed the record (OTLP observedTimeUnixNano); null when not sent.' }),
  event_name: Type.Union([Type.String(), Type.Null()], { description: 'OTLP LogRecord.eventName; null when not sent.' }),
});

// ---------------------------------------------------------------------------------------------
// GET /organizations/{org}/events

export const EventsQuery = Type.Object(
  {
    start: Start,
    end: End,
    type: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: INGEST_LIMITS.eventTypeMax }), { maxItems: 16, description: 'Event type (repeated: any of them).' })),
    tag: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: INGEST_LIMITS.tagMax }), { maxItems: 16, description: 'Tag the event must carry (repeated: all of them).' })),
    limit: Limit,
    cursor: Cursor,
  },
  { additionalProperties: false },
);

export const EventSchema = Type.Object({
  id: Type.String({ description: 'Event id (decimal digits).' }),
  ts: TimeOut,
  type: Type.String(),
  title: Type.String(),
  text: Type.Union([Type.String(), Type.Null()]),
  tags: Type.Array(Type.String()),
});

// ---------------------------------------------------------------------------------------------
// GET /organizations/{org}/usage

const Count = Type.Integer({ minimum: 0 });
const Counts = (description: string) => Type.Object({ metrics: Count, logs: Count, events: Count }, { description: `${description}: metrics counts points, logs log records, events events.` });

export const UsageSchema = Type.Object({
  today: Counts('Ingested during the current UTC day'),
  month: Counts('Ingested during the current UTC month so far'),
  active_series: Type.Integer({ minimum: 0, description: 'Series stored for the org (what the max_series limit counts).' }),
  limits: Type.Object(
    {
      ingest_points_per_second: Type.Integer(),
      max_series: Type.Integer(),
      retention_days: Type.Object({ metrics: Type.Integer(), logs: Type.Integer(), events: Type.Integer() }),
    },
    { description: "The org's effective limits (its overrides over the instance defaults)." },
  ),
});
