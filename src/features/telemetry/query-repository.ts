import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { withPooledConnection } from '../../db/database.js';
import type { LabelMatcher, TsIdCursor } from './query-params.js';
import { CHUNK_WINDOW_MS, chunkHeadSql } from './telemetry-tables.js';
import type { SeriesKind, Temporality } from './telemetry-types.js';
import { aggregateTiers, pickedLabels, type TierChunks, type TierFresh, type TierSeries } from './tier-read.js';

/**
 * The aggregations a metric query offers. Percentiles interpolate (percentile_cont); `increase`
 * and `rate` are temporal: per series, the growth of a counter (DELTA_SQL below).
 */
export const AGGREGATIONS = ['avg', 'min', 'max', 'sum', 'count', 'p50', 'p90', 'p95', 'p99', 'increase', 'rate'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];
/** The aggregations over the raw points of a bucket (the others look at consecutive points of a series). */
type PointAggregation = Exclude<Aggregation, 'increase' | 'rate'>;

// Fixed SQL per aggregation (never built from input). count as float8 so every value parses alike.
const AGG_SQL: Record<PointAggregation, string> = {
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

/**
 * `increase` and `rate`: one delta per point of a series, from its previous point in the range
 * (`p.prev`, lag() over the series' points by time). A delta series' points are increments
 * already: the delta is the value. An up-down counter (declared non-monotonic) has no resets:
 * value − previous, negative when it went down. Otherwise (cumulative counters and histogram or
 * summary parts, and gauges or unknown kinds as Prometheus treats them) it is value − previous, or
 * the value itself when it dropped (a counter reset: the counter restarted from 0). The base of
 * the range's first point is the series' last point in the INCREASE_LOOKBACK_MS (or one step,
 * when longer) before start, so a window's increase includes the growth up to its first point
 * (an alert's `rate` over its window reads the counter's full rate, not (n−1)/n of it); without
 * such a point, the range's first point only sets the base (TEMPORAL_WHERE leaves it out). A bucket's increase is the sum of its deltas; rate divides
 * it by the step in seconds.
 */
const DELTA_SQL = `case when s.temporality = 'delta' then p.value when p.value >= p.prev or s.kind = 'updowncounter' then p.value - p.prev else p.value end`;
const TEMPORAL_WHERE = `(s.temporality = 'delta' or p.prev is not null)`;
/** How far before a range's start increase/rate look for the base point (Prometheus's default lookback is 5 minutes too). */
export const INCREASE_LOOKBACK_MS = 300_000;
const isTemporal = (agg: Aggregation): agg is 'increase' | 'rate' => agg === 'increase' || agg === 'rate';

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

/** One metric read (series lookup, limits, aggregation) as QueryRepository.metricRead runs it. */
export interface MetricReadSpec {
  name: string;
  matchers: readonly LabelMatcher[];
  /** Group the matching series by these labels' values; [] keeps one answer series per stored series. */
  by: string[];
  startMs: number;
  endMs: number;
  stepMs: number;
  agg: Aggregation;
  /** Buckets per answer series. */
  buckets: number;
  /** More matching series than this: nothing is aggregated (the caller refuses the read). */
  maxSeries: number;
  /** More than this many answer series × buckets: nothing is aggregated either. */
  maxPoints: number;
  /** More compacted points to decode than this: nothing is fetched or aggregated (default MAX_DECODED_POINTS). */
  maxDecodedPoints?: number;
}

/** What a stored series is, beside its labels (its descriptor's identifying part). */
export interface SeriesDescriptor {
  kind: SeriesKind;
  temporality: Temporality | null;
  unit: string;
}

/** One answer series as the statement returns it: bucket starts (epoch ms) and aggregates, in no particular order. */
export interface MetricReadSeries {
  labels: Record<string, string>;
  /** The stored series' descriptor; null for a group (`by`), whose series may differ in it. */
  descriptor: SeriesDescriptor | null;
  t: number[];
  v: (number | null)[];
}

export interface MetricReadResult {
  /** Matching series, counted up to maxSeries + 1. */
  series: number;
  /** Answer series they form (groups of their `by` values, or the series themselves). */
  answers: number;
  /** Answer series holding at least one point; empty when a limit refused the aggregation. */
  rows: MetricReadSeries[];
  /**
   * Compacted points the read would decode (chunks neither wholly inside one bucket nor read by their halves, or a percentile's);
   * over MAX_DECODED_POINTS nothing is fetched or aggregated (the caller refuses the read).
   */
  decodedPoints: number;
}

/**
 * Most compacted points one metric read decodes: each becomes objects in Node, outside the
 * statement timeout's reach, so a read of months of 30-minute buckets (2-hour chunks and their
 * 1-hour halves never whole in one bucket; or of chunks written without halves) or of percentiles
 * over many series is refused instead of exhausting memory.
 */
export const MAX_DECODED_POINTS = 5_000_000;

/** One distinct descriptor among a metric name's series, with how many series have it. */
export interface MetricTypeRow {
  kind: SeriesKind;
  temporality: Temporality | null;
  monotonic: boolean;
  unit: string;
  description: string;
  series: number;
}

export interface MetricNameRow {
  name: string;
  series: number;
  label_keys: string[];
  /** Sorted by kind, temporality (null first), monotonic, unit, description. */
  types: MetricTypeRow[];
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
  observed_ts: Date | null;
  event_name: string | null;
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

/**
 * A metric read whose range (with the increase/rate lookback) is longer than this reads both tiers
 * in one statement (its fresh part planned for every such read); a shorter one holding both chunks
 * and fresh points reads them by two statements and compares the versions of the chunks they saw,
 * whose cost grows with the chunks read (measured on a month of 100 series' chunks, 36,000 rows:
 * about a third of the statements' execution time).
 */
export const SNAPSHOT_READ_MS = 86_400_000;

/** work_mem of the reads pool's sessions (per sort or materialized CTE of one statement; fixed, never from input). */
const READ_WORK_MEM = '32MB';

/** A pooled pg connection, as knex's pool hands it out. */
interface PgConnection {
  query<R extends object>(sql: string | NamedStatement, values?: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
}

/** A statement node-postgres prepares under `name` on a connection (parsed once there) and then only binds and executes. */
interface NamedStatement {
  name: string;
  text: string;
  values: unknown[];
}

/**
 * Most statement texts one reads connection keeps prepared. The texts are the read shapes (an
 * aggregation, grouped or not, the matchers' operators, buckets aligned to the chunk windows or
 * not…), never input values. A prepared metric
 * read holds ~0.3–0.45 MB of the server's memory for the connection's life (measured in
 * pg_backend_memory_contexts), so at most ~14 MB a connection; past this many, other texts run
 * unnamed as before (slower to parse, nothing kept). A read shape whose tier is predicted
 * (QueryRepositoryOptions) has two texts, the predicted statement's and the full one's.
 */
export const MAX_PREPARED_PER_CONNECTION = 32;
/** SQLSTATE feature_not_supported: "cached plan must not change result type" (a selected column's type changed since it was prepared). */
const FEATURE_NOT_SUPPORTED = '0A000';

/** A reads connection's session: its statement timeout and what it knows of the texts run on it. */
interface ReadSession {
  timeout: number;
  /** Names prepared on the connection (a named execution succeeded). */
  prepared: Set<string>;
  /** Names whose prepared statement the server refused to run again (0A000): run unnamed from then on. */
  blocked: Set<string>;
}

/** A statement's name on a connection: a digest of its text (one text, one name; 128 bits, so no two texts share one). */
const statementName = (text: string): string => `sentinel_read_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;

/**
 * `conn` whose statements with parameters are prepared under a name (statementName) the first time
 * a text runs on it, then bound and executed only: the parse analysis of a metric read's statement
 * (several KB of SQL, a dozen CTEs) is not repeated per read. The first run too: a connection that
 * ran a text unnamed first and prepared it on a later run executed it ~2.5× slower ever after
 * (measured on the same connection protocol, 200 runs: 5.8–6.5 ms against 2.4–2.6 ms for a text
 * prepared on its first run, 7.0–7.6 ms unnamed every time). Most of that was the backend's memory,
 * not the statement: after a text's unnamed runs, its prepared executions gave back and faulted in
 * ~0.7 MB each with glibc's default malloc thresholds (~180 page faults, 1.1 → 3.7–5.4 ms), and none
 * with the thresholds the embedded server now runs with (config/postgres-environment.ts;
 * docs/benchmarks.md, "Page faults in PostgreSQL's backends"). Preparing on the first run still
 * saves the parse analysis (4–5 ms unnamed against ~1.1 ms prepared for a one-series read), on
 * any server.
 * Each execution is still planned for its values (the session's plan_cache_mode =
 * force_custom_plan), as an unnamed statement is: a generic plan would not know a label filter's
 * value (and walk every series of the metric where the custom plan uses the labels index) nor prune
 * the day partitions when planning. A prepared statement the server refuses to run again because a
 * selected column's type changed (a migration while serving) is run unnamed instead, then and after.
 */
function preparing(conn: PgConnection, session: ReadSession): PgConnection {
  return {
    async query<R extends object>(sql: string | NamedStatement, values?: unknown[]): Promise<{ rows: R[] }> {
      if (typeof sql !== 'string' || !values?.length) return conn.query<R>(sql, values);
      const name = statementName(sql);
      const { prepared, blocked } = session;
      if (!prepared.has(name) && (blocked.has(name) || prepared.size >= MAX_PREPARED_PER_CONNECTION)) return conn.query<R>(sql, values);
      try {
        const res = await conn.query<R>({ name, text: sql, values });
        prepared.add(name);
        return res;
      } catch (err) {
        if ((err as { code?: string }).code !== FEATURE_NOT_SUPPORTED || !prepared.has(name)) throw err;
        prepared.delete(name);
        blocked.add(name);
        return conn.query<R>(sql, values);
      }
    },
    end: () => conn.end(),
  };
}

/**
 * A row of metricRead's statement: r = 'k' the counts, in v the compacted points to decode and
 * whether the fresh tier has points of the series in the range (1, else 0) — the fresh-first
 * statement's v is [0, 0, whether a chunk overlaps the range (1, else 0)] — and in sid the versions
 * of the chunks read (when the short read's second statement will compare them); 'x' one answer series (fresh tier only); with chunks in the range instead 's' a matching
 * series (lookup order), 'c' a series' chunks (chunkRecords in data), 'f' a series' fresh points or per-bucket partials, 'v' (sid)
 * the versions of the same chunks as the fresh tier's statement sees them.
 */
interface MetricReadRow {
  r: 'k' | 'x' | 's' | 'c' | 'f' | 'v';
  n: number | null;
  answers: number | null;
  labels: Record<string, string> | null;
  kind: SeriesKind | null;
  temporality: Temporality | null;
  unit: string | null;
  gk: (string | null)[] | null;
  t: number[] | null;
  v: (number | null)[] | null;
  sid: string | null;
  /** 'c': the chunk records, base64 (a third more bytes over the wire than raw, where bytea's text form, hex, doubles them). */
  data: string | null;
}

/**
 * The WHERE terms of label matchers. The non-empty `=` matchers make one containment term
 * (`labels @> {"a": "x", "b": "y"}`, one parameter however many there are, answered by the GIN
 * index on labels); a label given twice with different values gets a term of its own.
 */
function matcherTerms(p: Params, matchers: readonly LabelMatcher[]): string[] {
  const terms: string[] = [];
  const contains: Record<string, string> = {};
  let any = false;
  for (const m of matchers) {
    if (m.op === '=' && m.value !== '' && !Object.hasOwn(contains, m.label)) {
      contains[m.label] = m.value;
      any = true;
    } else {
      terms.push(MATCH_SQL[m.op === '=' && m.value !== '' ? '@>' : m.op](p.add(m.label), p.add(m.value)));
    }
  }
  return any ? [`labels @> ${p.add(JSON.stringify(contains))}::jsonb`, ...terms] : terms;
}

/**
 * The fresh tier's part of a two-tier read of the series `ids` (rows r = 'f'): raw points in (ts,
 * value) order where every value counts (percentiles) or consecutive points do (increase/rate, with
 * the base probe of the lookback), else per series and bucket [bucket, first ts, count, sum, min, max].
 */
function freshStatement(orgId: string, q: MetricReadSpec, ids: string[], lookbackStartMs: number, versions: boolean): { sql: string; values: unknown[] } {
  const p = new Params();
  const org = p.add(orgId);
  const start = p.add(new Date(q.startMs));
  const end = p.add(new Date(q.endMs));
  const idList = `${p.add(ids)}::bigint[]`;
  const lo = isTemporal(q.agg) ? p.add(new Date(lookbackStartMs)) : start;
  const versionRow = versions
    ? ` union all select 'v' as r, ${VERSIONS} as sid, null::float8[] as t, null::float8[] as v from (
      select ${CHUNK_VERSION} from point_chunks c where ${chunkOverlap(org, idList, lo, end, p.add(new Date((isTemporal(q.agg) ? lookbackStartMs : q.startMs) - CHUNK_WINDOW_MS)))}) cv`
    : '';
  return { sql: `select 'f' as r, sid, t, v from (${freshSelect(p, q, org, start, end, lo, idList)}) f${versionRow}`, values: p.values };
}

/**
 * freshStatement's rows (sid, t, v) of the series `ids` (a bigint[] expression): placeholders
 * `org`, `start`, `end` and `lo` (the lookback start for increase/rate, else start) already in `p`.
 */
function freshSelect(p: Params, q: MetricReadSpec, org: string, start: string, end: string, lo: string, ids: string): string {
  const ms = (ts: string) => `(extract(epoch from ${ts}) * 1000)::float8`;
  const range = `p.org_id = ${org} and p.ts >= ${start} and p.ts < ${end}`;
  if (isTemporal(q.agg)) {
    return `
      select fs.id::text as sid, array_agg(${ms('q.ts')} order by q.ts, q.value) as t, array_agg(q.value order by q.ts, q.value) as v
        from unnest(${ids}) fs(id) cross join lateral (
               (select p.ts, p.value from points p
                 where p.org_id = ${org} and p.series_id = fs.id and p.ts >= ${lo} and p.ts < ${start}
                 order by p.ts desc, p.value desc limit 1)
               union all
               (select p.ts, p.value from points p where ${range} and p.series_id = fs.id)) q
       group by fs.id`;
  }
  if (q.agg.startsWith('p')) {
    return `
      select p.series_id::text as sid, array_agg(${ms('p.ts')} order by p.ts, p.value) as t, array_agg(p.value order by p.ts, p.value) as v
        from points p where ${range} and p.series_id = any(${ids})
       group by p.series_id`;
  }
  const bin = `date_bin(${p.add(q.stepMs)}::bigint * interval '1 millisecond', p.ts, ${start}::timestamptz)`;
  return `
      select sid, null::float8[] as t, array_agg(array[${ms('b')}, ${ms('f')}, n, sm, mn, mx]) as v from (
        select p.series_id::text as sid, ${bin} as b, min(p.ts) as f, count(*)::float8 as n, sum(p.value) as sm, min(p.value) as mn, max(p.value) as mx
          from points p where ${range} and p.series_id = any(${ids})
         group by 1, 2) fb
       group by sid`;
}

/**
 * The chunks of the series `ids` (an array expression) that overlap [lo, end): the partition key
 * (a chunk's window start, after `windowLo` = lo − one window) narrows the probe to the windows
 * that can hold such points. windowLo is a parameter of its own, not an expression of lo: a bound
 * the planner sees as a constant prunes the partitions when planning (timestamptz − interval is
 * only stable, pruned at execution), which saved ~4 ms of planning with 30 days of partitions.
 */
function chunkOverlap(org: string, ids: string, lo: string, end: string, windowLo: string): string {
  return `c.org_id = ${org} and c.series_id = any(${ids})
         and c.ts > ${windowLo} and c.ts < ${end}
         and c.last_ts >= ${lo} and c.first_ts < ${end}`;
}

/** One chunk row version (partition vt, place vc, writing transaction ver): a compaction batch or a merge changes it. */
const CHUNK_VERSION = `c.tableoid as vt, c.ctid as vc, c.xmin::text as ver`;
/**
 * The versions of a set of chunk rows as one value, order-free (no sort, no concatenation of them
 * all): their count and the sum of a 64-bit hash of each (place and writing transaction, seeded by
 * the partition). Why it tells a compaction batch committed between the two statements of a read:
 * such a batch's rows in the range are new row versions whose xmin is the batch's transaction, which
 * committed after the first statement's snapshot, so no version the first statement saw carries it;
 * an updated or deleted row's old version is gone from the second's. The two sets then differ, and
 * two different sets give equal values only if count and the 64-bit hash sum collide (as the md5 of
 * their list could).
 */
const VERSIONS = `count(*)::text || ':' || coalesce(sum(hashtextextended(vc::text || ':' || ver, vt::oid::bigint)), 0)::text`;

/**
 * A series' chunks (rows of `ch`: the head, m what follows it, d its bytes) as one bytea of
 * records (tier-read.ts's TierChunks): the chunk's head `hd` (chunkHeadSql: the two times as
 * timestamptz_send — big-endian int8 microseconds since 2000-01-01, no numeric epoch arithmetic
 * per chunk — and the seven numbers as float8send, big-endian IEEE 754, bit for bit; stored by
 * the compaction job, packed from the columns for a chunk without one: packing them per read was
 * about half of a month-long read's statement, 90 of ~180 ms on 36,000 chunks), an int4send L
 * (m = 0: the data, L its length; m = 1: nothing, L = -1; m = 2: the sub, L = -2 − its length),
 * the bytes. One row per series instead of one per chunk: a month of 2-hour chunks of 100 series
 * is 36,000 rows, whose parsing in node-postgres (text protocol, two float8[] columns each) cost
 * more than the statement.
 * In no particular order (no sort of the chunk rows): tier-read.ts orders a series' parts by time,
 * and a series' chunks lie in disjoint windows (one row per series and window); a percentile's,
 * whose values are kept in the order they come, are sent in first-ts order.
 */
const chunkRecords = (ordered: boolean) => `string_agg(ch.hd
         || int4send(case ch.m when 0 then length(ch.d) when 1 then -1 else -2 - length(ch.d) end) || coalesce(ch.d, ''::bytea), ''::bytea${ordered ? ' order by ch.ft' : ''})`;

export interface QueryRepositoryOptions {
  /**
   * storage.compact_after in ms, from which metricRead predicts which tier a read's range is in
   * (undefined: no prediction, every read is the full statement). The compaction job compacts only
   * windows whose end is at least that old, so:
   *  - a read whose range (for increase/rate, from its lookback start) starts within this long of
   *    now runs the fresh-first statement before the full one: its points are in the fresh tier
   *    unless a compaction ran with a shorter setting (or a clock ahead);
   *  - a read whose range ends before the job's current horizon (the start of the window holding
   *    now − compact_after), other than a percentile, runs the chunks-first statement: its points
   *    are in chunks once the job has run since.
   * Where the prediction is wrong (the chunks-first statement finds no chunk, or fresh points in a
   * snapshot read; the fresh-first one finds a chunk), its rows are set aside and the full statement
   * reads. Tests may pass +Infinity (always fresh-first) or -Infinity (always chunks-first where allowed).
   */
  compactAfterMs?: number;
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
  /** Each `reads` connection's session: the statement timeout it currently has, the statements it prepared. */
  private readonly sessions = new WeakMap<PgConnection, ReadSession>();

  /**
   * `reads` is a pool of its own for the query statements: this repository sets its sessions'
   * statement_timeout and turns JIT off, which must not leak into the application's other work.
   */
  constructor(
    private readonly knex: Knex,
    private readonly reads: Knex,
    private readonly o: QueryRepositoryOptions = {},
  ) {}

  /**
   * One metric read, in ONE statement when nothing else is needed (below), on one connection
   * under the statement timeout: the
   * matching series (at most maxSeries + 1), their count and the number of answer series they
   * form, and — only when both are within the limits (a one-time filter, so a refused read reads
   * no points) — every bucket's aggregate per answer series, one row per answer series with its
   * buckets as arrays. Buckets are date_bin(step, ts, start), i.e. aligned to the query's start.
   * Ungrouped, the points are read by an index range scan of points_series_ts (series_id = any
   * of the looked-up ids). Grouped, series by series in lookup order (a lateral index scan, so
   * a group's points reach its aggregate in the same order every time: a float sum depends on
   * it), each point carrying its series' group key (the `by` labels' values, null where absent),
   * so a group's aggregate runs over the raw points of all its series (an avg is the mean of the
   * points, not a mean of per-series means).
   * `increase` and `rate` (grouped or not) read series by series too, each series' points in
   * time order straight from the index (lag() only sorts points of equal ts among themselves: an
   * incremental sort), and turn them into deltas
   * (DELTA_SQL) before the buckets sum them: a group's increase is the sum of its series'
   * increases. Over the group's raw points it would be meaningless: lag() across the points of
   * different series would subtract one process's counter from another's.
   * Two tiers (DESIGN §3): the statement also looks up the chunks (point_chunks) of the matching
   * series overlapping the range (and the increase/rate lookback), one index probe per series.
   * Without one, it answers as above and nothing else runs. With one, the finished aggregates are
   * not computed; the statement returns instead the series in lookup order and the chunks (their
   * stored aggregates, their halves' (`sub`) where each half lies in one bucket, and their data only
   * where the points are needed one by one; per series one
   * bytea of chunkRecords, sent base64), and whether the fresh tier holds any point of those series
   * where the fresh tier's part would read (an index probe per series that stops at the first).
   * When it holds none (all data compacted: any read of data older than compact_after), those rows
   * are the whole answer, as of the statement's one snapshot, and nothing else runs (but the full
   * statement after a predicted one that fell short, below): one round trip. Otherwise the fresh tier's part of the range (freshStatement: per series and bucket
   * count/sum/min/max, or raw points in (ts, value) order for percentiles and increase/rate) is
   * read as of the same state of the tiers: by the same statement for a range longer than
   * SNAPSHOT_READ_MS and for increase/rate (`fp`), else by a second statement on the same
   * connection whose chunk versions must equal the first's (else both again in one repeatable-read
   * transaction); tier-read.ts aggregates them exactly as the fresh-only statement would (see
   * there for where a float sum's order can differ). Two statements rather than one for the short
   * reads of the other aggregations: in one, the fresh part's scans were planned for every read,
   * fresh-only ones too (measured: planning 0.93 against 0.74 ms for one series, 1.22 against 0.82
   * ms for 100; with two, 0.67 and 0.72 ms).
   * A read of recent data (QueryRepositoryOptions.compactAfterMs) first runs the fresh-first statement
   * (metricStatement): the lookup and the fresh-only aggregation, with only an existence probe of the
   * chunks; when no chunk overlaps, its rows are the full statement's in the same snapshot. A read of
   * older data runs the chunks-first statement: the full one without the fresh-only aggregation;
   * when chunks overlap (and, for a snapshot read, no fresh point is in the range), its rows are the
   * full statement's.
   * No ORDER BY: the caller orders the answer.
   * Prepared on a reads connection when first run there, planned for each read's values (onReadConnection,
   * preparing): a generic plan would not know the label filter's value and may walk every series
   * of the metric where the custom plan uses the GIN index.
   */
  async metricRead(orgId: string, q: MetricReadSpec, timeoutMs: number): Promise<MetricReadResult> {
    const maxDecode = q.maxDecodedPoints ?? MAX_DECODED_POINTS;
    const temporal = isTemporal(q.agg);
    const lookbackStartMs = q.startMs - Math.max(q.stepMs, INCREASE_LOOKBACK_MS);
    // Which tier the range is in, predicted from compact_after (see QueryRepositoryOptions).
    const after = this.o.compactAfterMs;
    const now = Date.now();
    const freshFirst = after !== undefined && (temporal ? lookbackStartMs : q.startMs) >= now - after;
    const chunksFirst =
      after !== undefined && !freshFirst && !q.agg.startsWith('p') && q.endMs <= Math.floor((now - after) / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS;
    // A long range is read in one repeatable-read transaction; a short one by two statements whose chunk versions agree (see below),
    // except increase/rate: whether a chunk is read by its stored increase depends on the fresh points inside its span, which a
    // late point written between the two statements changes without changing any chunk version.
    const long = q.endMs - (temporal ? lookbackStartMs : q.startMs) > SNAPSHOT_READ_MS;
    const snapshot = long || temporal;
    const span = { temporal, lookbackStartMs, long, snapshot };
    let fullStatement: ReturnType<QueryRepository['metricStatement']> | undefined;
    const full = () => (fullStatement ??= this.metricStatement(orgId, q, maxDecode, 'full', span));
    const kRow = (rows: MetricReadRow[]) => rows.find((r) => r.r === 'k');
    const decodeCount = (rows: MetricReadRow[]) => (kRow(rows)?.v?.[0] as number | undefined) ?? 0;
    /** Statement 1 found chunks in the range (rows 's') and fresh points there too: the fresh tier's statement has something to read. */
    const needsFresh = (rows: MetricReadRow[]) => rows.some((r) => r.r === 's') && decodeCount(rows) <= maxDecode && kRow(rows)?.v?.[1] === 1;
    const freshOf = (rows: MetricReadRow[], versions: boolean) =>
      freshStatement(orgId, q, rows.filter((r) => r.r === 's').map((r) => r.sid!), lookbackStartMs, versions);
    /**
     * A short read's both statements in one repeatable-read transaction: the second reads the
     * snapshot of the first. Both tiers' parents are locked before the snapshot is taken (the LOCK
     * takes none, the first SELECT does), as a backup does: a partition of points dropped by
     * compaction (which locks the parent) after a snapshot that holds its rows but not their chunks
     * would otherwise be missing from the second statement.
     */
    const inSnapshot = async (conn: PgConnection) => {
      await conn.query('begin isolation level repeatable read read only; lock table only points, only point_chunks in access share mode');
      try {
        const first = (await conn.query<MetricReadRow>(full().sql, full().values)).rows;
        const f = needsFresh(first) ? freshOf(first, false) : null;
        const rest = f ? (await conn.query<MetricReadRow>(f.sql, f.values)).rows : [];
        await conn.query('commit');
        return [...first, ...rest.filter((r) => r.r !== 'v')];
      } catch (err) {
        // A connection that cannot roll back is ended, so the pool discards it rather than lend it inside a transaction.
        await conn.query('rollback').catch(() => conn.end().catch(() => undefined));
        throw err;
      }
    };
    const rows = await this.onReadConnection(timeoutMs, async (conn) => {
      // The fresh-first statement: its answer is the full statement's whenever no chunk of the
      // matching series overlaps the range in its snapshot (k's third value 0); otherwise it is
      // set aside and the full statement reads (as of a later moment, as any later read would).
      if (freshFirst) {
        const ff = this.metricStatement(orgId, q, maxDecode, 'freshFirst', span);
        const answer = (await conn.query<MetricReadRow>(ff.sql, ff.values)).rows;
        if (kRow(answer)?.v?.[2] !== 1) return answer;
      }
      // The chunks-first statement's rows are the full statement's first rows (in the same snapshot)
      // whenever the full one's fresh-only aggregation would be empty — chunks overlap (rows 's'), no
      // series matched, or the read is refused by its limits — and, for a snapshot read, no fresh
      // point is in the range (its fresh part would be empty).
      let first: MetricReadRow[] | null = null;
      if (chunksFirst) {
        const cf = this.metricStatement(orgId, q, maxDecode, 'chunksFirst', span);
        const cfRows = (await conn.query<MetricReadRow>(cf.sql, cf.values)).rows;
        const k = kRow(cfRows);
        const n = k?.n ?? 0;
        const refused = !(n <= q.maxSeries && (k?.answers ?? 0) * q.buckets <= q.maxPoints);
        // A snapshot read's fresh part would hold rows (fresh points in range, the decode bound kept): its 'c' rows were left out too.
        const freshPart = snapshot && k?.v?.[1] === 1 && decodeCount(cfRows) <= maxDecode;
        if ((cfRows.some((r) => r.r === 's') || n === 0 || refused) && !freshPart) first = cfRows;
      }
      // Both tiers must be read as of ONE moment: a compaction batch moves points from `points` into
      // point_chunks in one transaction, so any one snapshot holds each point in exactly one tier, but
      // a batch committing between a chunk statement and a fresh one would move points out of the
      // fresh tier after the chunks were read (the answer would miss them), or into a chunk read by
      // the second (counted twice). One statement reads as of one snapshot (all its CTEs and
      // subqueries, in READ COMMITTED too): its rows are one state of the tiers.
      // A snapshot read is that one statement, whatever the tiers hold: with chunks and fresh points
      // in the range it carries the fresh tier's part itself (`fp`); increase/rate are read this way
      // because a late point written between two statements inside a chunk read by its stored
      // increase would be counted twice and no chunk version tells, a long range because the chunk
      // versions below would cost more than the fresh part's planning.
      // Any other read's first statement is the whole answer when it needs no second one: no chunk
      // in the range (it aggregated the fresh tier itself), a refused read, or chunks and NO fresh
      // point of the matching series in the range the fresh statement would read ([start, end),
      // `fr`) — in that same snapshot the fresh statement would return no rows, so the answer is
      // exactly the two-statement read's as of that snapshot (a batch or a late point committed since
      // is simply not seen, as by any earlier read). All-compacted data (any range older than
      // compact_after) is read this way: one round trip.
      first ??= (await conn.query<MetricReadRow>(full().sql, full().values)).rows;
      if (snapshot || !needsFresh(first)) return first;
      // Chunks AND fresh points: the fresh tier's part, by a second statement on the same connection
      // (kept out of the first, whose planning the fresh-only read would pay for). A batch committing
      // between the two writes or rewrites a chunk the first statement read or would now read (its
      // points lie in the range), so the second statement also returns the versions of the chunks it
      // would read: the same versions, and the two statements read one state of the chunk tier, the
      // answer that of the second's snapshot. Otherwise (rare) both statements run again in one
      // repeatable-read transaction.
      const f = freshOf(first, true);
      const rest = (await conn.query<MetricReadRow>(f.sql, f.values)).rows;
      const versionsOf = (rows: MetricReadRow[], r: 'k' | 'v') => rows.find((x) => x.r === r)?.sid;
      if (versionsOf(first, 'k') === versionsOf(rest, 'v')) return [...first, ...rest.filter((r) => r.r !== 'v')];
      return inSnapshot(conn);
    });
    return this.metricResult(q, rows, decodeCount(rows), maxDecode, lookbackStartMs);
  }

  /**
   * metricRead's first statement (see there), `full`; or the fresh-first one: the same lookup and
   * fresh-tier aggregation (`a`, rows 'x'), but of the chunks only whether one of the matching series
   * overlaps the range (one index probe per series, stopping at the first; k's third value), without
   * the chunk rows, their bucket CASE, the fresh-point probe and the rows 's' and 'c' — about half
   * the planning of the full statement (measured on a one-series read: 1.5 → 0.75 ms); or the
   * chunks-first one: the full statement without the fresh-only aggregation (`a`, rows 'x') and a
   * snapshot read's fresh part (`fp`, rows 'f') — not for percentiles, whose chunk CASE would leave
   * the step parameter unused. Each has its own parameters: PostgreSQL refuses a statement with a
   * parameter it does not use (it cannot tell its type).
   */
  private metricStatement(
    orgId: string,
    q: MetricReadSpec,
    maxDecode: number,
    mode: 'full' | 'freshFirst' | 'chunksFirst',
    { temporal, lookbackStartMs, long, snapshot }: { temporal: boolean; lookbackStartMs: number; long: boolean; snapshot: boolean },
  ): { sql: string; values: unknown[] } {
    const p = new Params();
    const org = p.add(orgId);
    const start = p.add(new Date(q.startMs));
    const end = p.add(new Date(q.endMs));
    const step = p.add(q.stepMs);
    const lookupLimit = p.add(q.maxSeries + 1);
    const maxSeries = p.add(q.maxSeries);
    const buckets = p.add(q.buckets);
    const maxPoints = p.add(q.maxPoints);
    const where = [`org_id = ${org}`, `name = ${p.add(q.name)}`, ...matcherTerms(p, q.matchers)];
    const grouped = q.by.length > 0;
    const by = grouped ? p.add(q.by) : '';
    const pointAgg = AGG_SQL[q.agg as PointAggregation] ?? ''; // '' for increase/rate
    const lookbackStart = temporal ? p.add(new Date(lookbackStartMs)) : '';
    // The group key: the `by` labels' values in `by` order (null: absent); arrays with nulls group as equal.
    const key = `array(select labels->>k from unnest(${by}::text[]) with ordinality u(k, i) order by i)`;
    const binOf = (ts: string) => `date_bin(${step}::bigint * interval '1 millisecond', ${ts}, ${start}::timestamptz)`;
    const bin = binOf('p.ts');
    const withinLimits = `(select n <= ${maxSeries} and answers::bigint * ${buckets} <= ${maxPoints} from k)`;
    // Two tiers: whether a chunk of the matching series overlaps the range (or the lookback). Without one
    // (one index probe per series), the statement is the fresh-only one; with one, it returns the
    // series, the chunks and the fresh tier's part for tier-read.ts to aggregate.
    const mixed = `(select exists (select 1 from ch))`;
    const range = `p.org_id = ${org} and p.series_id = s.id and p.ts >= ${start} and p.ts < ${end}`;
    const baseProbe = `(select p.ts, p.value from points p
                     where p.org_id = ${org} and p.series_id = s.id and p.ts >= ${lookbackStart} and p.ts < ${start}
                     order by p.ts desc, p.value desc limit 1)`;
    let a: string;
    if (temporal) {
      // Ties in ts (a retried native write) are ordered by value, so the deltas never depend on the plan.
      const v = q.agg === 'rate' ? `sum(${DELTA_SQL}) / (${step}::bigint::float8 / 1000)` : `sum(${DELTA_SQL})`;
      // The base: the series' last point before start (one index probe, read backwards), then the range's points.
      a = `
        select s.${grouped ? 'gk' : 'id'} as g, ${bin} as b, ${v} as v
          from s cross join lateral (
                 select q.ts, q.value, lag(q.value) over (order by q.ts, q.value) as prev from (
                   ${baseProbe}
                   union all
                   (select p.ts, p.value from points p where ${range})) q) p
         where p.ts >= ${start} and ${TEMPORAL_WHERE} and ${withinLimits} and not ${mixed}`;
    } else if (grouped) {
      a = `
        select s.gk as g, ${bin} as b, ${pointAgg} as v
          from s cross join lateral (select p.ts, p.value from points p where ${range}) p
         where ${withinLimits} and not ${mixed}`;
    } else {
      a = `
        select p.series_id as g, ${bin} as b, ${pointAgg} as v
          from points p
         where p.org_id = ${org} and p.ts >= ${start} and p.ts < ${end}
           and p.series_id = any(array(select id from s))
           and ${withinLimits} and not ${mixed}`;
    }
    // A chunk's data is read only when its points are needed one by one: a percentile, a chunk not
    // wholly inside one bucket of the range, or (increase/rate) an up-down counter's chunk or one with
    // fresh points of its series between its first and last point (late data not merged yet), which
    // its stored increase does not see. A chunk whose two 1-hour halves each lie wholly inside one
    // bucket (by the same rules, a half's points being those of the chunk before or from its
    // window's middle) is read by its halves' aggregates (`sub`) instead, when it has them. The
    // halves' bounds are taken from the columns (the first half: first_ts up to the middle, or
    // last_ts if earlier; the second: the middle, or first_ts if later, up to last_ts), which hold
    // a half's points but may be wider than them: a half decided whole is whole.
    const percentile = pointAgg.startsWith('percentile');
    const inBucket = (lo: string, hi: string) => `${lo} >= ${start} and ${hi} < ${end} and ${binOf(lo)} = ${binOf(hi)}`;
    const noFreshIn = (lo: string, hi: string) =>
      temporal ? ` and not exists (select 1 from points p where p.org_id = ${org} and p.series_id = c.series_id and p.ts >= ${lo} and p.ts <= ${hi})` : '';
    // An up-down counter's increase is the sum of its deltas, which last − first need not equal in floating point.
    // Whether a chunk's series is one comes from `ud`, computed once per statement (its scalar
    // subqueries are InitPlans): none of the matching series (the usual case) or all of them (a
    // metric's series share a kind) answer without looking at the chunk; only a metric of both
    // kinds compares the chunk's series with the up-down ones. A correlated NOT EXISTS over `s` was
    // planned, while `series` had no statistics yet, as a scan of every matching series for every
    // chunk (250 counters × 500 chunks: the statement's execution 8 → 19 ms).
    const notUpDown = temporal
      ? ` and ((select n from ud) = 0 or ((select n from ud) < (select total from ud) and c.series_id <> all((select ids from ud)::bigint[])))`
      : '';
    const upDownCte = temporal
      ? `ud as materialized (select count(*) filter (where kind = 'updowncounter')::int as n, count(*)::int as total,
                           coalesce(array_agg(id) filter (where kind = 'updowncounter'), '{}') as ids from s),
      `
      : '';
    const whole = percentile ? 'false' : `${inBucket('c.first_ts', 'c.last_ts')}${noFreshIn('c.first_ts', 'c.last_ts')}${notUpDown}`;
    const mid = `(c.ts + interval '${CHUNK_WINDOW_MS / 2} milliseconds')`;
    const firstHi = `least(c.last_ts, ${mid} - interval '1 millisecond')`;
    const secondLo = `greatest(c.first_ts, ${mid})`;
    const halves = percentile
      ? 'false'
      : `c.sub is not null${notUpDown}
             and (c.first_ts >= ${mid} or (${inBucket('c.first_ts', firstHi)}${noFreshIn('c.first_ts', firstHi)}))
             and (c.last_ts < ${mid} or (${inBucket(secondLo, 'c.last_ts')}${noFreshIn(secondLo, 'c.last_ts')}))`;
    // Buckets aligned to the windows (not increase/rate: their stored increase also depends on the
    // fresh points inside a chunk's span; not percentiles: always decoded): a chunk wholly inside the
    // range then lies in one bucket (steps of whole windows from a window's start), or each of its
    // halves does (1-hour steps from an hour's start), so its `m` is known from its first and last
    // time alone — the same `m` the general conditions give it, without their bucket arithmetic
    // (~0.7 µs a chunk: a month of 100 series at 1 h is 36,000 chunks). Others take the general ones.
    const halfMs = CHUNK_WINDOW_MS / 2;
    const plain = !temporal && !percentile;
    const aligned =
      plain && q.stepMs % CHUNK_WINDOW_MS === 0 && q.startMs % CHUNK_WINDOW_MS === 0
        ? `when c.first_ts >= ${start} and c.last_ts < ${end} then 1 `
        : plain && q.stepMs === halfMs && q.startMs % halfMs === 0
          ? `when c.first_ts >= ${start} and c.last_ts < ${end} then (case when c.last_ts < ${mid} or c.first_ts >= ${mid} then 1 when c.sub is not null then 2 else 0 end) `
          : '';
    const lo = temporal ? lookbackStart : start;
    // m: 0 the data follows (decode), 1 nothing (whole), 2 the sub (halves); d those bytes. In a long
    // read, OFFSET 0 keeps the lateral subquery from being pulled up, which copies its CASE into d's
    // and evaluates it twice per chunk (measured on a month of 100 series: the statement's execution
    // 232 → 198 ms); a short read's statement costs ~0.5 ms more CPU with it (one series, 1 h), so not there.
    // The windows' lower bound is a parameter of its own (chunkOverlap), added once, where first used.
    let windowLo: string | undefined;
    const overlap = () =>
      chunkOverlap(org, 'array(select id from s)', lo, end, (windowLo ??= p.add(new Date((temporal ? lookbackStartMs : q.startMs) - CHUNK_WINDOW_MS))));
    const head = `with s as materialized (
        select id, ${grouped ? `${key} as gk, kind, temporality` : 'labels, kind, temporality, unit'} from series where ${where.join(' and ')} limit ${lookupLimit}),
      k as (select count(*)::int as n, ${grouped ? 'count(distinct gk)::int' : 'count(*)::int'} as answers from s),`;
    const answerRows = `select 'x', null, null, null, ${grouped ? 'null::jsonb, null, null, null, x.g' : 's.labels, s.kind, s.temporality, s.unit, null::text[]'}, x.t, x.v, null
        from x${grouped ? '' : ' join s on s.id = x.g'}`;
    const none = 'null::text as sid, null::jsonb as labels, null::text as kind, null::text as temporality, null::text as unit, null::text[] as gk';
    const fresh = `a as (${a}
         group by 1, 2),
      x as (select g, array_agg((extract(epoch from b) * 1000)::float8) as t, array_agg(v) as v from a group by g)`;
    if (mode === 'freshFirst') {
      // ch: whether a chunk of the matching series overlaps the range (limit 1), under the same limits.
      const sql = `${head}
      ch as materialized (select 1 from point_chunks c where ${overlap()} and ${withinLimits} limit 1),
      ${fresh}
      select 'k' as r, k.n, k.answers, ${none}, null::float8[] as t, array[0, 0, ${mixed}::int::float8] as v, null::text as data from k
      union all
      ${answerRows}
`;
      return { sql, values: p.values };
    }
    const chunks = `
      select c.series_id::text as sid, c.first_ts as ft, c.count as n, x.m, case x.m when 0 then c.data when 2 then c.sub end as d,
             coalesce(c.head, ${chunkHeadSql('c')}) as hd${snapshot ? '' : `, ${CHUNK_VERSION}`}
        from point_chunks c
             cross join lateral (select case ${aligned}when ${whole} then 1 when ${halves} then 2 else 0 end as m${long ? ' offset 0' : ''}) x
       where ${overlap()} and ${withinLimits}`;
    // Whether the fresh tier holds a point of the matching series where the fresh tier's statement
    // (freshStatement) would read: [lo, end) — for increase/rate from the lookback start, its base
    // probe's range. Probed only when chunks overlap the range (CASE: `mixed` first), by one index
    // probe per series (in index order, limit 1: a plain EXISTS over `series_id = any(…)` was planned
    // as a sequential scan of the partition, cheap to start but reading it all when nothing matches),
    // which stops at the first point. Without such a point, this statement's rows are the whole answer
    // (see metricRead's body).
    const freshIn = `(case when ${mixed} then exists (select 1 from s cross join lateral (
                        select 1 from points p where p.org_id = ${org} and p.series_id = s.id and p.ts >= ${lo} and p.ts < ${end} order by p.ts limit 1) fp)
                      else false end)`;
    // The chunk versions (for the short reads' check below) only when a second statement will compare them: fresh points in the range.
    const versions = `(case when (select f from fr) then (select ${VERSIONS} from ch) end) as sid`;
    const maxDecodeParam = p.add(maxDecode);
    // A snapshot read (long, or increase/rate) reads the fresh tier's part in this statement too
    // (`fp`, freshStatement's rows), evaluated only when chunks AND fresh points are in the range
    // (`fr`) and the decode bound holds: every snapshot read is one statement. A short read of
    // another aggregation does not carry it (its planning would cost every fresh-only read: see above).
    const withFresh = mode === 'full';
    const freshPart =
      snapshot && withFresh
        ? `
      fp as (select f0.* from (${freshSelect(p, q, org, start, end, lo, 'array(select id from s)')}) f0
              where (select f from fr) and (select n from cd) <= ${maxDecodeParam}),`
      : '';
    const sql = `${head}
      ${upDownCte}ch as materialized (${chunks}),
      cd as (select coalesce(sum(n) filter (where m = 0), 0)::float8 as n from ch),
      fr as materialized (select ${freshIn} as f)${
        withFresh
          ? `,${freshPart}
      ${fresh}`
          : ''
      }
      select 'k' as r, k.n, k.answers, ${snapshot ? none : none.replace('null::text as sid', versions)}, null::float8[] as t,
             array[(select n from cd), (select f::int::float8 from fr)] as v, null::text as data from k
      union all${
        withFresh
          ? `
      ${answerRows}
      union all`
          : ''
      }
      select 's', null, null, s.id::text, ${grouped ? 'null, s.kind, s.temporality, null, s.gk' : 's.labels, s.kind, s.temporality, s.unit, null'}, null, null, null
        from s where ${mixed}
      union all
      select 'c', null, null, ch.sid, null, null, null, null, null, null, null, encode(${chunkRecords(percentile)}, 'base64') from ch
       where (select n from cd) <= ${maxDecodeParam}${snapshot && !withFresh ? ' and not (select f from fr)' : ''}
       group by ch.sid${
         snapshot && withFresh
           ? `
      union all
      select 'f', null, null, fp.sid, null, null, null, null, null, fp.t, fp.v, null from fp`
           : ''
       }
`;
    return { sql, values: p.values };
  }

  /** metricRead's answer from its statements' rows (`decodedPoints`: the compacted points they decode). */
  private metricResult(q: MetricReadSpec, rows: MetricReadRow[], decodedPoints: number, maxDecode: number, lookbackStartMs: number): MetricReadResult {
    const grouped = q.by.length > 0;
    const out: MetricReadResult = { series: 0, answers: 0, rows: [], decodedPoints };
    if (out.decodedPoints > maxDecode) {
      const k = rows.find((r) => r.r === 'k');
      return { ...out, series: k?.n ?? 0, answers: k?.answers ?? 0 };
    }
    const series: TierSeries[] = [];
    const chunkRows: TierChunks[] = [];
    const freshRows: TierFresh[] = [];
    for (const r of rows) {
      if (r.r === 'k') {
        out.series = r.n ?? 0;
        out.answers = r.answers ?? 0;
      } else if (r.r === 'x') {
        out.rows.push({
          labels: r.labels ?? pickedLabels(q.by, r.gk ?? []),
          descriptor: r.kind === null ? null : { kind: r.kind, temporality: r.temporality, unit: r.unit ?? '' },
          t: r.t ?? [],
          v: r.v ?? [],
        });
      } else if (r.r === 's') {
        const kind = r.kind ?? 'unknown';
        series.push({
          id: r.sid!,
          kind,
          temporality: r.temporality,
          labels: grouped ? null : (r.labels ?? {}),
          descriptor: grouped ? null : { kind, temporality: r.temporality, unit: r.unit ?? '' },
          gk: grouped ? (r.gk ?? []) : null,
        });
      } else if (r.r === 'c') {
        chunkRows.push({ seriesId: r.sid!, records: Buffer.from(r.data!, 'base64') });
      } else if (r.t !== null) {
        freshRows.push({ seriesId: r.sid!, raw: true, t: r.t, v: r.v as number[] });
      } else {
        const parts = (r.v ?? []) as unknown as number[][];
        freshRows.push({ seriesId: r.sid!, raw: false, buckets: parts.map(([b, first, n, sum, min, max]) => ({ b, first, n, sum, min, max })) });
      }
    }
    if (series.length > 0) {
      out.rows = aggregateTiers({ agg: q.agg, startMs: q.startMs, endMs: q.endMs, stepMs: q.stepMs, lookbackStartMs, by: q.by }, series, chunkRows, freshRows);
    }
    return out;
  }

  /**
   * A connection of the reads pool used directly, outside a transaction: a statement costs one
   * round trip, as it would for a client of PostgreSQL (knex's transaction wrapper costs about
   * a millisecond, BEGIN/COMMIT two more round trips). The session's timeout is set only when it
   * differs from the one wanted. JIT stays off: its compile time (hundreds of ms) dwarfs these
   * statements. work_mem is READ_WORK_MEM: a month of one hundred series' chunk rows (36,000, the
   * `ch` CTE and the sort of their records) spilled to temporary files under the default 4 MB
   * (measured: the statement's p50 943 → 774 ms, interleaved, on a loaded machine). Statements with
   * parameters are prepared on their first run on a connection and planned per execution for their
   * values (preparing; plan_cache_mode = force_custom_plan): measured on a compacted one-series read's two
   * statements, p50 7.3 → 5.1 ms, and 35 → 21 ms for 150 series (interleaved, loaded machine).
   */
  private async onReadConnection<T>(timeoutMs: number, fn: (conn: PgConnection) => Promise<T>): Promise<T> {
    return withPooledConnection<T, PgConnection>(this.reads, async (conn) => {
      const timeout = Math.max(1, Math.trunc(timeoutMs));
      let session = this.sessions.get(conn);
      if (session?.timeout !== timeout) {
        await conn.query(`set statement_timeout = ${timeout}; set jit = off; set work_mem = '${READ_WORK_MEM}'; set plan_cache_mode = force_custom_plan`);
        session = { timeout, prepared: session?.prepared ?? new Set(), blocked: session?.blocked ?? new Set() };
        this.sessions.set(conn, session);
      }
      return fn(preparing(conn, session));
    });
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

  /** Metric names after `afterName` (by name), with their series count, label keys and distinct descriptors. */
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
    bindings.push(opts.limit, orgId, orgId);
    // Text comparisons in "C" order, so the order does not depend on the database's collation.
    const { rows } = await this.knex.raw<{ rows: MetricNameRow[] }>(
      `with page as (
         select name, count(*)::int as series from series where ${where.join(' and ')} group by name order by name limit ?)
       select p.name, p.series,
              coalesce((select array_agg(k order by k) from (
                 select distinct jsonb_object_keys(s.labels) as k from series s where s.org_id = ? and s.name = p.name) keys), '{}') as label_keys,
              (select jsonb_agg(jsonb_build_object('kind', kind, 'temporality', temporality, 'monotonic', monotonic, 'unit', unit,
                                                   'description', description, 'series', n)
                                order by kind collate "C", temporality collate "C" nulls first, monotonic, unit collate "C", description collate "C")
                 from (select kind, temporality, monotonic, unit, description, count(*)::int as n
                         from series s where s.org_id = ? and s.name = p.name
                        group by kind, temporality, monotonic, unit, description) d) as types
         from page p order by p.name`,
      bindings,
    );
    return rows;
  }

  /**
   * Newest first by (ts, id), strictly after the cursor; range [start, end); under a statement timeout.
   * The ORDER BY names the table's columns (`logs.id`: a bare `id` would be the text output column),
   * so it is the order of the (org_id, ts, id) index, read backwards up to the limit, and the
   * bigint order the cursor's row comparison pages by (ids of different lengths tie in ts).
   */
  async logs(orgId: string, f: LogFilter, timeoutMs: number): Promise<LogRow[]> {
    const p = new Params();
    const where = logWhere(p, orgId, f);
    afterCursor(p, where, f.after);
    const sql = `select ts, ${TS_US} as ts_us, id::text as id, severity_number, severity_text, body, attributes, resource, trace_id, span_id,
                          observed_ts, event_name
                   from logs where ${where.join(' and ')} order by logs.ts desc, logs.id desc limit ${p.add(f.limit)}`;
    return this.onReadConnection(timeoutMs, async (conn) => (await conn.query<LogRow>(sql, p.values)).rows);
  }

  /** How many logs match (range [start, end), the same filters as `logs`; no cursor, no limit), under a statement timeout. */
  async countLogs(orgId: string, f: Omit<LogFilter, 'after' | 'limit'>, timeoutMs: number): Promise<number> {
    const p = new Params();
    const sql = `select count(*)::float8 as n from logs where ${logWhere(p, orgId, f).join(' and ')}`;
    return this.onReadConnection(timeoutMs, async (conn) => (await conn.query<{ n: number }>(sql, p.values)).rows[0].n);
  }

  /** Newest first by (ts, id) as `logs` (the ORDER BY names the bigint column, the index's order). */
  async events(orgId: string, f: EventFilter, timeoutMs: number): Promise<EventRow[]> {
    const p = new Params();
    const where = [`org_id = ${p.add(orgId)}`, `ts >= ${p.add(new Date(f.startMs))}`, `ts < ${p.add(new Date(f.endMs))}`];
    if (f.types.length) where.push(`type = any(${p.add(f.types)}::text[])`);
    if (f.tags.length) where.push(`tags @> ${p.add(JSON.stringify(f.tags))}::jsonb`);
    afterCursor(p, where, f.after);
    const sql = `select id::text as id, ts, ${TS_US} as ts_us, type, title, text, tags
                   from events where ${where.join(' and ')} order by events.ts desc, events.id desc limit ${p.add(f.limit)}`;
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
