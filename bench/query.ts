/**
 * Metric query latency through the HTTP API, each beside the same SQL run directly through `pg`
 * in the same run (the statements of src/features/telemetry/query-repository.ts: the series
 * lookup, then the date_bin aggregation):
 *  1. one series (filter host=h123), last 1 h, step 60s, avg → p95 < 5 ms;
 *  2. 24 h, step 5m, filter svc=svc7, by=shard, avg (100 series) → p95 < 100 ms;
 *  and each ≤ 2× its raw SQL p95.
 *
 * Data: SENTINEL_BENCH_SERIES series (default 10,000) of `bench.query` with labels
 * {host: h<i>, shard: s<i % 100>, svc: svc<floor(i / 100)>}, SENTINEL_BENCH_POINTS points in all
 * (default 10,000,000: 1,000 per series, 60 s apart, ending now), COPYed straight into
 * series and points (time-major, as ingest writes them). No ANALYZE by hand: the queries run on
 * the statistics a user would have right after such a load (whatever autovacuum and the daemon's
 * `analyze` job, every 5 minutes, have done by then; the line after the load says which).
 *
 *   npm run bench:query           (SENTINEL_BENCH_QUERIES=200 sequential requests per query)
 */
import { Agent } from 'node:http';
import pg from 'pg';
import { machineLine } from './machine.js';
import { ensurePointPartitions, loadPointGrid, loadSeries, quantile, startSentinel, timedRequest, type TimedAnswer } from './harness.js';

const SERIES = Number(process.env.SENTINEL_BENCH_SERIES ?? 10_000);
const POINTS = Number(process.env.SENTINEL_BENCH_POINTS ?? 10_000_000);
const QUERIES = Number(process.env.SENTINEL_BENCH_QUERIES ?? 200);
const WARMUP = Math.max(5, Math.round(QUERIES / 10));
const SPACING_MS = 60_000;
const PER_SERIES = Math.floor(POINTS / SERIES);
const METRIC = 'bench.query';
/** Series the load COPYs in parallel (by series ranges), each in time-major order. */
const LOAD_CONNECTIONS = 2;
/** Rows per COPY + commit while loading. */
const LOAD_ROWS_PER_COMMIT = 500_000;
const MAX_SERIES = 1000; // query.max_series default: the lookup reads max_series + 1 rows at most

if (SERIES < 800 || PER_SERIES < 60) throw new Error('need at least 800 series (svc7 = series 700..799) and 60 points per series (the last hour)');

const labelsOf = (i: number) => ({ host: `h${i}`, shard: `s${i % 100}`, svc: `svc${Math.floor(i / 100)}` });

const ms = (x: number) => `${x.toFixed(2)} ms`;

// ---------------------------------------------------------------------------------------------
console.log(machineLine());
const s = await startSentinel('query');
const admin = new pg.Client(s.pgUrl);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
try {
  await admin.connect();
  const org = s.orgId;

  // Series: COPYed with the daemon's canonical labels and hash, ids read back in index order.
  const t0 = performance.now();
  const ids = await loadSeries(admin, org, METRIC, SERIES, labelsOf);

  // Points: PER_SERIES per series, SPACING_MS apart, the last one at the start of the current minute.
  const lastTs = Math.floor(Date.now() / SPACING_MS) * SPACING_MS;
  const firstTs = lastTs - (PER_SERIES - 1) * SPACING_MS;
  await ensurePointPartitions(s.pgUrl, firstTs, lastTs);
  await loadPointGrid(s.pgUrl, { orgId: org, seriesIds: ids, perSeries: PER_SERIES, firstTs, spacingMs: SPACING_MS, connections: LOAD_CONNECTIONS, rowsPerCommit: LOAD_ROWS_PER_COMMIT });
  const loadedMs = performance.now() - t0;
  // Which tables have planner statistics at this point (nothing here analyzes them by hand).
  const { rows: analyzed } = await admin.query<{ name: string }>(
    `select relname as name from pg_stat_user_tables
      where (relname = 'series' or relname like 'points\\_p%') and (last_analyze is not null or last_autoanalyze is not null) order by relname`,
  );
  const { rows: size } = await admin.query<{ heap: string; idx: string }>(
    `select pg_size_pretty(sum(pg_table_size(c.oid))) as heap, pg_size_pretty(sum(pg_indexes_size(c.oid))) as idx
       from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'points'::regclass`,
  );
  console.log(
    `loaded ${(SERIES * PER_SERIES).toLocaleString('en')} points over ${SERIES.toLocaleString('en')} series (${PER_SERIES} per series, ${SPACING_MS / 1000} s apart, ` +
      `${new Date(firstTs).toISOString()} .. ${new Date(lastTs).toISOString()}) with COPY in ${(loadedMs / 1000).toFixed(1)} s; ` +
      `analyzed when the queries start: ${analyzed.length ? analyzed.map((r) => r.name).join(', ') : 'none'}; ` +
      `points: table ${size[0].heap}, indexes ${size[0].idx}`,
  );

  // The ceiling's session: the planner setting the repository gives its sessions.
  const raw = new pg.Client(s.pgUrl);
  await raw.connect();
  await raw.query('set jit = off');

  interface Case {
    title: string;
    target: number;
    name: string;
    filter: [string, string];
    by: string | null;
    startMs: number;
    endMs: number;
    stepMs: number;
    step: string;
  }
  const queryEnd = lastTs + SPACING_MS;
  const cases: Case[] = [
    { title: '1. one series (host=h123), last 1 h, step 60s, avg', target: 5, name: METRIC, filter: ['host', 'h123'], by: null, startMs: queryEnd - 3_600_000, endMs: queryEnd, stepMs: 60_000, step: '60s' },
    { title: '2. 100 series (svc=svc7) by shard, 24 h, step 5m, avg', target: 100, name: METRIC, filter: ['svc', 'svc7'], by: 'shard', startMs: queryEnd - 86_400_000, endMs: queryEnd, stepMs: 300_000, step: '5m' },
  ];

  const viaApi = (c: Case): Promise<TimedAnswer> => {
    const qs = new URLSearchParams({ name: c.name, filter: `${c.filter[0]}=${c.filter[1]}`, start: String(c.startMs), end: String(c.endMs), step: c.step, agg: 'avg' });
    if (c.by) qs.set('by', c.by);
    return timedRequest(s.daemon.port, `/api/v1/organizations/bench/metrics/query?${qs}`, agent, { headers: { authorization: `Bearer ${s.apiKey}` } });
  };

  // QueryRepository's SQL (src/features/telemetry/query-repository.ts), parameters numbered as it numbers them.
  const SERIES_SQL = `select id, labels from series where org_id = $1 and name = $2 and labels @> jsonb_build_object($3::text, $4::text) limit $5`;
  const BIN = `date_bin($2::bigint * interval '1 millisecond', p.ts, $1::timestamptz)`;
  const RANGE = `p.org_id = $3 and p.ts >= $1 and p.ts < $4`;
  const GROUPED_SQL = `select g::float8 as g, (extract(epoch from b) * 1000)::float8 as t, v from (select s.g, ${BIN} as b, avg(p.value) as v
           from points p join unnest($5::bigint[], $6::int[]) as s(id, g) on p.series_id = s.id
          where ${RANGE}
          group by 1, 2) x`;
  const UNGROUPED_SQL = `select g::float8 as g, (extract(epoch from b) * 1000)::float8 as t, v from (select p.series_id as g, ${BIN} as b, avg(p.value) as v
           from points p
          where ${RANGE} and p.series_id = any($5::bigint[])
          group by 1, 2) x`;
  const aggregate = (c: Case, rows: { id: string; labels: Record<string, string> }[]) => {
    const seriesIds = rows.map((r) => Number(r.id));
    const common = [new Date(c.startMs), c.stepMs, org, new Date(c.endMs), seriesIds];
    if (!c.by) return raw.query(UNGROUPED_SQL, common);
    const groupOf = new Map<string, number>();
    const groups = rows.map((r) => {
      const key = r.labels[c.by!] ?? '';
      if (!groupOf.has(key)) groupOf.set(key, groupOf.size);
      return groupOf.get(key)!;
    });
    return raw.query(GROUPED_SQL, [...common, groups]);
  };
  /** The two statements, as the repository runs them. */
  const viaSql = async (c: Case) => {
    const t = performance.now();
    const found = await raw.query<{ id: string; labels: Record<string, string> }>(SERIES_SQL, [org, c.name, c.filter[0], c.filter[1], MAX_SERIES + 1]);
    const t1 = performance.now();
    const agg = await aggregate(c, found.rows);
    const t2 = performance.now();
    return { ms: performance.now() - t, lookupMs: t1 - t, aggMs: t2 - t1, series: found.rows.length, rows: agg.rows.length };
  };

  if (process.env.SENTINEL_BENCH_EXPLAIN === '1') {
    for (const c of cases) {
      const found = await raw.query<{ id: string; labels: Record<string, string> }>(SERIES_SQL, [org, c.name, c.filter[0], c.filter[1], MAX_SERIES + 1]);
      const explain = async (sql: string, params: unknown[]) => (await raw.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
      console.log(`--- ${c.title}: series lookup\n${await explain(SERIES_SQL, [org, c.name, c.filter[0], c.filter[1], MAX_SERIES + 1])}`);
      const ids = found.rows.map((r) => Number(r.id));
      const common = [new Date(c.startMs), c.stepMs, org, new Date(c.endMs), ids];
      const plan = c.by ? await explain(GROUPED_SQL, [...common, ids.map((_, i) => i)]) : await explain(UNGROUPED_SQL, common);
      console.log(`--- ${c.title}: aggregation\n${plan}`);
    }
  }

  console.log(`${QUERIES} sequential requests per query after ${WARMUP} warm-up, API and SQL interleaved (one connection each); latency measured by the client`);
  for (const c of cases) {
    // Same answer both ways, checked once.
    const first = await viaApi(c);
    if (first.status !== 200) throw new Error(`${c.title}: API answered ${first.status}: ${first.body.slice(0, 500)}`);
    const answer = JSON.parse(first.body) as { series: { labels: Record<string, string>; points: unknown[] }[] };
    const sql = await viaSql(c);
    const apiPoints = answer.series.reduce((n, x) => n + x.points.length, 0);
    if (sql.rows !== apiPoints) throw new Error(`${c.title}: the API answered ${apiPoints} points, the SQL ${sql.rows} rows`);

    const api: number[] = [];
    const direct: { ms: number; lookupMs: number; aggMs: number }[] = [];
    for (let i = 0; i < WARMUP + QUERIES; i++) {
      // Rotate the order, so none always runs on another's warm caches.
      const steps = [
        async () => {
          const a = await viaApi(c);
          if (a.status !== 200) throw new Error(`${c.title}: API answered ${a.status}: ${a.body.slice(0, 300)}`);
          if (i >= WARMUP) api.push(a.ms);
        },
        async () => {
          const d = await viaSql(c);
          if (i >= WARMUP) direct.push(d);
        },
      ];
      for (let j = 0; j < steps.length; j++) await steps[(i + j) % steps.length]();
    }
    const ap95 = quantile(api, 0.95);
    const sp95 = quantile(direct.map((d) => d.ms), 0.95);
    console.log(
      `${c.title} (${sql.series} series, ${apiPoints} answer points, ${(first.body.length / 1024).toFixed(0)} KiB JSON): ` +
        `API p50 ${ms(quantile(api, 0.5))} p95 ${ms(ap95)} (target < ${c.target} ms: ${ap95 < c.target ? 'yes' : 'NO'})   ` +
        `ceiling: raw SQL p50 ${ms(quantile(direct.map((d) => d.ms), 0.5))} p95 ${ms(sp95)} (lookup p95 ${ms(quantile(direct.map((d) => d.lookupMs), 0.95))}, aggregation p95 ${ms(quantile(direct.map((d) => d.aggMs), 0.95))})   ` +
        `ratio ${(ap95 / sp95).toFixed(2)}× (target <= 2×: ${ap95 <= 2 * sp95 ? 'yes' : 'NO'})`,
    );
  }
  await raw.end();
} finally {
  agent.destroy();
  await admin.end().catch(() => undefined);
  await s.stop();
}
