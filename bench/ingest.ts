/**
 * Ingest benchmarks, each beside its ceiling measured in the same run:
 *  (a) batched ingest — POST /api/v1/telemetry, 4 connections, 1,000-point bodies (100 series ×
 *      10 timestamps) → points/s, vs a raw COPY of the same points as wide rows (org, name,
 *      labels jsonb, ts, value; plain table, no index) from 4 connections, 1,000 rows per
 *      COPY + commit (target ≥ 100%); reference: the same points as narrow rows COPYed straight
 *      into `points` (its index included);
 *  (o) OTLP protobuf batched ingest — POST /v1/metrics (application/x-protobuf), 4 connections,
 *      1,000 gauge data points per request (the same 100 series × 10 timestamps) → points/s, vs
 *      the same narrow rows COPYed straight into `points` in the same run (target ≥ 60%; the
 *      native (a) against that ceiling: ≥ 75%);
 *  (b) single-point requests — 50 connections, one metric per body → req/s and p99, vs bare Koa +
 *      koa-bodyparser answering the same 202 without a database (target ≥ 60%, p99 < 30 ms);
 *  (d) daemon RSS under (a)-style load for SENTINEL_BENCH_RSS_SECONDS (default 300; 0 skips it),
 *      sampled every 10 s; after a 30 s warm-up it should stay within 10%.
 *
 *   npm run bench:ingest          (SENTINEL_BENCH_SECONDS=10 per measurement by default)
 *   SENTINEL_BENCH_PARTS=b npm run bench:ingest    (only the single-point requests; default a,o,b,d)
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { OTLP_MESSAGES } from '../src/features/telemetry/otlp-proto.js';
import { machineLine } from './machine.js';
import { ensurePointPartitions, median, pct, rssMiB, startSentinel } from './harness.js';

const seconds = Number(process.env.SENTINEL_BENCH_SECONDS ?? 10);
const rssSeconds = Number(process.env.SENTINEL_BENCH_RSS_SECONDS ?? 300);
const ROUNDS = 3;
const parts = new Set((process.env.SENTINEL_BENCH_PARTS ?? 'a,o,b,d').split(','));
const BATCH_CONNECTIONS = 4;
const SINGLE_CONNECTIONS = 50;
const SERIES = 100;
const TIMES = 10;
const POINTS_PER_BODY = SERIES * TIMES;
const METRIC = 'bench.ingest';
const RSS_WARMUP_S = 30;
const RSS_INTERVAL_S = 10;

type Result = autocannon.Result;
// The promise form: with a callback, autocannon ignores `warmup`.
const run = async (opts: autocannon.Options): Promise<Result> => await autocannon(opts);

// Every batch (request body or COPY) gets 10 timestamps of its own, 1 ms apart, in the hour
// before the run started (inside ingest.max_age / max_future); after an hour they wrap around.
const HOUR = 3_600_000;
const tsBase = Date.now() - HOUR;
let batchNo = 0;
const nextBatchTs = () => tsBase + ((batchNo++ * TIMES) % HOUR);
const value = (h: number, j: number, t: number) => (t % 1000) + h / 100 + j;
const labelsJson = (h: number) => `{"host":"h${h}","region":"eu"}`;
const iso = (ms: number) => new Date(ms).toISOString();

function ingestBody(): string {
  const t0 = nextBatchTs();
  const items: string[] = [];
  for (let j = 0; j < TIMES; j++) for (let h = 0; h < SERIES; h++) items.push(`{"name":"${METRIC}","value":${value(h, j, t0)},"ts":${t0 + j},"labels":${labelsJson(h)}}`);
  return `{"metrics":[${items.join(',')}]}`;
}

const OTLP_METRIC = 'bench.otlp';
const OTLP_POOL = 200;
const strAttr = (key: string, value: string) => ({ key, value: { stringValue: value } });

/**
 * An ExportMetricsServiceRequest holding the same 1,000 points as ingestBody() (one resource,
 * one scope, one gauge; a data point per series and timestamp), protobuf-encoded. Encoding costs
 * the load generator more than a JSON string, so a pool of bodies (each its own timestamps) is
 * made before the run and sent in turn.
 */
function otlpBody(): Buffer {
  const t0 = nextBatchTs();
  const dataPoints: object[] = [];
  for (let j = 0; j < TIMES; j++) {
    for (let h = 0; h < SERIES; h++) {
      dataPoints.push({ attributes: [strAttr('host', `h${h}`), strAttr('region', 'eu')], timeUnixNano: String(BigInt(t0 + j) * 1_000_000n), asDouble: value(h, j, t0) });
    }
  }
  const request = {
    resourceMetrics: [{ resource: { attributes: [strAttr('service.name', 'bench')] }, scopeMetrics: [{ scope: { name: 'bench' }, metrics: [{ name: OTLP_METRIC, gauge: { dataPoints } }] }] }],
  };
  const t = OTLP_MESSAGES.metricsRequest;
  const bytes = t.encode(t.fromObject(request)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** COPY text rows of one batch: the same points as ingestBody(), wide or narrow. */
function wideRows(org: string): string {
  const t0 = nextBatchTs();
  let s = '';
  for (let j = 0; j < TIMES; j++) {
    const ts = iso(t0 + j);
    for (let h = 0; h < SERIES; h++) s += `${org}\t${METRIC}\t${labelsJson(h)}\t${ts}\t${value(h, j, t0)}\n`;
  }
  return s;
}
function narrowRows(org: string, seriesIds: number[]): string {
  const t0 = nextBatchTs();
  let s = '';
  for (let j = 0; j < TIMES; j++) {
    const ts = iso(t0 + j);
    for (let h = 0; h < SERIES; h++) s += `${org}\t${seriesIds[h]}\t${ts}\t${value(h, j, t0)}\n`;
  }
  return s;
}

/**
 * `connections` sessions each looping BEGIN; COPY <1,000 rows>; COMMIT for `duration` s (after
 * `warmup` s not counted) → rows/s.
 */
async function copyRate(pgUrl: string, sql: string, rows: () => string, duration: number, warmup = 1): Promise<number> {
  const clients = await Promise.all(
    Array.from({ length: BATCH_CONNECTIONS }, async () => {
      const c = new pg.Client(pgUrl);
      await c.connect();
      return c;
    }),
  );
  try {
    const batch = async (c: pg.Client) => {
      const body = rows();
      await c.query('begin');
      const stream = c.query(copyFrom(sql));
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        stream.on('finish', resolve);
        stream.end(body);
      });
      await c.query('commit');
    };
    const loop = async (c: pg.Client, until: number) => {
      let n = 0;
      while (Date.now() < until) {
        await batch(c);
        n += POINTS_PER_BODY;
      }
      return n;
    };
    const w = Date.now() + warmup * 1000;
    await Promise.all(clients.map((c) => loop(c, w)));
    const t0 = performance.now();
    const end = Date.now() + duration * 1000;
    const counts = await Promise.all(clients.map((c) => loop(c, end)));
    return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

/** utime + stime (+ the reaped children's, with `children`) of a process from /proc, in ms (USER_HZ 100). */
function procCpuMs(pid: number, children = false): number {
  try {
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0)) * 10;
  } catch {
    return 0;
  }
}

/**
 * CPU time so far of the daemon, of PostgreSQL (the postmaster, its live children and those it
 * has reaped) and of this process (the load generator: autocannon, or the COPY rows), ms.
 */
function cpuNow(daemonPid: number, pgdata: string): { daemon: number; pg: number; bench: number } {
  const postmaster = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'latin1').split('\n')[0]);
  let pgMs = procCpuMs(postmaster, true);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) pgMs += procCpuMs(Number(d));
    } catch {
      // gone
    }
  }
  const u = process.cpuUsage();
  return { daemon: procCpuMs(daemonPid), pg: pgMs, bench: (u.user + u.system) / 1000 };
}

/** Autocannon options for POST /telemetry that fail the run on any non-2xx answer (first one kept for the message). */
function telemetryLoad(url: string, apiKey: string, body: (() => string) | string) {
  const seen: { first?: string } = {};
  const request: autocannon.Request = {
    method: 'POST',
    path: '/api/v1/telemetry',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    onResponse: (status: number, resBody: string) => {
      if ((status < 200 || status > 299) && !seen.first) seen.first = `${status} ${String(resBody).slice(0, 400)}`;
    },
  };
  if (typeof body === 'function') {
    request.setupRequest = (req: autocannon.Request) => {
      req.body = body();
      return req;
    };
  } else request.body = body;
  const check = (r: Result, what: string) => {
    if (r.non2xx || r.errors || r.timeouts) throw new Error(`${what}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts; first non-2xx answer: ${seen.first ?? '-'}`);
    return r;
  };
  return { opts: { url, requests: [request] } as autocannon.Options, check };
}

/** Autocannon options for POST /v1/metrics with protobuf bodies from `pool` in turn; any non-200 answer or partial rejection fails the run. */
function otlpLoad(url: string, apiKey: string, pool: Buffer[]) {
  const seen: { first?: string } = {};
  let next = 0;
  const request: autocannon.Request = {
    method: 'POST',
    path: '/v1/metrics',
    headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${apiKey}` },
    setupRequest: (req: autocannon.Request) => {
      req.body = pool[next++ % pool.length];
      return req;
    },
    onResponse: (status: number, resBody: string) => {
      // ExportMetricsServiceResponse: empty when everything was stored; partialSuccess otherwise.
      if ((status !== 200 || resBody.length > 0) && !seen.first) seen.first = `${status} ${JSON.stringify(String(resBody).slice(0, 400))}`;
    },
  };
  const check = (r: Result, what: string) => {
    if (r.non2xx || r.errors || r.timeouts || seen.first) throw new Error(`${what}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts; first bad answer: ${seen.first ?? '-'}`);
    return r;
  };
  return { opts: { url, requests: [request] } as autocannon.Options, check };
}

/** Bare Koa + koa-bodyparser in its own process, answering the ingest route's 202 body without a database. */
function bareKoa(): Promise<{ port: number; stop: () => void }> {
  const code = `
    import Koa from 'koa';
    import bodyParser from 'koa-bodyparser';
    const app = new Koa();
    app.use(bodyParser());
    app.use((ctx) => {
      const m = ctx.request.body && ctx.request.body.metrics;
      if (!Array.isArray(m)) ctx.throw(400);
      ctx.status = 202;
      ctx.body = { accepted: { metrics: m.length, logs: 0, events: 0 } };
    });
    const s = app.listen(0, '127.0.0.1', () => console.log(s.address().port));
  `;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.once('exit', (c) => reject(new Error(`bare Koa exited ${c}`)));
    p.stdout.once('data', (c: Buffer) => resolve({ port: Number(String(c).trim()), stop: () => p.kill('SIGTERM') }));
  });
}

console.log(machineLine());
console.log(`${seconds} s per measurement, ${ROUNDS} alternating rounds (medians); RSS run ${rssSeconds ? `${rssSeconds} s` : 'skipped'}`);
// SENTINEL_BENCH_DAEMON_ENV='K=V,…' adds daemon settings (e.g. SENTINEL_INGEST_FLUSH_INTERVAL_MS=1) to try a knob.
const daemonEnv = Object.fromEntries((process.env.SENTINEL_BENCH_DAEMON_ENV ?? '').split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
const s = await startSentinel('ingest', daemonEnv);
const base = `http://127.0.0.1:${s.daemon.port}`;
const admin = new pg.Client(s.pgUrl);
let koa: { port: number; stop: () => void } | null = null;
try {
  await admin.connect();
  await ensurePointPartitions(s.pgUrl, tsBase - HOUR, Date.now() + HOUR);

  // First request creates the 100 series (and proves the body is accepted); their ids feed the narrow COPY.
  const first = await fetch(`${base}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${s.apiKey}` }, body: ingestBody() });
  if (first.status !== 202) throw new Error(`first ingest answered ${first.status}: ${await first.text()}`);
  const { rows: seriesRows } = await admin.query<{ id: string; host: string }>(`select id, labels->>'host' as host from series where org_id = $1 and name = $2`, [s.orgId, METRIC]);
  const seriesIds = Array.from({ length: SERIES }, (_, h) => Number(seriesRows.find((r) => r.host === `h${h}`)!.id));

  // (a) Batched ingest vs COPY.
  if (parts.has('a')) {
  await admin.query('drop table if exists bench_wide_ceiling');
  await admin.query('create table bench_wide_ceiling (org_id uuid, name text, labels jsonb, ts timestamptz, value double precision)');
  const wide: number[] = [];
  const narrow: number[] = [];
  const ingest: number[] = [];
  const p99s: number[] = [];
  // CPU ms per 1,000 points stored, per phase (warm-up included: CPU cannot be split at its end).
  const pgdata = join(s.dataDir, 'postgres');
  const cpuIngest: { daemon: number; pg: number; bench: number }[] = [];
  const cpuNarrow: { daemon: number; pg: number; bench: number }[] = [];
  const pointsNow = async () => Number((await admin.query<{ n: string }>('select count(*)::bigint as n from points')).rows[0].n);
  const perK = async <T>(into: { daemon: number; pg: number; bench: number }[], phase: () => Promise<T>): Promise<T> => {
    const n0 = await pointsNow();
    const c0 = cpuNow(s.daemon.proc.pid!, pgdata);
    const out = await phase();
    const c1 = cpuNow(s.daemon.proc.pid!, pgdata);
    const k = ((await pointsNow()) - n0) / 1000;
    into.push({ daemon: (c1.daemon - c0.daemon) / k, pg: (c1.pg - c0.pg) / k, bench: (c1.bench - c0.bench) / k });
    return out;
  };
  for (let i = 0; i < ROUNDS; i++) {
    wide.push(await copyRate(s.pgUrl, 'copy bench_wide_ceiling (org_id, name, labels, ts, value) from stdin', () => wideRows(s.orgId), seconds));
    const load = telemetryLoad(base, s.apiKey, ingestBody);
    const r = load.check(
      await perK(cpuIngest, () => run({ ...load.opts, connections: BATCH_CONNECTIONS, duration: seconds, warmup: { connections: BATCH_CONNECTIONS, duration: 1 } } as autocannon.Options)),
      'batched ingest',
    );
    ingest.push((r['2xx'] * POINTS_PER_BODY) / r.duration);
    p99s.push(r.latency.p99);
    narrow.push(await perK(cpuNarrow, () => copyRate(s.pgUrl, 'copy points (org_id, series_id, ts, value) from stdin', () => narrowRows(s.orgId, seriesIds), seconds)));
  }
  await admin.query('drop table bench_wide_ceiling');
  const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
  const a = median(ingest);
  const w = median(wide);
  const n = median(narrow);
  console.log(
    `(a) batched ingest (${BATCH_CONNECTIONS} conn, ${POINTS_PER_BODY} points/request): ${k(a)} points/s (p99 ${median(p99s)} ms)   ` +
      `ceiling: wide-row COPY ${k(w)} points/s   ratio ${pct(a, w)} (target >= 100%)   ` +
      `reference: narrow COPY into points ${k(n)} points/s (ingest ${pct(a, n)} of it; target >= 75%)   rounds: ingest ${ingest.map(k).join(' / ')}, wide ${wide.map(k).join(' / ')}, narrow ${narrow.map(k).join(' / ')}`,
  );
  const ms = (xs: { daemon: number; pg: number; bench: number }[], f: 'daemon' | 'pg' | 'bench') => median(xs.map((x) => x[f])).toFixed(1);
  console.log(
    `    CPU ms per 1000 points (medians of the rounds): ingest: daemon ${ms(cpuIngest, 'daemon')}, PostgreSQL ${ms(cpuIngest, 'pg')}, load generator ${ms(cpuIngest, 'bench')}   ` +
      `narrow COPY: PostgreSQL ${ms(cpuNarrow, 'pg')}, load generator ${ms(cpuNarrow, 'bench')}`,
  );

  }

  // (o) OTLP protobuf batched ingest vs narrow COPY.
  if (parts.has('o')) {
    const pool = Array.from({ length: OTLP_POOL }, otlpBody);
    const firstOtlp = await fetch(`${base}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${s.apiKey}` }, body: new Uint8Array(pool[0]) });
    const firstAnswer = Buffer.from(await firstOtlp.arrayBuffer());
    if (firstOtlp.status !== 200 || firstAnswer.length > 0) throw new Error(`first OTLP export answered ${firstOtlp.status} (${firstAnswer.length} bytes of partialSuccess)`);
    const otlp: number[] = [];
    const narrow: number[] = [];
    const p99s: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      narrow.push(await copyRate(s.pgUrl, 'copy points (org_id, series_id, ts, value) from stdin', () => narrowRows(s.orgId, seriesIds), seconds));
      const load = otlpLoad(base, s.apiKey, pool);
      const r = load.check(await run({ ...load.opts, connections: BATCH_CONNECTIONS, duration: seconds, warmup: { connections: BATCH_CONNECTIONS, duration: 1 } } as autocannon.Options), 'OTLP protobuf ingest');
      otlp.push((r['2xx'] * POINTS_PER_BODY) / r.duration);
      p99s.push(r.latency.p99);
    }
    const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
    const o = median(otlp);
    const n = median(narrow);
    console.log(
      `(o) OTLP protobuf batched ingest (${BATCH_CONNECTIONS} conn, ${POINTS_PER_BODY} data points/request, ${(pool[0].length / 1024).toFixed(0)} KiB): ${k(o)} points/s (p99 ${median(p99s)} ms)   ` +
        `ceiling: narrow COPY into points ${k(n)} points/s   ratio ${pct(o, n)} (target >= 60%)   rounds: otlp ${otlp.map(k).join(' / ')}, narrow ${narrow.map(k).join(' / ')}`,
    );
  }

  // (b) Single-point requests vs bare Koa.
  if (parts.has('b')) {
  const singleBody = JSON.stringify({ metrics: [{ name: 'bench.single', value: 1.5, labels: { host: 'h1', region: 'eu' } }] });
  koa = await bareKoa();
  const bare: Result[] = [];
  const single: Result[] = [];
  const warmup = { connections: 10, duration: 1 };
  for (let i = 0; i < ROUNDS; i++) {
    const bareLoad = telemetryLoad(`http://127.0.0.1:${koa.port}`, s.apiKey, singleBody);
    bare.push(bareLoad.check(await run({ ...bareLoad.opts, connections: SINGLE_CONNECTIONS, duration: seconds, warmup } as autocannon.Options), 'bare Koa'));
    const load = telemetryLoad(base, s.apiKey, singleBody);
    single.push(load.check(await run({ ...load.opts, connections: SINGLE_CONNECTIONS, duration: seconds, warmup } as autocannon.Options), 'single-point ingest'));
  }
  koa.stop();
  koa = null;
  const rate = (r: Result) => r['2xx'] / r.duration;
  const sr = median(single.map(rate));
  const br = median(bare.map(rate));
  const sp = median(single.map((r) => r.latency.p99));
  console.log(
    `(b) single-point POST /telemetry (${SINGLE_CONNECTIONS} conn): ${sr.toFixed(0)} req/s p99 ${sp} ms   ceiling: bare Koa + bodyparser ${br.toFixed(0)} req/s p99 ${median(bare.map((r) => r.latency.p99))} ms   ` +
      `ratio ${pct(sr, br)} (target >= 60%)   p99 ${sp < 30 ? 'within' : 'OVER'} target (< 30 ms)   rounds: ${single.map((r) => rate(r).toFixed(0)).join(' / ')} vs ${bare.map((r) => rate(r).toFixed(0)).join(' / ')}`,
  );

  }

  // (d) RSS under sustained batched ingest.
  if (parts.has('d') && rssSeconds > 0) {
    const pid = s.daemon.proc.pid!;
    const idle = rssMiB(pid);
    const samples: { t: number; mib: number }[] = [];
    const t0 = Date.now();
    const timer = setInterval(() => samples.push({ t: Math.round((Date.now() - t0) / 1000), mib: rssMiB(pid) }), RSS_INTERVAL_S * 1000);
    const load = telemetryLoad(base, s.apiKey, ingestBody);
    let r: Result;
    try {
      r = load.check(await run({ ...load.opts, connections: BATCH_CONNECTIONS, duration: rssSeconds }), 'sustained ingest');
    } finally {
      clearInterval(timer);
    }
    const counted = samples.filter((x) => x.t >= RSS_WARMUP_S);
    const f = (m: number) => `${m.toFixed(1)} MiB`;
    if (counted.length === 0) {
      console.log(`(d) RSS: run too short for the ${RSS_WARMUP_S} s warm-up; samples ${samples.map((x) => `${x.t}s ${f(x.mib)}`).join(', ')}`);
    } else {
      const mibs = counted.map((x) => x.mib);
      const max = Math.max(...mibs);
      const min = Math.min(...mibs);
      const spread = (max - min) / min;
      console.log(
        `(d) daemon RSS under ${rssSeconds} s of batched ingest (${((r['2xx'] * POINTS_PER_BODY) / r.duration / 1000).toFixed(1)}k points/s): ` +
          `first after ${RSS_WARMUP_S} s warm-up ${f(counted[0].mib)}, max ${f(max)}, last ${f(counted[counted.length - 1].mib)}, spread ${(100 * spread).toFixed(1)}% ` +
          `(target within 10%: ${spread <= 0.1 ? 'yes' : 'NO'})   reference: idle before the load ${f(idle)}; samples every ${RSS_INTERVAL_S} s: ${samples.map((x) => x.mib.toFixed(0)).join(' ')}`,
      );
    }
  }
  const { rows } = await admin.query<{ n: string }>('select count(*)::bigint as n from points');
  console.log(`points stored in the run: ${rows[0].n}`);
} finally {
  koa?.stop();
  await admin.end().catch(() => undefined);
  await s.stop();
}
