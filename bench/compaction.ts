/**
 * The compaction job beside the ingest it must keep up with, in one run on the real daemon
 * (embedded PostgreSQL 17):
 *
 *  1. the ceiling: batched ingest over HTTP, 4 connections × 1,000-point requests (as
 *     bench:ingest (a)), for SENTINEL_BENCH_SECONDS (default 10) → points/s; the target is a
 *     compaction rate of at least 5× that;
 *  2. SENTINEL_BENCH_SERIES (default 2,000) series × 4 h at 10 s with up to ±5 ms of jitter,
 *     two-decimal values that change on about one sample in three, COPYed into `points` in two
 *     2-hour windows ending at least 3 h before now (so both are older than the default
 *     storage.compact_after);
 *  3. a steady background load starts — one 1,000-point ingest request and one query of a
 *     loaded series over both tiers (last 8 h at 60 s) every 50 ms each — measured for
 *     SENTINEL_BENCH_SECONDS before the job (baseline), then during `sentinel jobs run
 *     compaction`; a sampler reads `pg_locks` every 10 ms for lock waits (PostgreSQL ≥ 14's
 *     `waitstart`);
 *  4. printed: the load average at the start and as the job starts; points compacted per second of job time (the job's own `duration_ms`) against
 *     5× the ingest ceiling, and the background requests' p50/p99/max before and during the job
 *     with the longest lock wait seen (target: never blocked for more than 100 ms).
 *
 * The scheduled compaction is disabled (SENTINEL_JOBS) so only the run the bench starts works.
 * SENTINEL_BENCH_BATCH_SERIES sets storage.compact_batch_series for the run (default: the config's).
 *
 *   npm run bench:compaction
 */
import { spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import pg from 'pg';
import { BIN } from '../test/support/daemon.js';
import { machineLine } from './machine.js';
import { ensurePointPartitions, copyInto, loadSeries, mulberry32, quantile, startSentinel, timedRequest } from './harness.js';

const seconds = Number(process.env.SENTINEL_BENCH_SECONDS ?? 10);
const SERIES = Number(process.env.SENTINEL_BENCH_SERIES ?? 2000);
const HOUR = 3_600_000;
const WINDOW = 2 * HOUR;
const SPACING = 10_000;
const PER_SERIES = (4 * HOUR) / SPACING;
const METRIC = 'bench.compact';
const INGEST_METRIC = 'bench.compact.ingest';
const PACE_MS = 50;
/** The compaction job's statements that wait for locks (its VACUUM, the window's snapshot lock and drop, an emptied day's truncation). */
const JOB_STATEMENT = /^(?:vacuum\b|lock table (?:only )?"?points|alter table \S+ detach\b|drop table\b|truncate\b)/i;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const end = Math.floor((Date.now() - 3 * HOUR) / WINDOW) * WINDOW;
const first = end - 4 * HOUR;

/** A 1,000-point native body (100 series × 10 timestamps 1 ms apart, in the last minutes). */
let batchNo = 0;
function ingestBody(): string {
  const t0 = Date.now() - 10 * 60_000 + ((batchNo++ * 10) % (5 * 60_000));
  const items: string[] = [];
  for (let j = 0; j < 10; j++) for (let h = 0; h < 100; h++) items.push(`{"name":"${INGEST_METRIC}","value":${(h * 7 + j) % 1000},"ts":${t0 + j},"labels":{"host":"h${h}"}}`);
  return `{"metrics":[${items.join(',')}]}`;
}

/** Runs `sentinel ARGS` without blocking this process (the background load goes on). */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const fmt = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));
const lat = (xs: number[]) => (xs.length ? `p50 ${quantile(xs, 0.5).toFixed(1)} ms p99 ${quantile(xs, 0.99).toFixed(1)} ms max ${Math.max(...xs).toFixed(1)} ms (${xs.length} requests, ${xs.filter((x) => x > 100).length} over 100 ms)` : 'no requests');

async function main(): Promise<void> {
  console.log(machineLine());
  // The machine's other work moves every figure here (2 shared cores): printed at the start and
  // when the job starts, so runs compare only at like load.
  const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`load average (1, 5, 15 min) at the start: ${load()}`);
  // SENTINEL_BENCH_BATCH_SERIES: storage.compact_batch_series for the run (default: the config's).
  const batch = process.env.SENTINEL_BENCH_BATCH_SERIES;
  const s = await startSentinel('compaction', {
    SENTINEL_JOBS: JSON.stringify({ compaction: { enabled: false } }),
    ...(batch ? { SENTINEL_STORAGE_COMPACT_BATCH_SERIES: batch } : {}),
  });
  const port = s.daemon.port;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const auth = { authorization: `Bearer ${s.apiKey}` };
  const post = (body: string) => timedRequest(port, '/api/v1/telemetry', agent, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
  try {
    // 1. The ceiling: batched ingest at full speed.
    const deadline = performance.now() + seconds * 1000;
    let ingested = 0;
    await post(ingestBody()); // series created outside the measurement
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (performance.now() < deadline) {
          const r = await post(ingestBody());
          if (r.status !== 202) throw new Error(`ingest answered ${r.status}: ${r.body.slice(0, 200)}`);
          ingested += 1000;
        }
      }),
    );
    const ingestRate = ingested / ((performance.now() - t0) / 1000);
    console.log(`ceiling: batched ingest (4 conn, 1000 points/request) ${fmt(ingestRate)} points/s over ${seconds} s; target compaction rate >= 5x = ${fmt(5 * ingestRate)} points/s`);

    // 2. The data to compact.
    const c = new pg.Client(s.pgUrl);
    await c.connect();
    const tl = performance.now();
    const ids = await loadSeries(c, s.orgId, METRIC, SERIES, (i) => ({ host: `h${i}`, job: 'node' }));
    await ensurePointPartitions(s.pgUrl, first, end);
    const rnd = mulberry32(13);
    await copyInto(
      c,
      'copy points (org_id, series_id, ts, value) from stdin',
      (function* () {
        let chunk = '';
        for (let i = 0; i < SERIES; i++) {
          let v = Math.round(rnd() * 10_000) / 100;
          for (let k = 0; k < PER_SERIES; k++) {
            if (rnd() < 1 / 3) v = Math.round((v + (rnd() - 0.5) * 10) * 100) / 100;
            const ts = first + k * SPACING + Math.round((rnd() - 0.5) * 10);
            chunk += `${s.orgId}\t${ids[i]}\t${new Date(Math.max(first, Math.min(end - 1, ts))).toISOString()}\t${v}\n`;
            if (chunk.length > 1 << 20) {
              yield chunk;
              chunk = '';
            }
          }
        }
        yield chunk;
      })(),
    );
    const loaded = SERIES * PER_SERIES;
    console.log(`loaded ${loaded.toLocaleString('en-US')} points (${SERIES} series × ${PER_SERIES} at 10 s ± 5 ms, ${new Date(first).toISOString()} .. ${new Date(end).toISOString()}) with COPY in ${((performance.now() - tl) / 1000).toFixed(1)} s`);

    // 3. Background load, the lock sampler, and the job.
    let phase: 'baseline' | 'job' | 'stop' = 'baseline';
    const lats = { baseline: { ingest: [] as number[], query: [] as number[] }, job: { ingest: [] as number[], query: [] as number[] } };
    const failures: string[] = [];
    const queryPath = `/api/v1/organizations/bench/metrics/query?${new URLSearchParams({ name: METRIC, filter: 'host=h7', start: String(Date.now() - 8 * HOUR), end: String(Date.now()), step: '60s', agg: 'avg' })}`;
    const paced = async (kind: 'ingest' | 'query') => {
      while (phase !== 'stop') {
        const started = performance.now();
        const at = phase;
        const r = kind === 'ingest' ? await post(ingestBody()) : await timedRequest(port, queryPath, agent, { headers: auth });
        if (r.status !== (kind === 'ingest' ? 202 : 200)) failures.push(`${kind} ${r.status}: ${r.body.slice(0, 200)}`);
        lats[at][kind].push(r.ms);
        await sleep(Math.max(0, PACE_MS - (performance.now() - started)));
      }
    };
    // The longest lock wait seen, of ingest and queries (the target) and of the job's own statements
    // (its VACUUM of a window moved out batch by batch waits for an autovacuum PostgreSQL cancels for
    // it; the drop's locks): a wait of the job's own holds up nobody unless a request queues behind
    // it, and that request's wait is then counted as ingest's or a query's.
    const longest = { others: { ms: 0, what: '' }, job: { ms: 0, what: '' } };
    const sampler = new pg.Client(s.pgUrl);
    await sampler.connect();
    const sample = async () => {
      while (phase !== 'stop') {
        const { rows } = await sampler.query<{ ms: number; what: string | null }>(
          `select extract(epoch from clock_timestamp() - min(l.waitstart))::float8 * 1000 as ms, a.query as what
             from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where not l.granted and l.waitstart is not null group by a.pid, a.query`,
        );
        for (const r of rows) {
          const what = (r.what ?? '').replace(/\s+/g, ' ');
          const side = JOB_STATEMENT.test(what) ? longest.job : longest.others;
          if (r.ms > side.ms) Object.assign(side, { ms: r.ms, what: what.slice(0, 120) });
        }
        await sleep(10);
      }
    };
    const background = [paced('ingest'), paced('query'), sample()];
    await sleep(seconds * 1000);
    phase = 'job';
    console.log(`load average (1, 5, 15 min) as the job starts: ${load()}`);
    const tj = performance.now();
    const job = await runCli(['jobs', 'run', 'compaction', '--json'], s.env);
    const jobWall = (performance.now() - tj) / 1000;
    phase = 'stop';
    await Promise.all(background);
    await sampler.end();
    if (job.code !== 0) throw new Error(`sentinel jobs run compaction: ${job.stderr}`);
    // The job's warnings (e.g. a window whose rows read and held differ, so its rows were deleted instead of dropped).
    for (const line of job.stderr.split('\n')) {
      if (/"level":"(warn|error|fatal)"/.test(line)) console.log(`job log: ${line.slice(0, 400)}`);
    }
    const report = JSON.parse(job.stdout) as { points_compacted: number; chunks_written: number; batches: number; duration_ms: number; windows_dropped: string[]; windows_deleted: string[]; windows_in_batches: string[] };
    const left = Number((await c.query<{ n: string }>(`select count(*) as n from points p join series s on s.id = p.series_id where s.name = $1`, [METRIC])).rows[0].n);
    await c.end();

    // 4. Figures.
    const rate = report.points_compacted / (report.duration_ms / 1000);
    console.log(
      `compaction: ${report.points_compacted.toLocaleString('en-US')} points into ${report.chunks_written.toLocaleString('en-US')} chunks in ${report.batches} batches, job time ${(report.duration_ms / 1000).toFixed(1)} s (CLI ${jobWall.toFixed(1)} s): ${fmt(rate)} points/s   ` +
        `ceiling: 5 × batched ingest = ${fmt(5 * ingestRate)} points/s   ratio ${(rate / ingestRate).toFixed(1)}× ingest (target >= 5×: ${rate >= 5 * ingestRate ? 'yes' : 'NO'})   loaded points left in the fresh tier: ${left}`,
    );
    console.log(`window partitions: ${report.windows_dropped.length} dropped with their chunks, ${report.windows_deleted.length} emptied by deletes instead (a late point, or a lock not had in time)${report.windows_deleted.length ? `: ${report.windows_deleted.join(', ')}` : ''}, ${report.windows_in_batches.length} moved out batch by batch (over the whole-window size limit)${report.windows_in_batches.length ? `: ${report.windows_in_batches.join(', ')}` : ''}`);
    console.log(`background ingest (1,000 points every ${PACE_MS} ms): before the job ${lat(lats.baseline.ingest)}; during it ${lat(lats.job.ingest)}`);
    console.log(`background query (one series, both tiers, every ${PACE_MS} ms): before the job ${lat(lats.baseline.query)}; during it ${lat(lats.job.query)}`);
    const waitLine = (w: { ms: number; what: string }) => `${w.ms.toFixed(1)} ms${w.what ? ` (${w.what})` : ''}`;
    console.log(
      `longest lock wait of ingest and queries (pg_locks sampled every 10 ms): ${waitLine(longest.others)} (target: never more than 100 ms: ${longest.others.ms <= 100 ? 'yes' : 'NO'}); of the job's own statements: ${waitLine(longest.job)}`,
    );
    if (failures.length) throw new Error(`${failures.length} background requests failed, first: ${failures[0]}`);
    if (left !== 0) throw new Error(`${left} loaded points were not compacted`);
  } finally {
    agent.destroy();
    await s.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
