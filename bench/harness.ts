/**
 * Shared by the telemetry benchmarks: the real daemon on the embedded default PostgreSQL with a
 * temp data dir, an org and an API key made with the CLI, and a `pg` URL to the same server for
 * the ceilings. Everything started here is stopped by `stop()`, also when the run fails or is
 * interrupted.
 */
import { createHash } from 'node:crypto';
import { request, type Agent } from 'node:http';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { PartitionsRepository } from '../src/db/partitions.js';
import { POINT_WINDOWS } from '../src/features/telemetry/telemetry-tables.js';
import { canonicalLabels } from '../src/features/telemetry/series-store.js';
import { BIN, postgresPids, runBin, startDaemonLoggingTo, type Daemon } from '../test/support/daemon.js';

export interface BenchSentinel {
  dataDir: string;
  env: Record<string, string>;
  daemon: Daemon;
  /** http://127.0.0.1:<port>/api/v1 */
  api: string;
  /** The API key's secret (scopes ingest, read) of org `bench`. */
  apiKey: string;
  orgId: string;
  /** postgres:// URL of the daemon's embedded server. */
  pgUrl: string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** What a timed request answered: its time as the client saw it, status and body. */
export interface TimedAnswer {
  ms: number;
  status: number;
  body: string;
}

/** One request to 127.0.0.1:`port` on `agent`, timed from send to the last byte of the answer. */
export function timedRequest(port: number, path: string, agent: Agent, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<TimedAnswer> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = request({ host: '127.0.0.1', port, path, agent, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ ms: performance.now() - t, status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** p-quantile (nearest rank) of a list of figures. */
export const quantile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
};
export const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(0)}%`;

/** The embedded server's URL as the daemon makes it (user and database `sentinel`). */
export function embeddedPgUrl(dataDir: string): string {
  const password = readFileSync(join(dataDir, 'secrets', 'postgres_password'), 'utf8').trim();
  const port = readFileSync(join(dataDir, 'postgres.port'), 'utf8').trim();
  return `postgres://sentinel:${encodeURIComponent(password)}@127.0.0.1:${port}/sentinel`;
}

/** The window partitions of `points` for every window touched by [fromMs, toMs]. */
export async function ensurePointPartitions(pgUrl: string, fromMs: number, toMs: number): Promise<void> {
  // As the daemon's writer creates them: one partition per window (none for a day already made whole).
  const windowMs = POINT_WINDOWS.points as number;
  const starts: number[] = [];
  for (let w = Math.floor(fromMs / windowMs) * windowMs; w <= toMs; w += windowMs) starts.push(w);
  const knex = knexFactory({ client: 'pg', connection: pgUrl, pool: { min: 0, max: 1 } });
  try {
    await new PartitionsRepository(knex, ['points'], [], POINT_WINDOWS).ensure('points', starts, { exact: true });
  } finally {
    await knex.destroy();
  }
}

/** `bin/sentinel` processes (by pid) whose environment names this data dir: the daemon, if its start failed half-way. */
function processesOf(dataDir: string): number[] {
  const needle = `SENTINEL_DATA_DIR=${dataDir}\0`;
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'latin1').includes(BIN) && readFileSync(`/proc/${d}/environ`, 'latin1').includes(needle)) out.push(Number(d));
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** SIGTERM the daemon (it stops its PostgreSQL), then anything of this data dir still running. */
async function cleanUp(dataDir: string, daemon: Daemon | null, keep: boolean): Promise<void> {
  if (daemon && daemon.proc.exitCode === null && daemon.proc.signalCode === null) {
    daemon.proc.kill('SIGTERM');
    await Promise.race([daemon.exited, sleep(30_000)]);
  }
  for (const pid of processesOf(dataDir)) process.kill(pid, 'SIGTERM');
  const pgdata = join(dataDir, 'postgres');
  for (let i = 0; i < 100 && (processesOf(dataDir).length || postgresPids(pgdata).length); i++) await sleep(100);
  // PostgreSQL left behind (its owner was killed): fast shutdown of that postmaster only.
  for (const pid of postgresPids(pgdata)) if (alive(pid)) process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && postgresPids(pgdata).length; i++) await sleep(100);
  if (!keep) rmSync(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  else console.log(`data dir kept: ${dataDir}`);
}

/**
 * `bin/sentinel serve --migrate` with logs in <data_dir>/sentinel.log, quotas out of the way,
 * org `bench` and an API key with scopes ingest,read. SENTINEL_BENCH_KEEP=1 keeps the data dir;
 * SENTINEL_BENCH_DAEMON_NODE_OPTIONS becomes the daemon's NODE_OPTIONS.
 */
export async function startSentinel(name: string, extraEnv: Record<string, string> = {}): Promise<BenchSentinel> {
  const dataDir = mkdtempSync(join(tmpdir(), `sentinel-bench-${name}-`));
  chmodSync(dataDir, 0o755);
  const env: Record<string, string> = {
    SENTINEL_DATA_DIR: dataDir,
    SENTINEL_HTTP_PORT: '0',
    SENTINEL_LOG_LEVEL: 'info',
    SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000000',
    SENTINEL_INGEST_POINTS_PER_SECOND: '1000000000',
    SENTINEL_INGEST_MAX_SERIES: '100000000',
    ...extraEnv,
  };
  // E.g. --import=<a profiler preload>: reaches the daemon (and the CLI calls) only.
  if (process.env.SENTINEL_BENCH_DAEMON_NODE_OPTIONS) env.NODE_OPTIONS = process.env.SENTINEL_BENCH_DAEMON_NODE_OPTIONS;
  const keep = process.env.SENTINEL_BENCH_KEEP === '1';
  let daemon: Daemon | null = null;
  let stopped: Promise<void> | null = null;
  const stop = () => (stopped ??= cleanUp(dataDir, daemon, keep));
  // Ctrl-C or a kill of the benchmark: stop what it started before exiting.
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: stopping the daemon`);
    void stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    daemon = await startDaemonLoggingTo(join(dataDir, 'sentinel.log'), env);
    const cli = (args: string[]) => {
      const r = runBin(args, env);
      if (r.code !== 0) throw new Error(`sentinel ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    cli(['org', 'create', 'bench']);
    const { secret } = JSON.parse(cli(['apikey', 'create', '--org', 'bench', '--name', 'bench', '--scopes', 'ingest,read', '--json'])) as { secret: string };
    const pgUrl = embeddedPgUrl(dataDir);
    const c = new pg.Client(pgUrl);
    await c.connect();
    const orgId = (await c.query<{ id: string }>(`select id from organizations where slug = 'bench'`)).rows[0].id;
    await c.end();
    return { dataDir, env, daemon, api: `http://127.0.0.1:${daemon.port}/api/v1`, apiKey: secret, orgId, pgUrl, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resident set size of a process, MiB. */
export const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** Streams `chunks` into `COPY … FROM STDIN` on `client`, with backpressure. */
export async function copyInto(client: pg.Client, sql: string, chunks: Iterable<string>): Promise<void> {
  const stream = client.query(copyFrom(sql));
  const done = new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('finish', resolve);
  });
  for (const chunk of chunks) {
    if (!stream.write(chunk)) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  await done;
}

/**
 * `n` series of `metric` COPYed with the daemon's canonical labels and hash; series i has the
 * labels `labelsOf(i)`, whose `host` must be `h<i>`. Returns the ids in index order.
 */
export async function loadSeries(client: pg.Client, orgId: string, metric: string, n: number, labelsOf: (i: number) => Record<string, string>): Promise<number[]> {
  await copyInto(
    client,
    'copy series (org_id, name, labels, labels_hash) from stdin',
    (function* () {
      let chunk = '';
      for (let i = 0; i < n; i++) {
        const canon = canonicalLabels(labelsOf(i));
        chunk += `${orgId}\t${metric}\t${canon}\t\\\\x${createHash('sha256').update(canon).digest('hex')}\n`;
        if (chunk.length > 1 << 20) {
          yield chunk;
          chunk = '';
        }
      }
      yield chunk;
    })(),
  );
  const { rows } = await client.query<{ id: string; host: string }>(`select id, labels->>'host' as host from series where org_id = $1 and name = $2`, [orgId, metric]);
  const ids = new Array<number>(n);
  for (const r of rows) ids[Number(r.host.slice(1))] = Number(r.id);
  return ids;
}

export interface PointGrid {
  orgId: string;
  /** Series ids; series i gets value ((i·7919 + k·104729) mod 100000)/100 at step k. */
  seriesIds: readonly number[];
  perSeries: number;
  firstTs: number;
  spacingMs: number;
  connections: number;
  rowsPerCommit: number;
}

/**
 * `perSeries` points for every series, `spacingMs` apart from `firstTs`, COPYed straight into
 * `points` over `connections` connections (each a share of the series), a commit every
 * `rowsPerCommit` rows. The partitions must exist.
 */
export async function loadPointGrid(pgUrl: string, g: PointGrid): Promise<void> {
  const n = g.seriesIds.length;
  const stepsPerCommit = Math.max(1, Math.floor(g.rowsPerCommit / n));
  await Promise.all(
    Array.from({ length: g.connections }, async (_, w) => {
      const c = new pg.Client(pgUrl);
      await c.connect();
      try {
        const from = Math.floor((w * n) / g.connections);
        const to = Math.floor(((w + 1) * n) / g.connections);
        for (let k0 = 0; k0 < g.perSeries; k0 += stepsPerCommit) {
          await copyInto(
            c,
            'copy points (org_id, series_id, ts, value) from stdin',
            (function* () {
              let chunk = '';
              for (let k = k0; k < Math.min(g.perSeries, k0 + stepsPerCommit); k++) {
                const ts = new Date(g.firstTs + k * g.spacingMs).toISOString();
                for (let i = from; i < to; i++) {
                  chunk += `${g.orgId}\t${g.seriesIds[i]}\t${ts}\t${((i * 7919 + k * 104729) % 100_000) / 100}\n`;
                  if (chunk.length > 1 << 20) {
                    yield chunk;
                    chunk = '';
                  }
                }
              }
              yield chunk;
            })(),
          );
        }
      } finally {
        await c.end();
      }
    }),
  );
}

/** A deterministic PRNG (mulberry32): the same generated data on every run, so runs compare. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
