/**
 * OTLP/HTTP request bodies (protobuf or the OTLP JSON mapping) → TelemetryBatch.
 *
 * Metric mapping (OTLP → Sentinel series). Every stored row is a point of a series; a series is
 * one stream of the OpenTelemetry data model: its name, labels, kind, temporality and unit
 * identify it (monotonicity follows from the kind; the description is kept, not identifying).
 * - Gauge: one point per data point, value asDouble or asInt; kind `gauge`, no temporality.
 * - Sum: one point per data point, stored as sent (cumulative totals stay totals, delta sums stay
 *   per-interval increments); kind `counter` when isMonotonic, else `updowncounter`; temporality
 *   `delta` (1) or `cumulative` (2) from aggregationTemporality.
 * - Histogram: `<name>_count`, `<name>_sum` (when the point has a sum) and `<name>_bucket` with a
 *   label `le` per explicit bound plus `le="+Inf"`, valued with cumulative counts (Prometheus
 *   style); every part is kind `histogram`, monotonic, with the metric's temporality.
 * - ExponentialHistogram: `<name>_count` and `<name>_sum` only, kind `exponential_histogram`,
 *   monotonic, with the metric's temporality.
 * - Summary: `<name>_count`, `<name>_sum`, and `<name>` with a label `quantile` per quantile; kind
 *   `summary`, temporality `cumulative`, monotonic.
 * - unit = the metric's unit ('' when none; part of the identity), description = the metric's
 *   description (truncated to 1024 characters). NUL in either is replaced by U+FFFD.
 * - One kind per name: a data point whose series would have another kind than the series the
 *   name already has (a counter `x_count` beside a histogram `x`) is refused (ingest does that).
 * - Labels: the data point's attributes, the scope's attributes, `otel_scope_name` (the scope name,
 *   when non-empty) and these resource attributes only: service.name, service.namespace,
 *   service.instance.id, service.version, host.name, deployment.environment,
 *   deployment.environment.name, k8s.namespace.name, k8s.pod.name, k8s.container.name,
 *   cloud.region. On a key clash the data point attribute wins over the scope's, which win over
 *   the resource's. Attribute values become text: strings as they are, ints, doubles and booleans
 *   as printed (`42`, `0.5`, `true`), arrays and key-value lists as compact JSON.
 * - Per-process identity: when the resource has no (or an empty) service.instance.id and has
 *   attributes outside that list (process.pid, telemetry.sdk.*, …), every series of the resource
 *   gets `otel_resource_id` = the first 16 hex digits of the SHA-256 of those attributes'
 *   canonical JSON (keys sorted, values as text), so two processes never share a series. It is set
 *   after every attribute: an attribute of that name is replaced (with a warning).
 * - Names: characters a label key or metric name may not contain become `_`, and a leading `_`
 *   is added when the first character may not start one (`http.status code` → `http.status_code`,
 *   `1xx` → `_1xx`). Keys of one attribute list that end up equal are all kept: the key that was
 *   valid as sent keeps the name (else the first in code-unit order), the others, in code-unit
 *   order, get `__2`, `__3` … (with a warning naming them).
 * - Timestamp: timeUnixNano, else the time of arrival (never startTimeUnixNano, also for
 *   cumulative points); millisecond precision; any non-zero value is a real time (500 ns is the
 *   epoch, which the ingest time window then refuses).
 * - Every row carries its descriptor and the number of its data point: the rows of one data point
 *   (a histogram's parts) are stored together or not at all, and count as one rejection.
 * - Dropped and counted in partialSuccess.rejectedDataPoints (the rest of the request is stored): a
 *   data point of a sum, histogram or exponential histogram without aggregationTemporality, with a
 *   NaN/Infinity value, an integer (asInt, count, bucket count) beyond ±(2^53−1) (a double would
 *   round it), more than 32 labels (after the rules above), a label key over 100 or value over 1024
 *   characters, a name (with suffix) over 200 characters, a unit over 100 characters, an empty
 *   metric name or attribute key, a name, unit or description that is not a string, a histogram
 *   whose bucketCounts do not match explicitBounds or do not sum to its count, bounds not
 *   increasing, unreadable numbers, and data points past the 10,000th of a request. A data point
 *   flagged "no recorded value" (a staleness marker) is skipped without being counted.
 * - Warnings (partialSuccess.errorMessage, also when nothing is rejected): attribute keys kept
 *   apart under suffixed names, a truncated description, an attribute replaced (`otel_resource_id`
 *   by the resource's identity, `le` or `quantile` by a part's own label), and what is not
 *   stored: exponential histograms' buckets, zeroCount, min and max, and explicit histograms'
 *   min and max.
 *
 * Log mapping (one log row per LogRecord):
 * - ts = timeUnixNano, else observedTimeUnixNano, else the time of arrival; any non-zero value is
 *   a real time (500 ns is the epoch, which the time window then refuses). observed_ts =
 *   observedTimeUnixNano, null when unset (absent or 0).
 * - severity_number as sent; when unset, derived from severityText if that names a level
 *   (TRACE, DEBUG, INFO, WARN/WARNING, ERROR/ERR, FATAL/CRITICAL, also INFO2 …), else 0
 *   (unspecified; the query API's `level` reads it as info). severity_text as sent, else the level
 *   name of the number (trace … fatal), '' for 0.
 * - event_name: eventName as sent; null when absent or empty.
 * - body: a string body as is; other kinds as printed (numbers, booleans) or compact JSON.
 * - attributes: the record's attributes as a JSON object (ints beyond 2^53 as decimal strings,
 *   NaN/Infinity as strings, bytes as base64); resource: all resource attributes, plus
 *   `otel.scope.name` when the scope has a name; trace_id/span_id as lowercase hex (null when
 *   absent or invalid). NUL and unpaired surrogates are stored as U+FFFD (TelemetryService).
 * - A resource attribute value (or the scope name) over 4,096 characters is cut to 4,096 (a
 *   structured value: its compact JSON, cut, as a string); the resource then lists the cut keys in
 *   `sentinel.truncated_attributes` (not counted in the 64) and partialSuccess.errorMessage warns,
 *   with nothing rejected.
 * - Dropped and counted in partialSuccess.rejectedLogRecords: a body over 65,536 characters, more
 *   than 64 attributes (record or resource), an attribute key over 100 characters (record or
 *   resource) or a record attribute value (JSON) over 4,096, a severityText or eventName over
 *   4,096 characters, an eventName that is not a string, an unreadable timestamp (JSON: not an
 *   unsigned integer, or beyond 2^64−1), and records past the 10,000th of a request.
 *
 * What the decoder drops is counted by ingest too (the refusal metric, the admin status, the
 * ingest_rejections table): as `dropped_too_many_items` past the 10,000th item of a request, else
 * as `dropped_invalid_items`; each item once.
 *
 * Malformed input (protobuf that does not decode, JSON that does not parse, a structure of the
 * wrong type) fails the whole request with bad_request. An empty body (zero bytes, or for JSON
 * only whitespace) is an empty request.
 */
import { DomainError } from '../../core/errors.js';
import { INGEST_LIMITS } from './telemetry-limits.js';
import type { TelemetryBatch } from './telemetry-types.js';
import { collectLogs, type LogsDecodeState } from './otlp-logs.js';
import { collectMetrics, type MetricsDecodeState } from './otlp-metrics.js';
import { OTLP_MESSAGES, type OtlpFormat, type ProtoMessageType } from './otlp-proto.js';
import { Rejections, Warnings, type Obj } from './otlp-values.js';

export type { OtlpFormat } from './otlp-proto.js';

export interface OtlpDecoded {
  batch: TelemetryBatch;
  /** Data points (metrics) or log records (logs) dropped, in OTLP's own units. */
  rejected: number;
  /** Of `rejected`, those past the per-request limit (INGEST_LIMITS.maxItems); the others were invalid. */
  tooMany: number;
  /** Why, one line per reason, for partialSuccess.errorMessage. */
  messages: string[];
  /** What was stored otherwise than sent (partialSuccess.errorMessage also when nothing was rejected). */
  warnings: string[];
}

// Only what JSON itself calls whitespace.
const JSON_WHITESPACE = /^[ \t\r\n]*$/;

// Every item past the limit is rejected for that alone (collectMetrics, collectLogs).
const pastLimit = (seen: number): number => Math.max(0, seen - INGEST_LIMITS.maxItems);

const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The request as an object tree, the same shape for both encodings. `asMessage` (metrics): a
 * protobuf body stays the decoded protobufjs message, read as it is (see otlp-values: 64-bit fields
 * as Long objects, fields not sent as its prototype's defaults); otherwise protobufjs toObject
 * makes it a plain tree, longs as decimal strings as in JSON, bytes as Buffers (ids become hex later).
 */
export function parseOtlpRequest(body: Uint8Array, format: OtlpFormat, type: ProtoMessageType, asMessage = false): Obj {
  if (format === 'protobuf') {
    try {
      const message = type.decode(body);
      return asMessage ? (message as Obj) : type.toObject(message, { longs: String });
    } catch (err) {
      // Truncated or corrupt input, or nesting deep enough to exhaust the stack.
      throw new DomainError('bad_request', `invalid OTLP protobuf: ${reason(err)}`);
    }
  }
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8').replace(/^\uFEFF/, '');
  // No body, as for protobuf's zero bytes: an empty request (the OTLP spec suggests accepting it).
  if (JSON_WHITESPACE.test(text)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new DomainError('bad_request', `invalid OTLP JSON: ${reason(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DomainError('bad_request', 'invalid OTLP JSON: the body must be an object');
  return parsed as Obj;
}

/** POST /v1/metrics: ExportMetricsServiceRequest → points. `now` (epoch ms) stands in for missing timestamps. */
export function decodeOtlpMetrics(body: Uint8Array, format: OtlpFormat, now: number): OtlpDecoded {
  const request = parseOtlpRequest(body, format, OTLP_MESSAGES.metricsRequest, true);
  const state: MetricsDecodeState = { points: [], rejections: new Rejections('data point(s)'), warnings: new Warnings(), seen: 0 };
  collectMetrics(request, now, state);
  return { batch: { points: state.points, logs: [], events: [] }, rejected: state.rejections.count, tooMany: pastLimit(state.seen), messages: state.rejections.messages(), warnings: state.warnings.messages() };
}

/** POST /v1/logs: ExportLogsServiceRequest → log rows. `now` (epoch ms) stands in for missing timestamps. */
export function decodeOtlpLogs(body: Uint8Array, format: OtlpFormat, now: number): OtlpDecoded {
  const request = parseOtlpRequest(body, format, OTLP_MESSAGES.logsRequest);
  const state: LogsDecodeState = { logs: [], rejections: new Rejections('log record(s)'), warnings: new Warnings(), seen: 0 };
  collectLogs(request, now, state);
  return { batch: { points: [], logs: state.logs, events: [] }, rejected: state.rejections.count, tooMany: pastLimit(state.seen), messages: state.rejections.messages(), warnings: state.warnings.messages() };
}
