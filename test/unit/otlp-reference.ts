/**
 * The OTLP metrics decoding as it was before the decoder walked protobufjs messages directly:
 * protobuf bodies through protobufjs toObject (64-bit fields kept as Long), then the plain-object
 * walk, labels built key by key per data point. Kept verbatim as the reference the equivalence
 * test (otlp-equivalence.test.ts) compares the decoder with; not used by the daemon.
 */
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { DomainError } from '../../src/core/errors.js';
import { toStorableText } from '../../src/core/text.js';
import type { OtlpDecoded } from '../../src/features/telemetry/otlp-decode.js';
import { OTLP_MESSAGES } from '../../src/features/telemetry/otlp-proto.js';
import { canonicalLabels } from '../../src/features/telemetry/series-store.js';
import { INGEST_LIMITS as L } from '../../src/features/telemetry/telemetry-limits.js';
import type { PointIn, SeriesKind, SeriesMeta, Temporality } from '../../src/features/telemetry/telemetry-types.js';
import { Rejections, Warnings } from '../../src/features/telemetry/otlp-values.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

const malformed = (where: string, what: string): DomainError => new DomainError('bad_request', `invalid OTLP request: ${where} must be ${what}`);

function objectAt(v: unknown, where: string): Obj {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw malformed(where, 'an object');
  return v;
}

function listAt(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw malformed(where, 'an array');
  return v;
}

const stringAt = (v: unknown): string => (typeof v === 'string' ? v : '');

const UNSIGNED = /^\d+$/;
const SIGNED = /^-?\d+$/;
const NANOS_PER_MS = 1_000_000n;

/**
 * 64-bit fields of a protobuf metrics request are left as protobufjs's Long objects (decoding them
 * to decimal strings and parsing those back cost more than the rest of a data point). Only real
 * Long instances count: a JSON body cannot make one.
 */
type Long = { low: number; high: number; unsigned: boolean; toString(): string };
const LongClass = protobuf.util.Long as unknown as abstract new (...args: never[]) => Long;
const isLong = (v: unknown): v is Long => v instanceof LongClass;
const TWO_32 = 4_294_967_296;
/** A Long as a Number: exact within ±(2^53−1), beyond it a Number of at least that magnitude (never safe). */
const longToNumber = (v: Long): number => (v.unsigned ? (v.high >>> 0) * TWO_32 : v.high * TWO_32) + (v.low >>> 0);
/**
 * A non-negative Long of nanoseconds as whole milliseconds, exactly: 2^32 ns = 4294 ms + 967,296 ns,
 * and high × 967,296 + low stays below 2^53.
 */
const longNanosToMs = (v: Long): number => {
  const high = v.high >>> 0;
  return high * 4294 + Math.floor((high * 967_296 + (v.low >>> 0)) / 1_000_000);
};

/**
 * A *TimeUnixNano field as epoch milliseconds (truncated): null when absent or zero (OTLP's
 * "unset"), NaN when unreadable. Any other value is a real time, however small: 500 ns is the
 * epoch's first millisecond, not "unset". BigInt keeps a 19-digit nanosecond string exact
 * before the division.
 */
function nanosToMs(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    if (!UNSIGNED.test(v)) return NaN;
    const ns = BigInt(v);
    return ns === 0n ? null : Number(ns / NANOS_PER_MS);
  }
  if (typeof v === 'number') return !Number.isFinite(v) || v < 0 ? NaN : v === 0 ? null : Math.floor(v / 1e6);
  if (isLong(v)) {
    if (!v.unsigned && v.high < 0) return NaN;
    return v.high === 0 && v.low === 0 ? null : longNanosToMs(v);
  }
  return NaN;
}

/**
 * A 64-bit integer field (string or number) as a Number; `absent` when missing, NaN when
 * unreadable and also when beyond ±(2^53−1): a Number (a stored double) would round such a value,
 * so it is never returned rounded. `int64Inexact` tells that case apart, for a message.
 */
function int64(v: unknown, absent = NaN): number {
  if (v === undefined || v === null) return absent;
  let n = NaN;
  if (typeof v === 'string') n = SIGNED.test(v) ? Number(v) : NaN;
  else if (typeof v === 'number') n = Number.isInteger(v) ? v : NaN;
  else if (isLong(v)) n = longToNumber(v);
  return Number.isSafeInteger(n) ? n : NaN;
}

/** Integers beyond this magnitude do not survive a double exactly. */
const INEXACT_INT64 = 'beyond ±(2^53−1), which cannot be stored exactly';

/** Whether `v` is a readable integer that int64 refuses only because it is beyond ±(2^53−1). */
function int64Inexact(v: unknown): boolean {
  if (typeof v === 'string') return SIGNED.test(v) && !Number.isSafeInteger(Number(v));
  if (isLong(v)) return !Number.isSafeInteger(longToNumber(v));
  return typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v);
}

/** A double field: numbers, plus the strings proto3 JSON allows ("NaN", "Infinity", "1.5"). */
function double(v: unknown, absent = NaN): number {
  if (v === undefined || v === null) return absent;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return NaN;
}

const bytesToBase64 = (v: unknown): string => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : stringAt(v));

// A hostile body could nest arrays thousands deep; the recursion below stops well before the stack does.
const MAX_DEPTH = 32;

/** An AnyValue as the JS value stored in a log's attributes/resource (jsonb). */
function anyToJs(v: unknown, where: string, depth = 0): unknown {
  if (depth > MAX_DEPTH) throw malformed(where, `nested at most ${MAX_DEPTH} levels deep`);
  const a = objectAt(v, where);
  if (typeof a.stringValue === 'string') return a.stringValue;
  if (typeof a.boolValue === 'boolean') return a.boolValue;
  if (a.intValue !== undefined && a.intValue !== null) {
    const n = int64(a.intValue);
    // Beyond 2^53 a Number would silently change the value; the decimal string keeps it.
    return Number.isSafeInteger(n) ? n : typeof a.intValue === 'string' ? a.intValue : isLong(a.intValue) ? a.intValue.toString() : null;
  }
  if (a.doubleValue !== undefined && a.doubleValue !== null) {
    const n = double(a.doubleValue);
    // JSON (and jsonb) have no NaN or Infinity.
    return Number.isFinite(n) ? n : String(n);
  }
  if (a.arrayValue !== undefined && a.arrayValue !== null) {
    const arr = objectAt(a.arrayValue, where);
    return listAt(arr.values, where).map((x) => anyToJs(x, where, depth + 1));
  }
  if (a.kvlistValue !== undefined && a.kvlistValue !== null) {
    const kv = objectAt(a.kvlistValue, where);
    return attributesToObject(kv.values, where, depth + 1);
  }
  if (a.bytesValue !== undefined && a.bytesValue !== null) return bytesToBase64(a.bytesValue);
  return null;
}

/** obj[key] = value, also for the key "__proto__", which plain assignment would swallow. */
function put<T>(obj: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** KeyValue[] → plain object (a repeated key: the last one wins). */
function attributesToObject(list: unknown, where: string, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of listAt(list, where)) {
    const kv = objectAt(item, where);
    if (typeof kv.key !== 'string') throw malformed(`${where}[].key`, 'a string');
    put(out, kv.key, anyToJs(kv.value, where, depth));
  }
  return out;
}

/** An AnyValue as text: strings as they are, other scalars as JSON would print them, structures as compact JSON. */
function anyToText(v: unknown, where: string): string {
  const js = anyToJs(v, where);
  if (typeof js === 'string') return js;
  if (js === null) return '';
  if (typeof js === 'number' || typeof js === 'boolean') return String(js);
  return JSON.stringify(js);
}

/** KeyValue[] → [key, text] pairs, for metric labels. */
function attributesToText(list: unknown, where: string): [string, string][] {
  const out: [string, string][] = [];
  for (const item of listAt(list, where)) {
    const kv = objectAt(item, where);
    if (typeof kv.key !== 'string') throw malformed(`${where}[].key`, 'a string');
    out.push([kv.key, anyToText(kv.value, where)]);
  }
  return out;
}


/** Resource attributes that identify where a metric comes from; the others would only add cardinality. */
const RESOURCE_LABEL_KEYS: readonly string[] = [
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
const SCOPE_NAME_LABEL = 'otel_scope_name';
/**
 * The per-process identity of a resource without `service.instance.id`: a hash of its resource
 * attributes outside RESOURCE_LABEL_KEYS, so two processes differing only in, say, process.pid
 * write two series instead of interleaving their cumulative counters in one.
 */
const RESOURCE_ID_LABEL = 'otel_resource_id';
const INSTANCE_ID = 'service.instance.id';

const LABEL_KEY = new RegExp(L.labelKeyPattern);
const METRIC_NAME = new RegExp(L.metricNamePattern);

/** Characters the pattern does not allow become `_`; a key that may not start as it does gets a leading `_`. */
function sanitizeLabelKey(key: string): string {
  if (key === '' || LABEL_KEY.test(key)) return key;
  const k = key.replace(/[^A-Za-z0-9_./-]/g, '_');
  return /^[A-Za-z_]/.test(k) ? k : `_${k}`;
}

function sanitizeMetricName(name: string): string {
  if (name === '' || METRIC_NAME.test(name)) return name;
  const n = name.replace(/[^A-Za-z0-9_:./-]/g, '_');
  return /^[A-Za-z_:]/.test(n) ? n : `_${n}`;
}

type Labels = Record<string, string>;
/** Where a warning goes: the request's Warnings, or a data point's own list until it is stored. */
type Notes = Pick<Warnings, 'add'>;

/**
 * `otel_resource_id` for a resource's attributes ([key, text] pairs, a repeated key: the last
 * wins), or null: null when `service.instance.id` is set (non-empty; it is a label already) or
 * when every attribute is on the allow-list. Otherwise the first 16 hex digits of the SHA-256 of
 * the other attributes' canonical JSON (keys sorted, values as text).
 */
function resourceIdOf(attributes: readonly [string, string][]): string | null {
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
function sanitizedPairs(pairs: readonly [string, string][], warnings: Notes): [string, string][] {
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
interface Part {
  suffix: string;
  extra?: [string, string];
  value: number;
}

const FLAG_NO_RECORDED_VALUE = 1;

/** Why a data point cannot be stored; thrown by the readers below and counted per data point. */
class Refused extends Error {}

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

/** ts of a data point: timeUnixNano, else the time of arrival (never startTimeUnixNano); NaN when unreadable. */
function pointTime(dp: Obj, now: number): number {
  return nanosToMs(dp.timeUnixNano) ?? now;
}

/** An int64 field as a Number; NaN when unreadable; refused when a Number would round it. */
function exactInt(v: unknown, field: string, absent = NaN): number {
  const n = int64(v, absent);
  if (Number.isNaN(n) && int64Inexact(v)) throw new Refused(`${field} ${INEXACT_INT64}`);
  return n;
}

/** A value that must be a non-negative integer count (fixed64). */
const count = (v: unknown, field = 'a count'): number => {
  const n = exactInt(v, field, 0);
  return n >= 0 ? n : NaN;
};

const present = (v: unknown): boolean => v !== undefined && v !== null;

function numberParts(dp: Obj): Part[] {
  if (present(dp.asDouble)) return [{ suffix: '', value: double(dp.asDouble) }];
  if (present(dp.asInt)) return [{ suffix: '', value: exactInt(dp.asInt, 'an asInt') }];
  throw new Refused('a data point without a value');
}

function histogramParts(dp: Obj, where: string, warnings: Notes): Part[] {
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

function exponentialParts(dp: Obj, where: string, warnings: Notes): Part[] {
  const parts: Part[] = [{ suffix: '_count', value: count(dp.count) }];
  if (present(dp.sum)) parts.push({ suffix: '_sum', value: double(dp.sum) });
  const hasBuckets = (side: unknown, at: string) => listAt(objectAt(side, at).bucketCounts, `${at}.bucketCounts`).length > 0;
  const zero = int64(dp.zeroCount, 0);
  if (hasBuckets(dp.positive, `${where}.positive`) || hasBuckets(dp.negative, `${where}.negative`) || zero !== 0 || present(dp.min) || present(dp.max)) {
    warnings.add('exponential histograms: only _count and _sum are stored; buckets, zeroCount, min and max are not');
  }
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

/** AggregationTemporality: the enum number, or its name (the proto3 JSON mapping allows both). */
function temporalityOf(v: unknown): Temporality | null {
  if (v === 1 || v === 'AGGREGATION_TEMPORALITY_DELTA') return 'delta';
  if (v === 2 || v === 'AGGREGATION_TEMPORALITY_CUMULATIVE') return 'cumulative';
  return null;
}

const KIND_WORDS: Record<Kind, string> = { gauge: 'a gauge', sum: 'a sum', histogram: 'a histogram', exponentialHistogram: 'an exponential histogram', summary: 'a summary' };

/** The stream descriptor every data point of a metric shares, or why none of them can be stored. */
function metaOf(metric: Obj, kind: Kind, data: Obj, warnings: Notes): SeriesMeta | string {
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

interface MetricsDecodeState {
  points: PointIn[];
  rejections: Rejections;
  warnings: Warnings;
  /** OTLP data points seen so far (the unit of INGEST_LIMITS.maxItems and of rejectedDataPoints); also numbers them. */
  seen: number;
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

const JSON_WHITESPACE = /^[ \t\r\n]*$/;
const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** decodeOtlpMetrics as it was: toObject for protobuf, then collectMetrics above. */
export function referenceDecodeOtlpMetrics(body: Uint8Array, format: 'json' | 'protobuf', now: number): OtlpDecoded {
  let request: Obj;
  if (format === 'protobuf') {
    const type = OTLP_MESSAGES.metricsRequest;
    try {
      request = type.toObject(type.decode(body), {});
    } catch (err) {
      throw new DomainError('bad_request', `invalid OTLP protobuf: ${reason(err)}`);
    }
  } else {
    const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8').replace(/^\uFEFF/, '');
    if (JSON_WHITESPACE.test(text)) request = {};
    else {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new DomainError('bad_request', `invalid OTLP JSON: ${reason(err)}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DomainError('bad_request', 'invalid OTLP JSON: the body must be an object');
      request = parsed as Obj;
    }
  }
  const state: MetricsDecodeState = { points: [], rejections: new Rejections('data point(s)'), warnings: new Warnings(), seen: 0 };
  collectMetrics(request, now, state);
  const tooMany = Math.max(0, state.seen - L.maxItems);
  return { batch: { points: state.points, logs: [], events: [] }, rejected: state.rejections.count, tooMany, messages: state.rejections.messages(), warnings: state.warnings.messages() };
}
