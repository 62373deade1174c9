/**
 * What the daemon's request path costs around the work a request asks for: sequential keep-alive
 * requests (one connection, latency measured by the client) to
 *   health  GET /api/v1/health (no authentication, no database);
 *   usage   GET /organizations/{org}/usage (API key, one small statement);
 *   query   GET /organizations/{org}/metrics/query, one series (host=h123), last hour, step 60s,
 *           avg: 60 answer points;
 * each beside two ceilings measured in the same iterations:
 *   bare    a bare node:http server in a process of its own answering the query's bytes (the
 *           client, loopback and HTTP parsing: what no daemon can go below);
 *   repo    QueryRepository.metricRead of the same query in this process (the database's part
 *           and the decoding; no HTTP, no authentication, no JSON), built as the daemon builds it
 *           on the default configuration (the fresh-first statement for reads of recent data).
 * query − repo is what the request path adds to the read.
 *
 * Data: SENTINEL_BENCH_SERIES series (default 300) of one metric with 2 hours of points at 60 s,
 * COPYed into the fresh tier.
 *
 * A/B: SENTINEL_BENCH_BINS=<name>=<path of a build's bin/sentinel>,… starts those builds on the
 * same database (each with its own data dir) and measures them instead of this build's daemon,
 * alternating the daemons request by request (e.g. a worktree of an older commit, built). The
 * repo ceiling is this checkout's read, whichever builds run: query − repo compares only builds
 * whose reads are the same.
 *
 * SENTINEL_BENCH_PROFILE_DIR=<dir>: every daemon runs with the V8 CPU profiler and writes its
 * profile there at exit (daemon-<pid>.cpuprofile; the pids are printed).
 *
 *   npm run bench:request-path     (SENTINEL_BENCH_REQUESTS=2000 per kind; SENTINEL_BENCH_ROUNDS=3)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import pg from 'pg';
import { configuredMs } from '../src/core/duration.js';
import { QueryRepository, type MetricReadSpec } from '../src/features/telemetry/query-repository.js';
import { ensurePointPartitions, loadPointGrid, loadSeries, median, quantile, startSentinel, timedRequest, type TimedAnswer } from './harness.js';
import { freePort } from '../test/support/daemon.js';
import { machineLine } from './machine.js';

const SERIES = Number(process.env.SENTINEL_BENCH_SERIES ?? 300);
const REQUESTS = Number(process.env.SENTINEL_BENCH_REQUESTS ?? 2000);
const ROUNDS = Number(process.env.SENTINEL_BENCH_ROUNDS ?? 3);
const BINS = (process.env.SENTINEL_BENCH_BINS ?? '').split(',').filter(Boolean).map((x) => x.split('=') as [string, string]);
const WARMUP = 200;
const SPACING = 60_000;
const END = Math.floor(Date.now() / SPACING) * SPACING;
const START = END - 3_600_000;

const f = (x: number) => x.toFixed(2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A daemon of another build on the same database (its own data dir, so its own lock and secrets). */
async function startOther(bin: string, pgUrl: string): Promise<{ port: number; proc: ChildProcess; stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sentinel-bench-other-'));
  const port = await freePort();
  const fd = openSync(join(dataDir, 'sentinel.log'), 'a');
  const proc = spawn(process.execPath, [bin, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      SENTINEL_DATA_DIR: dataDir,
      SENTINEL_DATABASE_URL: pgUrl,
      SENTINEL_HTTP_PORT: String(port),
      SENTINEL_LOG_LEVEL: 'info',
      SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000000',
      ...(process.env.SENTINEL_BENCH_DAEMON_NODE_OPTIONS ? { NODE_OPTIONS: process.env.SENTINEL_BENCH_DAEMON_NODE_OPTIONS } : {}),
      ...(profileDir ? { BENCH_CPU_PROFILE_DIR: profileDir } : {}),
    },
    stdio: ['ignore', fd, fd],
  });
  const exited = new Promise((r) => proc.once('exit', r));
  const readyBy = Date.now() + 60_000;
  for (;;) {
    // A build that cannot start (say, one without a migration the database has) leaves its log.
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${bin} exited (${proc.exitCode ?? proc.signalCode}); see ${dataDir}/sentinel.log`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/api/v1/health/ready`, { signal: AbortSignal.timeout(1000) })).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > readyBy) {
      proc.kill('SIGKILL');
      throw new Error(`${bin} not ready in 60 s; see ${dataDir}/sentinel.log`);
    }
    await sleep(50);
  }
  return {
    port,
    proc,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      // Not stopped in 20 s: killed, before its data directory goes.
      if ((await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)])) === false) {
        proc.kill('SIGKILL');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A bare node:http server in a child process answering every request with `body` (JSON). */
async function startBare(body: string): Promise<{ port: number; stop(): void }> {
  const code = `
    const body = Buffer.from(process.env.BODY, 'utf8');
    const s = require('node:http').createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length });
      res.end(body);
    });
    s.keepAliveTimeout = 65000;
    s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));`;
  const proc = spawn(process.execPath, ['-e', code], { env: { BODY: body }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const late = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error('bare server did not listen in 10 s'));
    }, 10_000);
    proc.stdout!.once('data', (d: Buffer) => {
      clearTimeout(late);
      resolve(Number(d.toString().trim()));
    });
    proc.once('exit', () => {
      clearTimeout(late);
      reject(new Error('bare server exited'));
    });
  });
  return { port, stop: () => proc.kill('SIGTERM') };
}

console.log(machineLine());
// SENTINEL_BENCH_PROFILE_DIR: the daemon runs with the V8 CPU profiler (bench/cpu-profile-preload.mjs) and writes its profile there.
const profileDir = process.env.SENTINEL_BENCH_PROFILE_DIR;
if (profileDir) process.env.SENTINEL_BENCH_DAEMON_NODE_OPTIONS = `--import=${new URL('./cpu-profile-preload.mjs', import.meta.url).href}`;
const s = await startSentinel('request-path', profileDir ? { BENCH_CPU_PROFILE_DIR: profileDir } : {});
const admin = new pg.Client(s.pgUrl);
const knex = knexFactory({ client: 'pg', connection: s.pgUrl, pool: { min: 1, max: 1 } });
const others: Awaited<ReturnType<typeof startOther>>[] = [];
let bare: Awaited<ReturnType<typeof startBare>> | null = null;
// Ctrl-C or a kill of the benchmark: the harness stops its own daemon and exits; the other builds'
// daemons and the bare server are this file's, stopped here as the process exits.
process.once('exit', () => {
  bare?.stop();
  for (const o of others) if (o.proc.exitCode === null && o.proc.signalCode === null) o.proc.kill('SIGKILL');
});
try {
  await admin.connect();
  await ensurePointPartitions(s.pgUrl, START - 3_600_000, END);
  const ids = await loadSeries(admin, s.orgId, 'bench.rp', SERIES, (i) => ({ host: `h${i}`, svc: `svc${i % 10}` }));
  await loadPointGrid(s.pgUrl, { orgId: s.orgId, seriesIds: ids, perSeries: 120, firstTs: END - 120 * SPACING + 5000, spacingMs: SPACING, connections: 1, rowsPerCommit: 100_000 });
  await admin.query('analyze series; analyze points');
  for (const [name, bin] of BINS) {
    others.push(await startOther(bin, s.pgUrl));
    if (profileDir) console.log(`${name}: pid ${others.at(-1)!.proc.pid} (its profile: ${profileDir}/daemon-${others.at(-1)!.proc.pid}.cpuprofile)`);
  }

  const auth = { authorization: `Bearer ${s.apiKey}` };
  const qs = new URLSearchParams({ name: 'bench.rp', filter: 'host=h123', start: String(START), end: String(END), step: '60s', agg: 'avg' });
  const paths = {
    health: { path: '/api/v1/health', headers: {} },
    usage: { path: '/api/v1/organizations/bench/usage', headers: auth },
    query: { path: `/api/v1/organizations/bench/metrics/query?${qs}`, headers: auth },
  } as const;
  type Kind = keyof typeof paths;
  const kinds = Object.keys(paths) as Kind[];

  const daemons = BINS.length
    ? BINS.map(([name], i) => ({ name, port: others[i].port, agent: new Agent({ keepAlive: true, maxSockets: 1 }) }))
    : [{ name: 'daemon', port: s.daemon.port, agent: new Agent({ keepAlive: true, maxSockets: 1 }) }];

  const first = await timedRequest(daemons[0].port, paths.query.path, daemons[0].agent, { headers: paths.query.headers });
  if (first.status !== 200) throw new Error(`query answered ${first.status}: ${first.body}`);
  const points = (JSON.parse(first.body) as { series: { points: unknown[] }[] }).series.reduce((n, x) => n + x.points.length, 0);
  bare = await startBare(first.body);
  const bareAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  // As the daemon builds it on the default configuration: reads starting within storage.compact_after of now try the fresh-first statement.
  const defaults = JSON.parse(readFileSync(new URL('../config/default.json', import.meta.url), 'utf8')) as { storage: { compact_after: string } };
  const repo = new QueryRepository(knex, knex, { compactAfterMs: configuredMs(defaults.storage.compact_after) });
  const spec: MetricReadSpec = {
    name: 'bench.rp',
    matchers: [{ label: 'host', op: '=', value: 'h123', source: 'host=h123' }],
    by: [],
    startMs: START,
    endMs: END,
    stepMs: 60_000,
    agg: 'avg',
    buckets: 60,
    maxSeries: 1000,
    maxPoints: 1_000_000,
  };
  const repoPoints = (await repo.metricRead(s.orgId, spec, 60_000)).rows.reduce((n, x) => n + x.t.length, 0);
  if (repoPoints !== points) throw new Error(`the API answered ${points} points, the repository ${repoPoints}`);
  console.log(`${SERIES} series × 120 points in the fresh tier; the query answers ${points} points, ${first.body.length} B of JSON`);
  console.log(`${ROUNDS} rounds of ${REQUESTS} sequential requests per kind (after ${WARMUP} warm-up), every kind and daemon interleaved; ms measured by the client`);

  const check = (what: string, x: TimedAnswer) => {
    if (x.status !== 200) throw new Error(`${what} answered ${x.status}: ${x.body.slice(0, 300)}`);
    return x.ms;
  };
  type Figures = { p50: number[]; p95: number[]; p99: number[] };
  const figures = new Map<string, Figures>();
  const add = (key: string, xs: number[]) => {
    let fg = figures.get(key);
    if (!fg) figures.set(key, (fg = { p50: [], p95: [], p99: [] }));
    fg.p50.push(quantile(xs, 0.5));
    fg.p95.push(quantile(xs, 0.95));
    fg.p99.push(quantile(xs, 0.99));
    return fg;
  };
  const line = (key: string, xs: number[]) => `${key.padEnd(24)} p50 ${f(quantile(xs, 0.5))}  p95 ${f(quantile(xs, 0.95))}  p99 ${f(quantile(xs, 0.99))}  max ${f(Math.max(...xs))}`;

  for (let round = 1; round <= ROUNDS; round++) {
    const samples = new Map<string, number[]>();
    const push = (key: string, i: number, ms: number) => {
      if (i < WARMUP) return;
      let xs = samples.get(key);
      if (!xs) samples.set(key, (xs = []));
      xs.push(ms);
    };
    const steps: { key: string; run: () => Promise<number> }[] = [];
    for (const d of daemons) {
      for (const k of kinds) steps.push({ key: `${k} · ${d.name}`, run: async () => check(`${k} ${d.name}`, await timedRequest(d.port, paths[k].path, d.agent, { headers: paths[k].headers })) });
    }
    steps.push({ key: 'ceiling: bare node:http', run: async () => check('bare', await timedRequest(bare!.port, paths.query.path, bareAgent)) });
    steps.push({
      key: 'ceiling: repo metricRead',
      run: async () => {
        const t = performance.now();
        await repo.metricRead(s.orgId, spec, 60_000);
        return performance.now() - t;
      },
    });
    for (let i = 0; i < WARMUP + REQUESTS; i++) {
      for (let j = 0; j < steps.length; j++) {
        const st = steps[(i + j) % steps.length];
        push(st.key, i, await st.run());
      }
    }
    console.log(`round ${round} (load average ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
    for (const [key, xs] of samples) {
      add(key, xs);
      console.log(`  ${line(key, xs)}`);
    }
  }
  console.log(`medians of ${ROUNDS} rounds:`);
  for (const [key, fg] of figures) console.log(`  ${key.padEnd(24)} p50 ${f(median(fg.p50))}  p95 ${f(median(fg.p95))}  p99 ${f(median(fg.p99))}`);
  bareAgent.destroy();
  for (const d of daemons) d.agent.destroy();
} finally {
  bare?.stop();
  for (const o of others) await o.stop();
  await knex.destroy().catch(() => undefined);
  await admin.end().catch(() => undefined);
  await s.stop();
}
