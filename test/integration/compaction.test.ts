import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { pino } from 'pino';
import { DAY_MS, dayStart, partitionName, PartitionsRepository } from '../../src/db/partitions.js';
import { BackupSession } from '../../src/features/backups/backup-repository.js';
import { PartitionAnalyzer } from '../../src/features/retention/partition-maintenance.js';
import { ROW_SPAN_MS, SPLIT_TABLES } from '../../src/features/retention/retained-tables.js';
import { RetentionRepository } from '../../src/features/retention/retention-repository.js';
import { RetentionService, type RetentionDays } from '../../src/features/retention/retention-service.js';
import { chunkAggregates, decodeChunk, decodeChunkSub, type ChunkAggregates } from '../../src/features/telemetry/chunk-codec.js';
import { CompactionRepository, TRUNCATE_MAX_HEAP_BYTES, type MovedSeries } from '../../src/features/telemetry/compaction-repository.js';
import { CompactionService, type CompactionReport } from '../../src/features/telemetry/compaction-service.js';
import { IngestRepository } from '../../src/features/telemetry/ingest-repository.js';
import { CHUNK_WINDOW_MS, chunkHeadSql, POINT_WINDOWS, TELEMETRY_TABLES } from '../../src/features/telemetry/telemetry-tables.js';
import { LogCapture } from '../support/capture.js';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, emptyDatabase, holdingLock } from '../support/db.js';
import { tableChecksums } from '../support/table-checksums.js';
import { tenantChecksum } from '../support/tenant-checksum.js';
import { scratchDir } from '../support/scratch.js';

/**
 * The compaction job against real PostgreSQL: points of windows older than compact_after move
 * into chunks exactly (every point, bit for bit, in exactly one tier), late points are merged
 * into their window's chunk, retention and backups treat chunks as metric data, and one org's
 * compaction never touches another's rows. Expected aggregates come from PostgreSQL's own
 * aggregates over the points before they were compacted.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
const W = CHUNK_WINDOW_MS;
/** 13:17:00.000 today (UTC): with compact_after 2 h the horizon is 10:00 today. */
const NOW = dayStart(Date.now()) + 13 * HOUR + 17 * MIN;
const TODAY = dayStart(NOW);
const HORIZON = TODAY + 10 * HOUR;
const day = (offset: number) => TODAY + offset * DAY_MS;

type Pt = [number, number];
/** One stored point: series, time (ms), value. */
type Row = [string, number, number];

const logs = new LogCapture();
const logger = pino({ level: 'info' }, logs);

/** Bit-exact identity of a float64 (NaN, -0 included) and a time: sorts and compares rows. */
const bits = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(v);
  return b.toString('hex');
};
const key = (r: Row) => `${r[0].padStart(12, '0')}|${String(r[1]).padStart(15, '0')}|${bits(r[2])}`;
const sortRows = (rows: Row[]) => rows.map((r) => [key(r), r] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, r]) => r);

async function insertOrg(knex: Knex, slug: string): Promise<string> {
  const [row] = await knex('organizations').insert({ slug, name: slug }).returning<{ id: string }[]>('id');
  return row.id;
}

async function insertSeries(knex: Knex, orgId: string, name: string, lastSeenAt = NOW): Promise<string> {
  const [row] = await knex('series')
    .insert({ org_id: orgId, name, labels: '{}', labels_hash: Buffer.from(`${orgId}/${name}`), last_seen_at: new Date(lastSeenAt) })
    .returning<{ id: string }[]>('id');
  return String(row.id);
}

async function insertPoints(knex: Knex, orgId: string, seriesId: string, pts: Pt[]): Promise<void> {
  for (let i = 0; i < pts.length; i += 1000) {
    // Values as PostgreSQL float8 text, so NaN, ±Infinity and -0 arrive as themselves.
    const chunk = pts.slice(i, i + 1000);
    await knex.raw(
      `insert into points (org_id, series_id, ts, value)
       select ?::uuid, ?::bigint, to_timestamp(t / 1000.0), v::float8 from unnest(?::float8[], ?::text[]) as x(t, v)`,
      [orgId, seriesId, chunk.map((p) => p[0]), chunk.map((p) => (Object.is(p[1], -0) ? '-0' : String(p[1])))],
    );
  }
}

/** Every point of the org still in `points`. */
async function freshRows(knex: Knex, orgId: string): Promise<Row[]> {
  const { rows } = await knex.raw<{ rows: { s: string; t: number; v: number }[] }>(
    'select series_id::text as s, (extract(epoch from ts) * 1000)::float8 as t, value as v from points where org_id = ?',
    [orgId],
  );
  return rows.map((r) => [r.s, r.t, r.v]);
}

interface StoredChunk {
  series_id: string;
  ts: Date;
  first_ts: Date;
  last_ts: Date;
  count: number;
  min: number;
  max: number;
  sum: number;
  first_value: number;
  last_value: number;
  increase: number;
  data: Buffer;
  sub: Buffer | null;
}

async function chunks(knex: Knex, orgId: string): Promise<StoredChunk[]> {
  const { rows } = await knex.raw<{ rows: StoredChunk[] }>(
    `select series_id::text as series_id, ts, first_ts, last_ts, count, min, max, sum, first_value, last_value, increase, data, sub
       from point_chunks where org_id = ? order by point_chunks.series_id, ts`,
    [orgId],
  );
  return rows;
}

/**
 * The chunk's `sub` gives, bit for bit, the aggregates of its points before its window's middle
 * and of those from it (chunkAggregates of its decoded data, halved); returns the halves' counts.
 */
function expectHalves(c: StoredChunk): [number, number] {
  const what = `series ${c.series_id} window ${c.ts.toISOString()}`;
  expect(c.sub, `${what}: sub`).to.be.instanceOf(Buffer);
  const d = decodeChunk(c.data);
  const mid = c.ts.getTime() + W / 2;
  const n1 = d.ts.filter((t) => t < mid).length;
  const whole: ChunkAggregates = {
    count: c.count,
    firstTs: c.first_ts.getTime(),
    lastTs: c.last_ts.getTime(),
    min: c.min,
    max: c.max,
    sum: c.sum,
    firstValue: c.first_value,
    lastValue: c.last_value,
    increase: c.increase,
  };
  const got = decodeChunkSub(c.sub!, c.ts.getTime(), W, whole);
  const want = [n1 > 0 ? chunkAggregates(d.ts.slice(0, n1), d.values.slice(0, n1)) : null, n1 < d.ts.length ? chunkAggregates(d.ts.slice(n1), d.values.slice(n1)) : null];
  for (const h of [0, 1]) {
    if (want[h] === null) expect(got[h], `${what} half ${h}`).to.equal(null);
    else for (const [k, v] of Object.entries(want[h]!)) expect(Object.is(got[h]![k as keyof ChunkAggregates], v), `${what} half ${h} ${k}: ${got[h]![k as keyof ChunkAggregates]} vs ${v}`).to.equal(true);
  }
  return [n1, d.ts.length - n1];
}

/** Every point the org's chunks hold, decoded. */
async function chunkRows(knex: Knex, orgId: string): Promise<Row[]> {
  const out: Row[] = [];
  for (const c of await chunks(knex, orgId)) {
    const d = decodeChunk(c.data);
    for (let i = 0; i < d.ts.length; i++) out.push([c.series_id, d.ts[i], d.values[i]]);
  }
  return out;
}

/** Both tiers; each point listed once per tier it is in. */
async function allRows(knex: Knex, orgId: string): Promise<Row[]> {
  return [...(await freshRows(knex, orgId)), ...(await chunkRows(knex, orgId))];
}

function service(knex: Knex, batchSeries = 3, compactAfterMs = 2 * HOUR): CompactionService {
  return new CompactionService(new CompactionRepository(knex), { compactAfterMs, batchSeries }, logger);
}

/** Deterministic pseudo-random numbers (a test run is repeatable). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Points every `everyMs` from `from` to `to` (exclusive), a few ms of jitter, values from `value(i)`. */
function series(from: number, to: number, everyMs: number, value: (i: number) => number, seed: number): Pt[] {
  const r = rng(seed);
  const out: Pt[] = [];
  for (let t = from, i = 0; t < to; t += everyMs, i++) out.push([Math.max(from, t + Math.floor(r() * 11) - 5), value(i)]);
  return out;
}

/** Every window partition of the split days `days` whose window ends by `horizon`. */
const windowsBefore = (days: number[], horizon: number) =>
  days.flatMap((d) => Array.from({ length: DAY_MS / W }, (_, i) => d + i * W)).filter((w) => w + W <= horizon).map((w) => partitionName('points', dayStart(w), `w${String(new Date(w).getUTCHours()).padStart(2, '0')}`));

// Days of points as plain partitions (as created before days were split, and what the per-row
// path still handles), and split into one partition per window, each window dropped with the
// transaction that writes its chunks: the same data, the same answers.
for (const split of [false, true])
describe(`compaction (${split ? 'days split into window partitions' : 'plain day partitions'})`, function () {
  this.timeout(120_000);
  let url: string;
  let knex: Knex;
  const windows = split ? POINT_WINDOWS : {};
  const parts = (k = knex) => new PartitionsRepository(k, TELEMETRY_TABLES, [], windows);

  before(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 6 } });
    for (const t of TELEMETRY_TABLES) await parts().ensure(t, [day(-3), day(-2), day(-1), day(0), day(1)]);
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  it('the chunk window retention assumes is the one telemetry writes, and so are the windows of points', () => {
    expect(ROW_SPAN_MS.point_chunks).to.equal(CHUNK_WINDOW_MS);
    expect(SPLIT_TABLES).to.deep.equal(POINT_WINDOWS);
  });

  describe('two orgs, seven series over two days', () => {
    let orgA: string;
    let orgB: string;
    let orgC: string;
    const written = new Map<string, Row[]>();
    const ids: Record<string, string> = {};
    let first: CompactionReport;
    let expectedAgg: Map<string, { count: number; min: number; max: number; sum: number; first_ts: number; last_ts: number; first_value: number; last_value: number }>;
    let beforeC: Record<string, string>;

    const add = async (org: string, name: string, pts: Pt[]) => {
      const id = (ids[`${org}/${name}`] ??= await insertSeries(knex, org, name));
      // As the writer does: a window compacted (its partition dropped) is made again for a late point.
      await parts().ensure('points', pts.map((x) => x[0]), { exact: true });
      await insertPoints(knex, org, id, pts);
      const list = written.get(org) ?? [];
      list.push(...pts.map(([t, v]): Row => [id, t, v]));
      written.set(org, list);
      return id;
    };

    before(async () => {
      orgA = await insertOrg(knex, 'compact-a');
      orgB = await insertOrg(knex, 'compact-b');
      orgC = await insertOrg(knex, 'compact-c');
      const from = day(-1) + 3 * HOUR;
      const to = NOW;
      // A counter with integer increments and a reset, a two-decimal gauge, a constant, random
      // floats, and the special values; one series with repeated and out-of-order timestamps.
      let c = 0;
      await add(orgA, 'counter', series(from, to, 10 * MIN, (i) => (i === 40 ? (c = 3) : (c += (i * 7) % 13)), 1));
      await add(orgA, 'gauge', series(from, to, 10 * MIN, (i) => Math.round((20 + Math.sin(i / 5) * 10) * 100) / 100, 2));
      await add(orgA, 'constant', series(from, to, 10 * MIN, () => 1, 3));
      const r = rng(4);
      await add(orgA, 'random', series(from, to, 7 * MIN, () => (r() - 0.5) * 1e6, 4));
      const specials = [NaN, Infinity, -Infinity, -0, 0, 5e-324, -5e-324, 1e300, 1.5, -2.25];
      await add(orgA, 'specials', series(from, to, 13 * MIN, (i) => specials[i % specials.length], 5));
      const t0 = day(-1) + 5 * HOUR + 30 * MIN;
      await add(orgA, 'repeats', [[t0, 3], [t0, 1], [t0, 2], [t0 - 1000, 9], [t0 + 1, 1], [t0 - 60_000, 4], [HORIZON - 1, 7], [HORIZON, 8]]);
      // Only fresh points: nothing of it is compacted.
      await add(orgA, 'fresh', series(HORIZON, NOW, 5 * MIN, (i) => i, 6));
      // B: the same windows, other series; C: fresh points only (its checksum must not move).
      await add(orgB, 'counter', series(from, to, 15 * MIN, (i) => i * 2, 7));
      await add(orgB, 'gauge', series(day(-1), to, 20 * MIN, (i) => i / 4, 8));
      await add(orgC, 'fresh', series(HORIZON + MIN, NOW, 5 * MIN, (i) => i, 9));

      // The reference aggregates, by PostgreSQL over the points before compaction.
      const { rows } = await knex.raw<{ rows: { s: string; w: number; count: number; min: number; max: number; sum: number; first_ts: number; last_ts: number; first_value: number; last_value: number }[] }>(
        `select series_id::text as s, (floor(extract(epoch from ts) * 1000 / ?) * ?)::float8 as w, count(*)::int as count, min(value) as min, max(value) as max, sum(value) as sum,
                (extract(epoch from min(ts)) * 1000)::float8 as first_ts, (extract(epoch from max(ts)) * 1000)::float8 as last_ts,
                (array_agg(value order by ts, value))[1] as first_value, (array_agg(value order by ts desc, value desc))[1] as last_value
           from points where ts < ? group by 1, 2`,
        [W, W, new Date(HORIZON)],
      );
      expectedAgg = new Map(rows.map((r) => [`${r.s}@${r.w}`, r]));
      beforeC = await tenantChecksum(url, orgC, []);
      first = await service(knex).run(NOW);
    });

    it('moves every point older than the horizon into chunks, bit for bit, and leaves the recent ones', async () => {
      for (const org of [orgA, orgB]) {
        const all = written.get(org)!;
        const old = all.filter((r) => r[1] < HORIZON);
        const recent = all.filter((r) => r[1] >= HORIZON);
        expect(old.length, 'the test has old points').to.be.greaterThan(100);
        expect(sortRows(await chunkRows(knex, org)).map(key)).to.deep.equal(sortRows(old).map(key));
        expect(sortRows(await freshRows(knex, org)).map(key)).to.deep.equal(sortRows(recent).map(key));
      }
      expect(first.points_compacted).to.equal([orgA, orgB].reduce((n, o) => n + written.get(o)!.filter((r) => r[1] < HORIZON).length, 0));
      expect(first.horizon).to.equal(new Date(HORIZON).toISOString());
      expect(first.chunks_merged).to.equal(0);
      const yesterday = partitionName('points', day(-1));
      if (!split) {
        // Yesterday's partition is wholly behind the horizon: emptied, its space (table and index) given back.
        expect(first.partitions_emptied).to.deep.equal([yesterday]);
        expect(first.partitions_vacuumed).to.deep.equal([]);
        expect(first.windows_dropped).to.deep.equal([]);
        const { rows } = await knex.raw<{ rows: { bytes: string }[] }>('select pg_total_relation_size(?::regclass)::text as bytes', [yesterday]);
        // Nothing but its index's metapage (8 KiB); before, the day's rows and index entries.
        expect(Number(rows[0].bytes), 'an emptied partition keeps no data pages').to.equal(8192);
        return;
      }
      // Every window partition behind the horizon dropped, those with points and the empty ones;
      // no row deleted, nothing to vacuum.
      const want = windowsBefore([day(-3), day(-2), day(-1), day(0)], HORIZON);
      expect([...first.windows_dropped].sort()).to.deep.equal([...want].sort());
      expect(first).to.deep.include({ windows_deleted: [], partitions_emptied: [], partitions_vacuumed: [] });
      const left = (await parts().list('points')).map((p) => p.name).filter((n) => n < partitionName('points', day(1)));
      const hours = Array.from({ length: 7 }, (_, i) => `w${String(10 + 2 * i).padStart(2, '0')}`);
      expect(left).to.deep.equal(hours.map((h) => partitionName('points', day(0), h)));
    });

    it('writes one chunk per (org, series, window), its window aligned, its data in time order', async () => {
      let n = 0;
      for (const org of [orgA, orgB]) {
        const windows = new Set(written.get(org)!.filter((r) => r[1] < HORIZON).map((r) => `${r[0]}@${Math.floor(r[1] / W) * W}`));
        const got = await chunks(knex, org);
        expect(got.map((c) => `${c.series_id}@${c.ts.getTime()}`).sort()).to.deep.equal([...windows].sort());
        n += got.length;
        for (const c of got) {
          expect(c.ts.getTime() % W).to.equal(0);
          const d = decodeChunk(c.data);
          for (let i = 1; i < d.ts.length; i++) expect(d.ts[i]).to.be.at.least(d.ts[i - 1]);
          expect(d.ts[0]).to.be.at.least(c.ts.getTime());
          expect(d.ts[d.ts.length - 1]).to.be.below(c.ts.getTime() + W);
        }
      }
      expect(first.chunks_written).to.equal(n);
      // Every chunk with its halves' aggregates; some have points in both halves.
      let both = 0;
      for (const org of [orgA, orgB]) for (const c of await chunks(knex, org)) if (expectHalves(c).every((x) => x > 0)) both++;
      expect(both).to.be.greaterThan(0);
      // 7 series in batches of 3, for each window of each day behind the horizon.
      expect(first.batches).to.be.greaterThan(0);
    });

    it('stores the aggregates PostgreSQL computes over the same points', async () => {
      const got = [...(await chunks(knex, orgA)), ...(await chunks(knex, orgB))];
      expect(got.length).to.equal(expectedAgg.size);
      const same = (a: number, b: number, what: string) => (Number.isNaN(b) ? expect(a, what).to.be.NaN : expect(a, what).to.equal(b));
      for (const c of got) {
        const e = expectedAgg.get(`${c.series_id}@${c.ts.getTime()}`)!;
        const what = `series ${c.series_id} window ${c.ts.toISOString()}`;
        expect(c.count, what).to.equal(e.count);
        expect(c.first_ts.getTime(), what).to.equal(e.first_ts);
        expect(c.last_ts.getTime(), what).to.equal(e.last_ts);
        same(c.min, e.min, `${what} min`);
        same(c.max, e.max, `${what} max`);
        same(c.first_value, e.first_value, `${what} first`);
        same(c.last_value, e.last_value, `${what} last`);
        if (Number.isFinite(e.sum)) expect(c.sum, `${what} sum`).to.be.closeTo(e.sum, 1e-9 * Math.max(1, Math.abs(e.sum)));
        else same(c.sum, e.sum, `${what} sum`);
      }
    });

    it('stores the counter increase (a drop is a reset) computed from the points in time order', async () => {
      const counter = ids[`${orgA}/counter`];
      const pts = written.get(orgA)!.filter((r) => r[0] === counter && r[1] < HORIZON).sort((a, b) => a[1] - b[1]);
      for (const c of (await chunks(knex, orgA)).filter((x) => x.series_id === counter)) {
        const inW = pts.filter((r) => r[1] >= c.ts.getTime() && r[1] < c.ts.getTime() + W).map((r) => r[2]);
        let inc = 0;
        for (let i = 1; i < inW.length; i++) inc += inW[i] >= inW[i - 1] ? inW[i] - inW[i - 1] : inW[i];
        expect(c.increase, c.ts.toISOString()).to.equal(inc);
      }
      // The reset (at i = 40) is inside one of them: somewhere the increase is not last − first.
      expect((await chunks(knex, orgA)).filter((x) => x.series_id === counter).some((x) => x.increase !== x.last_value - x.first_value)).to.equal(true);
    });

    it('leaves an org with only fresh points untouched (tenant checksum)', async () => {
      expect(await tenantChecksum(url, orgC, [])).to.deep.equal(beforeC);
      expect(await chunks(knex, orgC)).to.deep.equal([]);
    });

    it('keeps each org\'s points in its own chunks', async () => {
      const aIds = new Set(Object.entries(ids).filter(([k]) => k.startsWith(orgA)).map(([, v]) => v));
      for (const c of await chunks(knex, orgB)) expect(aIds.has(c.series_id)).to.equal(false);
      const { rows } = await knex.raw<{ rows: { n: number }[] }>(
        'select count(*)::int as n from point_chunks c join series s on s.id = c.series_id where s.org_id <> c.org_id',
      );
      expect(rows[0].n).to.equal(0);
    });

    if (!split) it('empties a compacted day partition only when it is still empty (a late point keeps it, for the next run)', async () => {
      const repo = new CompactionRepository(knex);
      const info = { table: 'points' as const, day: day(-1), name: `points_p${new Date(day(-1)).toISOString().slice(0, 10).replaceAll('-', '')}` };
      await knex.raw('insert into ?? (org_id, series_id, ts, value) values (?, ?, ?, ?)', [info.name, orgA, ids[`${orgA}/gauge`], new Date(day(-1) + 7 * HOUR), 42]);
      expect(await repo.truncateIfEmpty(info)).to.equal(false);
      const { rows } = await knex.raw<{ rows: { n: number }[] }>('select count(*)::int as n from ??', [info.name]);
      expect(rows[0].n, 'the late point is still there').to.equal(1);
      await knex.raw('delete from ?? where value = 42', [info.name]);
    });

    /**
     * Day `offset`'s points partition, created, with autovacuum off (the tests' finally blocks turn
     * it back on); `fill()` writes 40,000 points into it and deletes them: more than
     * TRUNCATE_MAX_HEAP_BYTES of dead rows, no live point, no VACUUM yet.
     */
    async function deadRowsDay(offset: number) {
      const d = day(offset);
      const info = { table: 'points' as const, day: d, name: partitionName('points', d) };
      await new PartitionsRepository(knex, TELEMETRY_TABLES).ensure('points', [d]);
      await knex.raw('alter table ?? set (autovacuum_enabled = off)', [info.name]);
      const fill = async () => {
        await knex.raw(
          `insert into ?? (org_id, series_id, ts, value) select ?, ?, ?::timestamptz + g * interval '1 ms', g from generate_series(1, 40000) g`,
          [info.name, orgA, ids[`${orgA}/gauge`], new Date(d + HOUR)],
        );
        await knex.raw('delete from ??', [info.name]);
      };
      return { info, fill };
    }

    if (!split) it('leaves a day whose heap still holds deleted rows (no VACUUM yet) without asking for its lock; the next run vacuums and empties it', async () => {
      const repo = new CompactionRepository(knex);
      const { info, fill } = await deadRowsDay(-5);
      try {
        await fill();
        const before = await repo.partitionBytes(info);
        expect(before.heap).to.be.greaterThan(TRUNCATE_MAX_HEAP_BYTES);
        // Its emptiness check under the exclusive lock would read every dead row: the lock is not even asked for.
        const sent: string[] = [];
        const spy = (q: { sql: string }) => sent.push(q.sql);
        knex.on('query', spy);
        try {
          expect(await repo.truncateIfEmpty(info)).to.equal(false);
        } finally {
          knex.off('query', spy);
        }
        expect(sent.some((q) => /\block table\b/i.test(q)), sent.join('\n')).to.equal(false);
        expect(sent.length, 'the size was read').to.be.greaterThan(0);
        expect((await repo.partitionBytes(info)).total).to.equal(before.total);
        // The job's next run finds the day wholly behind its horizon, nothing to compact and still
        // large: it vacuums it (the heap truncated to nothing) and empties it (the indexes' space too).
        const next = await service(knex).run(NOW);
        expect(next.points_compacted).to.equal(0);
        expect(next.partitions_emptied).to.deep.equal([info.name]);
        expect((await repo.partitionBytes(info)).total).to.be.below(64 * 1024);
      } finally {
        await knex.raw('alter table ?? reset (autovacuum_enabled)', [info.name]);
      }
    });

    /**
     * Holds the lock a VACUUM takes (SHARE UPDATE EXCLUSIVE, as an autovacuum does) on `name` for
     * `ms` on another connection: resolves once the lock is held; `done` when it is released.
     */
    async function holdVacuumLock(name: string, ms: number): Promise<{ done: Promise<void> }> {
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const done = knex.transaction(async (trx) => {
        await trx.raw('lock table ?? in share update exclusive mode', [name]);
        locked();
        await new Promise((r) => setTimeout(r, ms));
      });
      await Promise.race([isLocked, done]);
      return { done: done.then(() => undefined) };
    }

    if (!split) it('waits for the VACUUM\'s lock held elsewhere (an autovacuum\'s, say) rather than skip the day, up to its lock timeout', async () => {
      const { info, fill } = await deadRowsDay(-6);
      try {
        await fill();
        const large = (await new CompactionRepository(knex).partitionBytes(info)).heap;
        expect(large).to.be.greaterThan(TRUNCATE_MAX_HEAP_BYTES);
        // Held for 300 ms, within the timeout: the VACUUM runs once it is released (the deleted rows gone, the heap truncated).
        let held = true;
        const holder = await holdVacuumLock(info.name, 300);
        const released = holder.done.then(() => (held = false));
        expect(await new CompactionRepository(knex, { vacuumLockTimeoutMs: 5_000 }).vacuumPartition(info)).to.equal(true);
        expect(held, 'it waited for the holder').to.equal(false);
        await released;
        expect((await new CompactionRepository(knex).partitionBytes(info)).heap).to.equal(0);
        // Held longer than the timeout: nothing done, no error, the heap as it was.
        await fill();
        const holder2 = await holdVacuumLock(info.name, 600);
        expect(await new CompactionRepository(knex, { vacuumLockTimeoutMs: 100 }).vacuumPartition(info)).to.equal(false);
        await holder2.done;
        expect((await new CompactionRepository(knex).partitionBytes(info)).heap).to.be.greaterThan(TRUNCATE_MAX_HEAP_BYTES);
      } finally {
        await knex.raw('alter table ?? reset (autovacuum_enabled)', [info.name]);
        await knex.raw('truncate table ??', [info.name]);
      }
    });

    if (!split) it('a run whose VACUUM of a compacted day does not get its lock in time reports the day neither vacuumed nor emptied; the next run empties it', async () => {
      const { info, fill } = await deadRowsDay(-7);
      try {
        await fill();
        const quick = new CompactionService(new CompactionRepository(knex, { vacuumLockTimeoutMs: 100 }), { compactAfterMs: 2 * HOUR, batchSeries: 100 }, logger);
        const holder = await holdVacuumLock(info.name, 1_500);
        const blocked = await quick.run(NOW);
        await holder.done;
        expect(blocked.partitions_emptied).to.not.include(info.name);
        expect(blocked.partitions_vacuumed).to.not.include(info.name);
        expect((await new CompactionRepository(knex).partitionBytes(info)).heap).to.be.greaterThan(TRUNCATE_MAX_HEAP_BYTES);
        const next = await quick.run(NOW);
        expect(next.partitions_emptied).to.include(info.name);
      } finally {
        await knex.raw('alter table ?? reset (autovacuum_enabled)', [info.name]);
      }
    });

    it('a backup running meanwhile keeps a compacted day from being emptied under its snapshot: its copy still holds the points', async () => {
      // A small day whose points were moved out (deleted) after the backup's snapshot: TRUNCATE is
      // not MVCC-safe, so emptying the day now would take them from the backup's snapshot too,
      // while their chunks are too new for it.
      const d = day(-9);
      const info = { table: 'points' as const, day: d, name: partitionName('points', d) };
      await new PartitionsRepository(knex, TELEMETRY_TABLES).ensure('points', [d]);
      // No autovacuum: one on the day would hold the lock the last truncateIfEmpty waits 50 ms for.
      await knex.raw('alter table ?? set (autovacuum_enabled = off)', [info.name]);
      await knex.raw(`insert into ?? (org_id, series_id, ts, value) select ?, ?, ?::timestamptz + g * interval '1 s', g from generate_series(1, 100) g`, [
        info.name,
        orgA,
        ids[`${orgA}/gauge`],
        new Date(d + HOUR),
      ]);
      const backup = await BackupSession.open(url);
      try {
        await backup.beginSnapshot();
        await knex.raw('delete from ??', [info.name]);
        const repo = new CompactionRepository(knex);
        expect((await repo.partitionBytes(info)).heap, 'small enough to be emptied').to.be.at.most(TRUNCATE_MAX_HEAP_BYTES);
        expect(await repo.truncateIfEmpty(info), 'the backup holds the day').to.equal(false);
        const { rows } = await backup.query<{ n: number }>(`select count(*)::int as n from ${info.name}`);
        expect(rows[0].n).to.equal(100);
        await backup.query('commit');
      } finally {
        await backup.close();
      }
      try {
        // Once the backup is over, it is emptied.
        expect(await new CompactionRepository(knex).truncateIfEmpty(info)).to.equal(true);
      } finally {
        await knex.raw('alter table ?? reset (autovacuum_enabled)', [info.name]);
      }
    });

    it('a backup takes its snapshot after its locks: a row committed while it waits for one is in it', async () => {
      // Another session holds a table the backup reads exclusively; the backup waits at its LOCK.
      const holder = await holdingLock(url, 'lock table users in access exclusive mode');
      const backup = await BackupSession.open(url);
      try {
        const snapshot = backup.beginSnapshot();
        snapshot.catch(() => undefined);
        for (let i = 0; ; i++) {
          const waiting = await knex.raw<{ rows: unknown[] }>("select 1 from pg_locks where relation = 'users'::regclass and not granted");
          if (waiting.rows.length) break;
          if (i > 400) throw new Error('the backup never waited for its lock');
          await new Promise((r) => setTimeout(r, 10));
        }
        // A row committed while the backup waits (points is not held up: ACCESS SHARE and ROW EXCLUSIVE do not conflict).
        const marker = 4242.125;
        await knex.raw('insert into points (org_id, series_id, ts, value) values (?, ?, ?, ?)', [orgA, ids[`${orgA}/gauge`], new Date(HORIZON + 30 * MIN), marker]);
        await holder.release();
        await snapshot;
        const { rows } = await backup.query<{ n: number }>('select count(*)::int as n from points where value = $1', [marker]);
        // Taken before the locks (the snapshot first, as pg_dump does), it would not see the row.
        expect(rows[0].n).to.equal(1);
        await backup.query('commit');
        await knex.raw('delete from points where value = ?', [marker]);
      } finally {
        await holder.release();
        await backup.close();
      }
    });

    it('finds nothing to do when run again', async () => {
      const again = await service(knex).run(NOW);
      expect(again).to.deep.include({ points_compacted: 0, chunks_written: 0, chunks_merged: 0, batches: 0 });
    });

    it('merges late points into the chunk of their already compacted window on the next run', async () => {
      const counter = ids[`${orgA}/counter`];
      const w = day(-1) + 6 * HOUR;
      const [before] = (await chunks(knex, orgA)).filter((c) => c.series_id === counter && c.ts.getTime() === w);
      // Before the chunk's first point, between two of them, equal to an existing time, at the window's last ms.
      const late: Pt[] = [[w, 1e9], [before.first_ts.getTime() + 1, -1], [before.last_ts.getTime(), 42], [w + W - 1, 0.5]];
      await add(orgA, 'counter', late);
      // And a late point for a window of a series that had none there (a new chunk).
      const gaugeB = ids[`${orgB}/gauge`];
      await parts().ensure('points', [day(-1) + 2 * HOUR + 1], { exact: true });
      await insertPoints(knex, orgB, gaugeB, [[day(-1) + 2 * HOUR + 1, 3.25]]);
      written.get(orgB)!.push([gaugeB, day(-1) + 2 * HOUR + 1, 3.25]);

      const r = await service(knex).run(NOW);
      if (split) {
        // Their windows' partitions, dropped by the first run, were made again for them (as the
        // writer does), and dropped again with the merge.
        const again = [partitionName('points', day(-1), 'w02'), partitionName('points', day(-1), 'w06')];
        expect([...r.windows_dropped].sort()).to.deep.equal(again);
        expect((await parts().list('points')).map((p) => p.name)).to.not.include.members(again);
      }
      expect(r.points_compacted).to.equal(5);
      expect(r.chunks_merged).to.equal(2);
      expect(r.chunks_written).to.equal(2);
      const [after] = (await chunks(knex, orgA)).filter((c) => c.series_id === counter && c.ts.getTime() === w);
      expect(after.count).to.equal(before.count + 4);
      expect(after.first_ts.getTime()).to.equal(w);
      expect(after.first_value).to.equal(1e9);
      expect(after.last_ts.getTime()).to.equal(w + W - 1);
      expect(after.max).to.equal(1e9);
      expect(after.min).to.equal(-1);
      const d = decodeChunk(after.data);
      const want = written.get(orgA)!.filter((x) => x[0] === counter && x[1] >= w && x[1] < w + W);
      expect(sortRows(d.ts.map((t, i): Row => [counter, t, d.values[i]])).map(key)).to.deep.equal(sortRows(want).map(key));
      // The merged chunk's halves are those of its points now, late ones included (both halves took one).
      const [n1, n2] = expectHalves(after);
      const [b1, b2] = expectHalves(before);
      expect([n1 - b1, n2 - b2]).to.deep.equal([2, 2]);
      for (const c of (await chunks(knex, orgB)).filter((x) => x.series_id === gaugeB)) expectHalves(c);
    });

    it('stores with every chunk it writes or merges its head: the bytes a read would pack from its columns', async () => {
      const { rows } = await knex.raw<{ rows: { n: number; with_head: number; same: number }[] }>(
        `select count(*)::int as n, count(head)::int as with_head, count(*) filter (where head = ${chunkHeadSql('c')})::int as same
           from point_chunks c where org_id = any(?)`,
        [[orgA, orgB]],
      );
      expect(rows[0].n, 'the job wrote (and merged) chunks').to.be.greaterThan(0);
      expect(rows[0].with_head).to.equal(rows[0].n);
      expect(rows[0].same).to.equal(rows[0].n);
      // 72 bytes: two times and seven numbers, as tier-read reads them.
      const sizes = await knex.raw<{ rows: { l: number }[] }>('select distinct length(head)::int as l from point_chunks where org_id = any(?)', [[orgA, orgB]]);
      expect(sizes.rows.map((r) => r.l)).to.deep.equal([72]);
    });

    it('keeps every point in exactly one tier: counts across tiers equal the points written, none twice', async () => {
      for (const org of [orgA, orgB, orgC]) {
        const fresh = await freshRows(knex, org);
        const compacted = await chunkRows(knex, org);
        expect(fresh.length + compacted.length, org).to.equal(written.get(org)!.length);
        expect(sortRows([...fresh, ...compacted]).map(key)).to.deep.equal(sortRows(written.get(org)!).map(key));
        const { rows } = await knex.raw<{ rows: { n: number }[] }>('select coalesce(sum(count), 0)::int as n from point_chunks where org_id = ?', [org]);
        expect(rows[0].n).to.equal(compacted.length);
      }
    });
  });

  if (split)
    describe('dropping a compacted window\'s partition', () => {
      let db: string;
      let k: Knex;
      let org: string;
      let sid: string;
      const d = day(-1);
      const leafInfo = (w: number) => ({ table: 'points' as const, day: d, name: partitionName('points', d, `w${String(new Date(w).getUTCHours()).padStart(2, '0')}`), windowStart: w, windowMs: W });
      const exists = async (name: string) => (await k.raw<{ rows: unknown[] }>('select 1 from pg_class where relname = ?', [name])).rows.length === 1;
      const w0 = d + 4 * HOUR;
      const leaf = leafInfo(w0);

      beforeEach(async () => {
        db = await cloneDatabase();
        k = knexFactory({ client: 'pg', connection: db, pool: { min: 0, max: 4 } });
        for (const t of TELEMETRY_TABLES) await parts(k).ensure(t, [d]);
        org = await insertOrg(k, 'drop');
        sid = await insertSeries(k, org, 'm');
        await insertPoints(k, org, sid, series(w0, w0 + W, MIN, (i) => i, 21));
      });
      afterEach(async () => {
        await k?.destroy();
        if (db) await dropDatabase(db);
      });

      /**
       * As the job does it: the window claimed, then in one REPEATABLE READ transaction its
       * snapshot once its writers are done, its points read (`read` of them), `between` on other
       * connections, and dropWindow.
       */
      async function dropAfter(between: () => Promise<unknown>, read = 120, repo = new CompactionRepository(k)): Promise<boolean> {
        await repo.claimWindow(leaf);
        return repo.transaction(async (trx) => {
          expect(await repo.snapshotAfterWriters(trx, leaf), 'the window\'s lock was had').to.equal(true);
          expect((await repo.readPoints(trx, leaf, org, [sid], w0, w0 + W)).reduce((n, m) => n + m.ts.length, 0)).to.equal(read);
          await between();
          return repo.dropWindow(trx, leaf);
        });
      }
      /** A long query's lock: ONLY the parent, which the drop locks after the window (without ONLY, every partition: the window's lock would be the one to time out). */
      const HOLD_POINTS = 'lock table only points in access share mode';
      /** One point committed as the writer commits (IngestRepository.commit: it counts points in claimed windows). */
      const writePoint = (ts: number, value: number) => new IngestRepository(k).commit([{ orgId: org, points: [{ ts, value }], seriesIds: [Number(sid)], logs: [], events: [] }]);
      const pointsIn = async (name: string) => Number((await k.raw<{ rows: { n: string }[] }>('select count(*) as n from ??', [name])).rows[0].n);
      const claims = async () => (await k.raw<{ rows: { late: string }[] }>('select late from point_window_claims where window_start = ?', [new Date(w0)])).rows.map((r) => Number(r.late));

      /**
       * Until the cumulative statistics count `n` changes to `name` (an idle connection flushes its
       * counts within 10 s, or at once after pg_stat_force_next_flush()).
       */
      async function statsCount(name: string, n: number): Promise<void> {
        for (const t0 = Date.now(); ; ) {
          const { rows } = await k.raw<{ rows: { m: number }[] }>('select coalesce(n_mod_since_analyze, 0)::float8 as m from pg_stat_user_tables where relname = ?', [name]);
          if ((rows[0]?.m ?? 0) >= n) return;
          if (Date.now() - t0 > 15_000) throw new Error(`${name}: its ${n} changes never reached the statistics`);
          await k.raw('select pg_stat_force_next_flush()').catch(() => undefined);
          await new Promise((r) => setTimeout(r, 50));
        }
      }

      it('the analyze job keeps statistics of the window partitions being written (the planner reads theirs)', async () => {
        await statsCount(leaf.name, 120);
        const analyzer = new PartitionAnalyzer(parts(k), { minRows: 100 }, logger);
        expect((await analyzer.run(NOW)).analyzed).to.deep.equal([leaf.name]);
        expect((await analyzer.run(NOW)).analyzed, 'nothing changed since').to.deep.equal([]);
      });

      it('drops it, and its claim, when no point came for it since the snapshot', async () => {
        expect(await dropAfter(async () => undefined)).to.equal(true);
        expect(await exists(leaf.name)).to.equal(false);
        expect(await exists(partitionName('points', d, 'w06')), 'the other windows stay').to.equal(true);
        expect(await claims()).to.deep.equal([]);
      });

      it('keeps it when the writer committed a point into it after the snapshot (the point counted in the claim)', async () => {
        // Locks waited for up to 10 s: the claim, not a busy lock, is what keeps it.
        expect(await dropAfter(() => writePoint(w0 + 30_001, 7), 120, new CompactionRepository(k, { dropLockTimeoutMs: 10_000 }))).to.equal(false);
        expect(await exists(leaf.name)).to.equal(true);
        expect(await pointsIn(leaf.name)).to.equal(121);
        expect(await claims()).to.deep.equal([1]);
      });

      it('a point committed after the claim but before the snapshot is read, and the window dropped', async () => {
        const repo = new CompactionRepository(k);
        await repo.claimWindow(leaf);
        await writePoint(w0 + 30_001, 7);
        expect(await claims(), 'counted in the claim').to.deep.equal([1]);
        const dropped = await repo.transaction(async (trx) => {
          expect(await repo.snapshotAfterWriters(trx, leaf)).to.equal(true);
          expect((await repo.readPoints(trx, leaf, org, [sid], w0, w0 + W)).reduce((n, m) => n + m.ts.length, 0)).to.equal(121);
          return repo.dropWindow(trx, leaf);
        });
        expect(dropped).to.equal(true);
        expect(await exists(leaf.name)).to.equal(false);
      });

      it('does not drop it while a writer that inserted into it after the snapshot has not committed (the writer holds the window: its lock stays busy)', async () => {
        let commit!: () => void;
        const go = new Promise<void>((r) => (commit = r));
        let writer: Promise<void> | undefined;
        const dropped = await dropAfter(async () => {
          let inserted!: () => void;
          const hasInserted = new Promise<void>((r) => (inserted = r));
          writer = k.transaction(async (trx) => {
            await insertPoints(trx, org, sid, [[w0 + 45_001, 9]]);
            inserted();
            await go;
          });
          await hasInserted;
        });
        commit();
        await writer;
        expect(dropped).to.equal(false);
        expect(await pointsIn(leaf.name)).to.equal(121);
      });

      it('does not drop it when its batches read fewer rows than it holds: the rows read are deleted, the others stay', async () => {
        const other = await insertSeries(k, org, 'other');
        await insertPoints(k, org, other, [[w0 + 1_000, 1]]);
        // A series the batches miss (as a defect in finding them would): its row must not go with the partition.
        const repo = new CompactionRepository(k);
        const find = repo.seriesWithPointsBefore.bind(repo);
        repo.seriesWithPointsBefore = async (...args) => (await find(...args)).filter((id) => id !== other);
        const r = await new CompactionService(repo, { compactAfterMs: 2 * HOUR, batchSeries: 10 }, logger).run(NOW);
        expect(r.windows_dropped).to.not.include(leaf.name);
        expect(r.windows_deleted).to.include(leaf.name);
        expect(await pointsIn(leaf.name)).to.equal(1);
        expect((await chunkRows(k, org)).length).to.equal(120);
      });

      it('a window too large for one transaction is moved out batch by batch, a transaction each, and then dropped', async () => {
        const other = await insertSeries(k, org, 'big');
        await insertPoints(k, org, other, series(w0, w0 + W, MIN, (i) => i * 2, 25));
        // Every window with rows counts as too large here.
        const repo = new CompactionRepository(k);
        const deleted: number[] = [];
        const del = repo.deletePoints.bind(repo);
        repo.deletePoints = async (...args) => {
          deleted.push(args[6]);
          return del(...args);
        };
        const r = await new CompactionService(repo, { compactAfterMs: 2 * HOUR, batchSeries: 1, wholeWindowMaxBytes: 0 }, logger).run(NOW);
        expect(r.windows_in_batches).to.deep.equal([leaf.name]);
        // Moved out by two batch transactions (each deleting its series' points), then dropped empty.
        expect(deleted).to.deep.equal([120, 120]);
        expect(r.windows_dropped).to.include(leaf.name);
        expect(r.batches, 'one transaction per series').to.equal(2);
        expect(r.points_compacted).to.equal(240);
        expect(await exists(leaf.name)).to.equal(false);
        expect((await chunkRows(k, org)).length).to.equal(240);
      });

      it('an aborted batch-by-batch window keeps what its committed batches moved, the rest in the window', async () => {
        const other = await insertSeries(k, org, 'big');
        await insertPoints(k, org, other, series(w0, w0 + W, MIN, (i) => i * 2, 26));
        const repo = new CompactionRepository(k);
        const abort = new AbortController();
        const upsert = repo.upsertChunks.bind(repo);
        // Aborted once the first batch has written its chunks (it commits; the next does not start).
        repo.upsertChunks = async (...args) => {
          await upsert(...args);
          abort.abort(new Error('stopped'));
        };
        const svc = new CompactionService(repo, { compactAfterMs: 2 * HOUR, batchSeries: 1, wholeWindowMaxBytes: 0, concurrency: 1 }, logger);
        const failure = await svc.run(NOW, abort.signal).catch((err: unknown) => err);
        expect((failure as Error).message).to.equal('stopped');
        expect(await exists(leaf.name)).to.equal(true);
        expect(await pointsIn(leaf.name)).to.equal(120);
        expect((await chunkRows(k, org)).length).to.equal(120);
      });

      it('a point the writer commits into another window leaves it to be dropped', async () => {
        expect(await dropAfter(() => writePoint(w0 + W + 1_000, 7))).to.equal(true);
        expect(await exists(leaf.name)).to.equal(false);
      });

      it('takes its snapshot once a writer that had inserted into the window committed: its point is read, and the window dropped', async () => {
        // A writer's transaction that inserted into the window before the claim and commits later.
        let commit!: () => void;
        const go = new Promise<void>((r) => (commit = r));
        let inserted!: () => void;
        const hasInserted = new Promise<void>((r) => (inserted = r));
        const writer = k.transaction(async (trx) => {
          await insertPoints(trx, org, sid, [[w0 + 45_001, 9]]);
          inserted();
          await go;
        });
        await hasInserted;
        const dropping = dropAfter(async () => undefined, 121, new CompactionRepository(k, { dropLockTimeoutMs: 10_000 }));
        dropping.catch(() => undefined);
        for (let i = 0; ; i++) {
          const waiting = await k.raw<{ rows: unknown[] }>('select 1 from pg_locks where relation = ?::regclass and not granted', [leaf.name]);
          if (waiting.rows.length) break;
          if (i > 400) throw new Error('the job never waited for the writer');
          await new Promise((r) => setTimeout(r, 10));
        }
        commit();
        await writer;
        // Taken before the writer committed, the snapshot would hold 120 points and the drop lose one.
        expect(await dropping).to.equal(true);
      });

      it('does not drop it when a writer of the window holds it past the lock timeout at the snapshot', async () => {
        const repo = new CompactionRepository(k);
        await repo.claimWindow(leaf);
        await k.transaction(async (writer) => {
          await insertPoints(writer, org, sid, [[w0 + 45_001, 9]]);
          const t0 = Date.now();
          expect(await repo.transaction((trx) => repo.snapshotAfterWriters(trx, leaf))).to.equal(false);
          expect(Date.now() - t0, 'bounded by the lock timeout').to.be.below(2_000);
        });
      });

      it('a window dropped since it was listed is skipped by the compaction, analyze and retention jobs', async () => {
        const dropAfterListing = <F extends (...args: never[]) => Promise<unknown>>(list: F): F =>
          (async (...args: Parameters<F>) => {
            const listed = await list(...args);
            await k.raw('drop table if exists ??', [leaf.name]);
            return listed;
          }) as F;
        // Compaction: the window listed, then gone.
        const repo = new CompactionRepository(k);
        repo.pointPartitions = dropAfterListing(repo.pointPartitions.bind(repo));
        const r = await new CompactionService(repo, { compactAfterMs: 2 * HOUR, batchSeries: 10 }, logger).run(NOW);
        expect(r.windows_dropped.concat(r.windows_deleted)).to.not.include(leaf.name);
        // Analyze: its statistics read, then gone.
        await parts(k).ensure('points', [w0], { exact: true });
        await insertPoints(k, org, sid, series(w0, w0 + W, MIN, (i) => i, 22));
        await statsCount(leaf.name, 120);
        const analyzed = parts(k);
        analyzed.statistics = dropAfterListing(analyzed.statistics.bind(analyzed));
        expect((await new PartitionAnalyzer(analyzed, { minRows: 100 }, logger).run(NOW)).analyzed).to.not.include(leaf.name);
        // Retention: listed, then gone (its rows are old enough to be deleted, not to drop the window).
        await parts(k).ensure('points', [w0], { exact: true });
        await insertPoints(k, org, sid, series(w0, w0 + W, MIN, (i) => i, 23));
        const listed = new PartitionsRepository(k, ['points', 'point_chunks', 'logs', 'events'], [], SPLIT_TABLES);
        listed.list = dropAfterListing(listed.list.bind(listed));
        const days: RetentionDays = { metrics: (NOW - (w0 + 30 * MIN)) / DAY_MS, logs: 30, events: 30 };
        const retention = new RetentionService(new RetentionRepository(k), listed, { retentionDays: async () => [{ orgId: org, days }] }, { defaults: days, idempotencyTtlMs: DAY_MS, deleteBatchSize: 1000 }, logger);
        await retention.run(NOW);
        expect(await exists(leaf.name)).to.equal(false);
        // A claim left for the vanished window (a run that claimed it and then found it gone) is
        // pruned by the next run.
        await k.raw('insert into point_window_claims (window_start) values (?) on conflict do nothing', [new Date(w0)]);
        expect(await claims()).to.deep.equal([0]);
        await service(k, 10).run(NOW);
        expect(await claims()).to.deep.equal([]);
      });

      describe('under maintenance (an autovacuum or ANALYZE of the window holds its SHARE UPDATE EXCLUSIVE lock)', () => {
        const HOLD_WINDOW = `lock table ${leaf.name} in share update exclusive mode`;

        it('waits for it to end, then drops the window rather than deleting its rows', async () => {
          const holder = await holdingLock(db, HOLD_WINDOW);
          const released = new Promise<void>((resolve) => setTimeout(() => void holder.release().then(resolve), 600));
          const repo = new CompactionRepository(k);
          // How long the run's wait for this window lasted: it must have met the holder.
          let waited = -1;
          const wait = repo.awaitMaintenance.bind(repo);
          repo.awaitMaintenance = async (w, ...rest) => {
            const t = Date.now();
            const free = await wait(w, ...rest);
            if (w.name === leaf.name) waited = Date.now() - t;
            return free;
          };
          let r: CompactionReport;
          try {
            r = await new CompactionService(repo, { compactAfterMs: 2 * HOUR, batchSeries: 10 }, logger).run(NOW);
          } finally {
            await released;
          }
          expect(waited, 'it waited for the holder').to.be.at.least(100);
          expect(r.windows_dropped).to.include(leaf.name);
          expect(r.windows_deleted).to.not.include(leaf.name);
          expect(await exists(leaf.name)).to.equal(false);
          expect((await chunkRows(k, org)).length).to.equal(120);
        });

        it('waits at most maintenanceWaitMs, then compacts by deletes; the next run drops the emptied window', async () => {
          const holder = await holdingLock(db, HOLD_WINDOW);
          let r: CompactionReport;
          const t0 = Date.now();
          try {
            r = await new CompactionService(new CompactionRepository(k), { compactAfterMs: 2 * HOUR, batchSeries: 10, maintenanceWaitMs: 300 }, logger).run(NOW);
          } finally {
            await holder.release();
          }
          expect(Date.now() - t0, 'bounded by the wait, not the holder').to.be.below(5_000);
          expect(r.windows_deleted).to.deep.equal([leaf.name]);
          expect(r.points_compacted).to.equal(120);
          expect(await pointsIn(leaf.name)).to.equal(0);
          expect((await chunkRows(k, org)).length).to.equal(120);
          expect((await service(k, 10).run(NOW)).windows_dropped).to.deep.equal([leaf.name]);
          expect(await exists(leaf.name)).to.equal(false);
        });

        it('a writer or a reader of the window (its other locks) is not waited for', async () => {
          const repo = new CompactionRepository(k);
          for (const lock of ['row exclusive', 'access share', 'exclusive']) {
            const holder = await holdingLock(db, `lock table ${leaf.name} in ${lock} mode`);
            try {
              const t0 = Date.now();
              expect(await repo.awaitMaintenance(leaf, 5_000), lock).to.equal(true);
              expect(Date.now() - t0, lock).to.be.below(1_000);
            } finally {
              await holder.release();
            }
          }
          const holder = await holdingLock(db, HOLD_WINDOW);
          try {
            expect(await repo.awaitMaintenance(leaf, 200), 'share update exclusive').to.equal(false);
          } finally {
            await holder.release();
          }
        });

        it('an abort (the job\'s timeout, shutdown) ends the wait with its reason', async () => {
          const holder = await holdingLock(db, HOLD_WINDOW);
          const controller = new AbortController();
          setTimeout(() => controller.abort(new Error('shutting down')), 200);
          const t0 = Date.now();
          let failure: unknown;
          try {
            failure = await service(k, 10).run(NOW, controller.signal).catch((err: unknown) => err);
          } finally {
            await holder.release();
          }
          expect(Date.now() - t0, 'not the whole wait').to.be.below(5_000);
          expect((failure as Error).message).to.equal('shutting down');
          expect(await pointsIn(leaf.name), 'nothing moved').to.equal(120);
        });
      });

      it('gives up within its lock timeout when points is busy (a long query), without an error', async () => {
        const holder = await holdingLock(db, HOLD_POINTS);
        try {
          const t0 = Date.now();
          expect(await dropAfter(async () => undefined)).to.equal(false);
          expect(Date.now() - t0, 'bounded by the lock timeout, not the holder').to.be.below(2_000);
        } finally {
          await holder.release();
        }
        expect(await exists(leaf.name)).to.equal(true);
      });

      it('the job deletes the rows instead when points stays busy, every point in one tier; the next run drops the emptied partition', async () => {
        const holder = await holdingLock(db, HOLD_POINTS);
        let r: CompactionReport;
        try {
          r = await service(k, 10).run(NOW);
        } finally {
          await holder.release();
        }
        // Every window needs the lock on points to be dropped, the empty ones too.
        expect([...r.windows_deleted].sort()).to.deep.equal(windowsBefore([d], HORIZON).sort());
        expect(r.windows_dropped).to.deep.equal([]);
        expect(r.points_compacted).to.equal(120);
        expect((await freshRows(k, org)).length).to.equal(0);
        expect((await chunkRows(k, org)).length).to.equal(120);
        const next = await service(k, 10).run(NOW);
        expect([...next.windows_dropped].sort()).to.deep.equal(windowsBefore([d], HORIZON).sort());
        expect(next.points_compacted).to.equal(0);
        expect(await exists(leaf.name)).to.equal(false);
        expect((await chunkRows(k, org)).length).to.equal(120);
      });
    });

  describe('alongside ingest', () => {
    /**
     * Inserts as the writer does: the partitions first (a compacted window's is made again), and
     * once more when one was dropped in between (SQLSTATE 23514, no partition for the row).
     */
    async function insertLikeTheWriter(org: string, sid: string, pts: Pt[]): Promise<void> {
      for (let attempt = 0; ; attempt++) {
        await parts().ensure('points', pts.map((x) => x[0]), { exact: true });
        try {
          // Its commit, which counts late points in the claimed windows they go to.
          await new IngestRepository(knex).commit([{ orgId: org, points: pts.map(([ts, value]) => ({ ts, value })), seriesIds: pts.map(() => Number(sid)), logs: [], events: [] }]);
          return;
        } catch (err) {
          // More tries than the writer's: this one writes into the windows being dropped all the time.
          if ((err as { code?: string }).code !== '23514' || attempt >= 20) throw err;
        }
      }
    }

    it('runs while points are inserted into the windows it compacts; after a last run every point is in exactly one tier', async () => {
      const org = await insertOrg(knex, 'concurrent');
      const sids = await Promise.all(Array.from({ length: 12 }, (_, i) => insertSeries(knex, org, `c${i}`)));
      const written: Row[] = [];
      let stop = false;
      let rounds = 0;
      const r = rng(11);
      const writer = (async () => {
        for (; !stop; rounds++) {
          const pts: Row[] = Array.from({ length: 200 }, () => [sids[Math.floor(r() * sids.length)], day(-2) + Math.floor(r() * (DAY_MS + 12 * HOUR)), Math.round(r() * 1e4) / 100]);
          for (const s of sids) {
            const mine = pts.filter((p) => p[0] === s);
            if (mine.length) await insertLikeTheWriter(org, s, mine.map(([, t, v]) => [t, v]));
          }
          written.push(...pts);
        }
      })();
      const svc = service(knex, 5);
      let merged = 0;
      let remade = 0;
      // At least five runs, and until the writer wrote a few rounds between them.
      for (let i = 0; i < 5 || (rounds < 4 && i < 500); i++) {
        const run = await svc.run(NOW);
        merged += run.chunks_merged;
        remade += run.windows_dropped.length;
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      stop = true;
      await writer;
      await svc.run(NOW);
      expect(merged, 'late points were merged while ingest went on').to.be.greaterThan(0);
      // Window partitions were dropped, made again for late points and dropped again.
      if (split) expect(remade, 'windows dropped over the runs').to.be.greaterThan(DAY_MS / W);
      const all = await allRows(knex, org);
      expect(all.length).to.equal(written.length);
      expect(sortRows(all).map(key)).to.deep.equal(sortRows(written).map(key));
      expect((await freshRows(knex, org)).every((p) => p[1] >= HORIZON)).to.equal(true);
    });
  });

  describe('an aborted run (the job\'s timeout, shutdown)', () => {
    it('stops between batches with the signal\'s reason; what it committed is whole', async () => {
      const db = await cloneDatabase();
      const k = knexFactory({ client: 'pg', connection: db, pool: { min: 0, max: 2 } });
      try {
        for (const t of TELEMETRY_TABLES) await parts(k).ensure(t, [day(-1), day(0)]);
        const org = await insertOrg(k, 'aborted');
        const rows: Row[] = [];
        for (let i = 0; i < 4; i++) {
          const s = await insertSeries(k, org, `s${i}`);
          const pts: Pt[] = Array.from({ length: 36 }, (_, j) => [day(-1) + j * 10 * MIN, j]);
          await insertPoints(k, org, s, pts);
          rows.push(...pts.map(([t, v]): Row => [s, t, v]));
        }
        const controller = new AbortController();
        const reason = new Error('timed out after 1 ms');
        class AbortingRepository extends CompactionRepository {
          override async readPoints(...args: Parameters<CompactionRepository['readPoints']>): Promise<MovedSeries[]> {
            const got = await super.readPoints(...args);
            if (got.length) controller.abort(reason);
            return got;
          }
        }
        // One batch at a time: the one in flight when the signal fires is the only one committed
        // (with more in flight, each of them is committed whole: compaction-batches.test.ts).
        const svc = new CompactionService(new AbortingRepository(k), { compactAfterMs: 2 * HOUR, batchSeries: 2, concurrency: 1 }, logger);
        const err = await svc.run(NOW, controller.signal).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).to.equal(reason);
        const inChunks = await chunkRows(k, org);
        // A plain day: one batch (2 series, one window of 2 h at 10 min: 12 points each) was
        // committed. A split day: a window is one transaction, rolled back whole (the signal is
        // checked before its next batch).
        expect(inChunks.length).to.equal(split ? 0 : 24);
        if (split) expect(Number((await k('points').count<{ count: string }[]>('* as count'))[0].count)).to.equal(rows.length);
        expect(sortRows(await allRows(k, org)).map(key)).to.deep.equal(sortRows(rows).map(key));
      } finally {
        await k.destroy();
        await dropDatabase(db);
      }
    });
  });

  describe('retention of compacted data', () => {
    it('deletes an org\'s chunks once their whole window has passed its retention, drops whole days, and keeps series that still have chunks', async () => {
      const db = await cloneDatabase();
      const k = knexFactory({ client: 'pg', connection: db, pool: { min: 0, max: 2 } });
      try {
        const p = parts(k);
        for (const t of TELEMETRY_TABLES) await p.ensure(t, [day(-3), day(-2), day(-1), day(0)]);
        const short = await insertOrg(k, 'short');
        const long = await insertOrg(k, 'long');
        // Last seen two days ago (the writer refreshes it lazily): kept while chunks are retained.
        const sShort = await insertSeries(k, short, 'm', day(-2));
        const sGone = await insertSeries(k, short, 'gone', day(-3));
        const sLong = await insertSeries(k, long, 'm', day(-2));
        const hourly = (from: number, to: number): Pt[] => Array.from({ length: (to - from) / HOUR }, (_, i) => [from + i * HOUR + 30 * MIN, i]);
        await insertPoints(k, short, sShort, hourly(day(-2), day(0)));
        await insertPoints(k, short, sGone, hourly(day(-3), day(-2)));
        await insertPoints(k, long, sLong, hourly(day(-3), day(0)));
        await service(k, 10).run(NOW);
        expect(await k('points').where('ts', '<', new Date(day(0))).count<{ count: number }[]>('* as count')).to.deep.equal([{ count: 0 }]);

        const days = (n: number): RetentionDays => ({ metrics: n, logs: n, events: n });
        const policies = { retentionDays: async () => [
          { orgId: short, days: days(1) },
          { orgId: long, days: days(3) },
        ] };
        const retention = new RetentionService(new RetentionRepository(k), p, policies, { defaults: days(30), deleteBatchSize: 2, idempotencyTtlMs: HOUR }, logger);
        const r = await retention.run(NOW);
        // short's cutoff is yesterday 13:17: windows of yesterday up to 10:00 (ending by 12:00) go,
        // 12:00 (ending 14:00, after the cutoff) stays; long's cutoff (3 days) is inside day −3.
        const windowsOf = async (org: string) => (await chunks(k, org)).map((c) => (c.ts.getTime() - day(0)) / HOUR);
        expect(await windowsOf(short)).to.deep.equal([-12, -10, -8, -6, -4, -2]);
        // short: day −2 (12), day −1 until 10:00 (6), 'gone' on day −3 (12); long: day −3 until 10:00 (6).
        expect(r.rows_deleted.point_chunks).to.equal(12 + 6 + 12 + 6);
        expect(r.dropped_partitions).to.deep.equal([]);
        const longWindows = await windowsOf(long);
        expect(longWindows[0]).to.equal(-72 + 12);
        expect(longWindows).to.have.length(30);
        expect(await k('series').where({ org_id: short }).pluck('name')).to.deep.equal(['m']);

        // A day later every org's retention has passed day −3: its chunk partition goes whole.
        const later = await retention.run(NOW + 2 * DAY_MS);
        expect(later.dropped_partitions).to.include(partitionName('point_chunks', day(-3)));
        // Points of day −3: its partition (plain), or none left (its windows dropped by compaction).
        if (!split) expect(later.dropped_partitions).to.include(partitionName('points', day(-3)));
        else expect((await p.list('points')).filter((x) => x.day <= day(-1))).to.deep.equal([]);
      } finally {
        await k.destroy();
        await dropDatabase(db);
      }
    });
  });

  describe('CLI, backups', () => {
    let db: string;
    let k: Knex;
    let env: Record<string, string>;
    let org: string;
    let written: Row[];
    const now = Date.now();
    before(async () => {
      db = await cloneDatabase();
      env = testEnv(db, { SENTINEL_BACKUPS_DIR: scratchDir('sentinel-backups-'), SENTINEL_LOG_LEVEL: 'warn' });
      k = knexFactory({ client: 'pg', connection: db, pool: { min: 0, max: 2 } });
      const p = parts(k);
      for (const t of TELEMETRY_TABLES) await p.ensure(t, [now - DAY_MS, now]);
      org = await insertOrg(k, 'cli');
      written = [];
      for (let i = 0; i < 3; i++) {
        const s = await insertSeries(k, org, `cli${i}`);
        const pts = series(now - DAY_MS + HOUR, now, 5 * MIN, (j) => j * 1.25 + i, 30 + i);
        await insertPoints(k, org, s, pts);
        written.push(...pts.map(([t, v]): Row => [s, t, v]));
      }
    });
    after(async () => {
      await k?.destroy();
      if (db) await dropDatabase(db);
    });

    it('sentinel jobs run compaction compacts with the configured storage.compact_after and prints a report', async () => {
      const r = await cli(['jobs', 'run', 'compaction', '--json'], env);
      expect(r.code, r.stderr).to.equal(0);
      const report = JSON.parse(r.stdout) as CompactionReport;
      const horizon = Math.floor((Date.parse(report.now) - 2 * HOUR) / W) * W;
      expect(report.horizon).to.equal(new Date(horizon).toISOString());
      expect(report.points_compacted).to.equal(written.filter((x) => x[1] < horizon).length).and.be.greaterThan(0);
      expect((await freshRows(k, org)).every((x) => x[1] >= horizon)).to.equal(true);
      expect(sortRows(await allRows(k, org)).map(key)).to.deep.equal(sortRows(written).map(key));

      const human = await cli(['jobs', 'run', 'compaction'], env);
      expect(human.code, human.stderr).to.equal(0);
      expect(human.stdout).to.match(/^compaction finished in \d+ ms \(windows ending by /).and.contain('points compacted: ');
      const shorter = await cli(['jobs', 'run', 'compaction'], { ...env, SENTINEL_STORAGE_COMPACT_AFTER: '5m' });
      expect(shorter.code, shorter.stderr).to.equal(2);
      expect(shorter.stderr).to.contain('storage.compact_after').and.contain('at least 10m');
    });

    it('a backup restores both tiers: the same points rows and the same chunk rows, bytes included', async () => {
      expect((await chunks(k, org)).length).to.be.greaterThan(0);
      expect((await freshRows(k, org)).length).to.be.greaterThan(0);
      const b = await cli(['backup', 'create', '--json'], env);
      expect(b.code, b.stderr).to.equal(0);
      const { id } = JSON.parse(b.stdout) as { id: string };
      const target = await emptyDatabase();
      try {
        const r = await cli(['backup', 'restore', id, '--yes', '--database-url', target], env);
        expect(r.code, r.stderr).to.equal(0);
        const source = await tableChecksums(db);
        const restored = await tableChecksums(target);
        for (const t of ['points', 'point_chunks', 'series']) {
          expect(source.get(t)!.rows, t).to.be.greaterThan(0);
          expect(restored.get(t), t).to.deep.equal(source.get(t));
        }
        const rk = knexFactory({ client: 'pg', connection: target, pool: { min: 0, max: 1 } });
        try {
          expect(sortRows(await allRows(rk, org)).map(key)).to.deep.equal(sortRows(written).map(key));
          // Partitions came back too: the restored database compacts and takes late points.
          expect((await new PartitionsRepository(rk, ['point_chunks']).list()).length).to.be.greaterThan(0);
          // The same partitions: days, or the window partitions there were (the compacted ones dropped).
          const layout = async (kk: Knex) =>
            (
              await kk.raw<{ rows: { name: string; kind: string; parent: string }[] }>(
                `select c.relname as name, c.relkind::text as kind, p.relname as parent from pg_inherits i join pg_class c on c.oid = i.inhrelid
                   join pg_class p on p.oid = i.inhparent where c.relname like 'point%' order by 1`,
              )
            ).rows;
          const was = await layout(k);
          expect(was.some((r) => /^points_p\d{8}_w\d\d$/.test(r.name)), 'window partitions').to.equal(split);
          expect(await layout(rk)).to.deep.equal(was);
        } finally {
          await rk.destroy();
        }
      } finally {
        await dropDatabase(target);
      }
    });
  });
});
