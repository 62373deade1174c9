import type { Static } from '@sinclair/typebox';
import type { Actor } from '../../core/actor.js';
import type { OrgAccess } from '../../core/authorize.js';
import { DomainError, notFound } from '../../core/errors.js';
import { decodeCursor, encodeCursor, pageLimit, type Page } from '../../core/pagination.js';
import { SQLSTATE, sqlState } from '../../db/pg-errors.js';
import {
  decodeTsIdCursor,
  encodeTsIdCursor,
  escapeLike,
  invalid,
  MAX_ATTR_FILTERS,
  parseBy,
  parseFilters,
  parseRange,
  parseStep,
  type LabelMatcher,
} from './query-params.js';
import { readMetricColumns, type AnswerColumns } from './metric-read.js';
import { metricAnswerJson } from './query-answer-json.js';
import { AGGREGATIONS, type Aggregation, type MetricTypeRow, type QueryRepository } from './query-repository.js';
import { INGEST_LIMITS } from './telemetry-limits.js';
import { effectiveLimits, type LimitDefaults, type OrgDirectory } from './telemetry-limits-source.js';
import type { EventSchema, LogRecordSchema, MetricNameSchema, MetricNamesQuery, MetricQueryResultSchema, UsageSchema } from './query-schemas.js';
import { LEVELS, levelOf, type Level, type SeriesKind } from './telemetry-types.js';

export interface QueryOptions {
  /** query.max_series: most series one metric query may read. */
  maxSeries: number;
  /** query.max_points: most points in one answer (answer series × buckets), so no answer outgrows memory. */
  maxPoints: number;
  /** query.max_buckets: most buckets ((end - start) / step) per answer series. */
  maxBuckets: number;
  /** query.statement_timeout_ms: a metric query running longer is cancelled (422). */
  statementTimeoutMs: number;
  limitDefaults: LimitDefaults;
  /** Epoch milliseconds; tests pin it. */
  now?: () => number;
}

export interface MetricQueryInput {
  name: string;
  start?: string | number;
  end?: string | number;
  step?: string | number;
  agg?: string;
  /** Comma-separated label names (or a list of such strings). */
  by?: string | string[];
  /** Matchers, comma-separated and/or one per element. */
  filter?: string | string[];
}

export interface LogsInput {
  start?: string | number;
  end?: string | number;
  level?: string;
  q?: string;
  /** attribute key → value (or any of several values). */
  attributes?: Record<string, string | string[]>;
  limit?: number;
  cursor?: string;
}

export interface EventsInput {
  start?: string | number;
  end?: string | number;
  type?: string | string[];
  tag?: string | string[];
  limit?: number;
  cursor?: string;
}

/*
 * Answers are the Static types of the route schemas. The inputs stay wider than the query
 * schemas (times as numbers, lists as comma-separated strings): the service parses them itself,
 * with the same `query/…` error paths over HTTP and when called directly.
 */
export type MetricNamesInput = Static<typeof MetricNamesQuery>;
export type MetricName = Static<typeof MetricNameSchema>;
export type MetricQueryResult = Static<typeof MetricQueryResultSchema>;
export type MetricSeries = MetricQueryResult['series'][number];
export type LogRecord = Static<typeof LogRecordSchema>;
export type EventRecord = Static<typeof EventSchema>;
export type Usage = Static<typeof UsageSchema>;

const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * Reads telemetry: metric names, metric queries (bucketed aggregates), logs, events and usage.
 * Every method authorizes through OrgAccess ('telemetry.read': role viewer or an API key with
 * the read scope; another org's slug is 404) and then reads only that org's rows.
 */
export class QueryService {
  private readonly now: () => number;

  constructor(
    private readonly repo: QueryRepository,
    private readonly orgs: OrgAccess,
    private readonly directory: OrgDirectory,
    private readonly opts: QueryOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  async listMetrics(actor: Actor, orgSlug: string, input: MetricNamesInput = {}): Promise<Page<MetricName>> {
    const org = await this.orgs.require(actor, orgSlug, 'telemetry.read');
    const limit = pageLimit(input.limit);
    const afterName = decodeCursor(input.cursor);
    const rows = await this.repo.metricNames(org.id, { prefix: input.prefix || undefined, afterName, limit: limit + 1 });
    const items = rows.slice(0, limit).map((r) => ({ name: r.name, kind: nameKind(r.types), label_keys: r.label_keys, series: r.series, types: r.types }));
    return { items, next_cursor: rows.length > limit ? encodeCursor(items[items.length - 1].name) : null };
  }

  /**
   * One read on one connection under query.statement_timeout_ms (metric-read.ts): one statement
   * when only fresh points are in range, else two in one repeatable-read snapshot (the chunks,
   * then the fresh tier's part): the matching series (at most max_series, and at most max_points
   * answer points) and every bucket's aggregate of their points. Ungrouped answer series carry their series' kind,
   * temporality and unit.
   */
  async query(actor: Actor, orgSlug: string, input: MetricQueryInput): Promise<MetricQueryResult> {
    return { series: present(await this.readAnswer(actor, orgSlug, input)) };
  }

  /**
   * The same answer as `query`, as its JSON text in UTF-8 (byte for byte JSON.stringify of what
   * `query` returns), written without building the answer's objects: what the HTTP API sends.
   */
  async queryJson(actor: Actor, orgSlug: string, input: MetricQueryInput): Promise<Buffer> {
    return metricAnswerJson(await this.readAnswer(actor, orgSlug, input));
  }

  private async readAnswer(actor: Actor, orgSlug: string, input: MetricQueryInput): Promise<AnswerColumns[]> {
    const org = await this.orgs.require(actor, orgSlug, 'telemetry.read');
    const q = this.parseQuery(input);
    try {
      return await readMetricColumns(this.repo, org.id, q, this.opts);
    } catch (err) {
      throw await this.translate(err, q.matchers);
    }
  }

  async logs(actor: Actor, orgSlug: string, input: LogsInput = {}): Promise<Page<LogRecord>> {
    const org = await this.orgs.require(actor, orgSlug, 'telemetry.read');
    const { startMs, endMs } = parseRange(input, this.now());
    const limit = pageLimit(input.limit);
    let minSeverity: number | null = null;
    if (input.level !== undefined) {
      if (!Object.hasOwn(LEVELS, input.level)) throw invalid('level', `must be one of ${Object.keys(LEVELS).join(', ')}`);
      minSeverity = LEVELS[input.level as Level];
    }
    const attributes = Object.entries(input.attributes ?? {}).map(([key, v]) => {
      if (key === '' || key.length > INGEST_LIMITS.attributeKeyMax) throw invalid(`attr.${key}`, `attribute keys are 1 to ${INGEST_LIMITS.attributeKeyMax} characters`);
      const values = asList(v);
      if (values.length === 0) throw invalid(`attr.${key}`, 'needs a value');
      return { key, values };
    });
    if (attributes.length > MAX_ATTR_FILTERS) throw invalid('attr', `at most ${MAX_ATTR_FILTERS} attribute filters`);
    const after = decodeTsIdCursor(input.cursor);
    const bodyLike = input.q ? `%${escapeLike(input.q)}%` : null;
    const rows = await this.timed(this.repo.logs(org.id, { startMs, endMs, minSeverity, bodyLike, attributes, after, limit: limit + 1 }, this.opts.statementTimeoutMs));
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({
        ts: r.ts.toISOString(),
        level: levelOf(r.severity_number),
        severity_number: r.severity_number,
        severity_text: r.severity_text,
        body: r.body,
        attributes: r.attributes,
        resource: r.resource,
        trace_id: r.trace_id,
        span_id: r.span_id,
        observed_ts: r.observed_ts?.toISOString() ?? null,
        event_name: r.event_name,
      })),
      next_cursor: rows.length > limit ? encodeTsIdCursor({ tsUs: last.ts_us, id: last.id }) : null,
    };
  }

  async events(actor: Actor, orgSlug: string, input: EventsInput = {}): Promise<Page<EventRecord>> {
    const org = await this.orgs.require(actor, orgSlug, 'telemetry.read');
    const { startMs, endMs } = parseRange(input, this.now());
    const limit = pageLimit(input.limit);
    const filter = { startMs, endMs, types: asList(input.type), tags: asList(input.tag), after: decodeTsIdCursor(input.cursor), limit: limit + 1 };
    const rows = await this.timed(this.repo.events(org.id, filter, this.opts.statementTimeoutMs));
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({ id: r.id, ts: r.ts.toISOString(), type: r.type, title: r.title, text: r.text, tags: r.tags })),
      next_cursor: rows.length > limit ? encodeTsIdCursor({ tsUs: last.ts_us, id: last.id }) : null,
    };
  }

  /** Ingested counts (usage_daily, per UTC day) of today and this month, series in use, effective limits. */
  async usage(actor: Actor, orgSlug: string): Promise<Usage> {
    const org = await this.orgs.require(actor, orgSlug, 'telemetry.read');
    const today = isoDay(this.now());
    const [u, overrides] = await Promise.all([this.repo.usage(org.id, today, `${today.slice(0, 8)}01`), this.directory.overrides(org.id)]);
    if (!overrides) throw notFound(`organization '${orgSlug}'`);
    return {
      today: { metrics: u.today_points, logs: u.today_logs, events: u.today_events },
      month: { metrics: u.month_points, logs: u.month_logs, events: u.month_events },
      active_series: u.active_series,
      limits: effectiveLimits(overrides, this.opts.limitDefaults),
    };
  }

  private parseQuery(input: MetricQueryInput) {
    const name = typeof input.name === 'string' ? input.name : '';
    if (name === '' || name.length > INGEST_LIMITS.metricNameMax) throw invalid('name', `must be 1 to ${INGEST_LIMITS.metricNameMax} characters`);
    const { startMs, endMs } = parseRange(input, this.now());
    const stepMs = parseStep(input.step, undefined, endMs - startMs);
    const agg = (input.agg ?? 'avg') as Aggregation;
    if (!AGGREGATIONS.includes(agg)) throw invalid('agg', `must be one of ${AGGREGATIONS.join(', ')}`);
    const by = parseBy(input.by);
    const matchers = parseFilters(input.filter);
    // Limits after every input check: a malformed request is a 400 whatever its size.
    const buckets = Math.ceil((endMs - startMs) / stepMs);
    if (buckets > this.opts.maxBuckets) {
      throw new DomainError('limit_exceeded', `the query spans ${buckets} buckets; query.max_buckets is ${this.opts.maxBuckets} (use a larger step or a shorter range)`);
    }
    return { name, startMs, endMs, stepMs, agg, by, matchers, buckets };
  }

  private timeoutError(): DomainError {
    return new DomainError(
      'limit_exceeded',
      `the query ran longer than query.statement_timeout_ms (${this.opts.statementTimeoutMs} ms); use a shorter range, a larger step or narrower filters`,
    );
  }

  /** Logs and events run under the same statement timeout as metric queries. */
  private async timed<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      throw sqlState(err) === SQLSTATE.queryCanceled ? this.timeoutError() : err;
    }
  }

  /** PostgreSQL errors a client can cause, as domain errors. */
  private async translate(err: unknown, matchers: readonly LabelMatcher[]): Promise<unknown> {
    const code = sqlState(err);
    if (code === SQLSTATE.queryCanceled) return this.timeoutError();
    if (code === '2201B') {
      // Name the offending matcher: compile each regex on its own (only on this error path).
      for (const m of matchers) {
        if (m.op !== '=~' && m.op !== '!~') continue;
        const problem = await this.repo.checkRegex(m.value);
        if (problem) return invalid('filter', `invalid regex in filter '${m.source}': ${problem}`, `invalid regex in '${m.source}': ${problem}`);
      }
      return invalid('filter', `invalid regex: ${(err as Error).message}`);
    }
    return err;
  }
}

/** Answer series with RFC 3339 bucket starts. */
function present(series: AnswerColumns[]): MetricSeries[] {
  // Every series shares the same few bucket starts: format each once, not once per point.
  const stamps = new Map<number, string>();
  const stamp = (t: number): string => {
    let s = stamps.get(t);
    if (s === undefined) stamps.set(t, (s = new Date(t).toISOString()));
    return s;
  };
  return series.map((a) => ({ labels: a.labels, ...(a.descriptor ?? {}), points: a.t.map((t, i) => [stamp(t), a.v[i]]) }));
}

/**
 * A metric name's kind: the kind of its series (a name has one, ingest refuses a second), or
 * `unknown` when all of them were written before kinds were recorded.
 */
function nameKind(types: readonly MetricTypeRow[]): SeriesKind {
  return types.find((t) => t.kind !== 'unknown')?.kind ?? 'unknown';
}
