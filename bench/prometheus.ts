/**
 * Beside the peer: the same generated series stored by Prometheus (Debian's package, unpacked, no
 * service) and by Sentinel, then the same three query shapes on both, over HTTP, in one run:
 *
 *  data  500 node-exporter-like series, 4 h at 10 s (1,440 samples each, 720,000 in all), every
 *        scrape of an instance with its own jitter of up to ±5 ms:
 *          250 counters  node_cpu_jiffies_total{instance,job,cpu,mode}, integer increments;
 *          150 gauges    node_hwmon_temp_celsius{instance,job,chip,sensor}, two decimals, a change
 *                        on about one sample in three;
 *          100 constants node_network_mtu_bytes{instance,job,device}.
 *        The 4 h end on a 2-hour boundary at least 3 h before now (so both 2-hour windows are
 *        older than the compaction's default storage.compact_after of 2 h).
 *  Prometheus: the samples written as OpenMetrics text, backfilled with
 *        `promtool tsdb create-blocks-from openmetrics`, then `prometheus` started on 127.0.0.1 on
 *        those blocks. Bytes per sample: the blocks' chunks/ and index files / samples.
 *  Sentinel: the daemon (embedded PostgreSQL, as the other benches), the same samples POSTed to
 *        /api/v1/telemetry (native JSON, 1,000 points per request: two scrapes of all 500 series,
 *        time-major, 4 connections); then `sentinel jobs run compaction` when the daemon declares
 *        that job (otherwise the fresh tier is what is measured, and the bench says so). Bytes per
 *        sample: pg_total_relation_size (heap, TOAST, indexes) of every partition of points and
 *        point_chunks, plus the series table, / samples.
 *  queries, each 4 h at 60 s (240 buckets per series), N sequential requests per side after a
 *        warm-up, the two sides interleaved, one keep-alive connection each, latency measured by
 *        the client:
 *          1. one gauge series:  Sentinel agg=avg step=60s  |  avg_over_time(x{…}[60s]) at step 60
 *          2. all 150 gauges:    Sentinel agg=avg step=60s  |  avg_over_time(x[60s]) at step 60
 *          3. all 250 counters:  Sentinel agg=rate step=60s |  rate(x[60s]) at step 60
 *        Sentinel's bucket [t, t+60s) is Prometheus's evaluation at t+60s, whose [60s] range is
 *        (t, t+60s]: no sample lies on a boundary (they are 5 s ± 5 ms off it), so both read the
 *        same samples, and the avg answers are compared value by value. rate differs by
 *        definition (see the note printed with it).
 *
 *   npm run bench:prometheus     (SENTINEL_BENCH_QUERIES=100 per query and side; PROMETHEUS_BIN_DIR
 *                                 to use prometheus/promtool from there; otherwise from PATH, else
 *                                 `apt-get download prometheus` + `dpkg -x` into a cache dir)
 *   To profile the daemon: SENTINEL_BENCH_DAEMON_NODE_OPTIONS=--import=<bench/cpu-profile-preload.mjs as a file URL>
 *   and BENCH_CPU_PROFILE_DIR=<a directory>: the daemon writes its .cpuprofile there when it stops.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, createWriteStream } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, runBin } from '../test/support/daemon.js';
import { findPrometheus } from '../test/support/prometheus-binaries.js';
import { quantile, startSentinel, timedRequest, type BenchSentinel } from './harness.js';
import { CONSTANT, COUNTER, GAUGE, nodeExporterDraw } from './node-exporter-draw.js';
import { machineLine } from './machine.js';

const QUERIES = Number(process.env.SENTINEL_BENCH_QUERIES ?? 100);
const WARMUP = Math.max(5, Math.round(QUERIES / 10));
/** The whole run is stopped (and everything it started) after this many seconds. */
const TIMEOUT_S = Number(process.env.SENTINEL_BENCH_TIMEOUT_S ?? 1200);
const INGEST_CONNECTIONS = 4;

const HOUR = 3_600_000;
const WINDOW = 2 * HOUR;
const SPAN = 4 * HOUR;
const INTERVAL = 10_000;
const SAMPLES = SPAN / INTERVAL; // 1,440 per series
const STEP = 60_000;
const END = Math.floor((Date.now() - 3 * HOUR) / WINDOW) * WINDOW;
const START = END - SPAN;


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const msf = (x: number) => `${x.toFixed(2)} ms`;

// ---------------------------------------------------------------------------------------------
// The data

const generate = () => nodeExporterDraw(START, SAMPLES, INTERVAL);

const promLabels = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;

/** OpenMetrics text: metric families one after the other, each series' samples in time order. */
async function writeOpenMetrics(file: string, d: ReturnType<typeof generate>): Promise<void> {
  const out = createWriteStream(file);
  const write = (s: string) => (out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  for (const [name, family, type] of [
    [COUNTER, COUNTER.replace(/_total$/, ''), 'counter'],
    [GAUGE, GAUGE, 'gauge'],
    [CONSTANT, CONSTANT, 'gauge'],
  ] as const) {
    await write(`# TYPE ${family} ${type}\n`);
    for (const s of d.series.filter((x) => x.name === name)) {
      const head = promLabels(name, s.labels);
      let chunk = '';
      for (let k = 0; k < SAMPLES; k++) chunk += `${head} ${s.values[k]} ${d.scrapeTsText[s.instance][k]}\n`;
      await write(chunk);
    }
  }
  await write('# EOF\n');
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

// ---------------------------------------------------------------------------------------------
// Prometheus


/** Bytes of the blocks' chunks/ and index files, and their samples (meta.json). */
function blockBytes(dir: string): { blocks: number; chunks: number; index: number; samples: number } {
  let chunks = 0;
  let index = 0;
  let samples = 0;
  let blocks = 0;
  for (const b of readdirSync(dir)) {
    const meta = join(dir, b, 'meta.json');
    if (!existsSync(meta)) continue;
    const m = JSON.parse(readFileSync(meta, 'utf8')) as { stats?: { numSamples?: number }; compaction?: { deletable?: boolean } };
    if (m.compaction?.deletable) continue;
    blocks++;
    samples += m.stats?.numSamples ?? 0;
    index += statSync(join(dir, b, 'index')).size;
    for (const c of readdirSync(join(dir, b, 'chunks'))) chunks += statSync(join(dir, b, 'chunks', c)).size;
  }
  return { blocks, chunks, index, samples };
}

// ---------------------------------------------------------------------------------------------
// HTTP

const agents = { sentinel: new Agent({ keepAlive: true, maxSockets: 1 }), prometheus: new Agent({ keepAlive: true, maxSockets: 1 }), ingest: new Agent({ keepAlive: true, maxSockets: INGEST_CONNECTIONS }) };


// ---------------------------------------------------------------------------------------------

console.log(machineLine());
const { prometheus: PROM, promtool: PROMTOOL } = findPrometheus();
const version = (spawnSync(PROM, ['--version'], { encoding: 'utf8' }).stdout || '?').split('\n')[0];
console.log(`${version} (${PROM})`);
console.log(`data: 500 series (250 counters, 150 two-decimal gauges, 100 constants), ${SAMPLES} samples each, 10 s ± 5 ms, ${new Date(START).toISOString()} .. ${new Date(END).toISOString()}`);

const work = mkdtempSync(join(tmpdir(), 'sentinel-bench-prometheus-run-'));
let prom: ChildProcess | null = null;
let s: BenchSentinel | null = null;
const stopProm = async () => {
  if (!prom || prom.exitCode !== null || prom.signalCode !== null) return;
  const exited = new Promise((r) => prom!.once('exit', r));
  prom.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise((r) => (timer = setTimeout(() => r('timeout'), 15_000)));
  if ((await Promise.race([exited, timedOut])) === 'timeout') prom.kill('SIGKILL');
  clearTimeout(timer);
};
process.once('exit', () => {
  if (prom && prom.exitCode === null && prom.signalCode === null) prom.kill('SIGKILL');
});
const watchdog = setTimeout(() => {
  console.error(`\nno end after ${TIMEOUT_S} s: stopping what the bench started`);
  void Promise.allSettled([stopProm(), s?.stop()]).finally(() => {
    rmSync(work, { recursive: true, force: true });
    process.exit(1);
  });
}, TIMEOUT_S * 1000);
watchdog.unref();

try {
  const data = generate();
  const TOTAL = data.series.length * SAMPLES;

  // --- Prometheus: backfill, start -------------------------------------------------------------
  const omFile = join(work, 'series.om');
  await writeOpenMetrics(omFile, data);
  const tsdb = join(work, 'tsdb');
  mkdirSync(tsdb);
  let t0 = performance.now();
  const bf = spawnSync(PROMTOOL, ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', omFile, tsdb], { encoding: 'utf8', timeout: 600_000 });
  if (bf.status !== 0) throw new Error(`promtool create-blocks-from openmetrics: ${bf.stderr}${bf.stdout}`);
  const backfillS = (performance.now() - t0) / 1000;
  const pb = blockBytes(tsdb);
  if (pb.samples !== TOTAL) throw new Error(`promtool's blocks hold ${pb.samples} samples, not ${TOTAL}`);
  console.log(
    `prometheus: backfilled ${pb.samples.toLocaleString('en')} samples (${(statSync(omFile).size / 2 ** 20).toFixed(0)} MiB of OpenMetrics) into ${pb.blocks} blocks in ${backfillS.toFixed(1)} s: ` +
      `chunks ${pb.chunks.toLocaleString('en')} B + index ${pb.index.toLocaleString('en')} B = ${((pb.chunks + pb.index) / pb.samples).toFixed(2)} bytes/sample`,
  );
  rmSync(omFile);
  const promPort = await freePort();
  const cfg = join(work, 'prometheus.yml');
  writeFileSync(cfg, 'global: {}\nscrape_configs: []\n');
  prom = spawn(PROM, [`--config.file=${cfg}`, `--storage.tsdb.path=${tsdb}`, '--storage.tsdb.retention.time=30d', `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], {
    stdio: ['ignore', openSync(join(work, 'prometheus.log'), 'a'), openSync(join(work, 'prometheus.log'), 'a')],
  });
  for (let i = 0; ; i++) {
    if (prom.exitCode !== null) throw new Error(`prometheus exited ${prom.exitCode}: ${readFileSync(join(work, 'prometheus.log'), 'utf8')}`);
    const r = await timedRequest(promPort, '/-/ready', agents.prometheus).catch(() => null);
    if (r?.status === 200) break;
    if (i > 600) throw new Error('prometheus not ready in 60 s');
    await sleep(100);
  }
  console.log(`prometheus: pid ${prom.pid} on 127.0.0.1:${promPort}, --storage.tsdb.path on those blocks`);

  // --- Sentinel: ingest over HTTP, compact ---------------------------------------------------
  const profileDir = process.env.BENCH_CPU_PROFILE_DIR;
  s = await startSentinel('prometheus', { SENTINEL_INGEST_MAX_AGE: '2d', ...(profileDir ? { BENCH_CPU_PROFILE_DIR: profileDir } : {}) });
  const sentinel = s;
  const bodies: string[] = [];
  const labelsJson = data.series.map((x) => JSON.stringify(x.labels));
  for (let k = 0; k < SAMPLES; k += 2) {
    const items: string[] = [];
    for (let j = k; j < Math.min(SAMPLES, k + 2); j++) {
      data.series.forEach((x, i) => items.push(`{"name":"${x.name}","value":${x.values[j]},"ts":${data.scrapeTs[x.instance][j]},"labels":${labelsJson[i]}}`));
    }
    bodies.push(`{"metrics":[${items.join(',')}]}`);
  }
  const ingestHeaders = { 'content-type': 'application/json', authorization: `Bearer ${sentinel.apiKey}` };
  // The first request alone creates the series; the rest go 4 at a time.
  const first = await timedRequest(sentinel.daemon.port, '/api/v1/telemetry', agents.ingest, { method: 'POST', headers: ingestHeaders, body: bodies[0] });
  if (first.status !== 202) throw new Error(`ingest answered ${first.status}: ${first.body.slice(0, 500)}`);
  t0 = performance.now();
  let next = 1;
  await Promise.all(
    Array.from({ length: INGEST_CONNECTIONS }, async () => {
      while (next < bodies.length) {
        const b = bodies[next++];
        const r = await timedRequest(sentinel.daemon.port, '/api/v1/telemetry', agents.ingest, { method: 'POST', headers: ingestHeaders, body: b });
        if (r.status !== 202) throw new Error(`ingest answered ${r.status}: ${r.body.slice(0, 500)}`);
      }
    }),
  );
  const ingestS = (performance.now() - t0) / 1000;
  console.log(
    `sentinel: ingested ${TOTAL.toLocaleString('en')} points in ${bodies.length} requests of 1,000 (${INGEST_CONNECTIONS} connections) in ${ingestS.toFixed(1)} s ` +
      `(${(((bodies.length - 1) * 1000) / ingestS / 1000).toFixed(1)}k points/s after the first request)`,
  );

  const jobs = runBin(['jobs', 'list', '--json'], sentinel.env);
  if (jobs.code !== 0) throw new Error(`sentinel jobs list: ${jobs.stderr}`);
  const hasCompaction = (JSON.parse(jobs.stdout) as { name: string }[]).some((j) => j.name === 'compaction');
  let tier = 'fresh tier only (rows in points): this daemon declares no compaction job';
  if (hasCompaction) {
    t0 = performance.now();
    const r = runBin(['jobs', 'run', 'compaction', '--json'], sentinel.env);
    if (r.code !== 0) throw new Error(`sentinel jobs run compaction: ${r.stderr}`);
    console.log(`sentinel: jobs run compaction in ${((performance.now() - t0) / 1000).toFixed(1)} s (CLI included): ${r.stdout.trim().slice(0, 400)}`);
    tier = 'after `sentinel jobs run compaction`';
  } else console.log('sentinel: no compaction job declared by this daemon: measuring the fresh tier only');

  const admin = new pg.Client(sentinel.pgUrl);
  await admin.connect();
  const sizes = async () => {
    const part = async (parent: string) =>
      Number(
        (
          await admin.query<{ b: string }>(
            // Every leaf: points is partitioned by window (days made before that stay whole).
            `select coalesce(sum(pg_total_relation_size(relid)), 0)::bigint as b from pg_partition_tree(to_regclass($1)) where isleaf`,
            [parent],
          )
        ).rows[0].b,
      );
    const points = await part('points');
    const chunks = await part('point_chunks');
    const series = Number((await admin.query<{ b: string }>(`select pg_total_relation_size('series')::bigint as b`)).rows[0].b);
    return { points, chunks, series, total: points + chunks + series };
  };
  const counts = async () => {
    const fresh = Number((await admin.query<{ n: string }>('select count(*)::bigint as n from points')).rows[0].n);
    const hasChunks = (await admin.query<{ r: string | null }>(`select to_regclass('point_chunks')::text as r`)).rows[0].r !== null;
    const compacted = hasChunks ? Number((await admin.query<{ n: string | null }>('select sum(count)::bigint as n from point_chunks')).rows[0].n ?? 0) : 0;
    return { fresh, compacted };
  };
  const c = await counts();
  if (c.fresh + c.compacted !== TOTAL) throw new Error(`sentinel holds ${c.fresh} fresh + ${c.compacted} compacted points, not ${TOTAL}`);
  const sz = await sizes();
  const bps = (b: number) => (b / TOTAL).toFixed(2);
  console.log(
    `sentinel (${tier}): ${c.fresh.toLocaleString('en')} fresh + ${c.compacted.toLocaleString('en')} compacted points; ` +
      `points partitions ${sz.points.toLocaleString('en')} B, point_chunks partitions ${sz.chunks.toLocaleString('en')} B, series ${sz.series.toLocaleString('en')} B (tables, TOAST and indexes) ` +
      `= ${bps(sz.total)} bytes/sample`,
  );
  let vacuumed: typeof sz | null = null;
  if (hasCompaction && c.compacted > 0) {
    // Rows the job deleted stay in the heap until (auto)vacuum: the figure once it has run.
    await admin.query('vacuum points');
    vacuumed = await sizes();
    console.log(`sentinel after VACUUM points (what autovacuum leaves): points partitions ${vacuumed.points.toLocaleString('en')} B = ${bps(vacuumed.total)} bytes/sample`);
  }
  await admin.end();

  // --- Queries ---------------------------------------------------------------------------------
  interface Case {
    title: string;
    name: string;
    filter: string | null;
    agg: 'avg' | 'rate';
    promql: string;
    series: number;
  }
  const one = { instance: 'host-0', chip: 'chip0', sensor: 'temp1' };
  const cases: Case[] = [
    {
      title: '1. one gauge series',
      name: GAUGE,
      filter: Object.entries(one).map(([k, v]) => `${k}=${v}`).join(','),
      agg: 'avg',
      promql: `avg_over_time(${promLabels(GAUGE, one)}[60s])`,
      series: 1,
    },
    { title: '2. all gauges', name: GAUGE, filter: null, agg: 'avg', promql: `avg_over_time(${GAUGE}[60s])`, series: 150 },
    { title: '3. all counters', name: COUNTER, filter: null, agg: 'rate', promql: `rate(${COUNTER}[60s])`, series: 250 },
  ];
  const viaSentinel = (q: Case) => {
    const qs = new URLSearchParams({ name: q.name, start: String(START), end: String(END), step: '60s', agg: q.agg });
    if (q.filter) qs.set('filter', q.filter);
    return timedRequest(sentinel.daemon.port, `/api/v1/organizations/bench/metrics/query?${qs}`, agents.sentinel, { headers: { authorization: `Bearer ${sentinel.apiKey}` } });
  };
  const viaProm = (q: Case) => {
    const qs = new URLSearchParams({ query: q.promql, start: String((START + STEP) / 1000), end: String(END / 1000), step: '60' });
    return timedRequest(promPort, `/api/v1/query_range?${qs}`, agents.prometheus);
  };
  type SAnswer = { series: { labels: Record<string, string>; points: [string, number | null][] }[] };
  type PAnswer = { status: string; data: { result: { metric: Record<string, string>; values: [number, string][] }[] } };
  const key = (l: Record<string, string>) =>
    Object.entries(l)
      .filter(([k]) => k !== '__name__')
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');

  const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
  console.log(`\n${QUERIES} sequential requests per query and side after ${WARMUP} warm-up, the sides interleaved (one keep-alive connection each); 4 h at step 60 s; load average ${load()}`);
  const rows: string[] = [];
  const results: { title: string; sp50: number; sp95: number; pp50: number; pp95: number }[] = [];
  for (const q of cases) {
    const sa = await viaSentinel(q);
    const pa = await viaProm(q);
    if (sa.status !== 200) throw new Error(`${q.title}: Sentinel answered ${sa.status}: ${sa.body.slice(0, 400)}`);
    if (pa.status !== 200) throw new Error(`${q.title}: Prometheus answered ${pa.status}: ${pa.body.slice(0, 400)}`);
    const sj = JSON.parse(sa.body) as SAnswer;
    const pj = JSON.parse(pa.body) as PAnswer;
    if (sj.series.length !== q.series || pj.data.result.length !== q.series) throw new Error(`${q.title}: ${sj.series.length} series from Sentinel, ${pj.data.result.length} from Prometheus, expected ${q.series}`);
    // The answers side by side: Sentinel's bucket t is Prometheus's point at t + 60 s.
    const pBy = new Map(pj.data.result.map((r) => [key(r.metric), new Map(r.values.map(([t, v]) => [Math.round(t * 1000) - STEP, Number(v)]))]));
    let compared = 0;
    let differ = 0;
    const rel: number[] = [];
    for (const x of sj.series) {
      const pm = pBy.get(key(x.labels));
      if (!pm) throw new Error(`${q.title}: Prometheus has no series ${key(x.labels)}`);
      for (const [t, v] of x.points) {
        const pv = pm.get(Date.parse(t));
        if (pv === undefined || v === null) {
          differ++;
          continue;
        }
        compared++;
        const r = Math.abs(v - pv) / Math.max(Math.abs(pv), 1e-12);
        rel.push(r);
        if (r > 1e-9) differ++;
      }
    }
    const points = sj.series.reduce((n, x) => n + x.points.length, 0);
    const check =
      q.agg === 'avg'
        ? `answers: ${points} points, ${compared} compared with Prometheus's, ${differ} differ (relative 1e-9)`
        : `answers: ${points} points; Sentinel's rate vs Prometheus's: median relative difference ${(100 * quantile(rel, 0.5)).toFixed(1)}%, p95 ${(100 * quantile(rel, 0.95)).toFixed(1)}% (different definitions, see below)`;
    if (q.agg === 'avg' && differ > 0) throw new Error(`${q.title}: ${check}`);

    const sm: number[] = [];
    const pm: number[] = [];
    for (let i = 0; i < WARMUP + QUERIES; i++) {
      const steps = [
        async () => {
          const r = await viaSentinel(q);
          if (r.status !== 200) throw new Error(`${q.title}: Sentinel answered ${r.status}`);
          if (i >= WARMUP) sm.push(r.ms);
        },
        async () => {
          const r = await viaProm(q);
          if (r.status !== 200) throw new Error(`${q.title}: Prometheus answered ${r.status}`);
          if (i >= WARMUP) pm.push(r.ms);
        },
      ];
      for (let j = 0; j < 2; j++) await steps[(i + j) % 2]();
    }
    const r = { title: `${q.title} (${q.series} series)`, sp50: quantile(sm, 0.5), sp95: quantile(sm, 0.95), pp50: quantile(pm, 0.5), pp95: quantile(pm, 0.95) };
    results.push(r);
    console.log(
      `${r.title}: Sentinel agg=${q.agg} p50 ${msf(r.sp50)} p95 ${msf(r.sp95)}   ceiling: Prometheus ${q.promql} p50 ${msf(r.pp50)} p95 ${msf(r.pp95)}   ` +
        `p95 ratio ${(r.sp95 / r.pp95).toFixed(2)}× (target <= 1×: ${r.sp95 <= r.pp95 ? 'yes' : 'NO'})   ${check}`,
    );
  }
  console.log(
    "   rate: Sentinel's is the sum of the differences between consecutive samples whose later one is in the bucket (the first from the previous bucket's last sample), " +
      "over the step; Prometheus's rate(x[60s]) takes the samples inside (t-60s, t] only and extrapolates their first-to-last increase to the window's edges. Both read the same samples.",
  );

  // --- Summary ---------------------------------------------------------------------------------
  const pbs = (pb.chunks + pb.index) / pb.samples;
  const end = blockBytes(tsdb);
  const sbs = sz.total / TOTAL;
  rows.push('| figure | Sentinel | Prometheus (ceiling) | Sentinel at or below |');
  rows.push('|---|---|---|---|');
  rows.push(`| bytes per sample (${tier}) | ${sbs.toFixed(2)} | ${pbs.toFixed(2)} | ${sbs <= pbs ? 'yes' : 'NO'} |`);
  if (hasCompaction) rows.push(`| bytes per sample, chunk tier only (point_chunks partitions + series) | ${((sz.chunks + sz.series) / TOTAL).toFixed(2)} | ${pbs.toFixed(2)} | ${sz.chunks + sz.series <= pbs * TOTAL ? 'yes' : 'NO'} |`);
  if (vacuumed) rows.push(`| bytes per sample after VACUUM points | ${(vacuumed.total / TOTAL).toFixed(2)} | ${pbs.toFixed(2)} | ${vacuumed.total / TOTAL <= pbs ? 'yes' : 'NO'} |`);
  for (const r of results) {
    rows.push(`| ${r.title} p50 | ${msf(r.sp50)} | ${msf(r.pp50)} | ${r.sp50 <= r.pp50 ? 'yes' : 'NO'} |`);
    rows.push(`| ${r.title} p95 | ${msf(r.sp95)} | ${msf(r.pp95)} | ${r.sp95 <= r.pp95 ? 'yes' : 'NO'} |`);
  }
  console.log(`\n${rows.join('\n')}`);
  console.log(`load average at the end of the queries: ${load()}`);
  console.log(
    `prometheus blocks at the end of the run (after its own start-up compaction, if any): ${end.blocks} blocks, ${((end.chunks + end.index) / TOTAL).toFixed(2)} bytes/sample`,
  );
} finally {
  await stopProm();
  agents.sentinel.destroy();
  agents.prometheus.destroy();
  agents.ingest.destroy();
  await s?.stop();
  rmSync(work, { recursive: true, force: true });
  clearTimeout(watchdog);
}
