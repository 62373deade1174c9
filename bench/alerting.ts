/**
 * Alerting, each figure beside its ceiling measured in the same run:
 *
 *  (a) latency from the ingest of a breaching point to the webhook received, p95 over
 *      SENTINEL_BENCH_TRIALS trials (default 100) → target < 2 s. The real daemon (bin/sentinel
 *      serve, embedded PostgreSQL, default alerts.tick_ms) with one threshold rule per trial
 *      (interval 1 s, group_wait 0), all made and evaluated once before the first trial, so every
 *      trial is a fresh breach of a rule that is `ok`, independent of the others. Each trial waits
 *      a random 0–1 s first (so the breach lands at a random phase of the rule's schedule), then
 *      POSTs one point and waits for the signed webhook at a local node:http receiver. Ceiling:
 *      the path's unavoidable parts, measured in the same trial: that ingest's own round trip
 *      plus a direct POST of the same webhook body to the same receiver. The wait for the rule's
 *      next evaluation (uniform over 0–1 s with a 1 s interval) is inherent to a 1 s interval and
 *      is shown apart, from the delivery log's timestamps.
 *  (b) evaluation cost: SENTINEL_BENCH_RULES threshold rules (default 1,000; filter svc=<one of
 *      1,000>, avg over 1 m) over SENTINEL_BENCH_SERIES series (default 10,000; 10 per rule),
 *      points COPYed in with the harness's loader (from 4 min ago to 6 min ahead, 10 s apart, so
 *      each evaluation reads 6 points per series whenever it runs). One tick of the engine (all rules due; default
 *      alerts.batch_size and concurrency: a tick claims up to 10 batches) run in this process: its CPU time (process.cpuUsage)
 *      and wall time, and PostgreSQL's CPU time (its processes' /proc stat) → target: the tick
 *      under 1 s of CPU. Ceiling: the same aggregate reads issued directly through telemetry's
 *      AlertQuery (what the engine reads through), at the engine's concurrency, same run.
 *
 * Everything listens on 127.0.0.1 only.
 *
 *   npm run bench:alerting
 */
import { readFileSync } from 'node:fs';
import { Agent, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { buildApp, type App } from '../src/app/build-app.js';
import { loadConfig } from '../src/config/loader.js';
import { AlertQuery } from '../src/features/telemetry/alert-query.js';
import { QueryRepository } from '../src/features/telemetry/query-repository.js';
import { createKnex } from '../src/db/database.js';
import { postgresPids, runBin } from '../test/support/daemon.js';
import { ensurePointPartitions, loadPointGrid, loadSeries, median, quantile, startSentinel, timedRequest, type BenchSentinel, type TimedAnswer as Answer } from './harness.js';
import { machineLine } from './machine.js';

const TRIALS = Number(process.env.SENTINEL_BENCH_TRIALS ?? 100);
const RULES = Number(process.env.SENTINEL_BENCH_RULES ?? 1000);
const SERIES = Number(process.env.SENTINEL_BENCH_SERIES ?? 10_000);
/** Points per series, SPACING_MS apart, from 4 min ago to ~6 min ahead: the rules' 1 m window holds 6 of each series' points for the whole run. */
const PER_SERIES = 60;
const SPACING_MS = 10_000;
const EVAL_METRIC = 'bench.eval';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (x: number) => `${x.toFixed(0)} ms`;

/** The CLI against the bench daemon; a key of org `bench` with every scope (rules need write, channels admin). */
function adminKey(s: BenchSentinel): string {
  const r = runBin(['apikey', 'create', '--org', 'bench', '--name', `admin-${Date.now()}`, '--scopes', 'ingest,read,write,admin', '--json'], s.env);
  if (r.code !== 0) throw new Error(`apikey create: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { secret: string }).secret;
}

/** One HTTP request on a keep-alive agent, timed by the client. */
function call(agent: Agent, port: number, method: string, path: string, key: string | null, body?: unknown, extra: Record<string, string> = {}): Promise<Answer> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { ...extra };
  if (key) headers.authorization = `Bearer ${key}`;
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return timedRequest(port, path, agent, { method, headers, body: payload });
}

function ok(a: Answer, what: string, status: number): Record<string, unknown> {
  if (a.status !== status) throw new Error(`${what}: answered ${a.status}: ${a.body.slice(0, 500)}`);
  return a.body ? (JSON.parse(a.body) as Record<string, unknown>) : {};
}

/** CPU time (user + system) of PostgreSQL's processes of this data dir, ms (clock ticks of 10 ms). */
function postgresCpuMs(pgdata: string): number {
  let ticks = 0;
  for (const pid of postgresPids(pgdata)) {
    // The postmaster and every backend: children's time is counted once they exit (cutime/cstime).
    for (const p of [pid, ...childrenOf(pid)]) {
      try {
        const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
        ticks += Number(fields[11]) + Number(fields[12]) + (p === pid ? Number(fields[13]) + Number(fields[14]) : 0);
      } catch {
        // gone
      }
    }
  }
  return ticks * 10;
}
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// (b) evaluation cost
// ---------------------------------------------------------------------------------------------

async function evaluationCost(): Promise<void> {
  const s = await startSentinel('alerting-eval', { SENTINEL_ALERTS_ENABLED: 'false', SENTINEL_ALERTS_MAX_RULES_PER_ORG: String(Math.max(1000, RULES)) });
  const admin = new pg.Client(s.pgUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  let app: App | null = null;
  try {
    await admin.connect();
    const org = s.orgId;
    const svcs = RULES;
    const labelsOf = (i: number) => ({ host: `h${i}`, svc: `svc${i % svcs}` });
    const t0 = performance.now();
    const ids = await loadSeries(admin, org, EVAL_METRIC, SERIES, labelsOf);
    const firstTs = Math.floor(Date.now() / SPACING_MS) * SPACING_MS - 4 * 60_000;
    const lastTs = firstTs + (PER_SERIES - 1) * SPACING_MS;
    await ensurePointPartitions(s.pgUrl, firstTs, lastTs);
    await loadPointGrid(s.pgUrl, { orgId: org, seriesIds: ids, perSeries: PER_SERIES, firstTs, spacingMs: SPACING_MS, connections: 2, rowsPerCommit: 200_000 });
    console.log(`(b) loaded ${SERIES.toLocaleString('en')} series × ${PER_SERIES} points (${SPACING_MS / 1000} s apart, ${new Date(firstTs).toISOString()} .. ${new Date(lastTs).toISOString()}: the 1 m window always holds 6 per series) with COPY in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // Not by default (DESIGN §9: no tuning a production daemon would not have done); to see what autovacuum's analyze would change.
    if (process.env.SENTINEL_BENCH_ANALYZE === '1') {
      await admin.query('analyze series');
      await admin.query('analyze points');
      console.log('(b) ANALYZE series, points (SENTINEL_BENCH_ANALYZE=1)');
    }

    // The rules, through the API (as users make them): avg over 1 m of the 10 series of one svc, > 500.
    const key = adminKey(s);
    const t1 = performance.now();
    const queue = Array.from({ length: RULES }, (_, j) => j);
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let j = queue.shift(); j !== undefined; j = queue.shift()) {
          const body = { name: `eval-${j}`, kind: 'threshold', query: { name: EVAL_METRIC, filter: { svc: `svc${j}` }, agg: 'avg', window: '1m' }, op: '>', threshold: 500, interval: '1m', severity: 'warning', channels: [] };
          ok(await call(agent, s.daemon.port, 'POST', '/api/v1/organizations/bench/alert-rules', key, body), `rule ${j}`, 201);
        }
      }),
    );
    console.log(`(b) ${RULES} rules created through the API in ${((performance.now() - t1) / 1000).toFixed(1)} s`);

    // This process's app on the same database, without the background loop: the tick is driven here.
    const env = { ...s.env, SENTINEL_DATABASE_URL: s.pgUrl, SENTINEL_ALERTS_ENABLED: 'false', SENTINEL_LOG_LEVEL: 'warn' };
    const config = loadConfig({ env }).config;
    app = await buildApp(config, pino({ level: 'warn' }), { role: 'cli' });
    const engine = app.services.alertEngine;
    const pgdata = join(s.dataDir, 'postgres');
    const due = () => admin.query(`update alert_rules set next_eval_at = now() - interval '1 second' where org_id = $1`, [org]);

    // Statements on the app's main pool (rule claims, alert writes, groups; telemetry's reads use their own pool: one per rule).
    let statements = 0;
    app.db.knex.on('query', () => statements++);
    const tick = async () => {
      await due();
      const s0 = statements;
      const pg0 = postgresCpuMs(pgdata);
      const cpu0 = process.cpuUsage();
      const w0 = performance.now();
      const { evaluated, outcomes } = await engine.tick(new Date());
      const wall = performance.now() - w0;
      const cpu = process.cpuUsage(cpu0);
      if (evaluated !== RULES || outcomes.ok !== RULES) throw new Error(`a tick evaluated ${evaluated} rules (${JSON.stringify(outcomes)}), not ${RULES}`);
      return { wall, cpuMs: (cpu.user + cpu.system) / 1000, pgMs: postgresCpuMs(pgdata) - pg0, evaluated, statements: statements - s0 };
    };
    const first = await tick();
    const steady = [await tick(), await tick(), await tick()];
    const { rows: states } = await admin.query<{ state: string; n: number }>(`select state, count(*)::int as n from alerts where org_id = $1 group by 1 order by 1`, [org]);

    // The ceiling: the same reads straight through AlertQuery, at the engine's concurrency.
    const queryKnex = createKnex(s.pgUrl, config, app.logger, { max: Math.max(2, Math.ceil(config.database.pool_max / 2)), applicationName: 'bench-ceiling' });
    const source = new AlertQuery(new QueryRepository(app.db.knex, queryKnex), {
      maxSeries: config.query.max_series,
      maxBuckets: config.query.max_buckets,
      maxPoints: config.query.max_points,
      statementTimeoutMs: config.query.statement_timeout_ms,
    });
    const reads = async () => {
      const now = Date.now();
      const todo = Array.from({ length: RULES }, (_, j) => j);
      const pg0 = postgresCpuMs(pgdata);
      const cpu0 = process.cpuUsage();
      const w0 = performance.now();
      let series = 0;
      await Promise.all(
        Array.from({ length: config.alerts.concurrency }, async () => {
          for (let j = todo.shift(); j !== undefined; j = todo.shift()) {
            const r = await source.metric(org, { name: EVAL_METRIC, filter: { svc: `svc${j}` }, agg: 'avg', by: [], startMs: now - 60_000, endMs: now, stepMs: 60_000 });
            series += r.length;
          }
        }),
      );
      const wall = performance.now() - w0;
      const cpu = process.cpuUsage(cpu0);
      return { wall, cpuMs: (cpu.user + cpu.system) / 1000, pgMs: postgresCpuMs(pgdata) - pg0, series };
    };
    const ceilings = [await reads(), await reads(), await reads()];
    await queryKnex.destroy();

    if (process.env.SENTINEL_BENCH_EXPLAIN === '1') {
      // One rule's read exactly as QueryRepository issues it (one statement: series lookup and aggregation), taken from a stand-in connection.
      await admin.query('set jit = off');
      let read: { text: string; values: unknown[] } | undefined;
      const conn = { query: async (text: string, values?: unknown[]) => ((read = values ? { text, values } : read), { rows: [] }) };
      const capture = { client: { acquireConnection: async () => conn, releaseConnection: async () => undefined } } as unknown as typeof queryKnex;
      const limits = { maxSeries: config.query.max_series, maxBuckets: config.query.max_buckets, maxPoints: config.query.max_points, statementTimeoutMs: config.query.statement_timeout_ms };
      const end = Date.now();
      await new AlertQuery(new QueryRepository(app.db.knex, capture), limits).metric(org, { name: EVAL_METRIC, filter: { svc: 'svc7' }, agg: 'avg', by: [], startMs: end - 60_000, endMs: end, stepMs: 60_000 });
      const plan = (await admin.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${read!.text}`, read!.values)).rows.map((r) => r['QUERY PLAN']).join('\n');
      console.log(`--- one rule's read (series lookup + aggregation, one statement)\n${plan}`);
    }

    const med = (xs: number[]) => median(xs);
    const sCpu = med(steady.map((x) => x.cpuMs));
    const cCpu = med(ceilings.map((x) => x.cpuMs));
    console.log(
      `(b) alert states after the ticks: ${states.map((x) => `${x.state} ${x.n}`).join(', ')}; alerts.concurrency ${config.alerts.concurrency}, batch_size ${config.alerts.batch_size} (a tick claims up to 10 batches)\n` +
        `(b) first tick (creates the alert rows): ${first.evaluated} rules evaluated, Node CPU ${ms(first.cpuMs)}, wall ${ms(first.wall)}, PostgreSQL CPU ${ms(first.pgMs)}, ${first.statements} statements on the main pool\n` +
        `(b) one tick, ${RULES} rules over ${SERIES.toLocaleString('en')} series (median of ${steady.length}): Node CPU ${ms(sCpu)} (target < 1000 ms: ${sCpu < 1000 ? 'yes' : 'NO'}), wall ${ms(med(steady.map((x) => x.wall)))}, PostgreSQL CPU ${ms(med(steady.map((x) => x.pgMs)))}, ${med(steady.map((x) => x.statements))} statements on the main pool   ` +
        `ceiling: the same ${RULES} reads through AlertQuery (${ceilings[0].series} answer series): Node CPU ${ms(cCpu)}, wall ${ms(med(ceilings.map((x) => x.wall)))}, PostgreSQL CPU ${ms(med(ceilings.map((x) => x.pgMs)))}   ` +
        `ratio CPU ${(sCpu / cCpu).toFixed(2)}×, wall ${(med(steady.map((x) => x.wall)) / med(ceilings.map((x) => x.wall))).toFixed(2)}×`,
    );
  } finally {
    agent.destroy();
    await app?.stop().catch((e: unknown) => console.error('app stop:', e));
    await admin.end().catch(() => undefined);
    await s.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// (a) ingest → webhook latency
// ---------------------------------------------------------------------------------------------

interface Arrival {
  at: number;
  wall: number;
  body: string;
}

async function latency(): Promise<void> {
  const s = await startSentinel('alerting-latency', { SENTINEL_NOTIFICATIONS_ALLOW_PRIVATE_NETWORKS: 'true' });
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  const hookAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  const arrivals = new Map<string, Arrival>();
  const receiver = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const at = performance.now();
      const body = Buffer.concat(parts).toString('utf8');
      res.writeHead(200).end('ok');
      try {
        const v4 = JSON.parse(body) as { receiver?: string; status?: string };
        if (v4.status === 'firing' && v4.receiver && !arrivals.has(v4.receiver)) arrivals.set(v4.receiver, { at, wall: Date.now(), body });
      } catch {
        // the ceiling's own posts are not JSON of a rule
      }
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookPort = (receiver.address() as { port: number }).port;
  try {
    const port = s.daemon.port;
    const key = adminKey(s);
    const channel = ok(await call(agent, port, 'POST', '/api/v1/organizations/bench/channels', key, { name: 'bench-hook', type: 'webhook', config: { url: `http://127.0.0.1:${hookPort}/hook`, secret: 'bench-secret-0123456789' } }), 'channel', 201);
    // One rule per trial, each on its own metric with a baseline point (0) in its window.
    const baseline = Array.from({ length: TRIALS }, (_, i) => ({ name: `bench.lat.${i}`, value: 0 }));
    ok(await call(agent, port, 'POST', '/api/v1/telemetry', s.apiKey, { metrics: baseline }), 'baseline', 202);
    const rules: { id: string; name: string }[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const name = `latency-${i}`;
      const body = { name, kind: 'threshold', query: { name: `bench.lat.${i}`, agg: 'max', window: '1h' }, op: '>', threshold: 0.5, interval: 1, for: 0, group_wait: 0, group_interval: '1m', repeat_interval: '4h', severity: 'critical', channels: [channel.id] };
      const r = ok(await call(agent, port, 'POST', '/api/v1/organizations/bench/alert-rules', key, body), `rule ${i}`, 201);
      rules.push({ id: r.id as string, name });
    }
    // Every rule evaluated at least once (ok, not firing) before the first trial.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const a = ok(await call(agent, port, 'GET', '/api/v1/organizations/bench/alert-rules?limit=1000', key), 'rules', 200) as { items: { last_eval_at: string | null; state: string }[] };
      if (a.items.length === TRIALS && a.items.every((r) => r.last_eval_at !== null)) {
        const bad = a.items.filter((r) => r.state !== 'ok');
        if (bad.length) throw new Error(`rules not ok before the trials: ${JSON.stringify(bad.slice(0, 3))}`);
        break;
      }
      if (Date.now() > deadline) throw new Error('the rules were not all evaluated within 30 s');
      await sleep(100);
    }
    console.log(`(a) ${TRIALS} rules (interval 1 s, group_wait 0), one per trial, all evaluated once and ok; alerts.tick_ms default; receiver http://127.0.0.1:${hookPort}`);

    const total: number[] = [];
    const ingestRtt: number[] = [];
    const postRtt: number[] = [];
    const toOutbox: number[] = [];
    const outboxToReceived: number[] = [];
    for (let i = 0; i < TRIALS; i++) {
      await sleep(Math.random() * 1000);
      const t0 = performance.now();
      const w0 = Date.now();
      const ing = await call(agent, port, 'POST', '/api/v1/telemetry', s.apiKey, { metrics: [{ name: `bench.lat.${i}`, value: 1 }] });
      ok(ing, `breach ${i}`, 202);
      const name = rules[i].name;
      const until = Date.now() + 20_000;
      while (!arrivals.has(name)) {
        if (Date.now() > until) throw new Error(`trial ${i}: no webhook within 20 s`);
        await sleep(2);
      }
      const got = arrivals.get(name)!;
      total.push(got.at - t0);
      ingestRtt.push(ing.ms);
      // The ceiling's second part: the same body straight to the same receiver.
      const direct = await call(hookAgent, hookPort, 'POST', '/hook', null, got.body.replace('"firing"', '"bench-direct"'));
      postRtt.push(direct.ms);
      // Where the time went (server clock = this machine's): breach → outbox row stored, stored → received.
      const log = ok(await call(agent, port, 'GET', `/api/v1/organizations/bench/notifications?rule_id=${rules[i].id}`, key), 'log', 200) as { items: { created_at: string }[] };
      if (log.items[0]) {
        toOutbox.push(Date.parse(log.items[0].created_at) - w0);
        outboxToReceived.push(got.wall - Date.parse(log.items[0].created_at));
      }
    }
    const ceiling = ingestRtt.map((x, i) => x + postRtt[i]);
    const p95 = quantile(total, 0.95);
    console.log(
      `(a) ingest of a breaching point → webhook received, ${TRIALS} trials: p50 ${ms(quantile(total, 0.5))} p95 ${ms(p95)} max ${ms(Math.max(...total))} (target p95 < 2000 ms: ${p95 < 2000 ? 'yes' : 'NO'})   ` +
        `ceiling: ingest round trip + direct POST to the receiver p50 ${ms(quantile(ceiling, 0.5))} p95 ${ms(quantile(ceiling, 0.95))} (ingest p95 ${ms(quantile(ingestRtt, 0.95))}, POST p95 ${ms(quantile(postRtt, 0.95))})\n` +
        `(a) where it goes: breach sent → outbox row stored (the wait for the rule's next evaluation, 0–1 s, + evaluation + grouping) p50 ${ms(quantile(toOutbox, 0.5))} p95 ${ms(quantile(toOutbox, 0.95))}; ` +
        `stored → received (queue + delivery) p50 ${ms(quantile(outboxToReceived, 0.5))} p95 ${ms(quantile(outboxToReceived, 0.95))}`,
    );
  } finally {
    agent.destroy();
    hookAgent.destroy();
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    await s.stop();
  }
}

const load = () => `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`;
console.log(`${machineLine()}; ${load()}`);
const parts = (process.env.SENTINEL_BENCH_PARTS ?? 'a,b').split(',');
if (parts.includes('a')) await latency();
if (parts.includes('a')) console.log(`(a) done; ${load()}`);
if (parts.includes('b')) await evaluationCost();
if (parts.includes('b')) console.log(`(b) done; ${load()}`);
