import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Attributes } from '@opentelemetry/api';
import { expect } from 'chai';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg } from '../support/factories.js';
import type { ChildCommand, ChildMessage, ExportedPoint, StepCommand } from '../support/otlp-sdk-child.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The real OpenTelemetry JS SDK in separate OS processes of one service (same `service.name`,
 * each its own resource), exporting through the real OTLP exporters — one process protobuf, the
 * other JSON — cumulative and delta counters, an up-down counter, an explicit-bucket histogram (cumulative and
 * delta) and an exponential histogram. One process is restarted, so its cumulative streams start
 * again from 0. What is read back (the series table, the stored points, the query API's raw
 * values, `increase` and `rate`) is compared with what the test computes itself from the values
 * it told the processes to record; only the export times come from the processes (the SDK's
 * collection time of each export).
 */

const CHILD = fileURLToPath(new URL('../support/otlp-sdk-child.ts', import.meta.url));
const SERVICE = 'sdk-streams';
/** The explicit-bucket histograms' boundaries (the child sets the same through the instruments' advice). */
const BOUNDS = [10, 100];
const LES = ['10', '100', '+Inf'];
/** Resource attributes that are labels (the README's allow-list); every other one goes into otel_resource_id. */
const RESOURCE_LABEL_KEYS = [
  'service.name',
  'service.namespace',
  'service.instance.id',
  'service.version',
  'host.name',
  'deployment.environment',
  'deployment.environment.name',
  'k8s.namespace.name',
  'k8s.pod.name',
  'k8s.container.name',
  'cloud.region',
];

type Labels = Record<string, string>;
type J = Record<string, unknown>;
interface Row {
  ts: number;
  value: number;
}
interface Descriptor {
  kind: string;
  temporality: string | null;
  monotonic: boolean;
  unit: string;
  description: string;
}
/** One expected series: its name, labels, descriptor and points, as the test works them out. */
interface Expected extends Descriptor {
  name: string;
  labels: Labels;
  rows: Row[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const key = (name: string, labels: Labels) => `${name} ${JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))))}`;

/** The server's per-process identity of a resource without service.instance.id (the plan's contract). */
function resourceId(attrs: Attributes): string {
  const rest = Object.keys(attrs)
    .filter((k) => !RESOURCE_LABEL_KEYS.includes(k))
    .sort();
  const canonical = JSON.stringify(Object.fromEntries(rest.map((k) => [k, String(attrs[k])])));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

// ---------------------------------------------------------------------------------------------
// The child processes

const running = new Set<ChildProcess>();

/** One SDK process; every wait is bounded, and the after hook SIGKILLs what is left (by pid). */
class SdkProcess {
  private readonly inbox: ChildMessage[] = [];
  private waiter: (() => void) | null = null;
  private exited = false;

  private constructor(
    readonly proc: ChildProcess,
    readonly protocol: 'proto' | 'json',
  ) {
    proc.on('message', (m: ChildMessage) => {
      this.inbox.push(m);
      this.waiter?.();
    });
    proc.on('exit', () => {
      this.exited = true;
      running.delete(proc);
      this.waiter?.();
    });
  }

  pid = 0;
  resource: Attributes = {};

  static async start(opts: { url: string; key: string; protocol: 'proto' | 'json'; scope: string; resource: Attributes; processDetector?: boolean }): Promise<SdkProcess> {
    const proc = fork(CHILD, [], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        SDK_CHILD_URL: opts.url,
        SDK_CHILD_KEY: opts.key,
        SDK_CHILD_PROTOCOL: opts.protocol,
        SDK_CHILD_SCOPE: opts.scope,
        SDK_CHILD_RESOURCE: JSON.stringify(opts.resource),
        SDK_CHILD_PROCESS_DETECTOR: opts.processDetector ? '1' : '',
        OTEL_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    running.add(proc);
    const child = new SdkProcess(proc, opts.protocol);
    const ready = await child.next('ready', 30_000);
    child.pid = ready.pid;
    child.resource = ready.resource;
    expect(child.pid).to.equal(proc.pid);
    return child;
  }

  private async next<T extends ChildMessage['type']>(type: T, timeoutMs: number): Promise<Extract<ChildMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.inbox.shift();
      if (m?.type === 'failed') throw new Error(`SDK process ${this.proc.pid} failed: ${m.error}`);
      if (m) {
        expect(m.type).to.equal(type);
        return m as Extract<ChildMessage, { type: T }>;
      }
      if (this.exited) throw new Error(`SDK process ${this.proc.pid} exited while the test waited for '${type}'`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`SDK process ${this.proc.pid}: no '${type}' within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = null;
    }
  }

  /** Records the step's measurements, exports both providers, and answers what was exported. */
  async step(cmd: Omit<StepCommand, 'cmd'>): Promise<ExportedPoint[]> {
    this.proc.send({ cmd: 'step', ...cmd } satisfies ChildCommand);
    const r = await this.next('stepped', 30_000);
    // Two exports (cumulative and delta provider), both acknowledged. The exporters log a
    // partialSuccess as a warning: one that rejected anything, or any other warning, fails.
    expect(r.codes, `export results of ${this.protocol} process ${this.pid}`).to.deep.equal([0, 0]);
    for (const w of r.warnings) {
      const m = /^Received Partial Success response: (\{.*\})$/.exec(w);
      expect(m, `exporter warning of ${this.protocol} process ${this.pid}: ${w}`).not.to.equal(null);
      expect(Number((JSON.parse(m![1]!) as { rejectedDataPoints?: unknown }).rejectedDataPoints ?? 0), w).to.equal(0);
    }
    return r.points;
  }

  /** Ends the process without a final export (as a crash or a kill would). */
  async exit(): Promise<void> {
    if (this.exited) return;
    this.proc.send({ cmd: 'exit' } satisfies ChildCommand);
    const deadline = Date.now() + 10_000;
    while (!this.exited && Date.now() < deadline) await sleep(20);
    if (!this.exited && this.proc.pid) process.kill(this.proc.pid, 'SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------
// The test's own model of what each logical process (one resource identity) exported

type Step = Omit<StepCommand, 'cmd'>;

/** Cumulative histogram buckets as `le` series: values ≤ bound (OTLP bounds are inclusive upper bounds). */
const leCounts = (values: number[]) => [...BOUNDS.map((b) => values.filter((v) => v <= b).length), values.length];
/** Per-bucket counts as the SDK exports them: (b[i-1], b[i]]. */
const bucketCounts = (values: number[]) => BOUNDS.concat(Infinity).map((b, i) => values.filter((v) => v <= b && (i === 0 || v > BOUNDS[i - 1]!)).length);

/**
 * One stream owner (a resource identity): its labels, and the expected series with their rows.
 * `restart()` is a new process with the same identity: cumulative state starts from 0.
 */
class Model {
  readonly series = new Map<string, Expected>();
  private since: Step = Model.empty();

  constructor(readonly labels: Labels) {}

  static empty(): Step {
    return { requests: [], inflight: [], latency: [], size: [], bytes: [], wait: [] };
  }

  restart(): void {
    this.since = Model.empty();
  }

  private add(name: string, extra: Labels, d: Descriptor, ts: number, value: number): void {
    const labels = { ...this.labels, ...extra };
    const k = key(name, labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { name, labels, ...d, rows: [] }));
    s.rows.push({ ts, value });
  }

  /** Folds one step in; `exported` gives the export times (and is checked against the model). */
  apply(step: Step, exported: ExportedPoint[]): void {
    for (const k of Object.keys(step) as (keyof Step)[]) this.since[k] = [...this.since[k], ...step[k]];
    const c = this.since;
    const at = (name: string, temporality: string, value: ExportedPoint['value']): number => {
      const ps = exported.filter((p) => p.name === name);
      expect(ps, `one exported point of ${name}`).to.have.length(1);
      expect(ps[0]!.temporality).to.equal(temporality);
      // What the SDK exported is what the test expects it to (the model's own check).
      expect(ps[0]!.value, `${name} as exported`).to.deep.equal(value);
      return Number(BigInt(ps[0]!.timeNanos) / 1_000_000n);
    };
    const cum = (kind: string, monotonic: boolean, unit: string, description: string): Descriptor => ({ kind, temporality: 'cumulative', monotonic, unit, description });
    const del = (kind: string, unit: string, description: string): Descriptor => ({ kind, temporality: 'delta', monotonic: true, unit, description });

    let ts = at('sdk_requests', 'cumulative', sum(c.requests));
    this.add('sdk_requests', {}, cum('counter', true, '{request}', 'Requests served'), ts, sum(c.requests));

    ts = at('sdk_inflight', 'cumulative', sum(c.inflight));
    this.add('sdk_inflight', {}, cum('updowncounter', false, '{request}', 'Requests in flight'), ts, sum(c.inflight));

    const lat = cum('histogram', true, 'ms', 'Request latency');
    ts = at('sdk_latency_ms', 'cumulative', { count: c.latency.length, sum: sum(c.latency), counts: bucketCounts(c.latency) });
    this.add('sdk_latency_ms_count', {}, lat, ts, c.latency.length);
    this.add('sdk_latency_ms_sum', {}, lat, ts, sum(c.latency));
    leCounts(c.latency).forEach((n, i) => this.add('sdk_latency_ms_bucket', { le: LES[i]! }, lat, ts, n));

    const size = cum('exponential_histogram', true, 'By', 'Response size');
    ts = at('sdk_size', 'cumulative', { count: c.size.length, sum: sum(c.size), zeroCount: c.size.filter((v) => v === 0).length });
    this.add('sdk_size_count', {}, size, ts, c.size.length);
    this.add('sdk_size_sum', {}, size, ts, sum(c.size));

    ts = at('sdk_bytes', 'delta', sum(step.bytes));
    this.add('sdk_bytes', {}, del('counter', 'By', 'Bytes sent'), ts, sum(step.bytes));

    const wait = del('histogram', 'ms', 'Queue wait');
    ts = at('sdk_wait_ms', 'delta', { count: step.wait.length, sum: sum(step.wait), counts: bucketCounts(step.wait) });
    this.add('sdk_wait_ms_count', {}, wait, ts, step.wait.length);
    this.add('sdk_wait_ms_sum', {}, wait, ts, sum(step.wait));
    leCounts(step.wait).forEach((n, i) => this.add('sdk_wait_ms_bucket', { le: LES[i]! }, wait, ts, n));

    expect(exported, 'exported points').to.have.length(6);
  }
}

/** Bucket index of a time for buckets [start + k·step, start + (k+1)·step). */
const bucketOf = (ts: number, start: number, step: number) => Math.floor((ts - start) / step);
const iso = (ms: number) => new Date(ms).toISOString();
type AnswerPoint = [string, number | null];

/** max or min of the raw points per bucket. */
function rawAgg(rows: Row[], agg: 'max' | 'min', start: number, step: number): AnswerPoint[] {
  const by = new Map<number, number[]>();
  for (const r of rows) by.set(bucketOf(r.ts, start, step), [...(by.get(bucketOf(r.ts, start, step)) ?? []), r.value]);
  return [...by.entries()].sort(([a], [b]) => a - b).map(([k, vs]) => [iso(start + k * step), agg === 'max' ? Math.max(...vs) : Math.min(...vs)]);
}

/**
 * Increase per bucket as the plan defines it. Cumulative: for consecutive points, p - prev, or p
 * itself when it is below prev (the counter restarted from 0), credited to p's bucket; the first
 * point only sets the base. Delta: the sum of the bucket's values. Buckets without any are absent.
 */
function increases(rows: Row[], temporality: string | null, start: number, step: number): Map<number, number> {
  const out = new Map<number, number>();
  const sorted = [...rows].sort((a, b) => a.ts - b.ts);
  sorted.forEach((r, i) => {
    const k = bucketOf(r.ts, start, step);
    if (temporality === 'delta') out.set(k, (out.get(k) ?? 0) + r.value);
    else if (i > 0) {
      const prev = sorted[i - 1]!.value;
      out.set(k, (out.get(k) ?? 0) + (r.value >= prev ? r.value - prev : r.value));
    }
  });
  return out;
}

const toPoints = (m: Map<number, number>, start: number, step: number, f = (v: number) => v): AnswerPoint[] =>
  [...m.entries()].sort(([a], [b]) => a - b).map(([k, v]) => [iso(start + k * step), f(v)]);

interface AnswerSeries {
  labels: Labels;
  points: AnswerPoint[];
  [field: string]: unknown;
}

describe('OTLP from the real JS SDK, two processes of one service: one series per stream, exact values, increase and rate', function () {
  this.timeout(180_000);
  let url: string;
  let t: TestApp;
  let org: { id: string; slug: string };
  let ingestKey: string;
  let readKey: string;

  before(async () => {
    url = await cloneDatabase();
    // Many query-API reads from one address: above the per-IP limit's default.
    t = await startTestApp(url, { SENTINEL_RATE_LIMITS_API_PER_MINUTE: '100000' });
    org = await createOrg(t.app.services);
    ingestKey = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    readKey = (await createApiKey(t.app.services, org.slug, ['read'])).secret;
  });
  after(async () => {
    for (const p of running) if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, 'SIGKILL');
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  const start = (protocol: 'proto' | 'json', scope: string, resource: Attributes, processDetector = false) =>
    SdkProcess.start({ url: `${t.baseUrl}/v1/metrics`, key: ingestKey, protocol, scope, resource, processDetector });

  /** Runs `steps` on a process and folds each into its model; 40 ms apart so every export has its own time. */
  async function run(p: SdkProcess, m: Model, steps: Step[]): Promise<void> {
    for (const s of steps) {
      m.apply(s, await p.step(s));
      await sleep(40);
    }
  }

  const get = async <T>(path: string, params: Record<string, string | string[]>): Promise<T> => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) qs.append(k, x);
    const a = await t.api.get<T>(`/organizations/${org.slug}${path}?${qs}`, readKey);
    expect(a.status, `${path}?${qs}: ${a.text}`).to.equal(200);
    return a.body;
  };
  const metricQuery = async (name: string, params: Record<string, string | string[]>) =>
    (await get<{ series: AnswerSeries[] }>('/metrics/query', { name, ...params })).series;

  /** The stored series of a scope, with descriptors, and their points in time order. */
  async function stored(scope: string): Promise<Expected[]> {
    const series = await query<Omit<Expected, 'rows'> & { id: string }>(
      url,
      `select id::text, name, labels, kind, temporality, monotonic, unit, description from series where org_id = $1 and labels->>'otel_scope_name' = $2`,
      [org.id, scope],
    );
    const points = await query<{ id: string; ts: string; value: number }>(
      url,
      `select series_id::text as id, (extract(epoch from ts) * 1000)::bigint::text as ts, value from points where org_id = $1 and series_id = any($2::bigint[]) order by ts`,
      [org.id, series.map((s) => s.id)],
    );
    return series
      .map(({ id, ...s }) => ({ ...s, rows: points.filter((p) => p.id === id).map((p) => ({ ts: Number(p.ts), value: p.value })) }))
      .sort((a, b) => (key(a.name, a.labels) < key(b.name, b.labels) ? -1 : 1));
  }

  const expectedOf = (models: Model[]): Expected[] =>
    models.flatMap((m) => [...m.series.values()]).sort((a, b) => (key(a.name, a.labels) < key(b.name, b.labels) ? -1 : 1));

  /** Every check of one run: the series table, the points, raw values, increase, rate and the grouped increase. */
  async function checkRun(scope: string, models: Model[], from: number, to: number): Promise<void> {
    const expected = expectedOf(models);
    // One series per stream (per process, per kind and temporality), each with its descriptor and exact points.
    expect(await stored(scope)).to.deep.equal(expected);

    const filter = `otel_scope_name=${scope}`;
    const names = [...new Set(expected.map((e) => e.name))].sort();
    const answerOf = (series: AnswerSeries[]) => series.map((s) => ({ labels: s.labels, points: s.points }));
    const sortByLabels = <T extends { labels: Labels }>(xs: T[]) => [...xs].sort((a, b) => (key('', a.labels) < key('', b.labels) ? -1 : 1));

    // Raw values: max and min over 10 ms buckets (the exports of a process are at least 40 ms
    // apart; longer buckets only on a very slow run, under query.max_buckets).
    const rawStep = Math.max(10, Math.ceil((to - from) / 5000));
    for (const name of names) {
      const mine = expected.filter((e) => e.name === name);
      for (const agg of ['max', 'min'] as const) {
        const got = await metricQuery(name, { start: String(from), end: String(to), step: `${rawStep}ms`, agg, filter });
        expect(sortByLabels(answerOf(got)), `${name} agg=${agg}`).to.deep.equal(sortByLabels(mine.map((e) => ({ labels: e.labels, points: rawAgg(e.rows, agg, from, rawStep) }))));
        // Each answer series says what it is: kind, temporality (delta marked) and unit.
        expect(
          sortByLabels(got).map((s) => ({ labels: s.labels, kind: s.kind, temporality: s.temporality, unit: s.unit })),
          `${name} answer descriptors`,
        ).to.deep.equal(sortByLabels(mine).map((e) => ({ labels: e.labels, kind: e.kind, temporality: e.temporality, unit: e.unit })));
      }
    }

    // increase and rate: over the whole range in one bucket, and over buckets of a fifth of it.
    const span = to - from;
    for (const step of [span, Math.ceil(span / 5)]) {
      for (const name of names) {
        const mine = expected.filter((e) => e.name === name);
        // An up-down counter's drops are not resets: increase is a counter's reading, left out here.
        if (mine[0]!.kind === 'updowncounter') continue;
        const inc = await metricQuery(name, { start: String(from), end: String(to), step: `${step}ms`, agg: 'increase', filter });
        expect(sortByLabels(answerOf(inc)), `${name} agg=increase step=${step}ms`).to.deep.equal(
          sortByLabels(mine.map((e) => ({ labels: e.labels, points: toPoints(increases(e.rows, e.temporality, from, step), from, step) }))),
        );
        const rate = await metricQuery(name, { start: String(from), end: String(to), step: `${step}ms`, agg: 'rate', filter });
        const want = sortByLabels(mine.map((e) => ({ labels: e.labels, points: toPoints(increases(e.rows, e.temporality, from, step), from, step, (v) => v / (step / 1000)) })));
        const gotRate = sortByLabels(answerOf(rate));
        expect(gotRate.map((s) => ({ labels: s.labels, at: s.points.map((p) => p[0]) })), `${name} agg=rate step=${step}ms`).to.deep.equal(
          want.map((s) => ({ labels: s.labels, at: s.points.map((p) => p[0]) })),
        );
        gotRate.forEach((s, i) => s.points.forEach((p, j) => expect(p[1], `${name} rate ${p[0]}`).to.be.closeTo(want[i]!.points[j]![1]!, 1e-9)));
      }
    }

    // Grouped by service: the per-series increases of both processes summed (cumulative and delta counters).
    for (const name of ['sdk_requests', 'sdk_bytes']) {
      const mine = expected.filter((e) => e.name === name);
      const step = Math.ceil(span / 5);
      const total = new Map<number, number>();
      for (const e of mine) for (const [k, v] of increases(e.rows, e.temporality, from, step)) total.set(k, (total.get(k) ?? 0) + v);
      const got = await metricQuery(name, { start: String(from), end: String(to), step: `${step}ms`, agg: 'increase', by: 'service.name', filter });
      expect(answerOf(got), `${name} increase by service.name`).to.deep.equal([{ labels: { 'service.name': SERVICE }, points: toPoints(total, from, step) }]);
    }
  }

  /** Every model of both runs, for the metric names' list at the end. */
  const allModels: Model[] = [];

  it('two processes without service.instance.id: a series per process and stream (otel_resource_id), a restart with the same resource is a counter reset', async () => {
    const scope = 'run-a';
    const from = Date.now() - 1;
    const base = { 'service.name': SERVICE, otel_scope_name: scope };
    // Each its own pid (the real one); telemetry.sdk.* from the SDK's default resource as well.
    const p = await start('proto', scope, { 'service.name': SERVICE });
    const j = await start('json', scope, { 'service.name': SERVICE });
    expect(p.resource['process.pid']).to.equal(p.pid);
    expect(j.resource['process.pid']).to.equal(j.pid);
    expect(p.resource['telemetry.sdk.language']).to.equal('nodejs');
    const mp = new Model({ ...base, otel_resource_id: resourceId(p.resource) });
    const mj = new Model({ ...base, otel_resource_id: resourceId(j.resource) });
    expect(mp.labels.otel_resource_id).not.to.equal(mj.labels.otel_resource_id);

    await Promise.all([
      run(p, mp, [
        { requests: [3, 4], inflight: [5], latency: [0.5, 10, 42], size: [0, 3, 1024], bytes: [100, 28], wait: [1, 250] },
        { requests: [5], inflight: [-2], latency: [100, 101], size: [2.5], bytes: [64], wait: [10] },
        { requests: [1, 1, 1], inflight: [4, -7], latency: [7], size: [0.25], bytes: [1], wait: [55, 5] },
      ]),
      run(j, mj, [
        { requests: [10], inflight: [2], latency: [20, 5], size: [8], bytes: [512], wait: [0] },
        { requests: [6], inflight: [1], latency: [200, 3], size: [16, 0], bytes: [256], wait: [99.5] },
      ]),
    ]);
    // The JSON process restarts with the same resource (a container's process keeps its pid): its
    // cumulative streams start again from 0, below where they were — a reset in the same series.
    await j.exit();
    const j2 = await start('json', scope, { 'service.name': SERVICE, 'process.pid': j.pid });
    expect(j2.resource).to.deep.equal(j.resource);
    mj.restart();
    await run(j2, mj, [
      { requests: [2], inflight: [1], latency: [4], size: [1], bytes: [8], wait: [12] },
      { requests: [5], inflight: [1], latency: [50], size: [32], bytes: [16], wait: [150] },
    ]);
    await Promise.all([p.exit(), j2.exit()]);
    const to = Date.now() + 1;

    // Two processes × (3 sums + 5 + 2 + 5 histogram parts) = 30 series.
    expect(expectedOf([mp, mj])).to.have.length(30);
    allModels.push(mp, mj);
    await checkRun(scope, [mp, mj], from, to);
  });

  it('two processes with service.instance.id (and the process detector): no otel_resource_id, a restart under the same instance id is a counter reset', async () => {
    const scope = 'run-b';
    const from = Date.now() - 1;
    const base = { 'service.name': SERVICE, otel_scope_name: scope };
    const p = await start('proto', scope, { 'service.name': SERVICE, 'service.instance.id': 'sdk-p' }, true);
    const j = await start('json', scope, { 'service.name': SERVICE, 'service.instance.id': 'sdk-j' }, true);
    expect(p.resource['process.runtime.name']).to.equal('nodejs');
    const mp = new Model({ ...base, 'service.instance.id': 'sdk-p' });
    const mj = new Model({ ...base, 'service.instance.id': 'sdk-j' });

    await Promise.all([
      run(p, mp, [
        { requests: [7], inflight: [3], latency: [15, 150], size: [4096], bytes: [10], wait: [2] },
        { requests: [2, 2], inflight: [-1], latency: [1, 2, 3], size: [0, 1], bytes: [20], wait: [20, 200] },
      ]),
      run(j, mj, [
        { requests: [1], inflight: [1], latency: [99], size: [5], bytes: [3], wait: [8] },
        { requests: [1], inflight: [1], latency: [101], size: [6], bytes: [4], wait: [9] },
        { requests: [1], inflight: [-2], latency: [10], size: [7], bytes: [5], wait: [10] },
      ]),
    ]);
    // The protobuf process restarts: a new pid, the same service.instance.id, so the same series.
    await p.exit();
    const p2 = await start('proto', scope, { 'service.name': SERVICE, 'service.instance.id': 'sdk-p' }, true);
    expect(p2.resource['process.pid']).not.to.equal(p.resource['process.pid']);
    mp.restart();
    await run(p2, mp, [
      { requests: [4], inflight: [1], latency: [8], size: [2], bytes: [30], wait: [1] },
      { requests: [3], inflight: [1], latency: [9, 90], size: [3], bytes: [40], wait: [1000] },
    ]);
    await Promise.all([p2.exit(), j.exit()]);
    const to = Date.now() + 1;

    expect(expectedOf([mp, mj])).to.have.length(30);
    allModels.push(mp, mj);
    await checkRun(scope, [mp, mj], from, to);
  });

  it('GET …/metrics lists each name with its kind, unit and temporality (the streams of both runs)', async () => {
    expect(allModels, 'both runs ran').to.have.length(4);
    const expected = expectedOf(allModels);
    const names = [...new Set(expected.map((e) => e.name))].sort();
    const list = await get<{ items: J[]; next_cursor: string | null }>('/metrics', { prefix: 'sdk_' });
    expect(list.next_cursor).to.equal(null);
    expect(list.items).to.deep.equal(
      names.map((name) => {
        const mine = expected.filter((e) => e.name === name);
        const d = mine[0]!;
        return {
          name,
          kind: d.kind,
          label_keys: [...new Set(mine.flatMap((e) => Object.keys(e.labels)))].sort(),
          series: mine.length,
          // One descriptor per name here: every process wrote the same kind, temporality and unit.
          types: [{ kind: d.kind, temporality: d.temporality, monotonic: d.monotonic, unit: d.unit, description: d.description, series: mine.length }],
        };
      }),
    );
  });
});
