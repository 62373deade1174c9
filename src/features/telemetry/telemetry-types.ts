import type { Actor } from '../../core/actor.js';
import type { Signal } from '../../core/signals.js';

/**
 * The normalized telemetry that every ingest path (native JSON, OTLP JSON, OTLP protobuf)
 * produces and the writer stores. Timestamps are Unix epoch milliseconds (PostgreSQL keeps
 * microseconds; sub-millisecond OTLP precision is dropped).
 */
/**
 * What a series is, beside its name and labels (the OpenTelemetry metrics data model). Kind,
 * temporality and unit identify a stream: two streams differing in any of them are two series.
 * Kinds: `gauge`; `counter` (a monotonic sum); `updowncounter` (a non-monotonic sum); the parts
 * (`_count`, `_sum`, `_bucket`) of a `histogram` or an `exponential_histogram`; the parts
 * (`_count`, `_sum`, quantiles) of a `summary`. `unknown` marks series written before kinds were
 * recorded. Temporality: `cumulative` or `delta` for sums and histograms, null for gauges.
 */
export const SERIES_KINDS = ['gauge', 'counter', 'updowncounter', 'histogram', 'exponential_histogram', 'summary', 'unknown'] as const;
export type SeriesKind = (typeof SERIES_KINDS)[number];
export type Temporality = 'cumulative' | 'delta';

export interface SeriesMeta {
  kind: SeriesKind;
  temporality: Temporality | null;
  /** Sums: OTLP's isMonotonic; histogram and summary parts: true; gauges: false. Follows from kind, so not identifying of its own. */
  monotonic: boolean;
  /** UCUM unit as sent ('' when none). */
  unit: string;
  /** Not identifying: the first description a series was created with is kept. */
  description: string;
}

/** Native API points: plain gauges without unit. */
export const NATIVE_META: SeriesMeta = Object.freeze({ kind: 'gauge', temporality: null, monotonic: false, unit: '', description: '' });

export interface PointIn {
  name: string;
  labels: Record<string, string>;
  ts: number;
  value: number;
  /** The stream's descriptor; absent: NATIVE_META. */
  meta?: SeriesMeta;
  /**
   * The OTLP data point this row is part of (a histogram point becomes several rows): the rows
   * of one data point are stored together or not at all, and count as one in rejections.
   * Absent: the row is a data point of its own.
   */
  point?: number;
}

export interface LogIn {
  ts: number;
  /** OpenTelemetry severity number 1–24 (TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21). */
  severityNumber: number;
  severityText: string;
  body: string;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
  traceId: string | null;
  spanId: string | null;
  /** When the collecting side observed the record (OTLP observedTimeUnixNano), epoch ms; null when not sent. */
  observedTs: number | null;
  /** OTLP LogRecord.eventName; null when not sent. */
  eventName: string | null;
}

export interface EventIn {
  ts: number;
  type: string;
  title: string;
  text: string | null;
  tags: string[];
}

export interface TelemetryBatch {
  points: PointIn[];
  logs: LogIn[];
  events: EventIn[];
}

/** Native levels and the OpenTelemetry severity number each stands for (the lowest of its range). */
export const LEVELS = { trace: 1, debug: 5, info: 9, warn: 13, error: 17, fatal: 21 } as const;
export type Level = keyof typeof LEVELS;

/** The level name of an OpenTelemetry severity number (0, unspecified, reads as info). */
export function levelOf(severityNumber: number): Level {
  if (severityNumber >= 21) return 'fatal';
  if (severityNumber >= 17) return 'error';
  if (severityNumber >= 13) return 'warn';
  if (severityNumber >= 9 || severityNumber <= 0) return 'info';
  if (severityNumber >= 5) return 'debug';
  return 'trace';
}

export type Counts = Record<Signal, number>;

/**
 * What an ingest call did. `rejected` is only ever non-zero in partial mode (OTLP), where items
 * that cannot be stored (a new series over the org's series limit) are dropped and counted while
 * the rest is stored; `messages` says why, for OTLP's partialSuccess.errorMessage.
 */
export interface IngestResult {
  accepted: Counts;
  rejected: Counts;
  messages: string[];
}

export interface IngestOptions {
  /** OTLP: drop what cannot be stored and count it; native: reject the whole batch (400). */
  partial: boolean;
  /** Native only: a retried batch with the same key is stored once and answered the same. */
  idempotencyKey?: string;
  /**
   * OTLP: items the decoder already dropped (they are not in the batch): invalid ones, and those
   * past the per-request item limit. Counted with ingest's own refusals (each item once, under
   * `dropped_invalid_items` or `dropped_too_many_items`) once the organization is known; not part
   * of the result's `rejected`.
   */
  decoded?: { invalid: Partial<Counts>; tooMany: Partial<Counts> };
}

/** The ingest entry point the HTTP adapters (native and OTLP routes) call. */
export interface TelemetryIngest {
  /**
   * Stores `batch` for the org `orgSlug` names (user tokens: role ≥ editor) or, when null, the
   * org of the API key (scope `ingest`). Resolves only after the data is committed.
   */
  ingest(actor: Actor, orgSlug: string | null, batch: TelemetryBatch, opts: IngestOptions): Promise<IngestResult>;
}
