import type { Knex } from 'knex';
import type { LabelMatcher, TsIdCursor } from './query-params.js';

/** The aggregations a metric query offers; percentiles interpolate (percentile_cont). */
export const AGGREGATIONS = ['avg', 'min', 'max', 'sum', 'count', 'p50', 'p90', 'p95', 'p99'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

// Fixed SQL per aggregation (never built from input). count as float8 so every value parses alike.
const AGG_SQL: Record<Aggregation, string> = {
  avg: 'avg(p.value)',
  min: 'min(p.value)',
  max: 'max(p.value)',
  sum: 'sum(p.value)',
  count: 'count(*)::float8',
  p50: 'percentile_cont(0.5) within group (order by p.value)',
  p90: 'percentile_cont(0.9) within group (order by p.value)',
  p95: 'percentile_cont(0.95) within group (order by p.value)',
  p99: 'percentile_cont(0.99) within group (order by p.value)',
};

// Matchers compare the label's value with '' standing in for a missing label (Prometheus:
// `env!=prod` and `env!~prod` also match series without `env`, `env=""` matches only those).
// A non-empty `=` is written as containment so that the GIN index on labels can answer it.
const MATCH_SQL: Record<LabelMatcher['op'] | '@>', (label: string, value: string) => string> = {
  '=': (l, v) => `coalesce(labels->>${l}, '') = ${v}`,
  '@>': (l, v) => `labels @> jsonb_build_object(${l}::text, ${v}::text)`,
  '!=': (l, v) => `coalesce(labels->>${l}, '') <> ${v}`,
  '=~': (l, v) => `coalesce(labels->>${l}, '') ~ ${v}`,
  '!~': (l, v) => `coalesce(labels->>${l}, '') !~ ${v}`,
};

export interface SeriesRow {
  id: number;
  labels: Record<string, string>;
}

export interface BucketRow {
  /** The group (or, ungrouped, the series id) the value belongs to. */
  g: number;
  /** Bucket start, epoch milliseconds. */
  t: number;
  v: number;
}

export interface AggregateSpec {
  /** Series to read. */
  ids: number[];
  /** Group of each series (same length as ids), or null: one answer series per stored series. */
  groups: number[] | null;
  startMs: number;
  endMs: number;
  stepMs: number;
  agg: Aggregation;
}

/** The two statements of a metric query, bound to one org and run in one transaction. */
export interface MetricScope {
  /** Series of `name` whose labels satisfy every matcher; at most `limit` rows. */
  series(name: string, matchers: readonly LabelMatcher[], limit: number): Promise<SeriesRow[]>;
  /** One aggregate per (group, bucket) holding points; empty buckets are absent. Unordered. */
  aggregate(spec: AggregateSpec): Promise<BucketRow[]>;
}

export interface MetricNameRow {
  name: string;
  series: number;
  label_keys: string[];
}

export interface LogRow {
  ts: Date;
  ts_us: string;
  id: string;
  severity_number: number;
  severity_text: string;
  body: string;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
  trace_id: string | null;
  span_id: string | null;
}

export interface LogFilter {
  startMs: number;
  endMs: number;
  /** Least severity number; null: any. */
  minSeverity: number | null;
  /** ILIKE pattern (already escaped and wrapped in %), or null. */
  bodyLike: string | null;
  /** attributes->>key must equal one of the values. */
  attributes: { key: string; values: string[] }[];
  after?: TsIdCursor;
  limit: number;
}

export interface EventRow {
  id: string;
  ts: Date;
  ts_us: string;
  type: string;
  title: string;
  text: string | null;
  tags: string[];
}

export interface EventFilter {
  startMs: number;
  endMs: number;
  types: string[];
  /** Every one of these tags must be present. */
  tags: string[];
  after?: TsIdCursor;
  limit: number;
}

export interface UsageRow {
  today_points: number;
  today_logs: number;
  today_events: number;
  month_points: number;
  month_logs: number;
  month_events: number;
  active_series: number;
}

/** Severity 0 is "unspecified" and reads as info (levelOf), so an info-or-lower filter keeps it. */
const INFO = 9;

/** A pooled pg connection, as knex's pool hands it out. */
interface PgConnection {
  query<R extends object>(sql: string, values?: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
}

interface PoolAccess {
  acquireConnection(): Promise<PgConnection>;
  releaseConnection(conn: PgConnection): Promise<void>;
}

/** Positional parameters for hand-built SQL: `p.add(v)` returns its placeholder ($1, $2, …). */
class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/**
 * The SQL of the telemetry query API. Every method takes the org id and puts it in the WHERE
 * clause of every table it reads, so no input can reach another org's rows (a regex matcher
 * only ever filters series already restricted to the org). `checkRegex` is the one method
 * that reads no tenant data (it compiles a pattern).
 */
export class QueryRepository {
  /** The statement timeout each `reads` connection's session currently has. */
  private readonly sessionTimeouts = new WeakMap<PgConnection, number>();

  /**
   * `reads` is a pool of its own for the query statements: this repository sets its sessions'
   * statement_timeout and turns JIT off, which must not leak into the application's other work.
   */
  constructor(
    private readonly knex: Knex,
    private readonly reads: Knex,
  ) {}

  /** Runs `fn` with the org's two metric statements on one connection whose statements stop after `timeoutMs` (57014 propagates). */
  async metricScope<T>(orgId: string, timeoutMs: number, fn: (scope: MetricScope) => Promise<T>): Promise<T> {
    return this.onReadConnection(timeoutMs, (conn) =>
      fn({
        series: (name, matchers, limit) => this.series(conn, orgId, name, matchers, limit),
        aggregate: (spec) => this.aggregate(conn, orgId, spec),
      }),
    );
  }

  /**
   * A connection of the reads pool used directly, outside a transaction: a statement costs one
   * round trip, as it would for a client of PostgreSQL (knex's transaction wrapper costs about
   * a millisecond, BEGIN/COMMIT two more round trips). The session's timeout is set only when it
   * differs from the one wanted. JIT stays off: its compile time (hundreds of ms) dwarfs these
   * statements.
   */
  private async onReadConnection<T>(timeoutMs: number, fn: (conn: PgConnection) => Promise<T>): Promise<T> {
    const pool = this.reads.client as unknown as PoolAccess;
    const conn = await pool.acquireConnection();
    try {
      const timeout = Math.max(1, Math.trunc(timeoutMs));
      if (this.sessionTimeouts.get(conn) !== timeout) {
        await conn.query(`set statement_timeout = ${timeout}; set jit = off`);
        this.sessionTimeouts.set(conn, timeout);
      }
      return await fn(conn);
    } finally {
      await pool.releaseConnection(conn);
    }
  }

  private async series(conn: PgConnection, orgId: string, name: string, matchers: readonly LabelMatcher[], limit: number): Promise<SeriesRow[]> {
    const p = new Params();
    const where = [`org_id = ${p.add(orgId)}`, `name = ${p.add(name)}`];
    for (const m of matchers) where.push(MATCH_SQL[m.op === '=' && m.value !== '' ? '@>' : m.op](p.add(m.label), p.add(m.value)));
    const { rows } = await conn.query<SeriesRow>(`select id, labels from series where ${where.join(' and ')} limit ${p.add(limit)}`, p.values);
    return rows;
  }

  /**
   * One statement for every series: buckets are date_bin(step, ts, start), i.e. aligned to the
   * query's start. Ungrouped it is an index-only range scan of points_series_ts per series
   * (series_id = any); grouped, the series ids join their group numbers so each group's
   * aggregate runs over the raw points of all its series (an avg is the mean of the points, not
   * a mean of per-series means). No ORDER BY: the planner may then hash-aggregate instead of
   * sorting every point; the service orders the result rows. The bucket's epoch is computed per
   * result row (outside the grouping), not per point.
   */
  private async aggregate(conn: PgConnection, orgId: string, s: AggregateSpec): Promise<BucketRow[]> {
    if (s.ids.length === 0) return [];
    const p = new Params();
    const start = p.add(new Date(s.startMs));
    const bin = `date_bin(${p.add(s.stepMs)}::bigint * interval '1 millisecond', p.ts, ${start}::timestamptz)`;
    const range = `p.org_id = ${p.add(orgId)} and p.ts >= ${start} and p.ts < ${p.add(new Date(s.endMs))}`;
    const inner = s.groups
      ? `select s.g, ${bin} as b, ${AGG_SQL[s.agg]} as v
           from points p join unnest(${p.add(s.ids)}::bigint[], ${p.add(s.groups)}::int[]) as s(id, g) on p.series_id = s.id
          where ${range}
          group by 1, 2`
      : `select p.series_id as g, ${bin} as b, ${AGG_SQL[s.agg]} as v
           from points p
          where ${range} and p.series_id = any(${p.add(s.ids)}::bigint[])
          group by 1, 2`;
    const { rows } = await conn.query<BucketRow>(`select g::float8 as g, (extract(epoch from b) * 1000)::float8 as t, v from (${inner}) x`, p.values);
    return rows;
  }

  /** Compiles `pattern` as a PostgreSQL regex; returns its error message, or null when it is valid. */
  async checkRegex(pattern: string): Promise<string | null> {
    try {
      await this.knex.raw(`select '' ~ ? as ok`, [pattern]);
      return null;
    } catch (err) {
      if ((err as { code?: string }).code === '2201B') return (err as Error).message;
      throw err;
    }
  }

  /** Metric names after `afterName` (by name), with their series count and label keys. */
  async metricNames(orgId: string, opts: { prefix?: string; afterName?: string; limit: number }): Promise<MetricNameRow[]> {
    const where = ['org_id = ?'];
    const bindings: Knex.RawBinding[] = [orgId];
    if (opts.prefix) {
      where.push('starts_with(name, ?)');
      bindings.push(opts.prefix);
    }
    if (opts.afterName !== undefined) {
      where.push('name > ?');
      bindings.push(opts.afterName);
    }
    bindings.push(opts.limit, orgId);
    const { rows } = await this.knex.raw<{ rows: MetricNameRow[] }>(
      `with page as (
         select name, count(*)::int as series from series where ${where.join(' and ')} group by name order by name limit ?)
       select p.name, p.series,
              coalesce((select array_agg(k order by k) from (
                 select distinct jsonb_object_keys(s.labels) as k from series s where s.org_id = ? and s.name = p.name) keys), '{}') as label_keys
         from page p order by p.name`,
      bindings,
    );
    return rows;
  }

  /** Newest first by (ts, id), strictly after the cursor; range [start, end); under a statement timeout. */
  async logs(orgId: string, f: LogFilter, timeoutMs: number): Promise<LogRow[]> {
    const p = new Params();
    const where = logWhere(p, orgId, f);
    afterCursor(p, where, f.after);
    const sql = `select ts, ${TS_US} as ts_us, id::text as id, severity_number, severity_text, body, attributes, resource, trace_id, span_id
                   from logs where ${where.join(' and ')} order by ts desc, id desc limit ${p.add(f.limit)}`;
    return this.onReadConnection(timeoutMs, async (conn) => (await conn.query<LogRow>(sql, p.values)).rows);
  }

  /** How many logs match (range [start, end), the same filters as `logs`; no cursor, no limit), under a statement timeout. */
  async countLogs(orgId: string, f: Omit<LogFilter, 'after' | 'limit'>, timeoutMs: number): Promise<number> {
    const p = new Params();
    const sql = `select count(*)::float8 as n from logs where ${logWhere(p, orgId, f).join(' and ')}`;
    return this.onReadConnection(timeoutMs, async (conn) => (await conn.query<{ n: number }>(sql, p.values)).rows[0].n);
  }

  async events(orgId: string, f: EventFilter, timeoutMs: number): Promise<EventRow[]> {
    const p = new Params();
    const where = [`org_id = ${p.add(orgId)}`, `ts >= ${p.add(new Date(f.startMs))}`, `ts < ${p.add(new Date(f.endMs))}`];
    if (f.types.length) where.push(`type = any(${p.add(f.types)}::text[])`);
    if (f.tags.length) where.push(`tags @> ${p.add(JSON.stringify(f.tags))}::jsonb`);
    afterCursor(p, where, f.after);
    const sql = `select id::text as id, ts, ${TS_US} as ts_us, type, title, text, tags
                   from events where ${where.join(' and ')} order by ts desc, id desc limit ${p.add(f.limit)}`;
    return this.onReadConnection(timeoutMs, async (conn) => (await conn.query<EventRow>(sql, p.values)).rows);
  }

  /** Ingested counts of the UTC day `today` and of its month so far, and the org's series count. */
  async usage(orgId: string, today: string, monthStart: string): Promise<UsageRow> {
    const { rows } = await this.knex.raw<{ rows: UsageRow[] }>(
      `select coalesce(sum(points) filter (where day = ?::date), 0)::float8 as today_points,
              coalesce(sum(logs) filter (where day = ?::date), 0)::float8 as today_logs,
              coalesce(sum(events) filter (where day = ?::date), 0)::float8 as today_events,
              coalesce(sum(points), 0)::float8 as month_points,
              coalesce(sum(logs), 0)::float8 as month_logs,
              coalesce(sum(events), 0)::float8 as month_events,
              (select count(*) from series where org_id = ?)::float8 as active_series
         from usage_daily where org_id = ? and day >= ?::date and day <= ?::date`,
      [today, today, today, orgId, orgId, monthStart, today],
    );
    return rows[0];
  }
}

/** ts in epoch microseconds, exact (extract returns numeric): cursors must not lose PostgreSQL's precision. */
const TS_US = `(extract(epoch from ts) * 1000000)::bigint::text`;

/** The WHERE terms of a log read: the org, the range [start, end), the level, the body substring, the attributes. */
function logWhere(p: Params, orgId: string, f: Omit<LogFilter, 'after' | 'limit'>): string[] {
  const where = [`org_id = ${p.add(orgId)}`, `ts >= ${p.add(new Date(f.startMs))}`, `ts < ${p.add(new Date(f.endMs))}`];
  if (f.minSeverity !== null) {
    const min = p.add(f.minSeverity);
    where.push(f.minSeverity <= INFO ? `(severity_number >= ${min} or severity_number <= 0)` : `severity_number >= ${min}`);
  }
  if (f.bodyLike !== null) where.push(`body ilike ${p.add(f.bodyLike)} escape '\\'`);
  for (const a of f.attributes) where.push(`attributes->>${p.add(a.key)} = any(${p.add(a.values)}::text[])`);
  return where;
}

// Row comparison on (ts, id) is an index condition of (org_id, ts, id): the page starts where the last one ended.
function afterCursor(p: Params, where: string[], after: TsIdCursor | undefined): void {
  if (after) where.push(`(ts, id) < (timestamptz 'epoch' + ${p.add(after.tsUs)}::bigint * interval '1 microsecond', ${p.add(after.id)}::bigint)`);
}
