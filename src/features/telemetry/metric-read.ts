import { DomainError } from '../../core/errors.js';
import type { LabelMatcher } from './query-params.js';
import type { Aggregation, BucketRow, QueryRepository, SeriesRow } from './query-repository.js';

/*
 * One metric read as both the query API (QueryService.query) and alert rules (AlertQuery) run it:
 * the same series limit, answer-size limit, grouping and ordering, so a rule sees exactly what the
 * query API would answer for the same query.
 */

export interface MetricRead {
  name: string;
  matchers: readonly LabelMatcher[];
  by: string[];
  startMs: number;
  endMs: number;
  stepMs: number;
  agg: Aggregation;
  /** Buckets per answer series ((end - start) / step, rounded up). */
  buckets: number;
}

export interface MetricReadLimits {
  maxSeries: number;
  maxPoints: number;
  statementTimeoutMs: number;
}

/** One answer series with epoch-ms bucket starts, ascending (null: a non-finite aggregate). */
export interface RawAnswerSeries {
  labels: Record<string, string>;
  points: [number, number | null][];
}

/** JSON has no NaN or infinities; such an aggregate is answered as null. */
export const finite = (v: number | null): number | null => (v === null || Number.isFinite(v) ? v : null);

/** The stable sort key of a label set: JSON of its entries in key order. */
export const labelKey = (labels: Record<string, string>): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

export interface Grouping {
  ids: number[];
  /** null: ungrouped (each stored series answers for itself, keyed by its id). */
  groups: number[] | null;
  /** Answer labels per group number (or per series id when ungrouped). */
  labels: Map<number, Record<string, string>>;
}

/** Which answer series each stored series feeds: itself, or the group of its `by` label values. */
export function groupSeries(series: SeriesRow[], by: string[]): Grouping {
  const labels = new Map<number, Record<string, string>>();
  const ids = series.map((s) => s.id);
  if (by.length === 0) {
    for (const s of series) labels.set(s.id, s.labels);
    return { ids, groups: null, labels };
  }
  const byKey = new Map<string, number>();
  const groups = series.map((s) => {
    const picked: Record<string, string> = {};
    for (const l of by) if (s.labels[l] !== undefined) picked[l] = s.labels[l];
    const key = labelKey(picked);
    let g = byKey.get(key);
    if (g === undefined) {
      g = byKey.size;
      byKey.set(key, g);
      labels.set(g, picked);
    }
    return g;
  });
  return { ids, groups, labels };
}

/** Rows into answer series: sorted by labels, points ascending. */
export function answerSeries(rows: BucketRow[], plan: Grouping): RawAnswerSeries[] {
  const points = new Map<number, [number, number | null][]>();
  for (const r of rows) {
    let list = points.get(r.g);
    if (!list) points.set(r.g, (list = []));
    list.push([r.t, finite(r.v)]);
  }
  const out: { key: string; series: RawAnswerSeries }[] = [];
  for (const [g, list] of points) {
    const labels = plan.labels.get(g) ?? {};
    list.sort((a, b) => a[0] - b[0]);
    out.push({ key: labelKey(labels), series: { labels, points: list } });
  }
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out.map((o) => o.series);
}

/**
 * Two statements on one connection under the statement timeout: the matching series (at most
 * max_series, and at most max_points answer points), then every bucket's aggregate of their
 * points. PostgreSQL errors propagate (the caller translates them).
 */
export async function readMetric(repo: QueryRepository, orgId: string, q: MetricRead, limits: MetricReadLimits): Promise<RawAnswerSeries[]> {
  const { rows, plan } = await repo.metricScope(orgId, limits.statementTimeoutMs, async (scope) => {
    const found = await scope.series(q.name, q.matchers, limits.maxSeries + 1);
    if (found.length > limits.maxSeries) {
      throw new DomainError('limit_exceeded', `the query matches more than ${limits.maxSeries} series; query.max_series is ${limits.maxSeries} (narrow it with filter)`);
    }
    const grouping = groupSeries(found, q.by);
    const answers = grouping.groups ? new Set(grouping.groups).size : grouping.ids.length;
    if (answers * q.buckets > limits.maxPoints) {
      throw new DomainError(
        'limit_exceeded',
        `the answer could hold ${answers} series × ${q.buckets} buckets = ${answers * q.buckets} points; query.max_points is ${limits.maxPoints} (use a larger step, a shorter range, narrower filters or by)`,
      );
    }
    const aggregated = await scope.aggregate({ ids: grouping.ids, groups: grouping.groups, startMs: q.startMs, endMs: q.endMs, stepMs: q.stepMs, agg: q.agg });
    return { rows: aggregated, plan: grouping };
  });
  return answerSeries(rows, plan);
}
