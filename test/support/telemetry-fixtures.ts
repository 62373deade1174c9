import type { Temporality } from '../../src/features/telemetry/telemetry-types.js';

/*
 * The metric data and reference implementations of the query tests (telemetry-query,
 * telemetry-increase), shared with telemetry-tiers, which runs the same expectations with the
 * data fresh, compacted and split across the tiers. Expected values are computed here, without SQL.
 */

export const SEC = 1000;
export const MIN = 60 * SEC;
export const HOUR = 60 * MIN;
export const iso = (ms: number): string => new Date(ms).toISOString();

export type Pt = [number, number];

// ---------------------------------------------------------------------------------------------
// Point aggregations

export type Agg = 'avg' | 'min' | 'max' | 'sum' | 'count' | 'p50' | 'p90' | 'p95' | 'p99';
export const AGGS: Agg[] = ['avg', 'min', 'max', 'sum', 'count', 'p50', 'p90', 'p95', 'p99'];

/** percentile_cont: linear interpolation between the closest ranks of the sorted values. */
export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = p * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function aggregate(values: number[], agg: Agg): number {
  switch (agg) {
    case 'avg':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'min':
      return Math.min(...values);
    case 'max':
      return Math.max(...values);
    case 'sum':
      return values.reduce((a, b) => a + b, 0);
    case 'count':
      return values.length;
    default:
      return percentile(values, Number(agg.slice(1)) / 100);
  }
}

/** Buckets aligned to start: [start + k·step, start + (k+1)·step), empty ones left out. */
export function expectedPoints(points: Pt[], start: number, end: number, step: number, agg: Agg): [string, number][] {
  const buckets = new Map<number, number[]>();
  for (const [ts, v] of points) {
    if (ts < start || ts >= end) continue;
    const b = start + Math.floor((ts - start) / step) * step;
    if (!buckets.has(b)) buckets.set(b, []);
    buckets.get(b)!.push(v);
  }
  return [...buckets.entries()].sort(([a], [b]) => a - b).map(([b, vs]) => [iso(b), aggregate(vs, agg)]);
}

/** The series of telemetry-query's metric `req` (org A), from B (hour-aligned) on. */
export function querySeries(B: number): Record<'s1' | 's2' | 's3' | 's4', { labels: Record<string, string>; points: Pt[] }> {
  // Outside the window [B, B + 10 min) on both sides (start inclusive, end exclusive): these must never count.
  const fence: Pt[] = [
    [B - 1000, 1e9],
    [B + 10 * MIN, 1e9],
  ];
  // s1: every 30 s, irregular values; s2: every 60 s; s3: every 120 s; s4: a single point.
  return {
    s1: { labels: { host: 'a', env: 'prod', region: 'eu' }, points: [...Array.from({ length: 20 }, (_, i): Pt => [B + i * 30_000, ((i * 7) % 11) + i / 4]), ...fence] },
    s2: { labels: { host: 'b', env: 'prod', region: 'us' }, points: Array.from({ length: 10 }, (_, i): Pt => [B + i * MIN, 100 + i * 3]) },
    s3: { labels: { host: 'c', env: 'dev' }, points: Array.from({ length: 5 }, (_, i): Pt => [B + i * 2 * MIN, -i - 0.5]) },
    s4: { labels: { host: 'd' }, points: [[B + MIN, 42]] },
  };
}

// ---------------------------------------------------------------------------------------------
// increase and rate

/** Prometheus's default lookback, as the definition uses it (not imported: the tests state the definition). */
export const LOOKBACK_MS = 5 * 60_000;

/**
 * Per bucket start: the summed deltas of the series' points in [start, end). The base of the
 * range's first point is the series' last point in the lookback (5 minutes, or one step when
 * longer) before start; without one, the first point only sets the base. Buckets without a delta
 * are absent.
 */
export function refIncrease(points: Pt[], temporality: Temporality | null, start: number, end: number, step: number, kind = 'counter'): Map<number, number> {
  const order = (a: Pt, b: Pt) => a[0] - b[0] || a[1] - b[1];
  const before = points.filter(([ts]) => ts < start && ts >= start - Math.max(step, LOOKBACK_MS)).sort(order);
  const inRange = points.filter(([ts]) => ts >= start && ts < end).sort(order);
  const base = before.length ? before[before.length - 1] : undefined;
  const out = new Map<number, number>();
  inRange.forEach(([ts, v], i) => {
    const prev = i > 0 ? inRange[i - 1] : base;
    let d: number;
    if (temporality === 'delta') d = v;
    else if (prev === undefined) return; // the base
    else if (kind === 'updowncounter') d = v - prev[1];
    else d = v >= prev[1] ? v - prev[1] : v; // a drop: restarted from 0
    const b = start + Math.floor((ts - start) / step) * step;
    out.set(b, (out.get(b) ?? 0) + d);
  });
  return out;
}

export function sumMaps(maps: Map<number, number>[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of maps) for (const [b, v] of m) out.set(b, (out.get(b) ?? 0) + v);
  return out;
}

/** As the answer lists them: ascending bucket starts; rate divides by the step in seconds. */
export function asPoints(m: Map<number, number>, agg: 'increase' | 'rate', step: number): [string, number][] {
  return [...m.entries()].sort(([a], [b]) => a - b).map(([b, v]) => [iso(b), agg === 'rate' ? v / (step / 1000) : v]);
}

export interface StoredSeries {
  labels: Record<string, string>;
  temporality: Temporality | null;
  points: Pt[];
}

/** The series of telemetry-increase, from B (hour-aligned) on. */
export function increaseSeries(B: number): Record<'cumA' | 'deltaA' | 'cumB' | 'temp' | 'legacy' | 'sparse' | 'queue', StoredSeries> {
  const at = (s: number) => B + s * SEC;
  // http_requests_total{job=api,instance=a}, cumulative: resets exactly on a bucket start (60 s)
  // and inside a bucket (105 s, 375 s), an unchanged value, empty buckets (240–360 s), and
  // points outside [start, end) on both sides: the one at -5 s is within the lookback, so it is
  // the base of the point at 0 s (never a delta of its own); the one at 600 s never counts.
  const cumA: StoredSeries = {
    labels: { job: 'api', instance: 'a' },
    temporality: 'cumulative',
    points: (
      [
        [-5, 90],
        [0, 100],
        [15, 110],
        [30, 125],
        [45, 130],
        [60, 5],
        [75, 20],
        [90, 22],
        [105, 3],
        [120, 10],
        [135, 10],
        [150, 40],
        [180, 41],
        [360, 50],
        [375, 2],
        [420, 9],
        [480, 12],
        [540, 30],
        [585, 31],
        [600, 1000],
      ] as Pt[]
    ).map(([s, v]): Pt => [at(s), v]),
  };
  // The same labels, a delta stream: its own series, values summed per bucket (a bucket of zeros is 0, not absent).
  // Its point at -1 s is within the lookback but never counts: a delta series has no base.
  const deltaA: StoredSeries = {
    labels: { job: 'api', instance: 'a' },
    temporality: 'delta',
    points: (
      [
        [-1, 50],
        [0, 3],
        [20, 4],
        [40, 0],
        [70, 7],
        [130, 0],
        [400, 5],
        [599, 2],
        [600, 99],
      ] as Pt[]
    ).map(([s, v]): Pt => [at(s), v]),
  };
  // Another process: every 30 s, +10 at first, a burst of +100 per 30 s from 4 min, a reset at 6 min, then +10 again.
  const cumB: StoredSeries = { labels: { job: 'api', instance: 'b' }, temporality: 'cumulative', points: [] };
  {
    let v = 1000;
    for (let s = 0; s <= 600; s += 30) {
      if (s === 360) v = 4;
      else if (s > 0) v += s > 240 && s <= 330 ? 100 : s > 360 && s <= 420 ? 150 : 10;
      cumB.points.push([at(s), v]);
    }
  }
  // A gauge read with increase: a drop counts as a reset, as Prometheus does.
  const temp: StoredSeries = {
    labels: { room: 'x' },
    temporality: null,
    points: ([[0, 20], [30, 22], [60, 19], [90, 25]] as Pt[]).map(([s, v]): Pt => [at(s), v]),
  };
  // Written before kinds were recorded (kind unknown): read as cumulative.
  const legacy: StoredSeries = {
    labels: {},
    temporality: null,
    points: ([[0, 5], [20, 8], [40, 2], [50, 6]] as Pt[]).map(([s, v]): Pt => [at(s), v]),
  };
  // A cumulative counter with gaps longer than the lookback: the point at -360 s is 6 minutes
  // before the range's start (beyond 5 minutes, within a 10-minute step), and 30 s → 400 s is a
  // gap of 6 min 10 s; the point at 30 s is exactly 5 minutes before 330 s.
  const sparse: StoredSeries = {
    labels: { job: 'batch' },
    temporality: 'cumulative',
    points: ([[-360, 7], [0, 10], [30, 16], [400, 20], [420, 3]] as Pt[]).map(([s, v]): Pt => [at(s), v]),
  };
  // A cumulative up-down counter: no resets, a drop is a negative change.
  const queue: StoredSeries = {
    labels: { q: 'jobs' },
    temporality: 'cumulative',
    points: ([[0, 5], [20, 3], [40, 0], [70, 4], [100, 1]] as Pt[]).map(([s, v]): Pt => [at(s), v]),
  };
  return { cumA, deltaA, cumB, temp, legacy, sparse, queue };
}
