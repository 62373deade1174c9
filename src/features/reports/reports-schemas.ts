import { Type, type Static } from '@sinclair/typebox';

export const REPORT_KINDS = ['daily'] as const;
export const REPORT_FORMATS = ['json', 'csv', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

const count = (description?: string) => Type.Integer({ minimum: 0, ...(description ? { description } : {}) });
const seconds = (description: string) => Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { description });
const DateSchema = Type.String({ format: 'date', description: 'A UTC day, YYYY-MM-DD.' });

/**
 * The alerting sections. Alerting does not exist yet: today `configured` is false and every figure
 * zero; the alerting feature will provide a source that fills the same shape.
 */
export const AlertingSectionSchema = Type.Object({
  configured: Type.Boolean(),
  note: Type.Union([Type.String(), Type.Null()], { description: 'Why a section is empty, e.g. "alerting not configured".' }),
  alerts: Type.Object({
    fired: count('Alerts that started firing that day.'),
    resolved: count('Alerts resolved that day.'),
    items: Type.Array(
      Type.Object({
        rule: Type.String(),
        severity: Type.String(),
        fired_at: Type.String({ format: 'date-time' }),
        resolved_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
        duration_seconds: seconds('Firing time until resolved, or until the end of the day when still firing.'),
      }),
    ),
  }),
  response: Type.Object({
    acknowledged: count(),
    mean_time_to_acknowledge_seconds: seconds('Mean time from firing to acknowledgement; null without acknowledgements.'),
    mean_time_to_resolve_seconds: seconds('Mean time from firing to resolve; null without resolved alerts.'),
  }),
  notifications: Type.Object({
    deliveries: count('Delivery attempts that succeeded.'),
    failures: count('Delivery attempts that failed.'),
    by_channel: Type.Array(Type.Object({ channel: Type.String(), type: Type.String(), deliveries: count(), failures: count() })),
  }),
});
export type AlertingSection = Static<typeof AlertingSectionSchema>;

/** A report's figures: stored as they are, every format is rendered from them. */
export const ReportDataSchema = Type.Object({
  org: Type.Object({ id: Type.String({ format: 'uuid' }), slug: Type.String() }),
  kind: Type.Union(REPORT_KINDS.map((k) => Type.Literal(k))),
  date: DateSchema,
  period: Type.Object({ start: Type.String({ format: 'date-time' }), end: Type.String({ format: 'date-time' }) }, { description: 'The UTC day covered: [start, end).' }),
  generated_at: Type.String({ format: 'date-time' }),
  ingested: Type.Object({ points: count('Metric points stored.'), logs: count(), events: count() }, { description: 'Stored with a timestamp in that day.' }),
  top_series: Type.Array(Type.Object({ name: Type.String(), labels: Type.Record(Type.String(), Type.String()), points: count() }), {
    description: 'The 10 series with the most points that day, most first.',
  }),
  rejections: Type.Array(
    Type.Object({
      reason: Type.String({ description: 'rate_limited, too_many_items, invalid_items, outside_time_window, series_limit, kind_conflict; OTLP partial answers: dropped_outside_time_window, dropped_series_limit, dropped_kind_conflict, dropped_invalid_items (data points or log records the decoder refused), dropped_too_many_items (past the per-request limit).' }),
      status: Type.Integer({ description: 'The HTTP status the client got (200 for what an OTLP partial answer dropped).' }),
      requests: count('Requests refused (or partly refused) for this reason.'),
      items: count('Metrics, logs and events they carried.'),
    }),
    { description: 'Refused ingest by reason.' },
  ),
  alerting: AlertingSectionSchema,
});
export type ReportData = Static<typeof ReportDataSchema>;

export const ReportSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  kind: Type.Union(REPORT_KINDS.map((k) => Type.Literal(k))),
  date: DateSchema,
  created_at: Type.String({ format: 'date-time' }),
  formats: Type.Array(Type.Union(REPORT_FORMATS.map((f) => Type.Literal(f))), { description: 'What GET …/reports/{id}?format= serves.' }),
  ingested: Type.Object({ points: count(), logs: count(), events: count() }),
});
export type Report = Static<typeof ReportSchema>;

export const GenerateReportBody = Type.Object(
  {
    kind: Type.Optional(Type.Union(REPORT_KINDS.map((k) => Type.Literal(k)), { description: 'Default daily.' })),
    date: Type.Optional(Type.String({ format: 'date', description: 'The UTC day (YYYY-MM-DD, a day that has ended); default yesterday.' })),
  },
  { additionalProperties: false },
);
export type GenerateReportInput = Static<typeof GenerateReportBody>;

export const DownloadQuery = Type.Object(
  { format: Type.Optional(Type.Union(REPORT_FORMATS.map((f) => Type.Literal(f)), { description: 'Default json.' })) },
  { additionalProperties: false },
);
