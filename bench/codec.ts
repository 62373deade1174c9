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
 * Bytes per point are the encoded data only, then with ~290 bytes per chunk row for everything
 * else a chunk row costs in PostgreSQL, as measured on disk below: 141 B of row (tuple header, key
 * and aggregate columns, varlena headers, alignment, line pointer), ~98 B of primary-key index
 * (entries of 44 B in leaves about half full: the job inserts each window's rows between the
 * previous window's) and ~50 B of heap page slack. Not in it: what each day partition costs
 * whatever its rows (FSM 24 kB, VM 8 kB after a vacuum, the TOAST table's index 8 kB).
 *
 * With SENTINEL_BENCH_DISK=1 (after `npm run build`: it starts a daemon for its PostgreSQL), three
 * draws go through the real tables: the mix above, bench:prometheus's draw of the same mix (its
 * generator, copied) and the fresh random two-decimal values, each 4 h in its own day partition,
 * and a whole day of the mix (12 windows: what a day partition holds once compaction has run all day).
 * Their points are COPYed into `points` (measured: the fresh tier's table and index bytes per
 * point), then `sentinel jobs run compaction` writes the chunk rows into the real `point_chunks`
 * partitions, measured with pg_total_relation_size (heap, FSM/VM, TOAST, indexes) as the job leaves
 * them and after a VACUUM, each fork and index printed, and what a row is made of per kind (data,
 * sub, header and fixed columns, page slack, indexes). Beside each, the previous emulation (the
 * same chunks COPYed into a table `like point_chunks`), and the list of every point_chunks
 * partition (bench:prometheus's figure sums them all, the empty ones created ahead included).
 *
 *   npm run bench:codec          SENTINEL_BENCH_DISK=1 npm run bench:codec
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { chunkAggregates } from '../src/features/telemetry/chunk-codec.js';
import { partitionName } from '../src/db/partitions.js';
import { spawnSync } from 'node:child_process';
import { BIN } from '../test/support/daemon.js';
import { copyInto, ensurePointPartitions, loadSeries, mulberry32, startSentinel } from './harness.js';
import { machineLine } from './machine.js';
import { nodeExporterDraw } from './node-exporter-draw.js';
import { chunkValueMode, decodeChunk, encodeChunk, encodeChunkSub } from '../src/features/telemetry/chunk-codec.js';

const SERIES = Number(process.env.SENTINEL_BENCH_SERIES ?? 500);
const HOURS = 4;
const WINDOW_MS = 7_200_000;
const INTERVAL_MS = 10_000;
const ROW_OVERHEAD = 290;

interface Chunk {
  /** The series' index in its draw. */
  series: number;
  kind: Kind;
  /** The chunk's window start. */
  w: number;
  ts: number[];
  values: number[];
}

type Kind = 'counter' | 'gauge' | 'constant' | 'random-decimal' | 'random-float';

const DAY_MS = 86_400_000;
/** Where the draws lie: 00:00–04:00 UTC of the day before yesterday (this bench's mix), of yesterday (bench:prometheus's draw) and three days ago (the fresh random two-decimal values), old enough to compact, each in its own day partition. */
const TODAY = Math.floor(Date.now() / DAY_MS) * DAY_MS;
const MIX_START = TODAY - 2 * DAY_MS;
const PROMETHEUS_START = TODAY - DAY_MS;
const WORST_START = TODAY - 3 * DAY_MS;
/** A whole day of the mix (12 windows) in one partition, as a day of steady compaction leaves it. */
const DAY_START = TODAY - 4 * DAY_MS;

function generate(kinds: (i: number) => Kind, seed: number, start = MIX_START, hours = HOURS): Chunk[] {
  const rand = mulberry32(seed);
  const perWindow = WINDOW_MS / INTERVAL_MS;
  const windows = (hours * 3_600_000) / WINDOW_MS;
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
      chunks.push({ series: s, kind, w: start + w * WINDOW_MS, ts, values });
    }
  }
  return chunks;
}

/** bench:prometheus's draw of the same mix (bench/node-exporter-draw.ts), cut into 2-hour chunks from `start`. */
function prometheusDraw(start: number): Chunk[] {
  const samples = (HOURS * 3_600_000) / INTERVAL_MS;
  const perWindow = WINDOW_MS / INTERVAL_MS;
  const { series, scrapeTs } = nodeExporterDraw(start, samples, INTERVAL_MS);
  const chunks: Chunk[] = [];
  series.forEach((x, s) => {
    for (let k0 = 0; k0 < samples; k0 += perWindow) {
      chunks.push({ series: s, kind: x.kind, w: start + k0 * INTERVAL_MS, ts: [...scrapeTs[x.instance].subarray(k0, k0 + perWindow)], values: [...x.values.subarray(k0, k0 + perWindow)] });
    }
  });
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
for (const kind of ['counter', 'gauge', 'constant'] as const) console.log(measure(`  of which ${kind}s`, mix.filter((c) => c.kind === kind)));
const promDraw = prometheusDraw(PROMETHEUS_START);
console.log(measure("bench:prometheus's draw of the mix", promDraw));
for (const kind of ['counter', 'gauge', 'constant'] as const) console.log(measure(`  of which ${kind}s`, promDraw.filter((c) => c.kind === kind)));
const worst = generate(() => 'random-decimal', 2, WORST_START);
console.log(measure('worst case, fresh random two-decimal values', worst));
console.log(measure('worst case, fresh random float64 values', generate(() => 'random-float', 3)));


// ---------------------------------------------------------------------------------------------
// On disk (SENTINEL_BENCH_DISK=1)

const f8 = (v: number) => (Object.is(v, -0) ? '-0' : String(v));
const perPoint = (bytes: number, points: number) => (bytes / points).toFixed(3);

/** Sizes of one table (a point_chunks partition or the LIKE copy): forks, TOAST, each index. */
async function sizes(client: pg.Client, table: string): Promise<{ total: number; text: string }> {
  const { rows } = await client.query<{ main: string; fsm: string; vm: string; toast: string; toast_index: string; total: string; indexes: { name: string; bytes: string }[] }>(
    `select pg_relation_size(c.oid, 'main')::text as main, pg_relation_size(c.oid, 'fsm')::text as fsm, pg_relation_size(c.oid, 'vm')::text as vm,
            coalesce(pg_table_size(nullif(c.reltoastrelid, 0)), 0)::text as toast, coalesce(pg_indexes_size(nullif(c.reltoastrelid, 0)), 0)::text as toast_index,
            pg_total_relation_size(c.oid)::text as total,
            (select json_agg(json_build_object('name', i.indexrelid::regclass::text, 'bytes', pg_relation_size(i.indexrelid)::text)) from pg_index i where i.indrelid = c.oid) as indexes
       from pg_class c where c.oid = $1::regclass`,
    [table],
  );
  const r = rows[0];
  const idx = (r.indexes ?? []).map((i) => `index ${i.name} ${Number(i.bytes).toLocaleString('en-US')}`).join(', ');
  return {
    total: Number(r.total),
    text: `heap ${Number(r.main).toLocaleString('en-US')} (+ FSM ${Number(r.fsm).toLocaleString('en-US')}, VM ${Number(r.vm).toLocaleString('en-US')}), TOAST ${Number(r.toast).toLocaleString('en-US')} + its index ${Number(r.toast_index).toLocaleString('en-US')}, ${idx}`,
  };
}

/**
 * sizes() of a partition, or of each leaf that holds something of one split into windows (a day
 * of points since days are split), summed.
 */
async function leafSizes(client: pg.Client, table: string): Promise<{ total: number; text: string }> {
  const { rows } = await client.query<{ leaf: string }>(
    `select relid::regclass::text as leaf from pg_partition_tree($1::regclass) where isleaf and pg_relation_size(relid) > 0 order by 1`,
    [table],
  );
  const each = await Promise.all(rows.map(async (r) => ({ leaf: r.leaf, ...(await sizes(client, r.leaf)) })));
  if (each.length === 1 && each[0].leaf === table) return each[0];
  return { total: each.reduce((n, x) => n + x.total, 0), text: each.map((x) => `${x.leaf}: ${x.text}`).join('; ') };
}

/** What the rows of a table are made of, per kind of series: data, sub, the rest of the row, the heap pages' slack and the indexes, per point. */
async function anatomy(client: pg.Client, table: string, kindOf: Map<string, Kind>, points: number): Promise<string[]> {
  const { rows } = await client.query<{ series_id: string; n: number; data: number; sub: number | null; tuple: number }>(
    `select series_id::text as series_id, count as n, octet_length(data) as data, octet_length(sub) as sub, pg_column_size(c.*) as tuple from ${table} c`,
  );
  const { rows: rel } = await client.query<{ main: string; idx: string; toast: string; total: string }>(
    `select pg_relation_size(c.oid)::text as main, pg_indexes_size(c.oid)::text as idx, coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)::text as toast,
            pg_total_relation_size(c.oid)::text as total
       from pg_class c where c.oid = $1::regclass`,
    [table],
  );
  const main = Number(rel[0].main);
  const pages = main / 8192;
  const maxalign = (n: number) => Math.ceil(n / 8) * 8;
  // A heap page: 24 bytes of page header, a 4-byte line pointer per tuple, each tuple MAXALIGNed; the rest is free (slack).
  const used = rows.reduce((n, r) => n + maxalign(r.tuple) + 4, 0) + 24 * pages;
  const slack = main - used;
  const lines: string[] = [];
  // Rows whose data went out of line: pg_column_size of the row counts the data in full, so the heap's own shares cannot be told apart.
  if (Number(rel[0].toast) > 8192 * 2) return [`    rows TOASTed (over the 2 kB TOAST threshold): heap ${perPoint(main, points)} B/point, TOAST with its index ${perPoint(Number(rel[0].toast), points)}, indexes ${perPoint(Number(rel[0].idx), points)}`];
  const all = { rows: 0, n: 0, data: 0, sub: 0, tuple: 0, aligned: 0 };
  const by = new Map<Kind, typeof all>();
  for (const r of rows) {
    const k = kindOf.get(r.series_id)!;
    const a = by.get(k) ?? { rows: 0, n: 0, data: 0, sub: 0, tuple: 0, aligned: 0 };
    by.set(k, a);
    for (const x of [a, all]) {
      x.rows++;
      x.n += r.n;
      x.data += r.data;
      x.sub += r.sub ?? 0;
      x.tuple += r.tuple;
      x.aligned += maxalign(r.tuple) + 4;
    }
  }
  const idx = Number(rel[0].idx);
  const toast = Number(rel[0].toast);
  // The heap's free space map and visibility map.
  const forks = Number(rel[0].total) - main - idx - toast;
  // Page headers, slack, indexes, TOAST and forks shared out by row (each row is one index entry; slack grows with the rows' count, not their size, to a first approximation).
  const share = (x: typeof all) => ((24 * pages + slack + idx + toast + forks) * x.rows) / all.rows;
  for (const [name, x] of [['all', all], ...[...by].sort()] as [string, typeof all][]) {
    const fixed = x.aligned - x.data - x.sub;
    lines.push(
      `    ${name}: ${x.rows} rows, ${x.n.toLocaleString('en-US')} points, ${((x.tuple / x.rows) | 0)} B/row: data ${perPoint(x.data, x.n)} + sub ${perPoint(x.sub, x.n)} + row header, fixed columns, varlena headers, alignment, line pointer ${perPoint(fixed, x.n)} (${(fixed / x.rows).toFixed(0)} B/row) + page headers, slack, indexes, TOAST, FSM/VM (shared by row) ${perPoint(share(x), x.n)} = ${perPoint(x.aligned + share(x), x.n)} B/point`,
    );
  }
  lines.push(`    heap: ${pages} pages, ${rows.length} rows (${(rows.length / pages).toFixed(2)} a page), slack ${slack.toLocaleString('en-US')} B (${((100 * slack) / main).toFixed(1)}% of the heap, ${perPoint(slack, points)} B/point), page headers ${perPoint(24 * pages, points)} B/point, indexes ${perPoint(idx, points)} B/point, TOAST (its empty index) ${perPoint(toast, points)} B/point, FSM and VM ${perPoint(forks, points)} B/point`);
  return lines;
}

interface Draw {
  name: string;
  start: number;
  chunks: Chunk[];
  /** Also COPY its chunks into a table `like point_chunks` (the previous emulation), for comparison. */
  like?: boolean;
}

/**
 * Each draw's points COPYed into `points` (the day partition of its start), then the compaction
 * job (`sentinel jobs run compaction`, as bench:prometheus runs it) writes its chunk rows into the
 * real `point_chunks` partitions: those partitions are measured, as the job leaves them and after
 * a VACUUM (what autovacuum leaves), with pg_total_relation_size as bench:prometheus counts them.
 * Beside them, the previous emulation: the same rows' chunks COPYed in series order into a table
 * `like point_chunks` (not a partition) and VACUUMed.
 */
async function onDisk(draws: Draw[]): Promise<void> {
  const s = await startSentinel('codec', { SENTINEL_JOBS: JSON.stringify({ compaction: { enabled: false } }) });
  const client = new pg.Client(s.pgUrl);
  try {
    await client.connect();
    const kindOf: Map<string, Kind>[] = [];
    for (const [j, d] of draws.entries()) {
      const nSeries = Math.max(...d.chunks.map((c) => c.series)) + 1;
      const ids = await loadSeries(client, s.orgId, `codec_draw_${j}`, nSeries, (i) => ({ host: `h${i}`, job: 'codec' }));
      kindOf.push(new Map(d.chunks.map((c) => [String(ids[c.series]), c.kind])));
      await ensurePointPartitions(s.pgUrl, d.start, Math.max(...d.chunks.map((c) => c.w)) + WINDOW_MS - 1);
      // Time-major, as scrapes arrive.
      await copyInto(
        client,
        'copy points (org_id, series_id, ts, value) from stdin',
        (function* () {
          let chunk = '';
          for (const w of [...new Set(d.chunks.map((c) => c.w))].sort((a, b) => a - b)) {
            const cs = d.chunks.filter((c) => c.w === w);
            for (let k = 0; k < cs[0].ts.length; k++) {
              for (const c of cs) {
                chunk += `${s.orgId}\t${ids[c.series]}\t${new Date(c.ts[k]).toISOString()}\t${f8(c.values[k])}\n`;
                if (chunk.length > 1 << 20) {
                  yield chunk;
                  chunk = '';
                }
              }
            }
          }
          yield chunk;
        })(),
      );
      const pointsPart = partitionName('points', d.start);
      const fresh = await leafSizes(client, pointsPart);
      const n = d.chunks.reduce((k, c) => k + c.ts.length, 0);
      console.log(`${d.name}, fresh tier: ${n.toLocaleString('en-US')} points COPYed into ${pointsPart}, pg_total_relation_size ${perPoint(fresh.total, n)} B/point (${fresh.total.toLocaleString('en-US')} B: ${fresh.text})`);
    }
    // Not runBin: its 60 s timeout is short for these points on a loaded machine.
    const job = spawnSync(process.execPath, [BIN, 'jobs', 'run', 'compaction', '--json'], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...s.env }, encoding: 'utf8', timeout: 600_000 });
    if (job.status !== 0) throw new Error(`sentinel jobs run compaction: ${job.stderr}`);
    const report = JSON.parse(job.stdout) as { points_compacted: number; chunks_written: number; batches: number };
    console.log(`on disk: sentinel jobs run compaction: ${report.points_compacted.toLocaleString('en-US')} points into ${report.chunks_written} chunks in ${report.batches} batches`);
    for (const [j, d] of draws.entries()) {
      const points = d.chunks.reduce((n, c) => n + c.ts.length, 0);
      const part = partitionName('point_chunks', d.start);
      const stored = Number((await client.query<{ n: string }>(`select coalesce(sum(count), 0)::text as n from ${part}`)).rows[0].n);
      if (stored !== points) throw new Error(`${part}: ${stored} points, expected ${points}`);
      const asLeft = await sizes(client, part);
      await client.query(`vacuum ${part}`);
      const vacuumed = await sizes(client, part);
      console.log(
        `${d.name}, the job's ${d.chunks.length} chunk rows in ${part}, pg_total_relation_size: ${perPoint(asLeft.total, points)} B/point as the job leaves them (${asLeft.total.toLocaleString('en-US')} B: ${asLeft.text}); ` +
          `${perPoint(vacuumed.total, points)} B/point after VACUUM (${vacuumed.total.toLocaleString('en-US')} B: ${vacuumed.text})`,
      );
      for (const line of await anatomy(client, part, kindOf[j], points)) console.log(line);
      if (!d.like) continue;
      // The previous emulation, for comparison.
      const like = `codec_like_${j}`;
      await client.query(`create table ${like} (like point_chunks including defaults including constraints including indexes)`);
      await copyInto(
        client,
        `copy ${like} (org_id, series_id, ts, first_ts, last_ts, count, min, max, sum, first_value, last_value, increase, data, sub) from stdin`,
        [
          d.chunks
            .map((c) => {
              const a = chunkAggregates(c.ts, c.values);
              const sub = encodeChunkSub(c.w, WINDOW_MS, c.ts, c.values);
              const cols = [s.orgId, String(c.series + 1), new Date(c.w).toISOString(), new Date(a.firstTs).toISOString(), new Date(a.lastTs).toISOString(), String(a.count)];
              cols.push(...[a.min, a.max, a.sum, a.firstValue, a.lastValue, a.increase].map(f8), `\\\\x${encodeChunk(c.ts, c.values).toString('hex')}`, sub ? `\\\\x${sub.toString('hex')}` : '\\N');
              return cols.join('\t') + '\n';
            })
            .join(''),
        ],
      );
      await client.query(`vacuum analyze ${like}`);
      const l = await sizes(client, like);
      console.log(`  the previous emulation (the same chunks COPYed in series order into a table like point_chunks, VACUUMed): ${perPoint(l.total, points)} B/point (${l.total.toLocaleString('en-US')} B: ${l.text})`);
    }
    // bench:prometheus sums every partition of point_chunks, the empty ones the daemon creates ahead included.
    const { rows: parts } = await client.query<{ name: string; bytes: string }>(
      `select i.inhrelid::regclass::text as name, pg_total_relation_size(i.inhrelid)::text as bytes from pg_inherits i where i.inhparent = 'point_chunks'::regclass order by 1`,
    );
    console.log(`every partition of point_chunks (bench:prometheus's sum counts them all): ${parts.map((p) => `${p.name} ${Number(p.bytes).toLocaleString('en-US')} B`).join(', ')}`);
  } finally {
    await client.end().catch(() => undefined);
    await s.stop();
  }
}
if (process.env.SENTINEL_BENCH_DISK === '1') {
  await onDisk([
    { name: "this bench's mix", start: MIX_START, chunks: mix, like: true },
    { name: "bench:prometheus's draw", start: PROMETHEUS_START, chunks: promDraw, like: true },
    { name: 'worst case, fresh random two-decimal values', start: WORST_START, chunks: worst, like: true },
    { name: "this bench's mix over a whole day (12 windows, another draw)", start: DAY_START, chunks: generate(mixKind, 4, DAY_START, 24) },
  ]);
}
