import * as codec from './chunk-codec.js';
import { cmpFloat8, counterDelta, decodeChunkInto, decodeChunkSubInto, FOLD_COUNTER, FOLD_UPDOWN, FOLD_VALUES, foldChunk, type ChunkFold, type DecodeScratch } from './chunk-codec.js';

import type { Aggregation, MetricReadSeries, SeriesDescriptor } from './query-repository.js';
import * as tables from './telemetry-tables.js';
import type { SeriesKind, Temporality } from './telemetry-types.js';

// The aggregate layout's indexes and the chunk window as this module's own constants: read per chunk
// and half, and an imported binding can cost a property read through a getter where modules are
// transpiled (tsx: measured as the top entry of a profile).
const AGG_COUNT = codec.AGG_COUNT;
const AGG_FIRST = codec.AGG_FIRST;
const AGG_FIRST_TS = codec.AGG_FIRST_TS;
const AGG_INCREASE = codec.AGG_INCREASE;
const AGG_LAST = codec.AGG_LAST;
const AGG_LAST_TS = codec.AGG_LAST_TS;
const AGG_MAX = codec.AGG_MAX;
const AGG_MIN = codec.AGG_MIN;
const AGG_SIZE = codec.AGG_SIZE;
const AGG_SUM = codec.AGG_SUM;
const CHUNK_WINDOW_MS = tables.CHUNK_WINDOW_MS;

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
 * increase, last_value as the next point's base) stand for its points. A chunk whose two 1-hour
 * halves each lie wholly inside one bucket (by the same rules, the half's bounds standing for the
 * chunk's) arrives with its halves' aggregates (`sub`, decodeChunkSubInto) instead of its data,
 * and each half stands for its points in the same way. Others are decoded. A chunk without `sub`
 * (written before the column existed) is decoded wherever a half would have served.
 *
 * Floating point: counts, min, max, percentiles and every delta are exact whatever the tier. A sum
 * (sum, avg, increase/rate) is accumulated in time order, series by series in lookup order, as
 * the fresh-only statement accumulates it; it can differ from the fresh-only answer in the last
 * bits only where a partial sum is added as one term (a whole chunk's stored sum or increase, a
 * half's, the fresh tier's per-bucket sum of a series inside a group) and the values are not exactly
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

/**
 * One series' chunks overlapping the range (or the lookback) as the statement sends them: one
 * record per chunk, in no particular order but a percentile's in first-ts order (chunkRecords in
 * query-repository.ts): first and last time as big-endian int8 microseconds since 2000-01-01, seven
 * float8, big endian (count, min, max, sum, first value, last value, increase: AGG_* order after the two times),
 * an int4 L, then L bytes of `data` (L ≥ 0: decode the points), or nothing (L = -1: the chunk lies
 * wholly inside one bucket, use its aggregates), or -2 − L bytes of `sub` (L ≤ -2: each of its
 * halves lies wholly inside one bucket, use the halves' aggregates).
 */
export interface TierChunks {
  seriesId: string;
  records: Uint8Array;
}

/** 2000-01-01T00:00:00Z (PostgreSQL's timestamp epoch) in microseconds since 1970. */
const PG_EPOCH_US = 946_684_800_000_000;

/** Bytes before a record's data or sub. */
const CHUNK_RECORD_HEADER = AGG_SIZE * 8 + 4;

/**
 * Walks the chunk records without an object per chunk: next() loads the record's aggregates into
 * `agg` and says what follows (the data's or sub's bytes are records[start, end)).
 */
class ChunkCursor {
  readonly agg = new Float64Array(AGG_SIZE);
  /** -1: aggregates only; 0: data; 1: sub. */
  kind = -1;
  start = 0;
  end = 0;
  private o = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);

  reset(buf: Uint8Array): void {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.o = 0;
  }

  /** The byte offset of the next record (a value for seek). */
  get offset(): number {
    return this.o;
  }

  /** Makes the record at byte offset o (an earlier `offset`) the next one. */
  seek(o: number): void {
    this.o = o;
  }

  next(): boolean {
    const o = this.o;
    if (o >= this.buf.length) return false;
    const end = this.header(o);
    for (let i = 2; i < AGG_SIZE; i++) this.agg[i] = this.view.getFloat64(o + 8 * i);
    this.start = o + CHUNK_RECORD_HEADER;
    this.end = end;
    this.o = end;
    return true;
  }

  /**
   * Steps over the next record reading only its first and last time (into agg, as next() does)
   * and its kind: false at the end (start and end are left as they were).
   */
  skip(): boolean {
    const o = this.o;
    if (o >= this.buf.length) return false;
    this.o = this.header(o);
    return true;
  }

  /** Reads the record at o's first and last time (agg[0], agg[1]) and kind; returns where it ends. */
  private header(o: number): number {
    const len = this.buf.length;
    if (o + CHUNK_RECORD_HEADER > len) throw new Error('chunk records: truncated');
    const view = this.view;
    // First and last time: int8 microseconds since 2000-01-01 (exact as a double below 2^53); ms as
    // (extract(epoch) * 1000)::float8 gives them (one correctly rounded division of the same value).
    this.agg[0] = (view.getInt32(o) * 4294967296 + view.getUint32(o + 4) + PG_EPOCH_US) / 1000;
    this.agg[1] = (view.getInt32(o + 8) * 4294967296 + view.getUint32(o + 12) + PG_EPOCH_US) / 1000;
    const l = view.getInt32(o + AGG_SIZE * 8);
    // l >= 0: the data, l bytes; -1: nothing; else the sub, -2 - l bytes.
    this.kind = l >= 0 ? 0 : l === -1 ? -1 : 1;
    const end = o + CHUNK_RECORD_HEADER + (l >= 0 ? l : l === -1 ? 0 : -2 - l);
    if (end > len) throw new Error('chunk records: truncated');
    return end;
  }

  /** The record's data, decoded into scratch; returns the count. */
  decode(into: DecodeScratch): number {
    if (this.kind !== 0) throw new Error('chunk records: a chunk without its data where its points are needed');
    return decodeChunkInto(this.buf.subarray(this.start, this.end), into);
  }

  /** The record's data folded into buckets (foldChunk): the count, or -1 when it must be decoded instead. */
  fold(into: DecodeScratch, f: ChunkFold): number {
    if (this.kind !== 0) throw new Error('chunk records: a chunk without its data where its points are needed');
    return foldChunk(this.buf.subarray(this.start, this.end), into, f);
  }

  /** The record's halves' aggregates into halves[0, 2·AGG_SIZE) (an empty half has count 0). */
  halves(into: Float64Array): void {
    const first = this.agg[AGG_FIRST_TS];
    decodeChunkSubInto(this.buf, this.start, this.end, Math.floor(first / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS, CHUNK_WINDOW_MS, this.agg, 0, into);
  }
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
  /**
   * false: every series takes the general path (collect its parts, sort them, then add them),
   * never the streamed one; the answers are the same (tests compare the two). Default true.
   */
  streaming?: boolean;
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
  return s.kind === 'updowncounter' ? value - prev : counterDelta(prev, value);
}

const PERCENTILE: Partial<Record<Aggregation, number>> = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 };

// ---------------------------------------------------------------------------------------------

/** The min and max of an answer that keeps neither. */
const NONE = new Float64Array(0);

/**
 * The storage of one read's Buckets, reused from read to read (aggregateTiers runs synchronously
 * and its Buckets do not outlive it): views of a few large arrays instead of a typed array of its
 * own per answer and field (hundreds per read, each a separately allocated backing store: measured
 * to cost milliseconds in allocation and garbage collection).
 */
class Arena {
  private block = new Float64Array(0);
  private used = 0;

  /** cap: the largest block (elements) it grows to and keeps; what does not fit in it is allocated on its own, as without an arena. */
  constructor(private readonly cap: number) {}

  /** Starts a read: the previous read's views are no longer used. */
  reset(): void {
    this.used = 0;
  }

  /** size elements, not zeroed. */
  take(size: number): Float64Array {
    if (this.used + size > this.block.length) {
      const grown = Math.max(2 * this.block.length, size, 1 << 16);
      // A huge read gets arrays of its exact sizes (no doubling chain of blocks, none kept after it).
      if (grown > this.cap) return new Float64Array(size);
      // A new block (views of the old one stay valid); the next read starts in it.
      this.block = new Float64Array(grown);
      this.used = 0;
    }
    const v = this.block.subarray(this.used, this.used + size);
    this.used += size;
    return v;
  }
}

/** The arena's largest block: 8 MiB, kept between reads. */
const arena = new Arena(1 << 20);

/**
 * Bucket indexes in the order they were first seen, in a Float64Array: an answer's buckets are
 * listed by it, up to its bucket count. A `number[]` grown by push cost a reallocation chain per
 * answer (~1 MB of garbage for 150 series × 240 buckets).
 */
export class IndexList {
  len = 0;
  constructor(public at: Float64Array) {}

  push(i: number): void {
    // (Never past the bucket count when every bucket is seen once; grown all the same if one is not.)
    if (this.len === this.at.length) this.grow();
    this.at[this.len++] = i;
  }

  private grow(): void {
    const at = new Float64Array(Math.max(16, 2 * this.at.length));
    at.set(this.at);
    this.at = at;
  }
}

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
  readonly order: IndexList;

  /**
   * minMax false: no min and max kept (empty arrays), for an answer that reads neither. The
   * arrays are views of the arena's (counts zeroed; a sum, min, max or start is written when its
   * bucket is first seen, before anything reads it).
   */
  constructor(size: number, minMax = true) {
    this.n = arena.take(size).fill(0);
    this.sum = arena.take(size);
    this.min = minMax ? arena.take(size) : NONE;
    this.max = minMax ? arena.take(size) : NONE;
    this.start = arena.take(size);
    this.order = new IndexList(arena.take(size));
  }

  /** Adds a part (n points, their sum, min and max) to bucket i, as the statement's aggregates would. */
  add(i: number, b: number, n: number, sum: number, min: number, max: number): void {
    if (this.n[i] === 0) {
      this.order.push(i);
      this.start[i] = b;
      this.n[i] = n;
      this.sum[i] = sum;
      if (this.min.length !== 0) {
        this.min[i] = min;
        this.max[i] = max;
      }
    } else {
      this.n[i] += n;
      this.sum[i] += sum;
      if (this.min.length !== 0) {
        this.min[i] = pgMin(this.min[i], min);
        this.max[i] = pgMax(this.max[i], max);
      }
    }
  }
}

/**
 * Growable parallel arrays, reused from read to read (aggregateTiers runs synchronously): the
 * parts of one series without an object per point or chunk. A part is a point or a set of
 * points standing for themselves by their aggregates (a whole chunk, a half, the fresh tier's
 * points of one bucket): t its first time (the time order key), b its bucket start, n/sum/min/max
 * its aggregate; for increase/rate v its first value, last its last value, inc its increase, and
 * w 1 for an aggregate part (0: a point).
 */
class Parts {
  len = 0;
  t = new Float64Array(1024);
  b = new Float64Array(1024);
  n = new Float64Array(1024);
  sum = new Float64Array(1024);
  min = new Float64Array(1024);
  max = new Float64Array(1024);
  v = new Float64Array(1024);
  last = new Float64Array(1024);
  inc = new Float64Array(1024);
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
    this.v = grow(this.v);
    this.last = grow(this.last);
    this.inc = grow(this.inc);
    this.w = grow(this.w);
  }

  /** A bucket's part (avg, min, max, sum, count). */
  push(t: number, b: number, n: number, sum: number, min: number, max: number): void {
    if (this.len === this.t.length) this.reserve(1);
    const i = this.len++;
    this.t[i] = t;
    this.b[i] = b;
    this.n[i] = n;
    this.sum[i] = sum;
    this.min[i] = min;
    this.max[i] = max;
  }

  /** A part of increase/rate: a point (w 0: v its value) or points by their aggregates (w 1). */
  pushTemporal(t: number, n: number, sum: number, v: number, last: number, inc: number, w: number): void {
    if (this.len === this.t.length) this.reserve(1);
    const i = this.len++;
    this.t[i] = t;
    this.n[i] = n;
    this.sum[i] = sum;
    this.v[i] = v;
    this.last[i] = last;
    this.inc[i] = inc;
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

/** A series' chunk records: byte offset, first and last time (reused, as parts). */
class Records {
  len = 0;
  at = new Float64Array(64);
  first = new Float64Array(64);
  last = new Float64Array(64);

  push(at: number, first: number, last: number): void {
    if (this.len === this.at.length) {
      const grow = (a: Float64Array) => {
        const x = new Float64Array(2 * a.length);
        x.set(a);
        return x;
      };
      this.at = grow(this.at);
      this.first = grow(this.first);
      this.last = grow(this.last);
    }
    const i = this.len++;
    this.at[i] = at;
    this.first[i] = first;
    this.last[i] = last;
  }
}

const recs = new Records();

const EMPTY = new Uint8Array(0);
const scratch: DecodeScratch = { ts: new Float64Array(1024), values: new Float64Array(1024) };
const cursor = new ChunkCursor();
/** The two halves' aggregates of the record under the cursor. */
const halves = new Float64Array(2 * AGG_SIZE);
/** Where streamed series fold their chunks' points (foldChunk), pointed at the answer's buckets per series. */
const fold: ChunkFold = { mode: FOLD_VALUES, startMs: 0, endMs: 0, stepMs: 1, lowMs: 0, n: NONE, sum: NONE, start: NONE, seen: new IndexList(NONE), prev: 0, hasPrev: false };

/**
 * The answer series of a two-tier read: per stored series (ungrouped) or per group, the
 * aggregate of every non-empty bucket, as the fresh-only statement computes it.
 */
export function aggregateTiers(spec: TierReadSpec, series: readonly TierSeries[], chunks: readonly TierChunks[], fresh: readonly TierFresh[]): MetricReadSeries[] {
  arena.reset();
  try {
    return aggregate(spec, series, chunks, fresh);
  } finally {
    arena.reset();
    // Nothing of this read stays reachable from the module's scratch.
    fold.n = fold.sum = fold.start = NONE;
    fold.seen = new IndexList(NONE);
  }
}

function aggregate(spec: TierReadSpec, series: readonly TierSeries[], chunks: readonly TierChunks[], fresh: readonly TierFresh[]): MetricReadSeries[] {
  const { startMs, endMs, stepMs } = spec;
  const size = Math.max(0, Math.ceil((endMs - startMs) / stepMs));
  const index = (ts: number): number => Math.floor((ts - startMs) / stepMs);
  const chunksOf = new Map<string, Uint8Array>();
  for (const c of chunks) {
    if (chunksOf.has(c.seriesId)) throw new Error(`tier read: two chunk records of series ${c.seriesId}`);
    chunksOf.set(c.seriesId, c.records);
  }
  const freshOf = new Map(fresh.map((f) => [f.seriesId, f]));
  const grouped = spec.by.length > 0;
  const temporal = spec.agg === 'increase' || spec.agg === 'rate';
  const pct = PERCENTILE[spec.agg];

  // Only min and max read the buckets' min and max.
  const needMinMax = spec.agg === 'min' || spec.agg === 'max';
  // Answers in lookup order of their first series; per answer, buckets in first-seen order.
  const answers = new Map<string, { series: TierSeries; sums: Buckets | null; values: (number[] | undefined)[] | null; valueOrder: number[] }>();
  const answerOf = (s: TierSeries) => {
    const key = grouped ? JSON.stringify(s.gk ?? []) : s.id;
    let a = answers.get(key);
    if (!a) answers.set(key, (a = { series: s, sums: pct === undefined ? new Buckets(size, needMinMax) : null, values: pct === undefined ? null : [], valueOrder: [] }));
    return a;
  };
  const agg = cursor.agg;
  // Bucket starts (startMs + i · stepMs) and indexes exact in integers: what streaming relies on.
  const exact = spec.streaming !== false && Number.isSafeInteger(startMs) && Number.isSafeInteger(endMs) && Number.isSafeInteger(stepMs) && stepMs > 0 && Number.isSafeInteger(startMs + size * stepMs);

  for (const s of series) {
    const own = chunksOf.get(s.id);
    const f = freshOf.get(s.id);
    if (own === undefined && f === undefined) continue;
    const answer = answerOf(s);
    cursor.reset(own ?? EMPTY);
    if (temporal) {
      if (exact && inTimeOrder(own, f, true)) streamTemporal(s, f, answer.sums!);
      else temporalSeries(s, f, answer.sums!);
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
      while (cursor.next()) {
        const n = cursor.decode(scratch);
        const { ts, values: vs } = scratch;
        for (let i = 0; i < n; i++) if (ts[i] >= startMs && ts[i] < endMs) into(ts[i], vs[i]);
      }
      if (f?.raw) for (let i = 0; i < f.t.length; i++) into(f.t[i], f.v[i]);
    } else if (exact && inTimeOrder(own, f, false)) {
      streamSeries(f, answer.sums!);
    } else {
      // Parts of the series in time order: whole chunks, halves, decoded points, the fresh tier's per-bucket partials.
      parts.len = 0;
      while (cursor.next()) {
        if (cursor.kind === -1) {
          const t = agg[AGG_FIRST_TS];
          parts.push(t, startMs + index(t) * stepMs, agg[AGG_COUNT], agg[AGG_SUM], agg[AGG_MIN], agg[AGG_MAX]);
        } else if (cursor.kind === 1) {
          cursor.halves(halves);
          for (let h = 0; h < 2 * AGG_SIZE; h += AGG_SIZE) {
            if (halves[h + AGG_COUNT] === 0) continue;
            const t = halves[h + AGG_FIRST_TS];
            parts.push(t, startMs + index(t) * stepMs, halves[h + AGG_COUNT], halves[h + AGG_SUM], halves[h + AGG_MIN], halves[h + AGG_MAX]);
          }
        } else {
          const n = cursor.decode(scratch);
          const { ts, values: vs } = scratch;
          parts.reserve(n);
          for (let i = 0; i < n; i++) {
            const t = ts[i];
            if (t >= startMs && t < endMs) {
              const v = vs[i];
              parts.push(t, startMs + index(t) * stepMs, 1, v, v, v);
            }
          }
        }
      }
      if (f && !f.raw) for (const x of f.buckets) parts.push(x.first, x.b, x.n, x.sum, x.min, x.max);
      const { t, b, n, sum, min, max } = parts;
      const order = parts.order((i, j) => t[i] - t[j]);
      const acc = answer.sums!;
      for (let k = 0; k < parts.len; k++) {
        const p = order ? order[k] : k;
        const i = index(b[p]);
        // A bucket start outside the range cannot come from the statements (nor from a chunk or half the statement sent as whole in one bucket).
        if (!(i >= 0 && i < size)) throw new Error(`tier read: bucket ${b[p]} outside the range`);
        acc.add(i, b[p], n[p], sum[p], min[p], max[p]);
      }
    }
  }

  /*
   * Streaming. A series' records cover disjoint spans of time (a chunk per window), so when they
   * are taken by first time, and the fresh tier's part comes after the last of them, the parts
   * come out in the order the general path sorts them into: record by record (a record's points
   * are stored in order; one that is not is put in order by itself: its span is its own), then the
   * fresh tier's. The parts then go straight into the buckets, without being collected and sorted
   * first: the same additions in the same order. inTimeOrder checks that (it leaves the cursor at
   * the first record and the records' order in `recs`); otherwise the general path runs.
   */

  /** Whether the series' records, by first time, cover disjoint spans, with the fresh tier's part after them, in order. */
  function inTimeOrder(own: Uint8Array | undefined, f: TierFresh | undefined, byValue: boolean): boolean {
    recs.len = 0;
    if (own !== undefined) {
      let o = 0;
      while (cursor.skip()) {
        recs.push(o, agg[AGG_FIRST_TS], agg[AGG_LAST_TS]);
        o = cursor.offset;
      }
      cursor.seek(0);
    }
    // Records read by their aggregates only (a month at 1 h: whole chunks and halves) stream too:
    // measured 14% less than collecting their parts, checking their order and adding them.
    const n = recs.len;
    const { first, last, at } = recs;
    let sorted = true;
    for (let k = 1; k < n; k++) if (!(first[k - 1] <= first[k])) sorted = false;
    if (!sorted) {
      const idx = Array.from({ length: n }, (_, k) => k).sort((a, b) => first[a] - first[b]);
      const f2 = idx.map((k) => first[k]);
      const l2 = idx.map((k) => last[k]);
      const a2 = idx.map((k) => at[k]);
      for (let k = 0; k < n; k++) {
        first[k] = f2[k];
        last[k] = l2[k];
        at[k] = a2[k];
      }
    }
    for (let k = 1; k < n; k++) if (!(last[k - 1] < first[k])) return false;
    const end = n > 0 ? last[n - 1] : -Infinity;
    if (f === undefined) return true;
    if (byValue) {
      if (!f.raw) return true; // (not read by increase/rate)
      const { t, v } = f;
      for (let i = 0; i < t.length; i++) {
        if (!(t[i] > end)) return false;
        if (i > 0 && !(t[i] > t[i - 1] || (t[i] === t[i - 1] && pgCompare(v[i - 1], v[i]) <= 0))) return false;
      }
    } else {
      if (f.raw) return true; // (not read by these aggregations)
      let prev = end;
      for (let i = 0; i < f.buckets.length; i++) {
        const x = f.buckets[i].first;
        if (!(x > end && x >= prev)) return false;
        prev = x;
      }
    }
    return true;
  }

  /** The record under the cursor decoded into scratch, its points in the order the general path sorts them (by time, or by time and value): the indexes, or null for stored order. */
  function decodeRecord(byValue: boolean): { n: number; order: number[] | null } {
    const n = cursor.decode(scratch);
    const { ts, values: vs } = scratch;
    let sorted = true;
    for (let j = 1; j < n; j++) {
      const d = ts[j] - ts[j - 1];
      if (!(d > 0 || (d === 0 && (!byValue || pgCompare(vs[j - 1], vs[j]) <= 0)))) {
        sorted = false;
        break;
      }
    }
    // Its points inside its span (what the records' order rests on): a chunk's stored times are its points' first and last.
    const lo = agg[AGG_FIRST_TS];
    const hi = agg[AGG_LAST_TS];
    let order: number[] | null = null;
    if (!sorted) {
      order = Array.from({ length: n }, (_, j) => j).sort((i, j) => ts[i] - ts[j] || (byValue ? pgCompare(vs[i], vs[j]) : 0) || i - j);
    }
    if (n > 0 && !(ts[order ? order[0] : 0] >= lo && ts[order ? order[n - 1] : n - 1] <= hi)) throw new Error('tier read: a chunk\'s points outside its first and last time');
    return { n, order };
  }

  /**
   * The record under the cursor folded straight into acc's buckets (foldChunk; only where
   * exact holds): false, having added nothing, when it must be decoded instead.
   */
  function foldRecord(acc: Buckets, mode: number, lowMs: number): boolean {
    fold.mode = mode;
    fold.startMs = startMs;
    fold.endMs = endMs;
    fold.stepMs = stepMs;
    fold.lowMs = lowMs;
    fold.n = acc.n;
    fold.sum = acc.sum;
    fold.start = acc.start;
    fold.seen = acc.order;
    const n = cursor.fold(scratch, fold);
    if (n < 0) return false;
    // Its points inside its span, as decodeRecord checks (the times are strictly increasing).
    const ts = scratch.ts;
    if (n > 0 && !(ts[0] >= agg[AGG_FIRST_TS] && ts[n - 1] <= agg[AGG_LAST_TS])) throw new Error('tier read: a chunk\'s points outside its first and last time');
    return true;
  }

  /** One series (avg, min, max, sum, count) straight into its answer's buckets, in time order. */
  function streamSeries(f: TierFresh | undefined, acc: Buckets): void {
    const { n: N, sum: SUM, min: MIN, max: MAX, start: START, order: firstSeen } = acc;
    /** A part standing for its points by their aggregates, first at time t (or in bucket b when t is NaN). */
    const part = (t: number, b: number, n: number, sum: number, min: number, max: number) => {
      // (The general path's bucket start of a chunk or half, startMs + index(t) · stepMs, and its index again: the same index in integers.)
      const i = t === t ? index(t) : index(b);
      const bs = t === t ? startMs + i * stepMs : b;
      if (!(i >= 0 && i < size)) throw new Error(`tier read: bucket ${bs} outside the range`);
      acc.add(i, bs, n, sum, min, max);
    };
    for (let k = 0; k < recs.len; k++) {
      cursor.seek(recs.at[k]);
      cursor.next();
      if (cursor.kind === -1) {
        part(agg[AGG_FIRST_TS], 0, agg[AGG_COUNT], agg[AGG_SUM], agg[AGG_MIN], agg[AGG_MAX]);
      } else if (cursor.kind === 1) {
        cursor.halves(halves);
        for (let h = 0; h < 2 * AGG_SIZE; h += AGG_SIZE) {
          if (halves[h + AGG_COUNT] !== 0) part(halves[h + AGG_FIRST_TS], 0, halves[h + AGG_COUNT], halves[h + AGG_SUM], halves[h + AGG_MIN], halves[h + AGG_MAX]);
        }
      } else if (!needMinMax && foldRecord(acc, FOLD_VALUES, startMs)) {
        continue;
      } else {
        const { n, order } = decodeRecord(false);
        const { ts, values: vs } = scratch;
        for (let j = 0; j < n; j++) {
          const p = order === null ? j : order[j];
          const t = ts[p];
          if (!(t >= startMs && t < endMs)) continue;
          const v = vs[p];
          const i = Math.floor((t - startMs) / stepMs);
          if (N[i] === 0) {
            firstSeen.push(i);
            START[i] = startMs + i * stepMs;
            N[i] = 1;
            SUM[i] = v;
            if (needMinMax) {
              MIN[i] = v;
              MAX[i] = v;
            }
          } else {
            N[i] += 1;
            SUM[i] += v;
            if (needMinMax) {
              MIN[i] = pgMin(MIN[i], v);
              MAX[i] = pgMax(MAX[i], v);
            }
          }
        }
      }
    }
    if (f && !f.raw) for (const x of f.buckets) part(NaN, x.b, x.n, x.sum, x.min, x.max);
  }

  /** temporalSeries, streaming. */
  function streamTemporal(s: TierSeries, f: TierFresh | undefined, acc: Buckets): void {
    const { n: N, sum: SUM, start: START, order: firstSeen } = acc;
    const isDelta = s.temporality === 'delta';
    const updown = s.kind === 'updowncounter';
    const lookback = spec.lookbackStartMs;
    let prev = 0;
    let hasPrev = false;
    // (Only the sums and counts: increase and rate are finished from the sum.)
    const add = (i: number, d: number) => {
      if (N[i] === 0) {
        firstSeen.push(i);
        START[i] = startMs + i * stepMs;
        N[i] = 1;
        SUM[i] = d;
      } else {
        N[i] += 1;
        SUM[i] += d;
      }
    };
    /** A part standing for its points by their aggregates (a whole chunk, a half) at a[o, o + AGG_SIZE). */
    const whole = (a: Float64Array, o: number) => {
      const t = a[o + AGG_FIRST_TS];
      const last = a[o + AGG_LAST];
      if (t < startMs) {
        prev = last;
        hasPrev = true;
        return;
      }
      const i = index(t);
      const it = a[o + AGG_FIRST];
      if (isDelta) {
        add(i, a[o + AGG_SUM]);
      } else {
        if (hasPrev) add(i, delta(s, prev, it));
        if (a[o + AGG_COUNT] > 1) add(i, updown ? last - it : a[o + AGG_INCREASE]);
      }
      prev = last;
      hasPrev = true;
    };
    /** Points t[from, to) (through `order` when given) of a record or of the fresh tier. */
    const points = (ts: ArrayLike<number>, vs: ArrayLike<number>, n: number, order: number[] | null, filter: boolean) => {
      for (let j = 0; j < n; j++) {
        const p = order === null ? j : order[j];
        const t = ts[p];
        if (filter && !(t >= lookback && t < endMs)) continue;
        const v = vs[p];
        if (t < startMs) {
          prev = v;
          hasPrev = true;
          continue;
        }
        const i = index(t);
        if (isDelta) add(i, v);
        else if (hasPrev) add(i, updown ? v - prev : counterDelta(prev, v));
        prev = v;
        hasPrev = true;
      }
    };
    for (let k = 0; k < recs.len; k++) {
      cursor.seek(recs.at[k]);
      cursor.next();
      if (cursor.kind === -1) whole(agg, 0);
      else if (cursor.kind === 1) {
        cursor.halves(halves);
        for (let h = 0; h < 2 * AGG_SIZE; h += AGG_SIZE) if (halves[h + AGG_COUNT] !== 0) whole(halves, h);
      } else {
        fold.prev = prev;
        fold.hasPrev = hasPrev;
        if (foldRecord(acc, isDelta ? FOLD_VALUES : updown ? FOLD_UPDOWN : FOLD_COUNTER, lookback)) {
          prev = fold.prev;
          hasPrev = fold.hasPrev;
          continue;
        }
        const { n, order } = decodeRecord(true);
        points(scratch.ts, scratch.values, n, order, true);
      }
    }
    if (f?.raw) points(f.t, f.v, f.t.length, null, false);
  }

  /** One series' deltas (increase/rate), in time order, into its answer's buckets. */
  function temporalSeries(s: TierSeries, f: TierFresh | undefined, acc: Buckets): void {
    // Parts: points, and whole chunks or halves by their aggregates (t, v: their first point), in (t, v) order.
    parts.len = 0;
    const aggregatePart = (a: Float64Array, o: number) =>
      parts.pushTemporal(a[o + AGG_FIRST_TS], a[o + AGG_COUNT], a[o + AGG_SUM], a[o + AGG_FIRST], a[o + AGG_LAST], a[o + AGG_INCREASE], 1);
    while (cursor.next()) {
      if (cursor.kind === -1) aggregatePart(agg, 0);
      else if (cursor.kind === 1) {
        cursor.halves(halves);
        for (let h = 0; h < 2 * AGG_SIZE; h += AGG_SIZE) if (halves[h + AGG_COUNT] !== 0) aggregatePart(halves, h);
      } else {
        const n = cursor.decode(scratch);
        const { ts, values: vs } = scratch;
        parts.reserve(n);
        for (let i = 0; i < n; i++) if (ts[i] >= spec.lookbackStartMs && ts[i] < endMs) parts.pushTemporal(ts[i], 1, vs[i], vs[i], vs[i], 0, 0);
      }
    }
    if (f?.raw) {
      parts.reserve(f.t.length);
      for (let i = 0; i < f.t.length; i++) parts.pushTemporal(f.t[i], 1, f.v[i], f.v[i], f.v[i], 0, 0);
    }
    const { t, v, w, n, sum, last, inc } = parts;
    const order = parts.order((i, j) => t[i] - t[j] || pgCompare(v[i], v[j]));
    // The base: the last point before start (within the lookback); then every point of the range.
    // (A flag beside a number, not number | null: a variable of both kinds boxes every value it takes.)
    let prev = 0;
    let hasPrev = false;
    const addDelta = (i: number, d: number) => acc.add(i, startMs + i * stepMs, 1, d, d, d);
    for (let k = 0; k < parts.len; k++) {
      const p = order ? order[k] : k;
      const whole = w[p] === 1;
      const it = v[p];
      if (t[p] < startMs) {
        prev = last[p];
        hasPrev = true;
        continue;
      }
      const i = index(t[p]);
      if (s.temporality === 'delta') {
        addDelta(i, sum[p]);
      } else if (whole) {
        if (hasPrev) addDelta(i, delta(s, prev, it));
        if (n[p] > 1) addDelta(i, s.kind === 'updowncounter' ? last[p] - it : inc[p]);
      } else if (hasPrev) {
        addDelta(i, delta(s, prev, it));
      }
      prev = last[p];
      hasPrev = true;
    }
  }

  const out: MetricReadSeries[] = [];
  for (const a of answers.values()) {
    // Sized once (a push per bucket grew each through a chain of reallocations).
    let t: number[];
    let v: (number | null)[];
    if (pct !== undefined) {
      const order = a.valueOrder;
      t = doubles(order.length);
      v = doubles(order.length);
      for (let k = 0; k < order.length; k++) {
        const i = order[k];
        const list = a.values![i]!;
        list.sort(pgCompare);
        t[k] = startMs + i * stepMs;
        v[k] = percentileCont(list, pct);
      }
    } else {
      const acc = a.sums!;
      const { at, len } = acc.order;
      t = doubles(len);
      v = doubles(len);
      for (let k = 0; k < len; k++) {
        const i = at[k];
        t[k] = acc.start[i];
        v[k] = finish(spec, acc.n[i], acc.sum[i], needMinMax ? acc.min[i] : 0, needMinMax ? acc.max[i] : 0);
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

/**
 * An array of n numbers to be overwritten, packed: a slice of a template of doubles costs what
 * `new Array(n)` does, where `new Array(n)` makes a holey array, whose JSON.stringify (how the
 * answer's JSON writes a series' values) took ~1.5× as long as a packed one's (240 doubles: 38 →
 * 57 µs); growing one by push made a chain of reallocations (3.6 against 0.5–0.8 µs for 240).
 * Past TEMPLATE_MAX elements, grown by push (no template that large is kept).
 */
function doubles(n: number): number[] {
  if (n > TEMPLATE_MAX) {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(0);
    return out;
  }
  if (template.length < n) template = Array.from({ length: Math.min(TEMPLATE_MAX, Math.max(n, 2 * template.length, 256)) }, () => 0.5);
  return template.slice(0, n);
}
const TEMPLATE_MAX = 1 << 14;
/** Packed doubles (0.5), only ever sliced. */
let template: number[] = [];

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
