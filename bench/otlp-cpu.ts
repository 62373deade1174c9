/**
 * In-process CPU of one OTLP protobuf metrics request of 1,000 gauge data points (the bodies of
 * bench/ingest.ts's (o): 100 series × 10 timestamps, one resource, one scope): decode, mapping and
 * series ids (all series cached; no database, no HTTP), measured with process.cpuUsage. The decoder
 * (`new`) alternates with the earlier one kept as the equivalence tests' reference (`old`:
 * protobufjs toObject, then labels built key by key per data point), in one process, so machine
 * load weighs on both alike. Prints the median and range of the rounds, and their ratio.
 *
 *   tsx bench/otlp-cpu.ts      (SENTINEL_BENCH_REQUESTS=1500 per round, SENTINEL_BENCH_ROUNDS=5)
 */
import { loadavg } from 'node:os';
import { decodeOtlpMetrics, type OtlpDecoded } from '../src/features/telemetry/otlp-decode.js';
import { OTLP_MESSAGES } from '../src/features/telemetry/otlp-proto.js';
import type { SeriesRepository } from '../src/features/telemetry/series-repository.js';
import { SeriesStore } from '../src/features/telemetry/series-store.js';
import { referenceDecodeOtlpMetrics } from '../test/unit/otlp-reference.js';

const REQUESTS = Number(process.env.SENTINEL_BENCH_REQUESTS ?? 1500);
const ROUNDS = Number(process.env.SENTINEL_BENCH_ROUNDS ?? 5);
const WARMUP = 300;
const SERIES = 100;
const TIMES = 10;
const T0 = Date.UTC(2026, 10, 30);

const strAttr = (key: string, value: string) => ({ key, value: { stringValue: value } });
function body(t0: number): Uint8Array {
  const dataPoints: object[] = [];
  for (let j = 0; j < TIMES; j++) {
    for (let h = 0; h < SERIES; h++) {
      dataPoints.push({ attributes: [strAttr('host', `h${h}`), strAttr('region', 'eu')], timeUnixNano: String(BigInt(t0 + j) * 1_000_000n), asDouble: (h * 7 + j) / 100 });
    }
  }
  const request = {
    resourceMetrics: [{ resource: { attributes: [strAttr('service.name', 'bench')] }, scopeMetrics: [{ scope: { name: 'bench' }, metrics: [{ name: 'bench.otlp', gauge: { dataPoints } }] }] }],
  };
  const t = OTLP_MESSAGES.metricsRequest;
  return t.encode(t.fromObject(request)).finish();
}
const bodies = Array.from({ length: 50 }, (_, i) => body(T0 + i * TIMES));

// Every series is found on the first lookup and cached from then on.
let nextId = 1;
const repo = {
  find: async (_org: string, keys: readonly { name: string; hash: Buffer }[]) => keys.map((k) => ({ id: nextId++, name: k.name, labels_hash: k.hash })),
  touch: async () => undefined,
} as unknown as SeriesRepository;
const store = new SeriesStore(repo, { cacheSize: 100_000 });
const ORG = '00000000-0000-0000-0000-000000000001';

type Decode = (body: Uint8Array, format: 'protobuf', now: number) => OtlpDecoded;
const decoders: Record<'old' | 'new', Decode> = { old: referenceDecodeOtlpMetrics, new: decodeOtlpMetrics };

async function request(decode: Decode, i: number): Promise<void> {
  const decoded = decode(bodies[i % bodies.length], 'protobuf', T0);
  const { ids } = await store.resolve(ORG, decoded.batch.points, 1_000_000);
  if (ids.length !== SERIES * TIMES || ids.some((id) => id === null)) throw new Error('a series was not resolved');
}

/** CPU milliseconds per request over one round. */
async function round(decode: Decode): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) await request(decode, i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / REQUESTS;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

console.log(`load average before: ${load()}`);
for (const name of ['old', 'new'] as const) for (let i = 0; i < WARMUP; i++) await request(decoders[name], i);
const ms: Record<'old' | 'new', number[]> = { old: [], new: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const name of r % 2 ? (['new', 'old'] as const) : (['old', 'new'] as const)) ms[name].push(await round(decoders[name]));
}
const fmt = (xs: number[]) => `median ${median(xs).toFixed(2)} ms (rounds ${xs.map((x) => x.toFixed(2)).join(' / ')})`;
console.log(
  `OTLP protobuf decode + mapping + series ids, CPU per ${SERIES * TIMES}-point request (${REQUESTS} requests × ${ROUNDS} rounds, alternating): ` +
    `old ${fmt(ms.old)}   new ${fmt(ms.new)}   new/old ${((100 * median(ms.new)) / median(ms.old)).toFixed(0)}%`,
);
console.log(`load average after: ${load()}`);
