/**
 * Where the daemon's CPU goes on the request path: `bin/sentinel serve` started with
 * the V8 profiler (bench/cpu-profile-preload.mjs), loaded by autocannon with an authenticated GET /organizations/{org} (user token)
 * and single-point POST /telemetry (API key), then stopped; prints the functions with the most
 * self time. The .cpuprofile stays in the printed directory for Chrome DevTools.
 *
 *   npm run build && tsx bench/profile.ts        (SENTINEL_BENCH_SECONDS=8 per load by default)
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { runBin } from '../test/support/daemon.js';
import { startSentinel } from './harness.js';

const seconds = Number(process.env.SENTINEL_BENCH_SECONDS ?? 8);
const profDir = mkdtempSync(join(tmpdir(), 'sentinel-cpuprof-'));
// Node refuses --cpu-prof in NODE_OPTIONS: a preload starts the profiler instead.
process.env.SENTINEL_BENCH_DAEMON_NODE_OPTIONS = `--import=${new URL('./cpu-profile-preload.mjs', import.meta.url).href}`;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const s = await startSentinel('profile', { SENTINEL_AUTH_BCRYPT_ROUNDS: '4', BENCH_CPU_PROFILE_DIR: profDir });
try {
  const password = 'correct horse battery staple';
  const r = runBin(['user', 'create', 'bench@example.test', '--password-stdin', '--org', 'bench', '--role', 'owner'], s.env, `${password}\n`);
  if (r.code !== 0) throw new Error(r.stderr);
  const base = `http://127.0.0.1:${s.daemon.port}`;
  const login = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'bench@example.test', password }) });
  const { access_token } = (await login.json()) as { access_token: string };
  const get = await autocannon({ url: `${base}/api/v1/organizations/bench`, headers: { authorization: `Bearer ${access_token}` }, connections: 10, duration: seconds });
  console.log(`GET /organizations/{org}: ${get.requests.average.toFixed(0)} req/s p99 ${get.latency.p99} ms non-2xx ${get.non2xx}`);
  const body = JSON.stringify({ metrics: [{ name: 'bench.single', value: 1.5, labels: { host: 'h1', region: 'eu' } }] });
  const post = await autocannon({
    url: `${base}/api/v1/telemetry`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.apiKey}` },
    body,
    connections: 50,
    duration: seconds,
  });
  console.log(`POST /telemetry single point: ${post.requests.average.toFixed(0)} req/s p99 ${post.latency.p99} ms non-2xx ${post.non2xx}`);
} finally {
  await s.stop();
}

const biggest = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
if (!biggest) throw new Error(`no profile written in ${profDir}`);
const prof = JSON.parse(readFileSync(join(profDir, biggest), 'utf8')) as Profile;
const self = new Map<number, number>();
for (const id of prof.samples) self.set(id, (self.get(id) ?? 0) + 1);
const byFn = new Map<string, number>();
function nodeKey(n: ProfileNode): string {
  const c = n.callFrame;
  const where = c.url ? `${c.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/main\//, '')}:${c.lineNumber + 1}` : '';
  return `${c.functionName || '(anonymous)'} ${where}`;
}
for (const n of prof.nodes) byFn.set(nodeKey(n), (byFn.get(nodeKey(n)) ?? 0) + (self.get(n.id) ?? 0));
// Inclusive time (self plus callees), counted once per function per stack, so recursion and
// middleware chains (each calling the next) do not count a sample twice.
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = new Map(prof.nodes.map((n) => [n.id, nodeKey(n)]));
const inclusive = new Map<string, number>();
for (const [id, count] of self) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) seen.add(keyOf.get(cur)!);
  for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + count);
}
const idle = (byFn.get('(idle) ') ?? 0) + (byFn.get('(program) ') ?? 0);
const busy = prof.samples.length - idle;
const top = Number(process.env.SENTINEL_PROFILE_TOP ?? 40);
console.log(`profile: ${join(profDir, biggest)} (${prof.samples.length} samples, ${busy} busy); percentages of busy samples`);
console.log('self time:');
for (const [k, v] of [...byFn].filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(program)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
}
console.log('inclusive time, Sentinel code and the HTTP/Koa frame:');
for (const [k, v] of [...inclusive].filter(([k]) => /dist\/src|koa|pino|prom-client|_http_/.test(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
}
