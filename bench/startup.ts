/**
 * Time to ready (first start with initdb, second start) and idle RSS of `sentinel serve` on the
 * embedded default, each beside its ceiling measured in the same run: the embedded PostgreSQL
 * alone (initdb + start, start) and a bare Koa process's idle RSS.
 *
 *   npx tsx bench/startup.ts [runs=3]
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { EmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { machineLine } from './machine.js';
import { startDaemon } from '../test/support/daemon.js';

const runs = Number(process.argv[2] ?? 3);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sentinel-bench-'));
  chmodSync(d, 0o755);
  return d;
}

async function sentinelStart(dataDir: string): Promise<{ ms: number; rss: number }> {
  // info: the "ready" line the timer waits for is logged at info.
  const env = { SENTINEL_DATA_DIR: dataDir, SENTINEL_HTTP_PORT: '0', SENTINEL_LOG_LEVEL: 'info' };
  const t0 = performance.now();
  const d = await startDaemon(env);
  const ms = performance.now() - t0;
  await sleep(5000);
  const rss = rssMiB(d.proc.pid!);
  d.proc.kill('SIGTERM');
  const { code } = await d.exited;
  if (code !== 0) throw new Error(`daemon exited ${code}`);
  return { ms, rss };
}

async function postgresAlone(dataDir: string): Promise<number> {
  const t0 = performance.now();
  const pg = new EmbeddedPostgres({ dataDir, port: 0, osUser: 'sentinel', logger: pino({ level: 'silent' }) });
  await pg.start();
  const ms = performance.now() - t0;
  await pg.stop();
  return ms;
}

async function bareKoaRss(): Promise<number> {
  const code = `import Koa from 'koa'; const app = new Koa(); app.use((ctx) => { ctx.body = 'ok'; }); app.listen(0, '127.0.0.1', () => console.log('up'));`;
  const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => p.stdout!.once('data', r));
  await sleep(5000);
  const rss = rssMiB(p.pid!);
  p.kill('SIGTERM');
  return rss;
}

const results = { first: [] as number[], second: [] as number[], pgFirst: [] as number[], pgSecond: [] as number[], rss: [] as number[] };
console.log(machineLine());
for (let i = 0; i < runs; i++) {
  const dir = tempDir();
  results.first.push((await sentinelStart(dir)).ms);
  const second = await sentinelStart(dir);
  results.second.push(second.ms);
  results.rss.push(second.rss);
  rmSync(dir, { recursive: true, force: true });

  const pgDir = tempDir();
  results.pgFirst.push(await postgresAlone(pgDir));
  results.pgSecond.push(await postgresAlone(pgDir));
  rmSync(pgDir, { recursive: true, force: true });
}
const koaRss = await bareKoaRss();
const f = (n: number) => `${n.toFixed(0)} ms`;
console.log(`runs: ${runs} (medians)`);
console.log(`first start to ready (initdb):  sentinel ${f(median(results.first))}   ceiling: embedded PostgreSQL alone ${f(median(results.pgFirst))}`);
console.log(`second start to ready:          sentinel ${f(median(results.second))}   ceiling: embedded PostgreSQL alone ${f(median(results.pgSecond))}`);
console.log(`idle RSS of the daemon process: sentinel ${median(results.rss).toFixed(1)} MiB   ceiling: bare Koa ${koaRss.toFixed(1)} MiB`);
