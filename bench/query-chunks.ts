/**
 * Metric query latency over the compacted tier (point_chunks), through the HTTP API, each beside
 * the database's part of the same read in the same run:
 *  1. one series (filter host=h123), last 1 h, step 60s, avg → p95 < 5 ms and ≤ 2× its SQL;
 *  2. 100 series (svc=svc7) by shard, 24 h, step 5m, avg → p95 < 30 ms;
 *  3. 100 series (svc=svc3), 30 days, step 1h, avg, over 30 days of data at 60 s
 *     (1,000 series, 43.2 M points) → p95 < 200 ms.
 *
 * Data, generated straight into chunks (no ingest, no compaction job): the points are encoded
 * here with the codec (src/features/telemetry/chunk-codec.ts) into one row per series and 2-hour
 * window with the aggregates the job stores (chunkAggregates, and the halves' in `sub`, encodeChunkSub, and the head
 * PostgreSQL computes from them, chunkHeadSql), and COPYed into point_chunks:
 *   bench.query  SENTINEL_BENCH_SERIES series (default 10,000), 1,000 points each (10 M), and
 *   bench.month  1,000 series, 30 days each (43,200 points each, 43.2 M),
 * both at 60 s with up to ±5 ms of jitter, ending at the last 2-hour boundary before now, labels
 * {host: h<i>, shard: s<i % 100>, svc: svc<floor(i / 100)>}, values two-decimal gauges that
 * change on about one sample in three (as bench:prometheus's). Queries end at that boundary.
 * The month's svc4 series (400–499) are written without `sub`, as chunks written before the column
 * existed: query 3 reads svc3 and, interleaved in the same iterations, the same read over svc4
 * (every chunk decoded, the read as it was before halves), so the two compare within one run.
 *
 * Per query and iteration, interleaved (one connection each, latency measured by the client):
 *   API     GET …/metrics/query over HTTP (authentication, validation, the read, JSON);
 *   repo    QueryRepository.metricRead in this process (the statements and the decoding and
 *           aggregation in Node; no HTTP, no JSON);
 *   SQL     the ceiling: the statements metricRead ran for that query (here one: the series
 *           lookup with the chunk rows, the fresh tier holding nothing in range), replayed
 *           through `pg` as the repository runs them (prepared under a name, a custom plan per
 *           execution) — the database's part.
 *
 * Nothing analyzes by hand: a first pass right after the load (with the statistics autovacuum and
 * the daemon's 5-minute `analyze` job have made by then, which the line before it names), then a
 * second after `sentinel jobs run analyze` (what that job does within 5 minutes of the load).
 *
 *   npm run bench:query-chunks    (SENTINEL_BENCH_QUERIES=100 per query; SENTINEL_BENCH_MONTH_SERIES=1000)
 */
import { Agent } from 'node:http';
import knexFactory from 'knex';
import pg from 'pg';
import { configuredMs } from '../src/core/duration.js';
import { DAY_MS, dayStart, partitionName } from '../src/db/partitions.js';
import { chunkAggregates, encodeChunk, encodeChunkSub } from '../src/features/telemetry/chunk-codec.js';
import { QueryRepository, type MetricReadSpec } from '../src/features/telemetry/query-repository.js';
import { CHUNK_WINDOW_MS, chunkHeadSql } from '../src/features/telemetry/telemetry-tables.js';
import { runBin } from '../test/support/daemon.js';
import { asStatement, type SentStatement } from '../test/support/statement-spy.js';
import { copyInto, loadSeries, mulberry32, quantile, startSentinel, timedRequest, type TimedAnswer } from './harness.js';
import { machineLine } from './machine.js';

const SERIES = Number(process.env.SENTINEL_BENCH_SERIES ?? 10_000);
const MONTH_SERIES = Number(process.env.SENTINEL_BENCH_MONTH_SERIES ?? 1000);
const QUERIES = Number(process.env.SENTINEL_BENCH_QUERIES ?? 100);
const WARMUP = Math.max(5, Math.round(QUERIES / 10));
const SPACING = 60_000;
const DAY = 86_400_000;
const END = Math.floor(Date.now() / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS;
const MAX_SERIES = 1000;
const MAX_POINTS = 1_000_000;

if (SERIES < 800 || MONTH_SERIES < 500) throw new Error('need at least 800 series (svc7) and 500 month series (svc3, and svc4 without sub)');

const labelsOf = (i: number) => ({ host: `h${i}`, shard: `s${i % 100}`, svc: `svc${Math.floor(i / 100)}` });
const ms = (x: number) => `${x.toFixed(2)} ms`;
const iso = (t: number) => new Date(t).toISOString();

/** Daily partitions of point_chunks for every UTC day touched by [fromMs, toMs]. */
async function ensureChunkPartitions(client: pg.Client, fromMs: number, toMs: number): Promise<void> {
  for (let day = dayStart(fromMs); day <= toMs; day += DAY_MS) {
    const sql = `create table if not exists ${partitionName('point_chunks', day)} partition of point_chunks for values from ('${iso(day)}') to ('${iso(day + DAY_MS)}')`;
    try {
      await client.query(sql);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== '42P07' && code !== '23505') throw err; // the daemon's partitions job made it at the same moment
    }
  }
}

/** float8 as COPY text, -0 included (a template literal makes it 0). */
const f8 = (v: number) => (Object.is(v, -0) ? '-0' : String(v));

/** The columns loadChunks COPYs into its staging table (one row per line it writes, in this order); `head` is computed when they are moved. */
const STAGED_COLUMNS = 'org_id, series_id, ts, first_ts, last_ts, count, min, max, sum, first_value, last_value, increase, data, sub';

/** COPYs one chunk row per series and 2-hour window of `perSeries` points ending before END; series i without `sub` when noSub(i). */
async function loadChunks(
  client: pg.Client,
  orgId: string,
  ids: number[],
  perSeries: number,
  seed: number,
  noSub: (i: number) => boolean = () => false,
): Promise<{ rows: number; bytes: number; subBytes: number }> {
  const rnd = mulberry32(seed);
  const first = END - perSeries * SPACING;
  let rows = 0;
  let bytes = 0;
  let subBytes = 0;
  // COPYed into a staging table of the same columns, then moved into point_chunks with each row's
  // head (chunkHeadSql) computed by PostgreSQL, as the compaction job writes it.
  await client.query('create temp table if not exists chunk_stage (like point_chunks)');
  await copyInto(
    client,
    `copy chunk_stage (${STAGED_COLUMNS}) from stdin`,
    (function* () {
      let out = '';
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        let v = Math.round(2000 + rnd() * 6000) / 100;
        for (let w = Math.floor(first / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS; w < END; w += CHUNK_WINDOW_MS) {
          const ts: number[] = [];
          const values: number[] = [];
          for (let t = Math.max(w, first); t < w + CHUNK_WINDOW_MS && t < END; t += SPACING) {
            if (rnd() < 1 / 3) v = Math.round(v * 100 + (rnd() < 0.5 ? -1 : 1) * Math.floor(1 + rnd() * 50)) / 100;
            ts.push(t + 5000 + Math.round(rnd() * 10 - 5)); // 5 s ± 5 ms into its minute: never across a window edge
            values.push(v);
          }
          if (ts.length === 0) continue;
          const a = chunkAggregates(ts, values);
          const data = encodeChunk(ts, values);
          const sub = noSub(i) ? null : encodeChunkSub(w, CHUNK_WINDOW_MS, ts, values);
          rows++;
          bytes += data.length;
          subBytes += sub ? sub.length : 0;
          out += `${orgId}\t${id}\t${iso(w)}\t${iso(a.firstTs)}\t${iso(a.lastTs)}\t${a.count}\t${f8(a.min)}\t${f8(a.max)}\t${f8(a.sum)}\t${f8(a.firstValue)}\t${f8(a.lastValue)}\t${f8(a.increase)}\t\\\\x${data.toString('hex')}\t${sub ? `\\\\x${sub.toString('hex')}` : '\\N'}\n`;
          if (out.length > 1 << 20) {
            yield out;
            out = '';
          }
        }
      }
      yield out;
    })(),
  );
  await client.query(`insert into point_chunks (${STAGED_COLUMNS}, head) select ${STAGED_COLUMNS}, ${chunkHeadSql('s')} from chunk_stage s`);
  await client.query('truncate chunk_stage');
  return { rows, bytes, subBytes };
}

// ---------------------------------------------------------------------------------------------
console.log(machineLine());
// The chunks reach the last 2-hour boundary, as the compaction job leaves them only with a short
// storage.compact_after: the daemon is told so (the least allowed), or it would try its fresh-first
// statement on recent ranges that hold chunks here (never after its own job) and then the full one.
const COMPACT_AFTER = '10m';
const s = await startSentinel('query-chunks', { SENTINEL_RETENTION_METRICS_DAYS: '60', SENTINEL_QUERY_STATEMENT_TIMEOUT_MS: '60000', SENTINEL_STORAGE_COMPACT_AFTER: COMPACT_AFTER });
const admin = new pg.Client(s.pgUrl);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const knex = knexFactory({ client: 'pg', connection: s.pgUrl, pool: { min: 1, max: 1 } });
try {
  await admin.connect();
  const org = s.orgId;
  const MONTH_POINTS = 30 * (DAY / SPACING);
  await ensureChunkPartitions(admin, END - 31 * DAY, END);
  const t0 = performance.now();
  const idsA = await loadSeries(admin, org, 'bench.query', SERIES, labelsOf);
  const a = await loadChunks(admin, org, idsA, 1000, 1);
  const tA = performance.now();
  const idsB = await loadSeries(admin, org, 'bench.month', MONTH_SERIES, labelsOf);
  const b = await loadChunks(admin, org, idsB, MONTH_POINTS, 2, (i) => labelsOf(i).svc === 'svc4');
  const tB = performance.now();
  const { rows: size } = await admin.query<{ total: string }>(
    `select sum(pg_total_relation_size(c.oid))::text as total from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'point_chunks'::regclass`,
  );
  const pointsA = SERIES * 1000;
  const pointsB = MONTH_SERIES * MONTH_POINTS;
  console.log(
    `generated into chunks with COPY: bench.query ${pointsA.toLocaleString('en')} points (${SERIES.toLocaleString('en')} series × 1,000 at 60 s) in ${a.rows.toLocaleString('en')} chunks, ${((tA - t0) / 1000).toFixed(1)} s; ` +
      `bench.month ${pointsB.toLocaleString('en')} points (${MONTH_SERIES.toLocaleString('en')} series × 30 days at 60 s) in ${b.rows.toLocaleString('en')} chunks, ${((tB - tA) / 1000).toFixed(1)} s; ` +
      `data ${((a.bytes + b.bytes) / (pointsA + pointsB)).toFixed(2)} B/point, sub ${((a.subBytes + b.subBytes) / (a.rows + b.rows - (b.rows * 100) / MONTH_SERIES)).toFixed(1)} B/chunk (svc4 of bench.month without), point_chunks with indexes ${(Number(size[0].total) / (pointsA + pointsB)).toFixed(2)} B/point; ending ${iso(END)}; no ANALYZE by hand`,
  );

  interface Case {
    title: string;
    target: number;
    ratio: boolean;
    name: string;
    filter: [string, string];
    by: string | null;
    startMs: number;
    stepMs: number;
    step: string;
    /** The same read over chunks without `sub` (this filter), interleaved: the read as it was before halves. */
    noSub?: [string, string];
  }
  const cases: Case[] = [
    { title: '1. one series (host=h123), last 1 h, step 60s, avg', target: 5, ratio: true, name: 'bench.query', filter: ['host', 'h123'], by: null, startMs: END - 3_600_000, stepMs: 60_000, step: '60s' },
    { title: '2. 100 series (svc=svc7) by shard, 24 h, step 5m, avg', target: 30, ratio: false, name: 'bench.query', filter: ['svc', 'svc7'], by: 'shard', startMs: END - DAY, stepMs: 300_000, step: '5m' },
    { title: '3. 100 series (svc=svc3), 30 days, step 1h, avg', target: 200, ratio: false, name: 'bench.month', filter: ['svc', 'svc3'], by: null, startMs: END - 30 * DAY, stepMs: 3_600_000, step: '1h', noSub: ['svc', 'svc4'] },
  ];

  const viaApi = (c: Case): Promise<TimedAnswer> => {
    const qs = new URLSearchParams({ name: c.name, filter: `${c.filter[0]}=${c.filter[1]}`, start: String(c.startMs), end: String(END), step: c.step, agg: 'avg' });
    if (c.by) qs.set('by', c.by);
    return timedRequest(s.daemon.port, `/api/v1/organizations/bench/metrics/query?${qs}`, agent, { headers: { authorization: `Bearer ${s.apiKey}` } });
  };

  // The repository in this process, its statements recorded (for the ceiling) while `recording`.
  // As the daemon builds it with that setting: its statements are the ceiling's.
  const repo = new QueryRepository(knex, knex, { compactAfterMs: configuredMs(COMPACT_AFTER) });
  // A statement with parameters reaches the connection prepared under a name: { name, text, values }.
  const pool = knex.client as { acquireConnection(): Promise<{ query(sql: SentStatement, values?: unknown[]): Promise<unknown> }> };
  const acquire = pool.acquireConnection.bind(pool);
  let recording: { sql: string; values: unknown[] }[] | null = null;
  pool.acquireConnection = async () => {
    const conn = await acquire();
    if (!(conn as { recorded?: boolean }).recorded) {
      (conn as { recorded?: boolean }).recorded = true;
      const query = conn.query.bind(conn);
      conn.query = (sql: SentStatement, values?: unknown[]) => {
        const st = asStatement(sql, values);
        if (recording && !st.sql.startsWith('set ')) recording.push(st);
        return query(sql, values);
      };
    }
    return conn;
  };
  const spec = (c: Case): MetricReadSpec => ({
    name: c.name,
    matchers: [{ label: c.filter[0], op: '=', value: c.filter[1], source: `${c.filter[0]}=${c.filter[1]}` }],
    by: c.by ? [c.by] : [],
    startMs: c.startMs,
    endMs: END,
    stepMs: c.stepMs,
    agg: 'avg',
    buckets: Math.ceil((END - c.startMs) / c.stepMs),
    maxSeries: MAX_SERIES,
    maxPoints: MAX_POINTS,
  });

  // Which tables have planner statistics (nothing here analyzes them by hand; autovacuum and the daemon's analyze job may).
  const analyzed = async () =>
    (
      await admin.query<{ name: string }>(
        `select relname as name from pg_stat_user_tables
          where (relname = 'series' or relname like 'point\\_chunks\\_p%') and (last_analyze is not null or last_autoanalyze is not null) order by relname`,
      )
    ).rows.map((r) => r.name);
  const statsLine = async (when: string) => {
    const names = await analyzed();
    const parts = names.filter((n) => n !== 'series').length;
    console.log(`${when}: series ${names.includes('series') ? 'analyzed' : 'NOT analyzed'}, ${parts} point_chunks partitions analyzed`);
  };
  await statsLine('statistics when the queries start');
  // PostgreSQL's own maintenance of the tables read (autovacuum, autoanalyze) while a pass ran: right
  // after the load it shares the two cores with the queries, and shows in their tails.
  const serverNow = async () => (await admin.query<{ t: Date }>('select clock_timestamp() as t')).rows[0].t;
  const maintenanceLine = async (when: string, since: Date) => {
    const { rows } = await admin.query<{ vacuumed: number; analyzed: number; running: string[] }>(
      `select (select count(*)::int from pg_stat_user_tables where (relname = 'series' or relname like 'point\\_chunks\\_p%') and last_autovacuum >= $1) as vacuumed,
              (select count(*)::int from pg_stat_user_tables where (relname = 'series' or relname like 'point\\_chunks\\_p%') and last_autoanalyze >= $1) as analyzed,
              (select coalesce(array_agg(left(query, 80)), '{}') from pg_stat_activity where backend_type = 'autovacuum worker') as running`,
      [since],
    );
    const r = rows[0];
    console.log(`${when}: autovacuum finished on ${r.vacuumed} and autoanalyze on ${r.analyzed} of series and the point_chunks partitions while the queries ran; autovacuum workers at their end: ${r.running.join('; ') || 'none'}`);
  };

  const raw = new pg.Client(s.pgUrl);
  await raw.connect();
  // As the repository's reads pool runs its statements: JIT off, prepared and planned per execution.
  await raw.query('set jit = off; set plan_cache_mode = force_custom_plan');
  const ceilingNames = new Map<string, string>();
  const ceilingName = (text: string): string => {
    let name = ceilingNames.get(text);
    if (!name) ceilingNames.set(text, (name = `ceiling_${ceilingNames.size}`));
    return name;
  };

  console.log(`${QUERIES} sequential requests per query after ${WARMUP} warm-up; API, repository and SQL interleaved (one connection each); latency measured by the client`);
  const runCases = async (prefix: string) => {
    for (const c of cases) {
      const first = await viaApi(c);
      if (first.status !== 200) throw new Error(`${c.title}: API answered ${first.status}: ${first.body.slice(0, 500)}`);
      const answer = JSON.parse(first.body) as { series: { points: unknown[] }[] };
      const apiPoints = answer.series.reduce((n, x) => n + x.points.length, 0);
      recording = [];
      const r = await repo.metricRead(org, spec(c), 60_000);
      const statements = recording;
      recording = null;
      const repoPoints = r.rows.reduce((n, x) => n + x.t.length, 0);
      if (repoPoints !== apiPoints) throw new Error(`${c.title}: the API answered ${apiPoints} points, the repository ${repoPoints}`);
      // All compacted (nothing in the fresh tier): one statement, the chunks' (its fresh-tier probe finds nothing).
      const reads = statements.filter((st) => !/^(begin|commit)\b/.test(st.sql));
      if (reads.length !== 1) throw new Error(`${c.title}: expected one statement (the chunks, nothing fresh in range), got ${reads.length}`);

      const api: number[] = [];
      const inProc: number[] = [];
      const sql: number[] = [];
      const before: number[] = [];
      const old = c.noSub ? { ...c, filter: c.noSub } : null;
      if (old && (await viaApi(old)).status !== 200) throw new Error(`${c.title}: the API refused the read over chunks without sub`);
      for (let i = 0; i < WARMUP + QUERIES; i++) {
        const steps = [
          ...(old
            ? [
                async () => {
                  const x = await viaApi(old);
                  if (x.status !== 200) throw new Error(`${c.title} without sub: API answered ${x.status}`);
                  if (i >= WARMUP) before.push(x.ms);
                },
              ]
            : []),
          async () => {
            const x = await viaApi(c);
            if (x.status !== 200) throw new Error(`${c.title}: API answered ${x.status}`);
            if (i >= WARMUP) api.push(x.ms);
          },
          async () => {
            const t = performance.now();
            await repo.metricRead(org, spec(c), 60_000);
            if (i >= WARMUP) inProc.push(performance.now() - t);
          },
          async () => {
            const t = performance.now();
            for (const st of statements) await raw.query({ name: ceilingName(st.sql), text: st.sql, values: st.values });
            if (i >= WARMUP) sql.push(performance.now() - t);
          },
        ];
        for (let j = 0; j < steps.length; j++) await steps[(i + j) % steps.length]();
      }
      const ap95 = quantile(api, 0.95);
      const sp95 = quantile(sql, 0.95);
      console.log(
        `${prefix}${c.title} (${r.series} series, ${apiPoints} answer points, ${r.decodedPoints.toLocaleString('en')} points decoded, ${(first.body.length / 1024).toFixed(0)} KiB JSON): ` +
          `API p50 ${ms(quantile(api, 0.5))} p95 ${ms(ap95)} (target < ${c.target} ms: ${ap95 < c.target ? 'yes' : 'NO'})   ` +
          `repository p50 ${ms(quantile(inProc, 0.5))} p95 ${ms(quantile(inProc, 0.95))}   ` +
          `ceiling: its SQL p50 ${ms(quantile(sql, 0.5))} p95 ${ms(sp95)}   ratio ${(ap95 / sp95).toFixed(2)}×${c.ratio ? ` (target <= 2×: ${ap95 <= 2 * sp95 ? 'yes' : 'NO'})` : ''}` +
          (old
            ? `   the same over chunks without sub (${c.noSub!.join('=')}, every chunk decoded): API p50 ${ms(quantile(before, 0.5))} p95 ${ms(quantile(before, 0.95))}, ` +
              `with sub / without: p50 ${(quantile(api, 0.5) / quantile(before, 0.5)).toFixed(2)}× p95 ${(ap95 / quantile(before, 0.95)).toFixed(2)}×`
            : ''),
      );
    }
  };
  const pass1 = await serverNow();
  await runCases('');
  await maintenanceLine('PostgreSQL maintenance', pass1);
  await statsLine('statistics when the queries end');
  // What the same reads cost once the daemon's `analyze` job (every 5 minutes) has run after the
  // load, as it would within minutes: run by hand here, as an operator would (`sentinel jobs run analyze`).
  const t1 = performance.now();
  const job = runBin(['jobs', 'run', 'analyze'], s.env);
  if (job.code !== 0) throw new Error(`sentinel jobs run analyze: ${job.stderr}`);
  console.log(`then, after \`sentinel jobs run analyze\` (${((performance.now() - t1) / 1000).toFixed(1)} s, CLI included): ${job.stdout.trim().replaceAll('\n', '; ')}`);
  await statsLine('statistics');
  const pass2 = await serverNow();
  await runCases('  ');
  await maintenanceLine('PostgreSQL maintenance', pass2);
  await raw.end();
} finally {
  agent.destroy();
  await knex.destroy().catch(() => undefined);
  await admin.end().catch(() => undefined);
  await s.stop();
}
