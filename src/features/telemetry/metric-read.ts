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

/** JSON has no NaN or infinities; such an aggregate is answered as null. */
export const finite = (v: number | null): number | null => (v === null || Number.isFinite(v) ? v : null);

/** The stable sort key of a label set: JSON of its entries in key order. */
export const labelKey = (labels: Record<string, string>): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * Answer series sorted by labels (series of equal labels, i.e. streams differing in kind,
 * temporality or unit, by those), points ascending (non-finite aggregates as null).
 */
export function answerSeries(rows: MetricReadSeries[]): RawAnswerSeries[] {
  const out = rows.map((r) => {
    const points: [number, number | null][] = r.t.map((t, i) => [t, finite(r.v[i] ?? null)]);
    points.sort((a, b) => a[0] - b[0]);
    const d = r.descriptor;
    const key = d === null ? labelKey(r.labels) : `${labelKey(r.labels)}\u0000${JSON.stringify([d.kind, d.temporality ?? '', d.unit])}`;
    return { key, series: { labels: r.labels, descriptor: d, points } };
  });
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out.map((o) => o.series);
}

/**
 * One statement on one connection under the statement timeout (QueryRepository.metricRead):
 * the matching series (at most max_series), the answer's size (at most max_points points), and
 * only within both limits every bucket's aggregate of their points. PostgreSQL errors propagate
 * (the caller translates them).
 */
export async function readMetric(repo: QueryRepository, orgId: string, q: MetricRead, limits: MetricReadLimits): Promise<RawAnswerSeries[]> {
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
  return answerSeries(found.rows);
}
