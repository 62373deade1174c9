import { cmpFloat8, decodeChunkInto, type ChunkAggregates, type DecodeScratch } from './chunk-codec.js';
import type { Aggregation, MetricReadSeries, SeriesDescriptor } from './query-repository.js';
import type { SeriesKind, Temporality } from './telemetry-types.js';

/*
 * A metric read over both tiers (DESIGN §3): when chunks of the matching series overlap the
 * range, QueryRepository.metricRead's statements return, instead of finished aggregates, the
 * series (in lookup order), the overlapping chunks and the fresh tier's part of the range, and
 * this module finishes the aggregation in Node with PostgreSQL's semantics, so an answer does not
 * depend on which tier holds a point:
 *
 * - float8 order: NaN is greater than every number and equal to itself, -0 equals 0 (min/max,
 *   percentile sorting, the `>=` of a counter delta, ties in time ordered by value as lag() does);
 * - min/max keep the later of equal values (float8smaller/float8larger);
 * - sum/avg accumulate left to right, starting from the first value (not from 0);
 * - percentile_cont interpolates `lo + (hi − lo) · (pos − floor(pos))` with pos = p · (n − 1),
 *   and takes the lower value when pos is whole;
 * - increase/rate: DELTA_SQL per consecutive pair of a series' points in (ts, value) order.
 *
 * A chunk lying wholly inside one bucket of the range (and, for increase/rate, with no fresh point
 * of its series between its first and last point) arrives without its data: its stored count,
 * min, max and sum (increase: first_value for the delta from the previous point, then the stored
 * increase, last_value as the next point's base) stand for its points. Others are decoded.
 *
 * Floating point: counts, min, max, percentiles and every delta are exact whatever the tier. A sum
 * (sum, avg, increase/rate) is accumulated in time order, series by series in lookup order, as
 * the fresh-only statement accumulates it; it can differ from the fresh-only answer in the last
 * bits only where a partial sum is added as one term (a whole chunk's stored sum or increase, the
 * fresh tier's per-bucket sum of a series inside a group) and the values are not exactly
 * representable sums (integers and short binary fractions, e.g. counters, are always exact).
 */

/** What the statement tells of one matching series, in lookup order. */
export interface TierSeries {
  id: string;
  kind: SeriesKind;
  temporality: Temporality | null;
  /** Ungrouped: the series' labels and descriptor; grouped: its group key. */
  labels: Record<string, string> | null;
  descriptor: SeriesDescriptor | null;
  gk: (string | null)[] | null;
}

/** One chunk overlapping the range (or the lookback); data null: wholly inside one bucket, use the aggregates. */
export interface TierChunk extends ChunkAggregates {
  seriesId: string;
  data: Uint8Array | null;
}

/**
 * The fresh tier's part of one series: raw points in (ts, value) order (percentiles, increase,
 * rate), or per-bucket partial aggregates (avg, min, max, sum, count).
 */
export type TierFresh =
  | { seriesId: string; raw: true; t: number[]; v: number[] }
  | { seriesId: string; raw: false; buckets: { b: number; first: number; n: number; sum: number; min: number; max: number }[] };

export interface TierReadSpec {
  agg: Aggregation;
  startMs: number;
  endMs: number;
  stepMs: number;
  /** increase/rate: the earliest time a base point may have. */
  lookbackStartMs: number;
  /** The group's `by` labels ([]: ungrouped). */
  by: string[];
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL's float8 semantics

/** float8 comparison: NaN above everything (and equal to NaN), -0 = 0 (the codec's, which orders its aggregates by it). */
const pgCompare = cmpFloat8;

/** float8smaller as min() applies it to (state, next): the next one unless the state is smaller. */
const pgMin = (state: number, next: number): number => (pgCompare(state, next) < 0 ? state : next);
/** float8larger as max() applies it to (state, next). */
const pgMax = (state: number, next: number): number => (pgCompare(state, next) > 0 ? state : next);

/** percentile_cont(p) of values sorted by pgCompare. */
export function percentileCont(sorted: readonly number[], p: number): number {
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const first = sorted[lo];
  if (hi === lo) return first;
  return first + (sorted[hi] - first) * (pos - lo);
}

/** DELTA_SQL: the growth from prev to value. */
function delta(s: TierSeries, prev: number, value: number): number {
  if (s.temporality === 'delta') return value;
  return pgCompare(value, prev) >= 0 || s.kind === 'updowncounter' ? value - prev : value;
}

const PERCENTILE: Partial<Record<Aggregation, number>> = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 };

// ---------------------------------------------------------------------------------------------

/**
 * One answer's buckets, by bucket index (bucket start = startMs + index · stepMs): count, sum,
 * min, max in typed arrays, and the indexes in first-seen order (the order the answer lists them).
 */
class Buckets {
  readonly n: Float64Array;
  readonly sum: Float64Array;
  readonly min: Float64Array;
  readonly max: Float64Array;
  /** The bucket start each index was first seen with. */
  readonly start: Float64Array;
  readonly order: number[] = [];

  constructor(size: number) {
    this.n = new Float64Array(size);
    this.sum = new Float64Array(size);
    this.min = new Float64Array(size);
    this.max = new Float64Array(size);
    this.start = new Float64Array(size);
  }

  /** Adds a part (n points, their sum, min and max) to bucket i, as the statement's aggregates would. */
  add(i: number, b: number, n: number, sum: number, min: number, max: number): void {
    if (this.n[i] === 0) {
      this.order.push(i);
      this.start[i] = b;
      this.n[i] = n;
      this.sum[i] = sum;
      this.min[i] = min;
      this.max[i] = max;
    } else {
      this.n[i] += n;
      this.sum[i] += sum;
      this.min[i] = pgMin(this.min[i], min);
      this.max[i] = pgMax(this.max[i], max);
    }
  }
}

/**
 * Growable parallel arrays, reused from read to read (aggregateTiers runs synchronously): the
 * parts of one series (t: time order key, b: bucket start, n/sum/min/max: the part's aggregate,
 * w: the index of a whole chunk or -1) without an object per point.
 */
class Parts {
  len = 0;
  t = new Float64Array(1024);
  b = new Float64Array(1024);
  n = new Float64Array(1024);
  sum = new Float64Array(1024);
  min = new Float64Array(1024);
  max = new Float64Array(1024);
  w = new Int32Array(1024);

  reserve(more: number): void {
    const need = this.len + more;
    if (need <= this.t.length) return;
    const size = Math.max(need, this.t.length * 2);
    const grow = <A extends Float64Array | Int32Array>(a: A): A => {
      const x = new (a.constructor as new (n: number) => A)(size);
      x.set(a.subarray(0, this.len));
      return x;
    };
    this.t = grow(this.t);
    this.b = grow(this.b);
    this.n = grow(this.n);
    this.sum = grow(this.sum);
    this.min = grow(this.min);
    this.max = grow(this.max);
    this.w = grow(this.w);
  }

  push(t: number, b: number, n: number, sum: number, min: number, max: number, w: number): void {
    this.reserve(1);
    const i = this.len++;
    this.t[i] = t;
    this.b[i] = b;
    this.n[i] = n;
    this.sum[i] = sum;
    this.min[i] = min;
    this.max[i] = max;
    this.w[i] = w;
  }

  /**
   * The parts' indexes in the order a stable sort by `before` gives (ties keep insertion order);
   * null when they are in that order already (a chunk's points are stored in (ts, value) order).
   */
  order(before: (i: number, j: number) => number): number[] | null {
    let sorted = true;
    for (let i = 1; i < this.len; i++) {
      if (before(i - 1, i) > 0) {
        sorted = false;
        break;
      }
    }
    if (sorted) return null;
    const idx = Array.from({ length: this.len }, (_, i) => i);
    return idx.sort((i, j) => before(i, j) || i - j);
  }
}

const parts = new Parts();
const scratch: DecodeScratch = { ts: new Float64Array(1024), values: new Float64Array(1024) };

/**
 * The answer series of a two-tier read: per stored series (ungrouped) or per group, the
 * aggregate of every non-empty bucket, as the fresh-only statement computes it.
 */
export function aggregateTiers(spec: TierReadSpec, series: readonly TierSeries[], chunks: readonly TierChunk[], fresh: readonly TierFresh[]): MetricReadSeries[] {
  const { startMs, endMs, stepMs } = spec;
  const size = Math.max(0, Math.ceil((endMs - startMs) / stepMs));
  const index = (ts: number): number => Math.floor((ts - startMs) / stepMs);
  /** A bucket start's index; a start outside the range cannot come from the statements. */
  const indexOfStart = (b: number): number => {
    const i = index(b);
    if (!(i >= 0 && i < size)) throw new Error(`tier read: bucket ${b} outside the range`);
    return i;
  };
  const chunksOf = new Map<string, TierChunk[]>();
  for (const c of chunks) {
    let list = chunksOf.get(c.seriesId);
    if (!list) chunksOf.set(c.seriesId, (list = []));
    list.push(c);
  }
  for (const list of chunksOf.values()) list.sort((a, b) => a.firstTs - b.firstTs);
  const freshOf = new Map(fresh.map((f) => [f.seriesId, f]));
  const grouped = spec.by.length > 0;
  const temporal = spec.agg === 'increase' || spec.agg === 'rate';
  const pct = PERCENTILE[spec.agg];

  // Answers in lookup order of their first series; per answer, buckets in first-seen order.
  const answers = new Map<string, { series: TierSeries; sums: Buckets | null; values: (number[] | undefined)[] | null; valueOrder: number[] }>();
  const answerOf = (s: TierSeries) => {
    const key = grouped ? JSON.stringify(s.gk ?? []) : s.id;
    let a = answers.get(key);
    if (!a) answers.set(key, (a = { series: s, sums: pct === undefined ? new Buckets(size) : null, values: pct === undefined ? null : [], valueOrder: [] }));
    return a;
  };

  for (const s of series) {
    const own = chunksOf.get(s.id) ?? [];
    const f = freshOf.get(s.id);
    if (own.length === 0 && f === undefined) continue;
    const answer = answerOf(s);
    if (temporal) {
      temporalSeries(s, own, f, answer.sums!);
    } else if (pct !== undefined) {
      const values = answer.values!;
      const into = (t: number, v: number): void => {
        const i = index(t);
        let list = values[i];
        if (!list) {
          values[i] = list = [];
          answer.valueOrder.push(i);
        }
        list.push(v);
      };
      for (const c of own) {
        const n = decodeChunkInto(c.data!, scratch);
        const { ts, values: vs } = scratch;
        for (let i = 0; i < n; i++) if (ts[i] >= startMs && ts[i] < endMs) into(ts[i], vs[i]);
      }
      if (f?.raw) for (let i = 0; i < f.t.length; i++) into(f.t[i], f.v[i]);
    } else {
      // Parts of the series in time order: whole chunks, decoded points, the fresh tier's per-bucket partials.
      parts.len = 0;
      for (const c of own) {
        if (c.data === null) {
          const i = index(c.firstTs);
          parts.push(c.firstTs, startMs + i * stepMs, c.count, c.sum, c.min, c.max, -1);
        } else {
          const n = decodeChunkInto(c.data, scratch);
          const { ts, values: vs } = scratch;
          parts.reserve(n);
          for (let i = 0; i < n; i++) {
            const t = ts[i];
            if (t >= startMs && t < endMs) {
              const v = vs[i];
              parts.push(t, startMs + index(t) * stepMs, 1, v, v, v, -1);
            }
          }
        }
      }
      if (f && !f.raw) for (const x of f.buckets) parts.push(x.first, x.b, x.n, x.sum, x.min, x.max, -1);
      const { t, b, n, sum, min, max } = parts;
      const order = parts.order((i, j) => t[i] - t[j]);
      const acc = answer.sums!;
      for (let k = 0; k < parts.len; k++) {
        const p = order ? order[k] : k;
        acc.add(indexOfStart(b[p]), b[p], n[p], sum[p], min[p], max[p]);
      }
    }
  }

  /** One series' deltas (increase/rate), in time order, into its answer's buckets. */
  function temporalSeries(s: TierSeries, own: TierChunk[], f: TierFresh | undefined, acc: Buckets): void {
    // Items: t and v (a whole chunk: its first point, w its index in `own`), in (t, v) order.
    parts.len = 0;
    for (let k = 0; k < own.length; k++) {
      const c = own[k];
      if (c.data === null) parts.push(c.firstTs, 0, 0, c.firstValue, 0, 0, k);
      else {
        const n = decodeChunkInto(c.data, scratch);
        const { ts, values: vs } = scratch;
        parts.reserve(n);
        for (let i = 0; i < n; i++) if (ts[i] >= spec.lookbackStartMs && ts[i] < endMs) parts.push(ts[i], 0, 0, vs[i], 0, 0, -1);
      }
    }
    if (f?.raw) {
      parts.reserve(f.t.length);
      for (let i = 0; i < f.t.length; i++) parts.push(f.t[i], 0, 0, f.v[i], 0, 0, -1);
    }
    const { t, sum: v, w } = parts;
    const order = parts.order((i, j) => t[i] - t[j] || pgCompare(v[i], v[j]));
    // The base: the last point before start (within the lookback); then every point of the range.
    // (A flag beside a number, not number | null: a variable of both kinds boxes every value it takes.)
    let prev = 0;
    let hasPrev = false;
    const addDelta = (i: number, d: number) => acc.add(i, startMs + i * stepMs, 1, d, d, d);
    for (let k = 0; k < parts.len; k++) {
      const p = order ? order[k] : k;
      const c = w[p] >= 0 ? own[w[p]] : null;
      const it = v[p];
      if (t[p] < startMs) {
        prev = c ? c.lastValue : it;
        hasPrev = true;
        continue;
      }
      const i = index(t[p]);
      if (s.temporality === 'delta') {
        addDelta(i, c ? c.sum : it);
      } else if (c) {
        if (hasPrev) addDelta(i, delta(s, prev, c.firstValue));
        if (c.count > 1) addDelta(i, s.kind === 'updowncounter' ? c.lastValue - c.firstValue : c.increase);
        prev = c.lastValue;
        hasPrev = true;
        continue;
      } else if (hasPrev) {
        addDelta(i, delta(s, prev, it));
      }
      prev = c ? c.lastValue : it;
      hasPrev = true;
    }
  }

  const out: MetricReadSeries[] = [];
  for (const a of answers.values()) {
    const t: number[] = [];
    const v: (number | null)[] = [];
    if (pct !== undefined) {
      for (const i of a.valueOrder) {
        const list = a.values![i]!;
        list.sort(pgCompare);
        t.push(startMs + i * stepMs);
        v.push(percentileCont(list, pct));
      }
    } else {
      const acc = a.sums!;
      for (const i of acc.order) {
        t.push(acc.start[i]);
        v.push(finish(spec, acc.n[i], acc.sum[i], acc.min[i], acc.max[i]));
      }
    }
    if (t.length === 0) continue;
    const s = a.series;
    out.push(
      grouped
        ? { labels: pickedLabels(spec.by, s.gk ?? []), descriptor: null, t, v }
        : { labels: s.labels ?? {}, descriptor: s.descriptor, t, v },
    );
  }
  return out;
}

function finish(spec: TierReadSpec, n: number, sum: number, min: number, max: number): number {
  switch (spec.agg) {
    case 'avg':
      return sum / n;
    case 'min':
      return min;
    case 'max':
      return max;
    case 'count':
      return n;
    case 'rate':
      return sum / (spec.stepMs / 1000);
    default:
      return sum; // sum, increase
  }
}

/** A group's answer labels: each `by` label it has, with its value (null: the series lacks it). */
export function pickedLabels(by: string[], key: (string | null)[]): Record<string, string> {
  const picked: Record<string, string> = {};
  by.forEach((l, i) => {
    const v = key[i];
    if (v !== null && v !== undefined) picked[l] = v;
  });
  return picked;
}
