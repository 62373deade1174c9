/**
 * Chunk codec: bytes per point and encode/decode throughput, in this process (no database).
 *
 * Series mix like a node exporter's (SENTINEL_BENCH_SERIES series, default 500; 4 h at 10 s with
 * ±5 ms of uniform integer jitter on every timestamp; cut into 2-hour chunks of 720 points):
 *   - 50% counters with integer increments: each series has a mean increment m drawn
 *     log-uniformly from 1..1000 per scrape, and each increment is uniform over 0..2m;
 *   - 30% two-decimal gauges that change every few samples: each sample changes with
 *     probability 1/4, by a uniform −5.00..+5.00;
 *   - 20% constants.
 * Worst cases, same timestamps: every value a fresh random two-decimal number (0..1000.00), and
 * every value a fresh random float64 (Math.random() × 1000).
 *
 * Bytes per point are the encoded data only, then with ~150 bytes per chunk row for everything
 * else a chunk row stores in PostgreSQL (tuple header, key and aggregate columns, bytea header,
 * primary-key index entry), which is the figure to compare with the ≤ 2 bytes target.
 *
 * With SENTINEL_BENCH_DISK=1 (after `npm run build`: it starts a daemon for its PostgreSQL), the
 * mix's chunk rows are also written into two tables shaped like `point_chunks` (its columns and
 * primary key), one with `sub` and one without, and their size measured as bench:prometheus
 * counts the chunk tier (pg_total_relation_size: heap, TOAST, indexes, FSM/VM) and as heap, TOAST
 * and the primary key only: the bytes per point of the compacted tier, to compare with ≤ 2.
 *
 *   npm run bench:codec          SENTINEL_BENCH_DISK=1 npm run bench:codec
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { chunkAggregates } from '../src/features/telemetry/chunk-codec.js';
import { copyInto, mulberry32, startSentinel } from './harness.js';
import { machineLine } from './machine.js';
import { chunkValueMode, decodeChunk, encodeChunk, encodeChunkSub } from '../src/features/telemetry/chunk-codec.js';

const SERIES = Number(process.env.SENTINEL_BENCH_SERIES ?? 500);
const HOURS = 4;
const WINDOW_MS = 7_200_000;
const INTERVAL_MS = 10_000;
const ROW_OVERHEAD = 150;

interface Chunk {
  /** The chunk's window start. */
  w: number;
  ts: number[];
  values: number[];
}

type Kind = 'counter' | 'gauge' | 'constant' | 'random-decimal' | 'random-float';

function generate(kinds: (i: number) => Kind, seed: number): Chunk[] {
  const rand = mulberry32(seed);
  const start = Date.UTC(2026, 10, 30, 0, 0, 0);
  const perWindow = WINDOW_MS / INTERVAL_MS;
  const windows = (HOURS * 3_600_000) / WINDOW_MS;
  const chunks: Chunk[] = [];
  for (let s = 0; s < SERIES; s++) {
    const kind = kinds(s);
    const mean = Math.exp(rand() * Math.log(1000));
    let v = kind === 'counter' ? Math.floor(rand() * 1e9) : kind === 'gauge' ? Math.round(rand() * 10000) / 100 : Math.round(rand() * 100000) / 100;
    for (let w = 0; w < windows; w++) {
      const ts: number[] = [];
      const values: number[] = [];
      for (let i = 0; i < perWindow; i++) {
        // 5 s ± 5 ms into its interval: never across a window edge (every point inside its chunk's window, as compaction cuts them)
        ts.push(start + w * WINDOW_MS + i * INTERVAL_MS + 5 + Math.floor(rand() * 11) - 5);
        switch (kind) {
          case 'counter':
            v += Math.floor(rand() * (2 * mean + 1));
            break;
          case 'gauge':
            if (rand() < 0.25) v = Math.round(v * 100 + Math.floor(rand() * 1001) - 500) / 100;
            break;
          case 'constant':
            break;
          case 'random-decimal':
            v = Math.floor(rand() * 100001) / 100;
            break;
          case 'random-float':
            v = rand() * 1000;
            break;
        }
        values.push(v);
      }
      chunks.push({ w: start + w * WINDOW_MS, ts, values });
    }
  }
  return chunks;
}

function measure(name: string, chunks: Chunk[]): string {
  const points = chunks.reduce((n, c) => n + c.ts.length, 0);
  // warm up, then time the best of 5 passes
  let encoded: Buffer[] = chunks.map((c) => encodeChunk(c.ts, c.values));
  for (const e of encoded) decodeChunk(e);
  let encBest = Infinity;
  let decBest = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    encoded = chunks.map((c) => encodeChunk(c.ts, c.values));
    const t1 = performance.now();
    for (const e of encoded) decodeChunk(e);
    const t2 = performance.now();
    encBest = Math.min(encBest, t1 - t0);
    decBest = Math.min(decBest, t2 - t1);
  }
  const bytes = encoded.reduce((n, e) => n + e.length, 0);
  // The halves' aggregates (the `sub` column), with the bytea's 1-byte length header PostgreSQL adds to a short value.
  const subs = chunks.map((c) => encodeChunkSub(c.w, WINDOW_MS, c.ts, c.values));
  const subBytes = subs.reduce((n, e) => n + (e ? e.length + 1 : 0), 0);
  const noSub = subs.filter((e) => e === null).length;
  const modes = new Map<string, number>();
  for (const e of encoded) modes.set(chunkValueMode(e), (modes.get(chunkValueMode(e)) ?? 0) + 1);
  const modeText = [...modes].map(([m, n]) => `${m} ${n}`).join(', ');
  const mps = (ms: number) => ((points / ms) * 1000 / 1e6).toFixed(1);
  return (
    `${name}: ${points.toLocaleString('en-US')} points in ${chunks.length} chunks; data ${(bytes / points).toFixed(3)} B/point, ` +
    `with ~${ROW_OVERHEAD} B per chunk row ${((bytes + ROW_OVERHEAD * chunks.length) / points).toFixed(3)} B/point; ` +
    `sub ${(subBytes / chunks.length).toFixed(1)} B/chunk (+${(subBytes / points).toFixed(3)} B/point${noSub ? `, ${noSub} chunks without` : ''}), ` +
    `with sub and the row ${((bytes + subBytes + ROW_OVERHEAD * chunks.length) / points).toFixed(3)} B/point; ` +
    `encode ${mps(encBest)} M points/s, decode ${mps(decBest)} M points/s (modes: ${modeText})`
  );
}

console.log(machineLine());
const mixKind = (s: number): Kind => {
  const r = s % 10;
  return r < 5 ? 'counter' : r < 8 ? 'gauge' : 'constant';
};
const mix = generate(mixKind, 1);
console.log(measure('node-exporter-like mix', mix));
for (const kind of ['counter', 'gauge', 'constant'] as const) {
  console.log(measure(`  of which ${kind}s`, mix.filter((_, i) => mixKind(Math.floor(i / ((HOURS * 3_600_000) / WINDOW_MS))) === kind)));
}
console.log(measure('worst case, fresh random two-decimal values', generate(() => 'random-decimal', 2)));
console.log(measure('worst case, fresh random float64 values', generate(() => 'random-float', 3)));

/** The mix's chunk rows in PostgreSQL, with and without `sub`: on-disk bytes per point. */
async function onDisk(chunks: Chunk[]): Promise<void> {
  const s = await startSentinel('codec');
  const client = new pg.Client(s.pgUrl);
  try {
    await client.connect();
    const points = chunks.reduce((n, c) => n + c.ts.length, 0);
    const f8 = (v: number) => (Object.is(v, -0) ? '-0' : String(v));
    const figures: string[] = [];
    for (const withSub of [false, true]) {
      const table = withSub ? 'codec_chunks_sub' : 'codec_chunks';
      await client.query(`create table ${table} (like point_chunks including defaults including constraints including indexes)`);
      if (!withSub) await client.query(`alter table ${table} drop column sub`);
      const org = '00000000-0000-0000-0000-000000000001';
      await copyInto(
        client,
        `copy ${table} (org_id, series_id, ts, first_ts, last_ts, count, min, max, sum, first_value, last_value, increase, data${withSub ? ', sub' : ''}) from stdin`,
        [
          chunks
            .map((c, i) => {
              const a = chunkAggregates(c.ts, c.values);
              const sub = withSub ? encodeChunkSub(c.w, WINDOW_MS, c.ts, c.values) : null;
              const cols = [org, String(Math.floor(i / 2) + 1), new Date(c.w).toISOString(), new Date(a.firstTs).toISOString(), new Date(a.lastTs).toISOString(), String(a.count)];
              cols.push(...[a.min, a.max, a.sum, a.firstValue, a.lastValue, a.increase].map(f8), `\\\\x${encodeChunk(c.ts, c.values).toString('hex')}`);
              if (withSub) cols.push(sub ? `\\\\x${sub.toString('hex')}` : '\\N');
              return cols.join('\t') + '\n';
            })
            .join(''),
        ],
      );
      await client.query(`vacuum analyze ${table}`);
      const { rows } = await client.query<{ total: string; core: string }>(
        `select pg_total_relation_size(c.oid)::text as total,
                (pg_relation_size(c.oid) + coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) + pg_indexes_size(c.oid))::text as core
           from pg_class c where c.oid = $1::regclass`,
        [table],
      );
      figures.push(
        `${withSub ? 'with sub' : 'without sub'} ${(Number(rows[0].total) / points).toFixed(3)} B/point (heap, TOAST and primary key only: ${(Number(rows[0].core) / points).toFixed(3)})`,
      );
    }
    console.log(`on disk, the mix's ${chunks.length} chunk rows in a table shaped like point_chunks (pg_total_relation_size): ${figures.join('; ')}`);
  } finally {
    await client.end().catch(() => undefined);
    await s.stop();
  }
}
if (process.env.SENTINEL_BENCH_DISK === '1') await onDisk(mix);
