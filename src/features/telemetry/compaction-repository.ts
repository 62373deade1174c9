import type { Knex } from 'knex';
import type pg from 'pg';
import { checkedPartitionName, DAY_MS, PartitionsRepository, type PartitionInfo } from '../../db/partitions.js';
import type { ChunkAggregates } from './chunk-codec.js';

/**
 * One series' points as compaction moves them: epoch-ms times and their values, in ascending
 * (ts, value) order as PostgreSQL orders float8 (NaN last, -0 equal to 0).
 */
export interface MovedSeries {
  seriesId: string;
  ts: number[];
  values: number[];
}

/** One chunk row as compaction writes it (point_chunks, see its migration). */
export interface ChunkRow extends ChunkAggregates {
  seriesId: string;
  /** The window's start (epoch ms, a multiple of the window). */
  windowStart: number;
  data: Buffer;
  /** The halves' aggregates (encodeChunkSub); null: readers decode the data. */
  sub: Buffer | null;
}

/** How long emptying a compacted day partition waits for its lock (ingest and queries queue behind the request meanwhile). */
const TRUNCATE_LOCK_TIMEOUT_MS = 100;
/**
 * How long the emptiness check and the TRUNCATE may take while the exclusive lock is held. After
 * the partition's VACUUM both are instant; this bounds them should the VACUUM have been skipped
 * (dead rows left to scan), instead of holding the lock for as long as the pool's timeout allows.
 */
const TRUNCATE_STATEMENT_TIMEOUT_MS = 1000;
/** SQLSTATE lock_not_available: `lock_timeout` expired. */
const LOCK_NOT_AVAILABLE = '55P03';
/** SQLSTATE query_canceled: `statement_timeout` expired. */
const QUERY_CANCELED = '57014';

/**
 * A float8 parameter as itself: node-postgres sends a number as String(v), which makes -0 a 0; the
 * stored aggregates must be those of the points bit for bit (a chunk's `sub` derives its halves'
 * from them, checked against the encoder's).
 */
const float8 = (v: number): number | string => (Object.is(v, -0) ? '-0' : v);

/** Before any series id (ids are positive: series.id is a bigserial). */
const NO_SERIES = '0';

/**
 * The SQL of the compaction job: which (partition, org, series) have points to compact, and
 * the one transaction that moves a batch of series' points of one window into their chunks.
 * Partition names are checked against our naming scheme and passed as identifier bindings
 * (`??`), never pasted into SQL.
 */
export class CompactionRepository {
  private readonly points: PartitionsRepository<'points'>;
  private readonly chunks: PartitionsRepository<'point_chunks'>;

  constructor(private readonly knex: Knex) {
    this.points = new PartitionsRepository(knex, ['points']);
    this.chunks = new PartitionsRepository(knex, ['point_chunks']);
  }

  /** The day-partitions of points, oldest first. */
  async pointPartitions(): Promise<PartitionInfo<'points'>[]> {
    return (await this.points.list('points')).sort((a, b) => a.day - b.day);
  }

  /** The chunk table's partition of `day` (created if missing, as the writer does for points). */
  async ensureChunkPartition(day: number): Promise<void> {
    await this.chunks.ensure('point_chunks', [day]);
  }

  /** The distinct orgs with rows in one points partition (PartitionsRepository.orgsIn). */
  async orgsInPartition(p: PartitionInfo<'points'>): Promise<string[]> {
    return this.points.orgsIn(p);
  }

  /**
   * Up to `limit` series of one org, in id order after `after` (null: from the first), that have
   * a point before `before` in the partition. A loose index scan over (org_id, series_id, ts):
   * two index descents per series (the next id; its oldest point), so a day of fresh points is
   * not read to find the few series with something to compact. The recursion is evaluated only
   * as far as the LIMIT pulls it.
   */
  async seriesWithPointsBefore(p: PartitionInfo<'points'>, orgId: string, before: Date, after: string | null, limit: number): Promise<string[]> {
    const name = checkedPartitionName(p);
    const { rows } = await this.knex.raw<{ rows: { id: string }[] }>(
      `with recursive s(id) as (
         (select series_id from ?? where org_id = ? and series_id > ?::bigint order by series_id limit 1)
         union all
         select (select t.series_id from ?? t where t.org_id = ? and t.series_id > s.id order by t.series_id limit 1) from s where s.id is not null
       )
       select s.id::text as id from s
        where s.id is not null and exists (select 1 from ?? x where x.org_id = ? and x.series_id = s.id and x.ts < ?)
        limit ?`,
      [name, orgId, after ?? NO_SERIES, name, orgId, name, orgId, before, limit],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Which of the windows starting at `windowStarts` hold a point of these series (one org) in the
   * partition: one index probe per series and window, so a batch skips its empty windows
   * without opening a transaction for each.
   */
  async windowsWithPoints(p: PartitionInfo<'points'>, orgId: string, seriesIds: readonly string[], windowStarts: readonly number[], windowMs: number): Promise<number[]> {
    const name = checkedPartitionName(p);
    const { rows } = await this.knex.raw<{ rows: { w: number }[] }>(
      `select w from unnest(?::float8[]) as w
        where exists (select 1 from ?? x where x.org_id = ? and x.series_id = any(?::bigint[])
                         and x.ts >= to_timestamp(w / 1000) and x.ts < to_timestamp((w + ?) / 1000))
        order by w`,
      [windowStarts as number[], name, orgId, seriesIds as string[], windowMs],
    );
    return rows.map((r) => r.w);
  }

  /** Runs `fn` in one transaction (committed when it resolves, rolled back when it throws). */
  transaction<T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.knex.transaction(fn);
  }

  /**
   * Deletes the points of `seriesIds` (one org) in [from, to) from the partition and returns
   * them, one entry per series. Times come back as epoch milliseconds (every ingest path stores
   * milliseconds; a sub-millisecond part is floored). PostgreSQL packs each series' points into
   * one value — per point its time and its value as float8send (big-endian IEEE 754, so -0 and
   * NaN come back bit for bit), in (ts, value) order — sent base64: one row per series, not one
   * per point, for the driver to parse. Row locks only: inserts and reads of the table go on
   * meanwhile.
   */
  async takePoints(trx: Knex.Transaction, p: PartitionInfo<'points'>, orgId: string, seriesIds: readonly string[], from: number, to: number): Promise<MovedSeries[]> {
    const name = checkedPartitionName(p);
    if (from < p.day || to > p.day + DAY_MS) throw new Error(`window [${from}, ${to}) is not inside partition ${name}`);
    const { rows } = await trx.raw<{ rows: { series_id: string; n: number; pts: string }[] }>(
      `with d as (
         delete from ?? where org_id = ? and series_id = any(?::bigint[]) and ts >= ? and ts < ?
         returning series_id, floor(extract(epoch from ts) * 1000)::float8 as t, value
       )
       select series_id::text as series_id, count(*)::int4 as n,
              encode(string_agg(float8send(t) || float8send(value), ''::bytea order by t, value), 'base64') as pts
         from d group by series_id`,
      [name, orgId, seriesIds as string[], new Date(from), new Date(to)],
    );
    return rows.map((r) => {
      const buf = Buffer.from(r.pts, 'base64');
      if (buf.length !== r.n * 16) throw new Error(`series ${r.series_id}: ${buf.length} bytes for ${r.n} points`);
      const ts = new Array<number>(r.n);
      const values = new Array<number>(r.n);
      for (let i = 0, o = 0; i < r.n; i++, o += 16) {
        ts[i] = buf.readDoubleBE(o);
        values[i] = buf.readDoubleBE(o + 8);
      }
      return { seriesId: r.series_id, ts, values };
    });
  }

  /**
   * The existing chunks of these series in one window, locked (FOR UPDATE) until the
   * transaction ends: late points are merged into them and the result written back.
   */
  async lockChunks(trx: Knex.Transaction, orgId: string, seriesIds: readonly string[], windowStart: number): Promise<Map<string, Buffer>> {
    const { rows } = await trx.raw<{ rows: { series_id: string; data: Buffer }[] }>(
      `select series_id::text as series_id, data from point_chunks
        where org_id = ? and series_id = any(?::bigint[]) and ts = ?
        for update`,
      [orgId, seriesIds as string[], new Date(windowStart)],
    );
    return new Map(rows.map((r) => [r.series_id, r.data]));
  }

  /** Inserts the chunks, replacing any of the same (org, series, window). */
  async upsertChunks(trx: Knex.Transaction, orgId: string, chunks: readonly ChunkRow[]): Promise<void> {
    if (!chunks.length) return;
    const rows = chunks.map((c) => ({
      org_id: orgId,
      series_id: c.seriesId,
      ts: new Date(c.windowStart),
      first_ts: new Date(c.firstTs),
      last_ts: new Date(c.lastTs),
      count: c.count,
      min: float8(c.min),
      max: float8(c.max),
      sum: float8(c.sum),
      first_value: float8(c.firstValue),
      last_value: float8(c.lastValue),
      increase: float8(c.increase),
      data: c.data,
      sub: c.sub,
    }));
    await trx('point_chunks').insert(rows).onConflict(['org_id', 'series_id', 'ts']).merge();
  }

  /**
   * Empties a points partition whose points were all compacted, giving its table and index space
   * back to the file system (a VACUUM only makes it reusable, and never shrinks an index). Meant
   * to run after vacuumPartition: the heap's dead rows are gone and its empty tail truncated, so
   * the check that it is still empty (a late point may have arrived since) reads next to nothing.
   * Its exclusive lock is waited for at most TRUNCATE_LOCK_TIMEOUT_MS, and the check and the
   * TRUNCATE under it may take at most TRUNCATE_STATEMENT_TIMEOUT_MS: ingest and queries touching
   * that day wait no longer than that. Returns false (nothing done) when the lock was not had in
   * time, the check ran out of time, or a point is there.
   */
  async truncateIfEmpty(p: PartitionInfo<'points'>): Promise<boolean> {
    const name = checkedPartitionName(p);
    try {
      return await this.knex.transaction(async (trx) => {
        await trx.raw(`set local lock_timeout = ${TRUNCATE_LOCK_TIMEOUT_MS}`);
        await trx.raw(`set local statement_timeout = ${TRUNCATE_STATEMENT_TIMEOUT_MS}`);
        await trx.raw('lock table ?? in access exclusive mode', [name]);
        const { rows } = await trx.raw<{ rows: { any: boolean }[] }>('select exists (select 1 from ??) as any', [name]);
        if (rows[0].any) return false;
        await trx.raw('truncate table ??', [name]);
        return true;
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === LOCK_NOT_AVAILABLE || code === QUERY_CANCELED) return false;
      throw err;
    }
  }

  /**
   * VACUUM (and ANALYZE) of a points partition whose points were all compacted, so its space is
   * reused at once, the next run's index scans do not walk dead entries, and its now empty heap
   * tail is truncated (what makes truncateIfEmpty's check instant). It takes no exclusive lock on
   * the table: ingest and queries go on meanwhile. Skipped, not waited for, when something holds a
   * conflicting lock (an autovacuum, a drop).
   */
  async vacuumPartition(p: PartitionInfo<'points'>): Promise<void> {
    const name = checkedPartitionName(p);
    // VACUUM cannot run in a transaction (so no SET LOCAL): the pool's statement_timeout, meant
    // for API queries, is lifted on one connection for it and restored after.
    const client = this.knex.client as { acquireConnection(): Promise<pg.ClientBase>; releaseConnection(c: pg.ClientBase): Promise<void> };
    const conn = await client.acquireConnection();
    try {
      await conn.query('set statement_timeout = 0');
      await conn.query(`vacuum (analyze, skip_locked) ${name}`);
    } finally {
      await conn.query('reset statement_timeout').catch(() => undefined);
      await client.releaseConnection(conn);
    }
  }
}
