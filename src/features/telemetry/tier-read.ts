import { cmpFloat8, decodeChunk, type ChunkAggregates } from './chunk-codec.js';
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

interface Pt {
  t: number;
  v: number;
}

const PERCENTILE: Partial<Record<Aggregation, number>> = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 };

// ---------------------------------------------------------------------------------------------

/** One answer's buckets: per bucket start an accumulator. */
type Acc = { n: number; sum: number; min: number; max: number };

/**
 * The answer series of a two-tier read: per stored series (ungrouped) or per group, the
 * aggregate of every non-empty bucket, as the fresh-only statement computes it.
 */
export function aggregateTiers(spec: TierReadSpec, series: readonly TierSeries[], chunks: readonly TierChunk[], fresh: readonly TierFresh[]): MetricReadSeries[] {
  const bin = (ts: number): number => spec.startMs + Math.floor((ts - spec.startMs) / spec.stepMs) * spec.stepMs;
  const inRange = (ts: number): boolean => ts >= spec.startMs && ts < spec.endMs;
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
  const answers = new Map<string, { series: TierSeries; sums: Map<number, Acc>; values: Map<number, number[]> }>();
  const answerOf = (s: TierSeries) => {
    const key = grouped ? JSON.stringify(s.gk ?? []) : s.id;
    let a = answers.get(key);
    if (!a) answers.set(key, (a = { series: s, sums: new Map(), values: new Map() }));
    return a;
  };
  const add = (sums: Map<number, Acc>, b: number, part: Acc): void => {
    const acc = sums.get(b);
    if (!acc) sums.set(b, { ...part });
    else {
      acc.n += part.n;
      acc.sum += part.sum;
      acc.min = pgMin(acc.min, part.min);
      acc.max = pgMax(acc.max, part.max);
    }
  };
  const decoded = (c: TierChunk): Pt[] => {
    const { ts, values } = decodeChunk(c.data!);
    return ts.map((t, i) => ({ t, v: values[i] }));
  };

  for (const s of series) {
    const own = chunksOf.get(s.id) ?? [];
    const f = freshOf.get(s.id);
    if (own.length === 0 && f === undefined) continue;
    const answer = answerOf(s);
    if (temporal) {
      temporalSeries(s, own, f, answer.sums);
    } else if (pct !== undefined) {
      const pts: Pt[] = [];
      for (const c of own) for (const p of decoded(c)) if (inRange(p.t)) pts.push(p);
      if (f?.raw) f.t.forEach((t, i) => pts.push({ t, v: f.v[i] }));
      for (const p of pts) {
        const b = bin(p.t);
        let list = answer.values.get(b);
        if (!list) answer.values.set(b, (list = []));
        list.push(p.v);
      }
    } else {
      // Parts of the series in time order: whole chunks, decoded points, the fresh tier's per-bucket partials.
      const parts: { t: number; b: number; acc: Acc }[] = [];
      for (const c of own) {
        if (c.data === null) parts.push({ t: c.firstTs, b: bin(c.firstTs), acc: { n: c.count, sum: c.sum, min: c.min, max: c.max } });
        else for (const p of decoded(c)) if (inRange(p.t)) parts.push({ t: p.t, b: bin(p.t), acc: { n: 1, sum: p.v, min: p.v, max: p.v } });
      }
      if (f && !f.raw) for (const x of f.buckets) parts.push({ t: x.first, b: x.b, acc: { n: x.n, sum: x.sum, min: x.min, max: x.max } });
      parts.sort((a, b) => a.t - b.t);
      for (const p of parts) add(answer.sums, p.b, p.acc);
    }
  }

  /** One series' deltas (increase/rate), in time order, into its answer's buckets. */
  function temporalSeries(s: TierSeries, own: TierChunk[], f: TierFresh | undefined, sums: Map<number, Acc>): void {
    type Item = { t: number; v: number; whole?: TierChunk };
    const items: Item[] = [];
    for (const c of own) {
      if (c.data === null) items.push({ t: c.firstTs, v: c.firstValue, whole: c });
      else for (const p of decoded(c)) if (p.t >= spec.lookbackStartMs && p.t < spec.endMs) items.push(p);
    }
    if (f?.raw) f.t.forEach((t, i) => items.push({ t, v: f.v[i] }));
    items.sort((a, b) => a.t - b.t || pgCompare(a.v, b.v));
    // The base: the last point before start (within the lookback); then every point of the range.
    let prev: number | null = null;
    const addDelta = (b: number, d: number) => add(sums, b, { n: 1, sum: d, min: d, max: d });
    for (const it of items) {
      if (it.t < spec.startMs) {
        prev = it.whole ? it.whole.lastValue : it.v;
        continue;
      }
      const b = bin(it.t);
      const c = it.whole;
      if (s.temporality === 'delta') {
        addDelta(b, c ? c.sum : it.v);
      } else if (c) {
        if (prev !== null) addDelta(b, delta(s, prev, c.firstValue));
        if (c.count > 1) addDelta(b, s.kind === 'updowncounter' ? c.lastValue - c.firstValue : c.increase);
        prev = c.lastValue;
        continue;
      } else if (prev !== null) {
        addDelta(b, delta(s, prev, it.v));
      }
      prev = c ? c.lastValue : it.v;
    }
  }

  const out: MetricReadSeries[] = [];
  for (const a of answers.values()) {
    const t: number[] = [];
    const v: (number | null)[] = [];
    if (pct !== undefined) {
      for (const [b, list] of a.values) {
        list.sort(pgCompare);
        t.push(b);
        v.push(percentileCont(list, pct));
      }
    } else {
      for (const [b, acc] of a.sums) {
        t.push(b);
        v.push(finish(spec, acc));
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

function finish(spec: TierReadSpec, acc: Acc): number {
  switch (spec.agg) {
    case 'avg':
      return acc.sum / acc.n;
    case 'min':
      return acc.min;
    case 'max':
      return acc.max;
    case 'count':
      return acc.n;
    case 'rate':
      return acc.sum / (spec.stepMs / 1000);
    default:
      return acc.sum; // sum, increase
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
