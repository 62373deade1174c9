/**
 * Identity benchmarks, each beside its ceiling measured in the same run:
 *  1. login throughput vs bcrypt.compare calls/s at the configured cost (target ≥ 90%);
 *  2. p99 of GET /api/v1/health while 50 logins are in flight (target < 20 ms);
 *  3. authenticated GET /api/v1/organizations/{org} req/s and p99 vs a bare Koa GET (target ≥ 35%).
 *
 *   npm run bench:auth            (SENTINEL_BENCH_SECONDS=10 by default)
 *   SENTINEL_BENCH_PARTS=3 npm run bench:auth      (only the authenticated read; default 1,2,3)
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { machineLine } from './machine.js';
import { runBin, startDaemonLoggingTo } from '../test/support/daemon.js';

const seconds = Number(process.env.SENTINEL_BENCH_SECONDS ?? 10);
const rounds = Number(process.env.SENTINEL_BENCH_BCRYPT_ROUNDS ?? 12);

type Result = autocannon.Result;
// The promise form: with a callback, autocannon ignores `warmup`.
const run = (opts: autocannon.Options): Promise<Result> => autocannon(opts);
const parts = new Set((process.env.SENTINEL_BENCH_PARTS ?? '1,2,3').split(','));

/** bcrypt.compare calls/s in a fresh Node process with the same thread pool as the daemon. */
function bcryptCeiling(): Promise<number> {
  const code = `
    import bcrypt from 'bcrypt';
    const hash = bcrypt.hashSync('correct horse battery staple', ${rounds});
    const end = Date.now() + ${seconds * 1000};
    let n = 0;
    const worker = async () => { while (Date.now() < end) { await bcrypt.compare('correct horse battery staple', hash); n++; } };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 16 }, worker));
    console.log(n / ((Date.now() - t0) / 1000));
  `;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c));
    p.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`ceiling process exited ${code}`))));
  });
}

function bareKoa(): Promise<{ port: number; stop: () => void }> {
  const code = `
    import Koa from 'koa';
    const app = new Koa();
    app.use((ctx) => { ctx.body = { id: '00000000-0000-0000-0000-000000000000', slug: 'bench', name: 'bench', limits: {}, created_at: new Date().toISOString() }; });
    const s = app.listen(0, '127.0.0.1', () => console.log(s.address().port));
  `;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.once('data', (c: Buffer) => resolve({ port: Number(String(c).trim()), stop: () => p.kill('SIGTERM') }));
  });
}

const dataDir = mkdtempSync(join(tmpdir(), 'sentinel-bench-auth-'));
chmodSync(dataDir, 0o755);
const env = {
  SENTINEL_DATA_DIR: dataDir,
  SENTINEL_HTTP_PORT: '0',
  SENTINEL_LOG_LEVEL: 'info',
  SENTINEL_AUTH_BCRYPT_ROUNDS: String(rounds),
  SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000000',
  SENTINEL_RATE_LIMITS_LOGIN_PER_MINUTE_PER_IP: '100000000',
  SENTINEL_RATE_LIMITS_LOGIN_FAILURES_PER_ACCOUNT: '100000000',
};
console.log(machineLine());
console.log(`bcrypt cost ${rounds}, ${seconds} s per measurement`);
const daemon = await startDaemonLoggingTo(join(dataDir, 'sentinel.log'), env);
const base = `http://127.0.0.1:${daemon.port}`;
try {
  const password = 'correct horse battery staple';
  for (const args of [['org', 'create', 'bench'], ['user', 'create', 'bench@example.test', '--password-stdin', '--org', 'bench', '--role', 'owner']]) {
    const r = runBin(args, env, `${password}\n`);
    if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  }
  const loginBody = JSON.stringify({ email: 'bench@example.test', password });
  const login = { url: `${base}/api/v1/auth/login`, method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: loginBody };

  // 1. Login throughput vs the bcrypt ceiling.
  if (parts.has('1')) {
    const ceiling = await bcryptCeiling();
    const logins = await run({ ...login, connections: 16, duration: seconds });
    const loginRate = logins.requests.average;
    console.log(`login: ${loginRate.toFixed(1)} req/s (non-2xx ${logins.non2xx})   ceiling: bcrypt.compare ${ceiling.toFixed(1)} calls/s   ratio ${((100 * loginRate) / ceiling).toFixed(0)}% (target >= 90%)`);
  }

  // 2. Event loop stays free: health p99 with 50 logins in flight.
  if (parts.has('2')) {
    const idleHealth = await run({ url: `${base}/api/v1/health`, connections: 1, duration: Math.min(5, seconds) });
    const [health] = await Promise.all([
      run({ url: `${base}/api/v1/health`, connections: 1, duration: seconds }),
      run({ ...login, connections: 50, duration: seconds + 1 }),
    ]);
    console.log(`GET /health p99 with 50 logins in flight: ${health.latency.p99} ms (target < 20 ms)   idle p99: ${idleHealth.latency.p99} ms`);
  }

  // 3. Authenticated read vs bare Koa.
  if (parts.has('3')) {
    const res = await fetch(login.url, { method: 'POST', headers: login.headers, body: loginBody });
    const { access_token } = (await res.json()) as { access_token: string };
    const koa = await bareKoa();
    try {
      // Alternating rounds, medians: the ceiling and the figure see the same machine noise.
      const bare: Result[] = [];
      const authed: Result[] = [];
      const third = Math.max(2, Math.round(seconds / 3));
      for (let i = 0; i < 3; i++) {
        // A short warm-up for both, so neither figure includes JIT compilation.
        const warmup = { connections: 10, duration: 1 };
        bare.push(await run({ url: `http://127.0.0.1:${koa.port}/api/v1/organizations/bench`, connections: 10, duration: third, warmup } as autocannon.Options));
        const r = await run({ url: `${base}/api/v1/organizations/bench`, headers: { authorization: `Bearer ${access_token}` }, connections: 10, duration: third, warmup } as autocannon.Options);
        if (r.non2xx) throw new Error(`authenticated GET answered ${r.non2xx} non-2xx`);
        authed.push(r);
      }
      const med = (rs: Result[], f: (r: Result) => number) => rs.map(f).sort((a, b) => a - b)[1];
      const a = med(authed, (r) => r.requests.average);
      const b = med(bare, (r) => r.requests.average);
      console.log(
        `authenticated GET /organizations/{org}: ${a.toFixed(0)} req/s p99 ${med(authed, (r) => r.latency.p99)} ms   ceiling: bare Koa ${b.toFixed(0)} req/s p99 ${med(bare, (r) => r.latency.p99)} ms   ratio ${((100 * a) / b).toFixed(0)}% (target >= 35%; medians of 3 alternating rounds)`,
      );
    } finally {
      koa.stop();
    }
  }
} finally {
  daemon.proc.kill('SIGTERM');
  await daemon.exited;
  rmSync(dataDir, { recursive: true, force: true });
}
