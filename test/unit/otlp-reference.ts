/**
 * The OTLP metrics decoding as it was before the decoder walked protobufjs messages directly:
 * protobuf bodies through protobufjs toObject (64-bit fields kept as Long), then the plain-object
 * walk, labels built key by key per data point and checked per data point. Only those parts are
 * kept here, as they were; what the two share unchanged comes from src: the field readers
 * (AnyValue text included: on a plain tree, where every field present is an own property, their
 * `has` checks read as the old null checks), sanitizing, the resource identity, the parts of
 * histograms and summaries, the descriptor, JSON parsing. The reference the equivalence test
 * (otlp-equivalence.test.ts) compares the decoder with; not used by the daemon.
 */
import { DomainError } from '../../src/core/errors.js';
import { parseOtlpRequest, type OtlpDecoded } from '../../src/features/telemetry/otlp-decode.js';
import {
  exactInt,
  exponentialParts,
  FLAG_NO_RECORDED_VALUE,
  histogramParts,
  KINDS,
  metaOf,
  pointTime,
  present,
  Refused,
  RESOURCE_ID_LABEL,
  RESOURCE_LABELS,
  resourceIdOf,
  sanitizedPairs,
  sanitizeMetricName,
  SCOPE_NAME_LABEL,
  summaryParts,
  type Kind,
  type Labels,
  type MetricsDecodeState,
  type Notes,
  type Part,
} from '../../src/features/telemetry/otlp-metrics.js';
import { OTLP_MESSAGES } from '../../src/features/telemetry/otlp-proto.js';
import { INGEST_LIMITS as L } from '../../src/features/telemetry/telemetry-limits.js';
import { attributesToText, double, int64, listAt, objectAt, put, Rejections, Warnings, type Obj } from '../../src/features/telemetry/otlp-values.js';

/** Why a label set cannot be stored, or null. `extra` counts a label still to be added (le, quantile). */
function labelProblem(labels: Labels, extra: number): string | null {
  const keys = Object.keys(labels);
  if (keys.length + extra > L.maxLabels) return `more than ${L.maxLabels} labels`;
  for (const k of keys) {
    if (k === '') return 'an attribute with an empty key';
    if (k.length > L.labelKeyMax) return `a label key longer than ${L.labelKeyMax} characters`;
    if (labels[k].length > L.labelValueMax) return `a label value longer than ${L.labelValueMax} characters`;
  }
  return null;
}

function addLabels(into: Labels, pairs: [string, string][], warnings: Notes): void {
  for (const [k, v] of sanitizedPairs(pairs, warnings)) put(into, k, v);
}

function numberParts(dp: Obj): Part[] {
  if (present(dp.asDouble)) return [{ suffix: '', value: double(dp.asDouble) }];
  if (present(dp.asInt)) return [{ suffix: '', value: exactInt(dp.asInt, 'an asInt') }];
  throw new Refused('a data point without a value');
}

function partsOf(kind: Kind, dp: Obj, where: string, warnings: Notes): Part[] {
  switch (kind) {
    case 'gauge':
    case 'sum':
      return numberParts(dp);
    case 'histogram':
      return histogramParts(dp, where, warnings);
    case 'exponentialHistogram':
      return exponentialParts(dp, where, warnings);
    case 'summary':
      return summaryParts(dp, where);
  }
}

function metricPoints(metric: Obj, base: Labels, resourceId: string | null, where: string, now: number, state: MetricsDecodeState): void {
  const kind = KINDS.find((k) => present(metric[k]));
  if (!kind) return; // no data: nothing to store and nothing to reject
  const rawName = typeof metric.name === 'string' ? metric.name : '';
  const name = sanitizeMetricName(rawName);
  const data = objectAt(metric[kind], `${where}.${kind}`);
  const dpWhere = `${where}.${kind}.dataPoints`;
  const reject = (reason: string) => state.rejections.add(rawName ? `metric "${rawName.slice(0, 100)}": ${reason}` : reason);
  // Warnings about what a data point loses are reported only once one is stored.
  const metricNotes: string[] = [];
  const notes: string[] = [];
  const toMetric: Notes = { add: (m) => void metricNotes.push(m) };
  const toPoint: Notes = { add: (m) => void notes.push(m) };
  const meta = present(metric.name) && typeof metric.name !== 'string' ? 'a metric name that is not a string' : name === '' ? 'a metric without a name' : metaOf(metric, kind, data, toMetric);

  // Built once per metric, not per data point.
  const itemWhere = `${dpWhere}[]`;
  const attributesWhere = `${dpWhere}[].attributes`;
  for (const item of listAt(data.dataPoints, dpWhere)) {
    const dp = objectAt(item, itemWhere);
    const point = ++state.seen;
    if (point > L.maxItems) {
      state.rejections.add(`the request holds more than ${L.maxItems} data points`);
      continue;
    }
    // A staleness marker (the series ended); there is no value to store and nothing wrong with it.
    if (int64(dp.flags, 0) & FLAG_NO_RECORDED_VALUE) continue;
    if (typeof meta === 'string') {
      reject(meta);
      continue;
    }
    notes.length = 0;
    const ts = pointTime(dp, now);
    if (Number.isNaN(ts)) {
      reject('an unreadable timeUnixNano');
      continue;
    }
    let parts: Part[];
    try {
      parts = partsOf(kind, dp, dpWhere, toPoint);
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      reject(err.message);
      continue;
    }
    const labels: Labels = { ...base };
    addLabels(labels, attributesToText(dp.attributes, attributesWhere), toPoint);
    // Last, so that no attribute can stand in for the resource's identity.
    if (resourceId !== null) {
      if (Object.hasOwn(labels, RESOURCE_ID_LABEL) && labels[RESOURCE_ID_LABEL] !== resourceId) {
        notes.push(`an attribute "${RESOURCE_ID_LABEL}" was replaced by the resource's identity`);
      }
      labels[RESOURCE_ID_LABEL] = resourceId;
    }
    const problem =
      labelProblem(labels, parts.some((p) => p.extra) ? 1 : 0) ??
      (parts.some((p) => !Number.isFinite(p.value)) ? 'a NaN, infinite or unreadable value' : null) ??
      (parts.some((p) => name.length + p.suffix.length > L.metricNameMax) ? `a metric name longer than ${L.metricNameMax} characters` : null);
    if (problem) {
      reject(problem);
      continue;
    }
    const extra = parts.find((p) => p.extra)?.extra?.[0];
    if (extra !== undefined && Object.hasOwn(labels, extra)) notes.push(`an attribute "${extra}" was replaced by the ${extra === 'le' ? 'bucket bound' : 'quantile'}`);
    for (const p of parts) {
      const pointLabels = p.extra ? { ...labels } : labels;
      if (p.extra) put(pointLabels, p.extra[0], p.extra[1]);
      state.points.push({ name: name + p.suffix, labels: pointLabels, ts, value: p.value, meta, point });
    }
    for (const m of metricNotes) state.warnings.add(m);
    for (const m of notes) state.warnings.add(m);
  }
}

/** Walks ExportMetricsServiceRequest (as a plain object) into `state`. */
export function collectMetrics(request: Obj, now: number, state: MetricsDecodeState): void {
  listAt(request.resourceMetrics, 'resourceMetrics').forEach((rmItem, r) => {
    const rm = objectAt(rmItem, `resourceMetrics[${r}]`);
    const resource = objectAt(rm.resource, `resourceMetrics[${r}].resource`);
    const resourceAttributes = attributesToText(resource.attributes, `resourceMetrics[${r}].resource.attributes`);
    const resourceLabels = resourceAttributes.filter(([k]) => RESOURCE_LABELS.has(k));
    const resourceId = resourceIdOf(resourceAttributes);
    listAt(rm.scopeMetrics, `resourceMetrics[${r}].scopeMetrics`).forEach((smItem, s) => {
      const sWhere = `resourceMetrics[${r}].scopeMetrics[${s}]`;
      const sm = objectAt(smItem, sWhere);
      const scope = objectAt(sm.scope, `${sWhere}.scope`);
      // Precedence, lowest first: resource, scope name, scope attributes, data point attributes;
      // otel_resource_id is set after all of them.
      const base: Labels = {};
      addLabels(base, resourceLabels, state.warnings);
      const scopeName = typeof scope.name === 'string' ? scope.name : '';
      if (scopeName) base[SCOPE_NAME_LABEL] = scopeName;
      addLabels(base, attributesToText(scope.attributes, `${sWhere}.scope.attributes`), state.warnings);
      listAt(sm.metrics, `${sWhere}.metrics`).forEach((mItem, m) => {
        const mWhere = `${sWhere}.metrics[${m}]`;
        metricPoints(objectAt(mItem, mWhere), base, resourceId, mWhere, now, state);
      });
    });
  });
}

const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** decodeOtlpMetrics as it was: toObject for protobuf (longs left as Long), then collectMetrics above. */
export function referenceDecodeOtlpMetrics(body: Uint8Array, format: 'json' | 'protobuf', now: number): OtlpDecoded {
  let request: Obj;
  if (format === 'protobuf') {
    const type = OTLP_MESSAGES.metricsRequest;
    try {
      request = type.toObject(type.decode(body), {});
    } catch (err) {
      throw new DomainError('bad_request', `invalid OTLP protobuf: ${reason(err)}`);
    }
  } else request = parseOtlpRequest(body, format, OTLP_MESSAGES.metricsRequest);
  const state: MetricsDecodeState = { points: [], rejections: new Rejections('data point(s)'), warnings: new Warnings(), seen: 0 };
  collectMetrics(request, now, state);
  const tooMany = Math.max(0, state.seen - L.maxItems);
  return { batch: { points: state.points, logs: [], events: [] }, rejected: state.rejections.count, tooMany, messages: state.rejections.messages(), warnings: state.warnings.messages() };
}
