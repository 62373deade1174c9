import { INGEST_LIMITS as L } from './telemetry-limits.js';
import type { PointIn } from './telemetry-types.js';
import { attributesToText, double, int64, listAt, nanosToMs, objectAt, put, Rejections, Warnings, stringAt, type Obj } from './otlp-values.js';

// The mapping rule itself is documented at the top of otlp-decode.ts.

/** Resource attributes that identify where a metric comes from; the others would only add cardinality. */
export const RESOURCE_LABEL_KEYS: readonly string[] = [
  'service.name',
  'service.namespace',
  'service.instance.id',
  'service.version',
  'host.name',
  'deployment.environment',
  'deployment.environment.name',
  'k8s.namespace.name',
  'k8s.pod.name',
  'k8s.container.name',
  'cloud.region',
];
const RESOURCE_LABELS = new Set(RESOURCE_LABEL_KEYS);
export const SCOPE_NAME_LABEL = 'otel_scope_name';

const LABEL_KEY = new RegExp(L.labelKeyPattern);
const METRIC_NAME = new RegExp(L.metricNamePattern);

/** Characters the pattern does not allow become `_`; a key that may not start as it does gets a leading `_`. */
export function sanitizeLabelKey(key: string): string {
  if (key === '' || LABEL_KEY.test(key)) return key;
  const k = key.replace(/[^A-Za-z0-9_./-]/g, '_');
  return /^[A-Za-z_]/.test(k) ? k : `_${k}`;
}

export function sanitizeMetricName(name: string): string {
  if (name === '' || METRIC_NAME.test(name)) return name;
  const n = name.replace(/[^A-Za-z0-9_:./-]/g, '_');
  return /^[A-Za-z_:]/.test(n) ? n : `_${n}`;
}

type Labels = Record<string, string>;

/** One stored series point of a data point: name suffix, the extra label (le, quantile), value. */
interface Part {
  suffix: string;
  extra?: [string, string];
  value: number;
}

const FLAG_NO_RECORDED_VALUE = 1;

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

function addLabels(into: Labels, pairs: [string, string][]): void {
  for (const [k, v] of pairs) put(into, sanitizeLabelKey(k), v);
}

/** ts of a data point: timeUnixNano, else the time of arrival (never startTimeUnixNano); NaN when unreadable. */
function pointTime(dp: Obj, now: number): number {
  return nanosToMs(dp.timeUnixNano) ?? now;
}

/** A value that must be a non-negative integer count (fixed64). */
const count = (v: unknown): number => {
  const n = int64(v, 0);
  return n >= 0 ? n : NaN;
};

function numberParts(dp: Obj): Part[] | string {
  if (dp.asDouble !== undefined && dp.asDouble !== null) return [{ suffix: '', value: double(dp.asDouble) }];
  if (dp.asInt !== undefined && dp.asInt !== null) return [{ suffix: '', value: int64(dp.asInt) }];
  return 'a data point without a value';
}

function histogramParts(dp: Obj, where: string): Part[] | string {
  const parts: Part[] = [{ suffix: '_count', value: count(dp.count) }];
  if (dp.sum !== undefined && dp.sum !== null) parts.push({ suffix: '_sum', value: double(dp.sum) });
  const counts = listAt(dp.bucketCounts, `${where}.bucketCounts`).map(count);
  const bounds = listAt(dp.explicitBounds, `${where}.explicitBounds`).map((b) => double(b));
  if (counts.length === 0) return parts;
  if (counts.length !== bounds.length + 1) return 'a histogram whose bucketCounts do not have one more entry than explicitBounds';
  let cumulative = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) return 'a histogram whose explicitBounds are not finite and increasing';
    cumulative += counts[i];
    parts.push({ suffix: '_bucket', extra: ['le', String(bounds[i])], value: cumulative });
  }
  parts.push({ suffix: '_bucket', extra: ['le', '+Inf'], value: cumulative + counts[bounds.length] });
  return parts;
}

function exponentialParts(dp: Obj): Part[] {
  const parts: Part[] = [{ suffix: '_count', value: count(dp.count) }];
  if (dp.sum !== undefined && dp.sum !== null) parts.push({ suffix: '_sum', value: double(dp.sum) });
  return parts;
}

function summaryParts(dp: Obj, where: string): Part[] {
  // Summary.sum is a plain (non-optional) double: absent means 0.
  const parts: Part[] = [
    { suffix: '_count', value: count(dp.count) },
    { suffix: '_sum', value: double(dp.sum, 0) },
  ];
  for (const q of listAt(dp.quantileValues, `${where}.quantileValues`)) {
    const qv = objectAt(q, `${where}.quantileValues[]`);
    const quantile = double(qv.quantile, 0);
    parts.push({ suffix: '', extra: ['quantile', String(quantile)], value: Number.isFinite(quantile) ? double(qv.value, 0) : NaN });
  }
  return parts;
}

const KINDS = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'] as const;
type Kind = (typeof KINDS)[number];

function partsOf(kind: Kind, dp: Obj, where: string): Part[] | string {
  switch (kind) {
    case 'gauge':
    case 'sum':
      return numberParts(dp);
    case 'histogram':
      return histogramParts(dp, where);
    case 'exponentialHistogram':
      return exponentialParts(dp);
    case 'summary':
      return summaryParts(dp, where);
  }
}

export interface MetricsDecodeState {
  points: PointIn[];
  rejections: Rejections;
  warnings: Warnings;
  /** OTLP data points seen so far (the unit of INGEST_LIMITS.maxItems and of rejectedDataPoints). */
  seen: number;
}

function metricPoints(metric: Obj, base: Labels, where: string, now: number, state: MetricsDecodeState): void {
  const kind = KINDS.find((k) => metric[k] !== undefined && metric[k] !== null);
  if (!kind) return; // no data: nothing to store and nothing to reject
  const rawName = stringAt(metric.name);
  const name = sanitizeMetricName(rawName);
  const data = objectAt(metric[kind], `${where}.${kind}`);
  const dpWhere = `${where}.${kind}.dataPoints`;
  const reject = (reason: string) => state.rejections.add(rawName ? `metric "${rawName.slice(0, 100)}": ${reason}` : reason);

  for (const item of listAt(data.dataPoints, dpWhere)) {
    const dp = objectAt(item, `${dpWhere}[]`);
    if (++state.seen > L.maxItems) {
      state.rejections.add(`the request holds more than ${L.maxItems} data points`);
      continue;
    }
    // A staleness marker (the series ended); there is no value to store and nothing wrong with it.
    if (int64(dp.flags, 0) & FLAG_NO_RECORDED_VALUE) continue;
    if (name === '') {
      reject('a metric without a name');
      continue;
    }
    const ts = pointTime(dp, now);
    if (Number.isNaN(ts)) {
      reject('an unreadable timeUnixNano or startTimeUnixNano');
      continue;
    }
    const parts = partsOf(kind, dp, dpWhere);
    if (typeof parts === 'string') {
      reject(parts);
      continue;
    }
    const labels: Labels = { ...base };
    addLabels(labels, attributesToText(dp.attributes, `${dpWhere}[].attributes`));
    const problem =
      labelProblem(labels, parts.some((p) => p.extra) ? 1 : 0) ??
      (parts.some((p) => !Number.isFinite(p.value)) ? 'a NaN, infinite or unreadable value' : null) ??
      (parts.some((p) => name.length + p.suffix.length > L.metricNameMax) ? `a metric name longer than ${L.metricNameMax} characters` : null);
    if (problem) {
      reject(problem);
      continue;
    }
    for (const p of parts) {
      const pointLabels = p.extra ? { ...labels } : labels;
      if (p.extra) put(pointLabels, p.extra[0], p.extra[1]);
      state.points.push({ name: name + p.suffix, labels: pointLabels, ts, value: p.value });
    }
  }
}

/** Walks ExportMetricsServiceRequest (as a plain object) into `state`. */
export function collectMetrics(request: Obj, now: number, state: MetricsDecodeState): void {
  listAt(request.resourceMetrics, 'resourceMetrics').forEach((rmItem, r) => {
    const rm = objectAt(rmItem, `resourceMetrics[${r}]`);
    const resource = objectAt(rm.resource, `resourceMetrics[${r}].resource`);
    const resourceLabels = attributesToText(resource.attributes, `resourceMetrics[${r}].resource.attributes`).filter(([k]) => RESOURCE_LABELS.has(k));
    listAt(rm.scopeMetrics, `resourceMetrics[${r}].scopeMetrics`).forEach((smItem, s) => {
      const sWhere = `resourceMetrics[${r}].scopeMetrics[${s}]`;
      const sm = objectAt(smItem, sWhere);
      const scope = objectAt(sm.scope, `${sWhere}.scope`);
      // Precedence, lowest first: resource, scope name, scope attributes, data point attributes.
      const base: Labels = {};
      addLabels(base, resourceLabels);
      const scopeName = stringAt(scope.name);
      if (scopeName) base[SCOPE_NAME_LABEL] = scopeName;
      addLabels(base, attributesToText(scope.attributes, `${sWhere}.scope.attributes`));
      listAt(sm.metrics, `${sWhere}.metrics`).forEach((mItem, m) => {
        const mWhere = `${sWhere}.metrics[${m}]`;
        metricPoints(objectAt(mItem, mWhere), base, mWhere, now, state);
      });
    });
  });
}
