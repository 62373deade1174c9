import { createHash } from 'node:crypto';
import { toStorableText } from '../../core/text.js';
import { canonicalLabels } from './series-store.js';
import { INGEST_LIMITS as L } from './telemetry-limits.js';
import type { PointIn, SeriesKind, SeriesMeta, Temporality } from './telemetry-types.js';
import { anyToText, attributesToText, double, INEXACT_INT64, int64, int64Inexact, listAt, malformed, nanosToMs, objectAt, put, Rejections, Warnings, type Obj } from './otlp-values.js';

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
export const RESOURCE_LABELS = new Set(RESOURCE_LABEL_KEYS);
export const SCOPE_NAME_LABEL = 'otel_scope_name';
/**
 * The per-process identity of a resource without `service.instance.id`: a hash of its resource
 * attributes outside RESOURCE_LABEL_KEYS, so two processes differing only in, say, process.pid
 * write two series instead of interleaving their cumulative counters in one.
 */
export const RESOURCE_ID_LABEL = 'otel_resource_id';
const INSTANCE_ID = 'service.instance.id';

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

export type Labels = Record<string, string>;
/** Where a warning goes: the request's Warnings, or a data point's own list until it is stored. */
export type Notes = Pick<Warnings, 'add'>;

/**
 * `otel_resource_id` for a resource's attributes ([key, text] pairs, a repeated key: the last
 * wins), or null: null when `service.instance.id` is set (non-empty; it is a label already) or
 * when every attribute is on the allow-list. Otherwise the first 16 hex digits of the SHA-256 of
 * the other attributes' canonical JSON (keys sorted, values as text).
 */
export function resourceIdOf(attributes: readonly [string, string][]): string | null {
  const other: Labels = {};
  let instance = '';
  for (const [k, v] of attributes) {
    if (k === INSTANCE_ID) instance = v;
    else if (!RESOURCE_LABELS.has(k)) put(other, k, v);
  }
  if (instance !== '' || Object.keys(other).length === 0) return null;
  return createHash('sha256').update(canonicalLabels(other)).digest('hex').slice(0, 16);
}

const quoted = (s: string): string => JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);
const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * One attribute list ([key, text] pairs) as label [key, value] pairs with sanitized keys. Keys
 * that sanitize to one label key are all kept: the key that was valid as sent (else the first
 * in code-unit order) keeps the name, the others, in code-unit order of their original keys,
 * get `__2`, `__3` … (skipping names the list already uses), and a warning names them. The
 * result does not depend on the order the attributes were sent in. A repeated key: the last wins.
 */
export function sanitizedPairs(pairs: readonly [string, string][], warnings: Notes): [string, string][] {
  if (pairs.every(([k]) => k === '' || LABEL_KEY.test(k))) return pairs as [string, string][];
  const byRaw = new Map<string, string>();
  for (const [k, v] of pairs) byRaw.set(k, v);
  const groups = new Map<string, string[]>();
  for (const raw of byRaw.keys()) {
    const key = sanitizeLabelKey(raw);
    const group = groups.get(key);
    if (group) group.push(raw);
    else groups.set(key, [raw]);
  }
  const taken = new Set(groups.keys());
  const out: [string, string][] = [];
  for (const [key, raws] of [...groups].sort(([a], [b]) => byCodeUnits(a, b))) {
    if (raws.length === 1) {
      out.push([key, byRaw.get(raws[0])!]);
      continue;
    }
    raws.sort((a, b) => (a === key ? -1 : b === key ? 1 : byCodeUnits(a, b)));
    const stored: string[] = [];
    let n = 2;
    for (const raw of raws) {
      let name = key;
      if (stored.length > 0) {
        while (taken.has(`${key}__${n}`)) n++;
        name = `${key}__${n++}`;
        taken.add(name);
      }
      stored.push(`${quoted(raw)} as ${quoted(name)}`);
      out.push([name, byRaw.get(raw)!]);
    }
    const shown = stored.slice(0, 5).join(', ') + (stored.length > 5 ? ` and ${stored.length - 5} more` : '');
    warnings.add(`attribute keys that sanitize to the same label key are kept apart: ${shown}`);
  }
  return out;
}

/** One stored series point of a data point: name suffix, the extra label (le, quantile), value. */
export interface Part {
  suffix: string;
  extra?: [string, string];
  value: number;
}

export const FLAG_NO_RECORDED_VALUE = 1;

/** Why a data point cannot be stored; thrown by the readers below and counted per data point. */
export class Refused extends Error {}

/**
 * Why a label set cannot be stored, or null. `extra` counts a label still to be added (le,
 * quantile). The first offending label in the set's order decides the message.
 */
function labelProblem(labels: LabelMap, extra: number): string | null {
  if (labels.size + extra > L.maxLabels) return `more than ${L.maxLabels} labels`;
  for (const [k, v] of labels) {
    if (k === '') return 'an attribute with an empty key';
    if (k.length > L.labelKeyMax) return `a label key longer than ${L.labelKeyMax} characters`;
    if (v.length > L.labelValueMax) return `a label value longer than ${L.labelValueMax} characters`;
  }
  return null;
}

/**
 * Labels while they are put together: a Map keeps the order keys were first set in, as an object
 * would (no label key reads as an array index), and takes "__proto__" like any other key.
 */
type LabelMap = Map<string, string>;

function addLabels(into: LabelMap, pairs: [string, string][], warnings: Notes): void {
  for (const [k, v] of sanitizedPairs(pairs, warnings)) into.set(k, v);
}

const byKey = (a: [string, string], b: [string, string]): number => byCodeUnits(a[0], b[0]);

/** ts of a data point: timeUnixNano, else the time of arrival (never startTimeUnixNano); NaN when unreadable. */
export function pointTime(dp: Obj, now: number): number {
  return nanosToMs(dp.timeUnixNano) ?? now;
}

/** An int64 field as a Number; NaN when unreadable; refused when a Number would round it. */
export function exactInt(v: unknown, field: string, absent = NaN): number {
  const n = int64(v, absent);
  if (Number.isNaN(n) && int64Inexact(v)) throw new Refused(`${field} ${INEXACT_INT64}`);
  return n;
}

/** A value that must be a non-negative integer count (fixed64). */
const count = (v: unknown, field = 'a count'): number => {
  const n = exactInt(v, field, 0);
  return n >= 0 ? n : NaN;
};

export const present = (v: unknown): boolean => v !== undefined && v !== null;

export function histogramParts(dp: Obj, where: string, warnings: Notes): Part[] {
  const total = count(dp.count);
  const parts: Part[] = [{ suffix: '_count', value: total }];
  if (present(dp.sum)) parts.push({ suffix: '_sum', value: double(dp.sum) });
  const counts = listAt(dp.bucketCounts, `${where}.bucketCounts`).map((c) => count(c, 'a bucketCounts entry'));
  const bounds = listAt(dp.explicitBounds, `${where}.explicitBounds`).map((b) => double(b));
  if (present(dp.min) || present(dp.max)) warnings.add('histograms: min and max are not stored');
  if (counts.length === 0) return parts;
  if (counts.length !== bounds.length + 1) throw new Refused('a histogram whose bucketCounts do not have one more entry than explicitBounds');
  // Checked before the sum: an unreadable entry is reported as such, not as a mismatch.
  if (!Number.isFinite(total) || counts.some((c) => !Number.isFinite(c))) throw new Refused('a NaN, infinite or unreadable value');
  const sum = counts.reduce((a, c) => a + c, 0);
  if (sum !== total) {
    const exact = Number.isSafeInteger(sum) ? String(sum) : String(counts.reduce((a, c) => a + BigInt(c), 0n));
    throw new Refused(`a histogram whose bucketCounts sum to ${exact} but count is ${total}`);
  }
  let cumulative = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) throw new Refused('a histogram whose explicitBounds are not finite and increasing');
    cumulative += counts[i];
    parts.push({ suffix: '_bucket', extra: ['le', String(bounds[i])], value: cumulative });
  }
  parts.push({ suffix: '_bucket', extra: ['le', '+Inf'], value: total });
  return parts;
}

export function exponentialParts(dp: Obj, where: string, warnings: Notes): Part[] {
  const parts: Part[] = [{ suffix: '_count', value: count(dp.count) }];
  if (present(dp.sum)) parts.push({ suffix: '_sum', value: double(dp.sum) });
  const hasBuckets = (side: unknown, at: string) => listAt(objectAt(side, at).bucketCounts, `${at}.bucketCounts`).length > 0;
  const zero = int64(dp.zeroCount, 0);
  if (hasBuckets(dp.positive, `${where}.positive`) || hasBuckets(dp.negative, `${where}.negative`) || zero !== 0 || present(dp.min) || present(dp.max)) {
    warnings.add('exponential histograms: only _count and _sum are stored; buckets, zeroCount, min and max are not');
  }
  return parts;
}

export function summaryParts(dp: Obj, where: string): Part[] {
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

export const KINDS = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'] as const;
export type Kind = (typeof KINDS)[number];

function partsOf(kind: Kind, dp: Obj, where: string, warnings: Notes): Part[] {
  switch (kind) {
    case 'gauge':
    case 'sum':
      return [{ suffix: '', value: numberValue(dp) }];
    case 'histogram':
      return histogramParts(dp, where, warnings);
    case 'exponentialHistogram':
      return exponentialParts(dp, where, warnings);
    case 'summary':
      return summaryParts(dp, where);
  }
}

/** AggregationTemporality: the enum number, or its name (the proto3 JSON mapping allows both). */
function temporalityOf(v: unknown): Temporality | null {
  if (v === 1 || v === 'AGGREGATION_TEMPORALITY_DELTA') return 'delta';
  if (v === 2 || v === 'AGGREGATION_TEMPORALITY_CUMULATIVE') return 'cumulative';
  return null;
}

const KIND_WORDS: Record<Kind, string> = { gauge: 'a gauge', sum: 'a sum', histogram: 'a histogram', exponentialHistogram: 'an exponential histogram', summary: 'a summary' };

/** The stream descriptor every data point of a metric shares, or why none of them can be stored. */
export function metaOf(metric: Obj, kind: Kind, data: Obj, warnings: Notes): SeriesMeta | string {
  if (present(metric.unit) && typeof metric.unit !== 'string') return 'a unit that is not a string';
  if (present(metric.description) && typeof metric.description !== 'string') return 'a description that is not a string';
  // PostgreSQL text holds no NUL: replaced, as in names and labels.
  const unit = toStorableText((metric.unit as string | undefined) ?? '');
  if (unit.length > L.unitMax) return `a unit longer than ${L.unitMax} characters`;
  let description = (metric.description as string | undefined) ?? '';
  if (description.length > L.descriptionMax) {
    description = description.slice(0, L.descriptionMax);
    warnings.add(`metric descriptions longer than ${L.descriptionMax} characters are truncated`);
  }
  description = toStorableText(description);
  let seriesKind: SeriesKind;
  let temporality: Temporality | null = null;
  let monotonic = true;
  switch (kind) {
    case 'gauge':
      return Object.freeze({ kind: 'gauge', temporality: null, monotonic: false, unit, description });
    case 'summary':
      return Object.freeze({ kind: 'summary', temporality: 'cumulative', monotonic: true, unit, description });
    case 'sum':
      if (present(data.isMonotonic) && typeof data.isMonotonic !== 'boolean') return 'a sum whose isMonotonic is not a boolean';
      monotonic = data.isMonotonic === true;
      seriesKind = monotonic ? 'counter' : 'updowncounter';
      break;
    case 'histogram':
      seriesKind = 'histogram';
      break;
    case 'exponentialHistogram':
      seriesKind = 'exponential_histogram';
      break;
  }
  temporality = temporalityOf(data.aggregationTemporality);
  if (temporality === null) return `${KIND_WORDS[kind]} without aggregationTemporality (neither delta nor cumulative)`;
  return Object.freeze({ kind: seriesKind, temporality, monotonic, unit, description });
}

export interface MetricsDecodeState {
  points: PointIn[];
  rejections: Rejections;
  warnings: Warnings;
  /** OTLP data points seen so far (the unit of INGEST_LIMITS.maxItems and of rejectedDataPoints); also numbers them. */
  seen: number;
}

/**
 * The labels of one attribute list of a data point under one scope. Data points repeat their
 * attribute lists (a series per list, a point per timestamp), so each distinct list is turned into
 * labels, sorted and checked once per request, and its data points share the result.
 */
interface LabelSet {
  /** The labels, keys in code-unit order (the series cache keys them without sorting). Shared: never changed. */
  labels: Labels;
  /** Warnings the list brings (keys kept apart, otel_resource_id replaced), in the order they arose. */
  notes: string[];
  /** labelProblem of the labels alone, and with one more label (le, quantile). */
  problem: string | null;
  problemExtra: string | null;
  /** The labels with a part's own label (le, quantile) set, by `key \0 value`; made when first asked. */
  extras: Map<string, Labels> | null;
}

/** What every data point under one scope starts from. */
interface ScopeLabels {
  /** Resource labels, scope name and scope attributes, in precedence order. */
  base: LabelMap;
  resourceId: string | null;
  /** The attribute lists seen under the scope, and their labels. */
  lists: ListNode;
}

/**
 * The attribute lists seen under a scope as a tree of [key, text] pairs in the order sent: from a
 * node, `next` leads by a key, from there by its text (so keys and texts never mix), and `set`
 * holds the labels of the list that ends at the node.
 */
interface ListNode {
  next: Map<string, ListNode> | null;
  set: LabelSet | null;
}

const newNode = (): ListNode => ({ next: null, set: null });

function step(node: ListNode, s: string): ListNode {
  node.next ??= new Map();
  let n = node.next.get(s);
  if (n === undefined) node.next.set(s, (n = newNode()));
  return n;
}

/**
 * The node of a data point's attribute list ([key, text] pairs, in the order sent) under its scope.
 * Fails the request exactly where attributesToText would.
 */
function listNode(scope: ScopeLabels, list: unknown, where: string): ListNode {
  const items = listAt(list, where);
  let node = scope.lists;
  for (let i = 0; i < items.length; i++) {
    const kv = objectAt(items[i], where);
    const k = kv.key;
    if (typeof k !== 'string' || !Object.hasOwn(kv, 'key')) throw malformed(`${where}[].key`, 'a string');
    const v = kv.value as Obj | null | undefined;
    // A string value (nearly every attribute) as anyToText reads it, without its detour.
    const text = typeof v === 'object' && v !== null && typeof v.stringValue === 'string' && Object.hasOwn(v, 'stringValue') ? v.stringValue : anyToText(v, where);
    node = step(step(node, k), text);
  }
  return node;
}

/** The labels as an object, keys in code-unit order (fromEntries, unlike assignment, keeps a "__proto__" key). */
const sortedLabels = (labels: LabelMap): Labels => Object.fromEntries([...labels].sort(byKey));

/** The labels of a data point: the scope's base, its attributes, then the resource's identity. */
function labelSetOf(scope: ScopeLabels, attributes: unknown, where: string): LabelSet {
  const node = listNode(scope, attributes, where);
  if (node.set !== null) return node.set;
  const notes: string[] = [];
  const labels: LabelMap = new Map(scope.base);
  addLabels(labels, attributesToText(attributes, where), { add: (m) => void notes.push(m) });
  // Last, so that no attribute can stand in for the resource's identity.
  const resourceId = scope.resourceId;
  if (resourceId !== null) {
    const before = labels.get(RESOURCE_ID_LABEL);
    if (before !== undefined && before !== resourceId) notes.push(`an attribute "${RESOURCE_ID_LABEL}" was replaced by the resource's identity`);
    labels.set(RESOURCE_ID_LABEL, resourceId);
  }
  // Checked in the order the labels were built, which decides the message when several are wrong.
  const problem = labelProblem(labels, 0);
  const problemExtra = labels.size + 1 > L.maxLabels ? labelProblem(labels, 1) : problem;
  node.set = { labels: sortedLabels(labels), notes, problem, problemExtra, extras: null };
  return node.set;
}

/** A part's labels: its set's, plus its own label (le, quantile), which replaces an attribute of that name. */
function partLabels(set: LabelSet, extra: [string, string]): Labels {
  const id = `${extra[0]}\u0000${extra[1]}`;
  set.extras ??= new Map();
  let labels = set.extras.get(id);
  if (labels === undefined) set.extras.set(id, (labels = sortedLabels(new Map(Object.entries(set.labels)).set(extra[0], extra[1]))));
  return labels;
}

/** A gauge's or sum's data point value: asDouble, else asInt (exact), else refused. */
function numberValue(dp: Obj): number {
  const d = dp.asDouble;
  if (d !== undefined && d !== null && Object.hasOwn(dp, 'asDouble')) return double(d);
  const i = dp.asInt;
  if (i !== undefined && i !== null && Object.hasOwn(dp, 'asInt')) return exactInt(i, 'an asInt');
  throw new Refused('a data point without a value');
}

function metricPoints(metric: Obj, scope: ScopeLabels, where: string, now: number, state: MetricsDecodeState): void {
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
  // Gauges and sums store one row per data point under the metric's own name.
  const single = kind === 'gauge' || kind === 'sum';
  const nameTooLong = `a metric name longer than ${L.metricNameMax} characters`;
  const singleNameTooLong = name.length > L.metricNameMax;

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
    let value = NaN;
    let parts: Part[] | null = null;
    try {
      if (single) value = numberValue(dp);
      else parts = partsOf(kind, dp, dpWhere, toPoint);
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      reject(err.message);
      continue;
    }
    const set = labelSetOf(scope, dp.attributes, attributesWhere);
    if (parts === null) {
      const problem = set.problem ?? (Number.isFinite(value) ? null : 'a NaN, infinite or unreadable value') ?? (singleNameTooLong ? nameTooLong : null);
      if (problem) {
        reject(problem);
        continue;
      }
      state.points.push({ name, labels: set.labels, ts, value, meta, point });
      for (const m of metricNotes) state.warnings.add(m);
      for (const m of notes) state.warnings.add(m);
      for (const m of set.notes) state.warnings.add(m);
      continue;
    }
    const withExtra = parts.some((p) => p.extra);
    const problem =
      (withExtra ? set.problemExtra : set.problem) ??
      (parts.some((p) => !Number.isFinite(p.value)) ? 'a NaN, infinite or unreadable value' : null) ??
      (parts.some((p) => name.length + p.suffix.length > L.metricNameMax) ? nameTooLong : null);
    if (problem) {
      reject(problem);
      continue;
    }
    const extra = parts.find((p) => p.extra)?.extra?.[0];
    for (const p of parts) {
      state.points.push({ name: name + p.suffix, labels: p.extra ? partLabels(set, p.extra) : set.labels, ts, value: p.value, meta, point });
    }
    for (const m of metricNotes) state.warnings.add(m);
    for (const m of notes) state.warnings.add(m);
    for (const m of set.notes) state.warnings.add(m);
    if (extra !== undefined && Object.hasOwn(set.labels, extra)) state.warnings.add(`an attribute "${extra}" was replaced by the ${extra === 'le' ? 'bucket bound' : 'quantile'}`);
  }
}

/** Walks ExportMetricsServiceRequest (a plain object, or the decoded protobufjs message) into `state`. */
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
      const base: LabelMap = new Map();
      addLabels(base, resourceLabels, state.warnings);
      const scopeName = typeof scope.name === 'string' ? scope.name : '';
      if (scopeName) base.set(SCOPE_NAME_LABEL, scopeName);
      addLabels(base, attributesToText(scope.attributes, `${sWhere}.scope.attributes`), state.warnings);
      const labels: ScopeLabels = { base, resourceId, lists: newNode() };
      listAt(sm.metrics, `${sWhere}.metrics`).forEach((mItem, m) => {
        const mWhere = `${sWhere}.metrics[${m}]`;
        metricPoints(objectAt(mItem, mWhere), labels, mWhere, now, state);
      });
    });
  });
}
