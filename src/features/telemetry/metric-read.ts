import { DomainError } from '../../core/errors.js';
import { MAX_DECODED_POINTS, type MetricReadSeries, type MetricReadSpec, type QueryRepository, type SeriesDescriptor } from './query-repository.js';

/*
 * One metric read as both the query API (QueryService.query) and alert rules (AlertQuery) run it:
 * the same series limit, answer-size limit, grouping and ordering, so a rule sees exactly what the
 * query API would answer for the same query.
 */

/** What to read: the repository's spec without the limits (they come from MetricReadLimits). */
export type MetricRead = Omit<MetricReadSpec, 'maxSeries' | 'maxPoints'>;

export interface MetricReadLimits {
  maxSeries: number;
  maxPoints: number;
  /** Most compacted points one read decodes (default MAX_DECODED_POINTS). */
  maxDecodedPoints?: number;
  statementTimeoutMs: number;
}

/** One answer series with epoch-ms bucket starts, ascending (null: a non-finite aggregate). */
export interface RawAnswerSeries {
  labels: Record<string, string>;
  /** The stored series' kind, temporality and unit; null for a group (`by`). */
  descriptor: SeriesDescriptor | null;
  points: [number, number | null][];
}

/**
 * RawAnswerSeries in columns: t[i] the epoch-ms start of bucket i, ascending, v[i] its value
 * (null: a non-finite aggregate), as long as t. What the answer's JSON is written from, without
 * a [t, v] array per point.
 */
export interface AnswerColumns {
  labels: Record<string, string>;
  descriptor: SeriesDescriptor | null;
  t: number[];
  v: (number | null)[];
}

/** JSON has no NaN or infinities; such an aggregate is answered as null. */
export const finite = (v: number | null): number | null => (v === null || Number.isFinite(v) ? v : null);

/** The stable sort key of a label set: JSON of its entries in key order. */
export const labelKey = (labels: Record<string, string>): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * Answer series sorted by labels (series of equal labels, i.e. streams differing in kind,
 * temporality or unit, by those), points ascending (non-finite aggregates as null).
 */
export function answerSeries(rows: MetricReadSeries[]): RawAnswerSeries[] {
  return answerColumns(rows).map(withPoints);
}

/** An answer series' points as [t, v] pairs. */
export function withPoints(c: AnswerColumns): RawAnswerSeries {
  const { t, v } = c;
  const points = new Array<[number, number | null]>(t.length);
  for (let i = 0; i < t.length; i++) points[i] = [t[i], v[i]];
  return { labels: c.labels, descriptor: c.descriptor, points };
}

/**
 * answerSeries in columns: the same series in the same order, the same points. A row's arrays are
 * taken over as they are when its times are ascending already (the reads give them so) and its
 * values finite and as many as its times; otherwise they are copied (sorted as answerSeries sorts
 * its points: stably by time).
 */
export function answerColumns(rows: MetricReadSeries[]): AnswerColumns[] {
  const out = rows.map((r) => {
    const d = r.descriptor;
    const key = d === null ? labelKey(r.labels) : `${labelKey(r.labels)}\u0000${JSON.stringify([d.kind, d.temporality ?? '', d.unit])}`;
    return { key, series: { labels: r.labels, descriptor: d, ...ascending(r.t, r.v) } };
  });
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out.map((o) => o.series);
}

/** A row's points in time order, values finite or null. */
function ascending(t: number[], v: (number | null)[]): { t: number[]; v: (number | null)[] } {
  const n = t.length;
  let inOrder = true;
  for (let i = 1; i < n; i++) {
    // (Not `t[i] < t[i - 1]`: a NaN time, which no read gives, goes to the sort as it did.)
    if (!(t[i] - t[i - 1] >= 0)) {
      inOrder = false;
      break;
    }
  }
  if (inOrder) {
    let clean = v.length === n;
    for (let i = 0; clean && i < n; i++) {
      const x = v[i];
      if (x === null || !(x - x === 0)) clean = false; // null, NaN, ±Infinity (and anything not a number)
    }
    if (clean) return { t, v };
    const fv = new Array<number | null>(n);
    for (let i = 0; i < n; i++) fv[i] = finite(v[i] ?? null);
    return { t, v: fv };
  }
  // Out of order (no read gives it): exactly as answerSeries sorted its [t, v] pairs.
  const points: [number, number | null][] = t.map((x, i) => [x, finite(v[i] ?? null)]);
  points.sort((a, b) => a[0] - b[0]);
  return { t: points.map((p) => p[0]), v: points.map((p) => p[1]) };
}

/**
 * One statement on one connection under the statement timeout (QueryRepository.metricRead):
 * the matching series (at most max_series), the answer's size (at most max_points points), and
 * only within both limits every bucket's aggregate of their points. PostgreSQL errors propagate
 * (the caller translates them).
 */
export async function readMetric(repo: QueryRepository, orgId: string, q: MetricRead, limits: MetricReadLimits): Promise<RawAnswerSeries[]> {
  return (await readMetricColumns(repo, orgId, q, limits)).map(withPoints);
}

/** readMetric's answer in columns (what the query API writes its JSON from). */
export async function readMetricColumns(repo: QueryRepository, orgId: string, q: MetricRead, limits: MetricReadLimits): Promise<AnswerColumns[]> {
  const maxDecodedPoints = limits.maxDecodedPoints ?? MAX_DECODED_POINTS;
  const found = await repo.metricRead(orgId, { ...q, maxSeries: limits.maxSeries, maxPoints: limits.maxPoints, maxDecodedPoints }, limits.statementTimeoutMs);
  if (found.series > limits.maxSeries) {
    throw new DomainError('limit_exceeded', `the query matches more than ${limits.maxSeries} series; query.max_series is ${limits.maxSeries} (narrow it with filter)`);
  }
  if (found.answers * q.buckets > limits.maxPoints) {
    throw new DomainError(
      'limit_exceeded',
      `the answer could hold ${found.answers} series × ${q.buckets} buckets = ${found.answers * q.buckets} points; query.max_points is ${limits.maxPoints} (use a larger step, a shorter range, narrower filters or by)`,
    );
  }
  if (found.decodedPoints > maxDecodedPoints) {
    throw new DomainError(
      'limit_exceeded',
      `the query would decode ${found.decodedPoints} compacted points, more than ${maxDecodedPoints} (use a step that is a multiple of 2 h, whose buckets read whole chunks by their stored aggregates, a shorter range or narrower filters)`,
    );
  }
  return answerColumns(found.rows);
}
