import type { AlertLogQuery, AlertMetricQuery, AlertQuerySource, AlertSeries } from '../../core/alerting.js';
import { DomainError } from '../../core/errors.js';
import { SQLSTATE, sqlState } from '../../db/pg-errors.js';
import { labelKey, readMetric, type MetricReadLimits, type RawAnswerSeries } from './metric-read.js';
import { escapeLike } from './query-params.js';
import type { QueryRepository } from './query-repository.js';
import { LEVELS, type Level } from './telemetry-types.js';

/*
 * Telemetry as alert rules read it (core/alerting.ts AlertQuerySource): by the rule's org id,
 * with no actor (the rule's org was fixed when it was stored), under the query API's limits and
 * statement timeout, through the same read (metric-read.ts) as GET …/metrics/query. Failures
 * throw: the rule records them as its error.
 */
export class AlertQuery implements AlertQuerySource {
  constructor(
    private readonly repo: QueryRepository,
    private readonly limits: MetricReadLimits & { maxBuckets: number },
  ) {}

  async metric(orgId: string, q: AlertMetricQuery): Promise<AlertSeries[]> {
    if (!(q.stepMs > 0) || !(q.endMs > q.startMs)) throw new DomainError('validation_failed', 'a metric read needs end > start and step > 0');
    const buckets = Math.ceil((q.endMs - q.startMs) / q.stepMs);
    if (buckets > this.limits.maxBuckets) {
      throw new DomainError('limit_exceeded', `the query spans ${buckets} buckets; query.max_buckets is ${this.limits.maxBuckets}`);
    }
    const matchers = Object.entries(q.filter).map(([label, value]) => ({ label, op: '=' as const, value, source: `${label}=${value}` }));
    const read = { name: q.name, matchers, by: q.by, startMs: q.startMs, endMs: q.endMs, stepMs: q.stepMs, agg: q.agg, buckets };
    let series = await this.timed(readMetric(this.repo, orgId, read, this.limits));
    if (q.by.length === 0 && hasSameLabels(series)) {
      // An alert instance is a label set. Streams of one label set (e.g. a counter whose exporter
      // went from cumulative to delta) are read again as one group each: grouped by every label
      // key the answer has, a group is exactly one label set (a key a series lacks groups as
      // absent), aggregated over its streams as `by` aggregates (increase: summed per series).
      // Without any key: the label '' (no series has it, keys are 1+ characters) makes one group.
      const keys = [...new Set(series.flatMap((s) => Object.keys(s.labels)))].sort();
      series = await this.timed(readMetric(this.repo, orgId, { ...read, by: keys.length ? keys : [''] }, this.limits));
    }
    return series.map((s) => ({ labels: s.labels, points: s.points }));
  }

  async countLogs(orgId: string, q: AlertLogQuery): Promise<number> {
    let minSeverity: number | null = null;
    if (q.level !== undefined) {
      if (!Object.hasOwn(LEVELS, q.level)) throw new DomainError('validation_failed', `unknown log level '${q.level}'`);
      minSeverity = LEVELS[q.level as Level];
    }
    const filter = {
      startMs: q.startMs,
      endMs: q.endMs,
      minSeverity,
      bodyLike: q.q ? `%${escapeLike(q.q)}%` : null,
      attributes: Object.entries(q.attributes ?? {}).map(([key, value]) => ({ key, values: [value] })),
    };
    return this.timed(this.repo.countLogs(orgId, filter, this.limits.statementTimeoutMs));
  }

  private async timed<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      if (sqlState(err) === SQLSTATE.queryCanceled) {
        throw new DomainError('limit_exceeded', `the query ran longer than query.statement_timeout_ms (${this.limits.statementTimeoutMs} ms)`);
      }
      throw err;
    }
  }
}

/** Whether two answer series have the same labels (answer series come sorted by labels, so such ones are neighbours). */
function hasSameLabels(series: readonly RawAnswerSeries[]): boolean {
  for (let i = 1; i < series.length; i++) if (labelKey(series[i].labels) === labelKey(series[i - 1].labels)) return true;
  return false;
}
