import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { pino } from 'pino';
import { DAY_MS, dayStart, PartitionsRepository } from '../../src/db/partitions.js';
import { chunkAggregates, decodeChunk, type ChunkAggregates } from '../../src/features/telemetry/chunk-codec.js';
import { CompactionRepository } from '../../src/features/telemetry/compaction-repository.js';
import { CompactionService } from '../../src/features/telemetry/compaction-service.js';
import { TELEMETRY_TABLES } from '../../src/features/telemetry/telemetry-tables.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';

/**
 * How a compaction batch takes its points (a SELECT, then a DELETE of the same rows, in one
 * REPEATABLE READ snapshot) and how batches run side by side: times floored to whole ms from the
 * stored microseconds, points written or deleted by other sessions between the two statements,
 * and batches in flight at once.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
const NOW = dayStart(Date.now()) + 13 * HOUR + 17 * MIN;
const YESTERDAY = dayStart(NOW) - DAY_MS;
/** A day before PostgreSQL's epoch (2000-01-01): its stored microseconds are negative. */
const OLD_DAY = Date.UTC(1999, 11, 30);
const logger = pino({ level: 'silent' });

/** One point: series, time (ms), value, as both tiers hold it. */
type Row = [string, number, number];
const key = (r: Row) => `${r[0]}|${r[1]}|${Object.is(r[2], -0) ? '-0' : String(r[2])}`;

describe('compaction: taking a batch of points', function () {
  this.timeout(120_000);
  let url: string;
  let knex: Knex;
  let org: string;

  beforeEach(async () => {
    url = await cloneDatabase();
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 6 } });
    for (const t of TELEMETRY_TABLES) await new PartitionsRepository(knex, TELEMETRY_TABLES).ensure(t, [OLD_DAY, YESTERDAY, dayStart(NOW)]);
    [{ id: org }] = await knex('organizations').insert({ slug: 'o', name: 'o' }).returning<{ id: string }[]>('id');
  });
  afterEach(async () => {
    await knex?.destroy();
    if (url) await dropDatabase(url);
  });

  async function series(n: number): Promise<string[]> {
    const rows = await knex('series')
      .insert(Array.from({ length: n }, (_, i) => ({ org_id: org, name: `s${i}`, labels: '{}', labels_hash: Buffer.from(`s${i}`), last_seen_at: new Date(NOW) })))
      .returning<{ id: string }[]>('id');
    return rows.map((r) => String(r.id));
  }

  /** Points as (series, timestamptz text with µs, float8 text). */
  async function insertRaw(rows: [string, string, string][]): Promise<void> {
    await knex.raw(`insert into points (org_id, series_id, ts, value) select ?::uuid, s, t::timestamptz, v::float8 from unnest(?::bigint[], ?::text[], ?::text[]) as x(s, t, v)`, [
      org,
      rows.map((r) => r[0]),
      rows.map((r) => r[1]),
      rows.map((r) => r[2]),
    ]);
  }

  async function fresh(): Promise<Row[]> {
    const { rows } = await knex.raw<{ rows: { s: string; t: number; v: number }[] }>(
      'select series_id::text as s, floor(extract(epoch from ts) * 1000)::float8 as t, value as v from points where org_id = ?',
      [org],
    );
    return rows.map((r) => [r.s, r.t, r.v]);
  }

  async function compacted(): Promise<Row[]> {
    const { rows } = await knex.raw<{ rows: { s: string; data: Buffer }[] }>('select series_id::text as s, data from point_chunks where org_id = ? order by series_id, ts', [org]);
    const out: Row[] = [];
    for (const r of rows) {
      const d = decodeChunk(r.data);
      d.ts.forEach((t, i) => out.push([r.s, t, d.values[i]]));
    }
    return out;
  }

  const sorted = (rows: Row[]) => rows.map(key).sort();

  it('stores each time as its whole milliseconds, floored, ties in a millisecond ordered by value (NaN last), before 2000 too', async () => {
    const [s] = await series(1);
    const at = (day: number, us: string) => `${new Date(day + 3 * HOUR).toISOString().slice(0, 19)}.${us}Z`;
    await insertRaw([
      [s, at(YESTERDAY, '000999'), 'NaN'],
      [s, at(YESTERDAY, '000001'), '7'],
      [s, at(YESTERDAY, '000500'), '-0'],
      [s, at(YESTERDAY, '001000'), '2'],
      [s, at(YESTERDAY, '123999'), '3'],
      [s, at(OLD_DAY, '000999'), '5'],
      [s, at(OLD_DAY, '000001'), '4'],
      [s, at(OLD_DAY, '999999'), '6'],
    ]);
    const want = await fresh();
    await new CompactionService(new CompactionRepository(knex), { compactAfterMs: 2 * HOUR, batchSeries: 10 }, logger).run(NOW);
    expect(await fresh()).to.deep.equal([]);
    const got = await compacted();
    expect(sorted(got)).to.deep.equal(sorted(want));
    const y = YESTERDAY + 3 * HOUR;
    const o = OLD_DAY + 3 * HOUR;
    expect(got.map((r) => r[1])).to.deep.equal([o, o, o + 999, y, y, y, y + 1, y + 123]);
    expect(got.map((r) => key(r).split('|')[2])).to.deep.equal(['4', '5', '6', '-0', '7', 'NaN', '2', '3']);
  });

  it('tries a batch again when another session deleted one of its points between its read and its delete', async () => {
    const ids = await series(2);
    const pts: [string, string, string][] = [];
    for (const s of ids) for (let i = 0; i < 10; i++) pts.push([s, new Date(YESTERDAY + i * MIN).toISOString(), String(i)]);
    await insertRaw(pts);
    const other = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
    let reads = 0;
    try {
      class Interfering extends CompactionRepository {
        override async deletePoints(...args: Parameters<CompactionRepository['deletePoints']>): Promise<void> {
          // First attempt only: a retention-like delete of one point commits in between.
          if (reads++ === 0) await other.raw('delete from points where series_id = ? and ts = ?', [ids[0], new Date(YESTERDAY + 5 * MIN)]);
          return super.deletePoints(...args);
        }
      }
      const report = await new CompactionService(new Interfering(knex), { compactAfterMs: 2 * HOUR, batchSeries: 10 }, logger).run(NOW);
      expect(reads).to.equal(2);
      expect(report.points_compacted).to.equal(19);
    } finally {
      await other.destroy();
    }
    expect(await fresh()).to.deep.equal([]);
    const want = pts.filter((p) => !(p[0] === ids[0] && p[2] === '5')).map((p): Row => [p[0], Date.parse(p[1]), Number(p[2])]);
    expect(sorted(await compacted())).to.deep.equal(sorted(want));
  });

  it('leaves a point written between a batch\'s read and its delete in points, for the next run', async () => {
    const [s] = await series(1);
    const pts: [string, string, string][] = Array.from({ length: 10 }, (_, i) => [s, new Date(YESTERDAY + i * MIN).toISOString(), String(i)]);
    await insertRaw(pts);
    const late: [string, string, string] = [s, new Date(YESTERDAY + 30 * MIN + 1).toISOString(), '99'];
    const other = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
    try {
      let once = true;
      class Interfering extends CompactionRepository {
        override async deletePoints(...args: Parameters<CompactionRepository['deletePoints']>): Promise<void> {
          if (once) {
            once = false;
            await other.raw(`insert into points (org_id, series_id, ts, value) values (?, ?, ?, ?)`, [org, s, late[1], 99]);
          }
          return super.deletePoints(...args);
        }
      }
      const svc = new CompactionService(new Interfering(knex), { compactAfterMs: 2 * HOUR, batchSeries: 10 }, logger);
      expect((await svc.run(NOW)).points_compacted).to.equal(10);
      expect(await fresh()).to.deep.equal([[s, Date.parse(late[1]), 99]]);
      const second = await svc.run(NOW);
      expect([second.points_compacted, second.chunks_merged]).to.deep.equal([1, 1]);
    } finally {
      await other.destroy();
    }
    expect(await fresh()).to.deep.equal([]);
    expect(sorted(await compacted())).to.deep.equal(sorted([...pts, late].map((p): Row => [p[0], Date.parse(p[1]), Number(p[2])])));
  });

  it('stores each chunk\'s aggregates bit for bit: -0, NaN, ±Infinity and subnormals as themselves', async () => {
    const ids = await series(4);
    const vals = [['-0', '-0', '-0'], ['Infinity', 'NaN', '-Infinity'], ['-0', '5e-324', '-5e-324'], ['NaN', '-0', '1.5']];
    await insertRaw(ids.flatMap((s, i) => vals[i].map((v, k): [string, string, string] => [s, new Date(YESTERDAY + k * MIN).toISOString(), v])));
    await new CompactionService(new CompactionRepository(knex), { compactAfterMs: 2 * HOUR, batchSeries: 10 }, logger).run(NOW);
    const { rows } = await knex.raw<{ rows: ({ s: string; data: Buffer; first_ts: Date; last_ts: Date; first_value: number; last_value: number } & ChunkAggregates)[] }>(
      'select series_id::text as s, data, count, first_ts, last_ts, min, max, sum, first_value, last_value, increase from point_chunks where org_id = ? order by series_id',
      [org],
    );
    expect(rows.map((r) => r.s)).to.deep.equal(ids);
    for (const r of rows) {
      const d = decodeChunk(r.data);
      const want = chunkAggregates(d.ts, d.values);
      const got: ChunkAggregates = { count: r.count, firstTs: r.first_ts.getTime(), lastTs: r.last_ts.getTime(), min: r.min, max: r.max, sum: r.sum, firstValue: r.first_value, lastValue: r.last_value, increase: r.increase };
      for (const [k, v] of Object.entries(want)) expect(Object.is(got[k as keyof ChunkAggregates], v), `series ${r.s} ${k}: ${got[k as keyof ChunkAggregates]} vs ${v}`).to.equal(true);
    }
    // The all -0 series: every value aggregate is -0, not 0.
    expect(Object.is(rows[0].min, -0) && Object.is(rows[0].max, -0) && Object.is(rows[0].sum, -0)).to.equal(true);
  });

  describe('batches in flight at once', () => {
    /** 6 series × 3 windows of yesterday: with batchSeries 2, nine batches. */
    async function nineBatches(): Promise<Row[]> {
      const ids = await series(6);
      const pts: [string, string, string][] = [];
      for (const s of ids) for (let i = 0; i < 36; i++) pts.push([s, new Date(YESTERDAY + i * 10 * MIN).toISOString(), `${i}.5`]);
      await insertRaw(pts);
      return pts.map((p) => [p[0], Date.parse(p[1]), Number(p[2])]);
    }

    /** A repository that counts the batch transactions open at once. */
    function counting(): { repo: CompactionRepository; most: () => number } {
      let open = 0;
      let most = 0;
      class Counting extends CompactionRepository {
        override async transaction<T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
          open++;
          most = Math.max(most, open);
          try {
            return await super.transaction(async (trx) => {
              await new Promise((r) => setTimeout(r, 20));
              return fn(trx);
            });
          } finally {
            open--;
          }
        }
      }
      return { repo: new Counting(knex), most: () => most };
    }

    it('runs two at a time by default, one when concurrency is 1, and compacts every point either way', async () => {
      const rows = await nineBatches();
      const two = counting();
      const report = await new CompactionService(two.repo, { compactAfterMs: 2 * HOUR, batchSeries: 2 }, logger).run(NOW);
      expect([report.batches, report.points_compacted, two.most()]).to.deep.equal([9, rows.length, 2]);
      expect(await fresh()).to.deep.equal([]);
      expect(sorted(await compacted())).to.deep.equal(sorted(rows));

      await knex('point_chunks').del();
      await insertRaw(rows.map((r) => [r[0], new Date(r[1]).toISOString(), String(r[2])]));
      const one = counting();
      await new CompactionService(one.repo, { compactAfterMs: 2 * HOUR, batchSeries: 2, concurrency: 1 }, logger).run(NOW);
      expect(one.most()).to.equal(1);
      expect(sorted(await compacted())).to.deep.equal(sorted(rows));
    });

    it('a failing batch fails the run once the others in flight have ended; what they committed is whole', async () => {
      const rows = await nineBatches();
      const boom = new Error('boom');
      let calls = 0;
      class Failing extends CompactionRepository {
        override async upsertChunks(...args: Parameters<CompactionRepository['upsertChunks']>): Promise<void> {
          // The second batch fails (after a delay, the first and third are in flight or done).
          if (++calls === 2) {
            await new Promise((r) => setTimeout(r, 50));
            throw boom;
          }
          return super.upsertChunks(...args);
        }
      }
      const err = await new CompactionService(new Failing(knex), { compactAfterMs: 2 * HOUR, batchSeries: 2 }, logger).run(NOW).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.equal(boom);
      const inChunks = await compacted();
      // Whole batches only (2 series × 12 points each), fewer than all, the failed one not among them.
      expect(inChunks.length % 24).to.equal(0);
      expect(inChunks.length).to.be.within(24, rows.length - 24);
      expect(sorted([...(await fresh()), ...inChunks])).to.deep.equal(sorted(rows));
      // The next run carries on.
      await new CompactionService(new CompactionRepository(knex), { compactAfterMs: 2 * HOUR, batchSeries: 2 }, logger).run(NOW);
      expect(sorted(await compacted())).to.deep.equal(sorted(rows));
    });
  });
});
