import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import { withPooledConnection } from '../../db/database.js';
import { SQLSTATE, sqlState } from '../../db/pg-errors.js';
import { checkedPartitionName, partitionEnd, partitionStart, PartitionsRepository, type PartitionInfo } from '../../db/partitions.js';
import { cmpFloat8, type ChunkAggregates } from './chunk-codec.js';
import { chunkHeadSql, POINT_WINDOWS } from './telemetry-tables.js';

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

/**
 * How long emptying a compacted day partition waits for its lock: ingest and queries of that day
 * queue behind the request meanwhile, and then wait while it is held (at most
 * TRUNCATE_STATEMENT_TIMEOUT_MS a statement), so together well within the job's 100 ms bound.
 */
const TRUNCATE_LOCK_TIMEOUT_MS = 50;
/**
 * How long the emptiness check and the TRUNCATE may each take while the exclusive lock is held.
 * Both are instant on a heap of at most TRUNCATE_MAX_HEAP_BYTES; this bounds them anyway.
 */
const TRUNCATE_STATEMENT_TIMEOUT_MS = 20;
/**
 * A points partition whose heap is larger than this is not emptied (no lock is even asked for):
 * it still holds rows, live ones or dead ones no VACUUM has removed yet (the job's VACUUM gives up
 * after VACUUM_LOCK_TIMEOUT_MS for a lock held elsewhere), and the emptiness check under the
 * exclusive lock would read them all — measured: ~0.95 s over a day of 2.9 M deleted points,
 * every reader of that day waiting. A VACUUM of an emptied partition truncates its heap to
 * nothing; the next run tries again.
 */
export const TRUNCATE_MAX_HEAP_BYTES = 1 << 20;
/**
 * How long the VACUUM of a compacted day waits for its lock (SHARE UPDATE EXCLUSIVE, which ingest
 * and queries never conflict with, so they do not wait behind it). The usual holder is an
 * autovacuum of the same partition, started by the job's own deletes: PostgreSQL cancels an
 * autovacuum that blocks a lock request for deadlock_timeout (1 s by default), so the VACUUM runs
 * in this run and the day can be emptied now rather than by a later run.
 */
const VACUUM_LOCK_TIMEOUT_MS = 5_000;
/**
 * How long each lock of a window's drop is waited for: the EXCLUSIVE one on the window before its
 * snapshot (late points for that window queue behind it), then the ACCESS EXCLUSIVE ones on the
 * window and on `points` (DETACH's; all of ingest and the queries of points queue behind that
 * request meanwhile). Not had in time: the window's rows are deleted instead.
 */
const DROP_LOCK_TIMEOUT_MS = 50;
/**
 * How many times dropWindow asks for its locks before the rows are deleted instead, and how long
 * it pauses between (holding nothing): a busy moment (ingest transactions and queries holding
 * `points` a few tens of ms each) rarely lasts, while deleting a window's rows instead costs as
 * much as compacting them again.
 */
const DROP_LOCK_TRIES = 5;
const DROP_RETRY_PAUSE_MS = 100;
/**
 * How long a window is waited for, holding nothing, while another session holds its SHARE UPDATE
 * EXCLUSIVE lock (an autovacuum or ANALYZE of it), and how often that is looked at: the window's
 * snapshot lock and drop ask for 50 ms at a time, never long enough for PostgreSQL to cancel an
 * autovacuum in their favour, so a window under maintenance would go the delete path. An
 * autovacuum of a 2-hour window of an install up to ~2,000 points/s takes seconds.
 */
export const MAINTENANCE_WAIT_MS = 30_000;
const MAINTENANCE_POLL_MS = 100;
/**
 * A lock of the window's snapshot or drop not had in time (lock_not_available), or a wait that
 * formed a cycle (a query holding `points` and waiting for the window) and was broken on our side
 * when deadlock_timeout is below the drop's lock timeout (deadlock_detected): the same, busy.
 */
const isBusy = (code: string | undefined): boolean => code === SQLSTATE.lockNotAvailable || code === SQLSTATE.deadlockDetected;

/**
 * A float8 as the text PostgreSQL reads back as the same value: String(v) (shortest round trip,
 * NaN and ±Infinity by name) but -0 as '-0' (String(-0) is '0'); the stored aggregates must be
 * those of the points bit for bit (a chunk's `sub` derives its halves' from them, checked
 * against the encoder's).
 */
const float8Text = (v: number): string => (Object.is(v, -0) ? '-0' : String(v));

/** 2000-01-01T00:00:00Z in epoch ms: PostgreSQL's timestamp epoch (timestamptz_send counts µs from it). */
const PG_EPOCH_MS = 946_684_800_000;

/**
 * One series' packed points (per point: int8 µs since PG_EPOCH_MS, then a float8, both
 * big-endian) as epoch-ms times, the microseconds floored, and values, in ascending (ts, value)
 * order. They arrive in index order (series, ts); points whose times fall in the same ms (or, if
 * the plan read them otherwise, any out of order) are put in order here.
 */
export function unpackPoints(seriesId: string, n: number, buf: Buffer): MovedSeries {
  if (buf.length !== n * 16) throw new Error(`series ${seriesId}: ${buf.length} bytes for ${n} points`);
  let ts = new Array<number>(n);
  let values = new Array<number>(n);
  // A DataView's getters compile to plain loads (Buffer's readInt32BE and co. are bounds-checked
  // byte-by-byte reads): ~8× less time per point. Buffer.from(base64) may hand back a slice of a
  // shared pool, hence the offset.
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  let ordered = true;
  let prevT = -Infinity;
  let prevV = 0;
  for (let i = 0, o = 0; i < n; i++, o += 16) {
    // µs = hi·2³² + lo, beyond 2⁵³: floor(µs / 1000) exactly as hi·4294967 + floor((hi·296 + lo) / 1000)
    // (2³² = 4294967·1000 + 296; hi·296 + lo is an exact integer, so its quotient floors right).
    const hi = dv.getInt32(o);
    const t = hi * 4294967 + Math.floor((hi * 296 + dv.getUint32(o + 4)) / 1000) + PG_EPOCH_MS;
    const v = dv.getFloat64(o + 8);
    if (t < prevT || (t === prevT && cmpFloat8(prevV, v) > 0)) ordered = false;
    ts[i] = t;
    values[i] = v;
    prevT = t;
    prevV = v;
  }
  if (!ordered) {
    const idx = Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => ts[a] - ts[b] || cmpFloat8(values[a], values[b]));
    ts = idx.map((i) => ts[i]);
    values = idx.map((i) => values[i]);
  }
  return { seriesId, ts, values };
}

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

  constructor(
    private readonly knex: Knex,
    private readonly options: { vacuumLockTimeoutMs?: number; dropLockTimeoutMs?: number } = {},
  ) {
    this.points = new PartitionsRepository(knex, ['points'], [], POINT_WINDOWS);
    this.chunks = new PartitionsRepository(knex, ['point_chunks']);
  }

  private get dropLockTimeoutMs(): number {
    return Math.max(1, Math.trunc(this.options.dropLockTimeoutMs ?? DROP_LOCK_TIMEOUT_MS));
  }

  /** The partitions of points, oldest first: window partitions, and days created before points were split into windows. */
  async pointPartitions(): Promise<PartitionInfo<'points'>[]> {
    return (await this.points.list('points')).sort((a, b) => partitionStart(a) - partitionStart(b));
  }

  /**
   * Waits, holding no lock, until no other session holds the window's SHARE UPDATE EXCLUSIVE lock
   * (an autovacuum or ANALYZE of it, the only holders that block the window's snapshot lock but are
   * not its writers), at most `maxMs` (default MAINTENANCE_WAIT_MS). True when it was free in time.
   * An abort of `signal` (the job's timeout, shutdown) ends the wait with its reason.
   */
  async awaitMaintenance(window: PartitionInfo<'points'>, maxMs = MAINTENANCE_WAIT_MS, signal?: AbortSignal): Promise<boolean> {
    const name = checkedPartitionName(window);
    for (const until = Date.now() + (Number.isFinite(maxMs) ? maxMs : MAINTENANCE_WAIT_MS); ; ) {
      signal?.throwIfAborted();
      // This database's lock on the relation (an oid is unique only within a database), held by a
      // session: a prepared transaction's (pid null) is not maintenance that will end by itself.
      const { rows } = await this.knex.raw<{ rows: { busy: boolean }[] }>(
        `select exists (select 1 from pg_locks
                         where locktype = 'relation' and database = (select oid from pg_database where datname = current_database())
                           and relation = ?::regclass and mode = 'ShareUpdateExclusiveLock' and granted
                           and pid is not null and pid <> pg_backend_pid()) as busy`,
        [name],
      );
      if (!rows[0].busy) return true;
      if (Date.now() >= until) return false;
      await sleep(MAINTENANCE_POLL_MS);
    }
  }

  /**
   * Claims a window of points for this run (committed at once, before the run's transaction):
   * from then on every writer that commits points into it counts them in its claim
   * (IngestRepository.commit), which is how dropWindow learns of a late point its snapshot does
   * not hold. A claim left by an earlier run (its window's rows deleted instead) is taken over.
   */
  async claimWindow(window: PartitionInfo<'points'>): Promise<void> {
    await this.knex.raw('insert into point_window_claims (window_start) values (?) on conflict (window_start) do update set claimed_at = now()', [new Date(partitionStart(window))]);
  }

  /**
   * Deletes the claims of windows that have no partition any more (`existing`: the starts of those
   * that do): a claim whose window was dropped by retention, or vanished before its run got to it.
   * Claims of windows being compacted are never among them (one run at a time).
   */
  async pruneClaims(existing: readonly number[]): Promise<number> {
    const res = await this.knex.raw<{ rowCount: number }>('delete from point_window_claims where window_start <> all(?::timestamptz[])', [existing.map((t) => new Date(t))]);
    return res.rowCount;
  }

  /** The window's rows in the transaction's snapshot: what a compaction of it must have read before it is dropped. */
  async countRows(trx: Knex.Transaction, window: PartitionInfo<'points'>): Promise<number> {
    const { rows } = await trx.raw<{ rows: { n: string }[] }>('select count(*) as n from ??', [checkedPartitionName(window)]);
    return Number(rows[0].n);
  }

  /**
   * Takes the snapshot of the window's REPEATABLE READ transaction (its first statement) while
   * holding the window's EXCLUSIVE lock, so that every writer that had inserted into the window
   * before (and could have checked for its claim before the claim was committed) has committed
   * and is in the snapshot. The lock is held only for that moment (taken in a savepoint, given back
   * by rolling it back; the snapshot stays the transaction's). False when the lock was not had
   * within DROP_LOCK_TIMEOUT_MS: the snapshot is taken all the same, but the window must not be
   * dropped (its rows are deleted instead).
   */
  async snapshotAfterWriters(trx: Knex.Transaction, window: PartitionInfo<'points'>): Promise<boolean> {
    const name = checkedPartitionName(window);
    await trx.raw('savepoint window_snapshot');
    let locked = true;
    try {
      await trx.raw(`set local lock_timeout = ${this.dropLockTimeoutMs}`);
      await trx.raw('lock table ?? in exclusive mode', [name]);
    } catch (err) {
      if (!isBusy(sqlState(err))) throw err;
      locked = false;
    }
    if (locked) await trx.raw('select 1');
    await trx.raw('rollback to savepoint window_snapshot');
    if (!locked) await trx.raw('select 1');
    return locked;
  }

  /**
   * Drops a compacted window's partition of points inside the transaction that read its points
   * (after snapshotAfterWriters) and wrote them into chunks, so the points leave the fresh tier
   * exactly when their chunks commit. Only when no point came for the window after the snapshot:
   * under ACCESS EXCLUSIVE locks on the window and on `points` (every writer of points has
   * committed or waits), the window's claim is read FOR UPDATE, which fails (40001) when a writer
   * counted points in it since the snapshot. That, a lock not had within DROP_LOCK_TIMEOUT_MS in
   * any of DROP_LOCK_TRIES tries (a long query or a backup holds points), or a missing claim, and
   * nothing is done: false, and the
   * caller deletes the rows it read instead (a later run drops the emptied window). The locks are
   * taken in a savepoint, given back when it is rolled back. A point that comes for the window
   * later finds no partition: the writer makes it again (empty), and the next run merges the
   * point into its chunk and drops the window again.
   */
  async dropWindow(trx: Knex.Transaction, window: PartitionInfo<'points'>): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.dropWindowOnce(trx, window);
      if (r !== 'busy' || attempt >= DROP_LOCK_TRIES) return r === 'dropped';
      // Nothing held meanwhile: ingest and queries go on between the tries.
      await sleep(DROP_RETRY_PAUSE_MS);
    }
  }

  private async dropWindowOnce(trx: Knex.Transaction, window: PartitionInfo<'points'>): Promise<'dropped' | 'late' | 'busy'> {
    const name = checkedPartitionName(window);
    if (window.windowStart === undefined) throw new Error(`${name} is not a window's partition`);
    await trx.raw('savepoint drop_window');
    try {
      await trx.raw(`set local lock_timeout = ${this.dropLockTimeoutMs}`);
      // The window first: while its lock is waited for, only its late writers and readers queue.
      await trx.raw('lock table ?? in access exclusive mode', [name]);
      await trx.raw('lock table only ?? in access exclusive mode', [window.table]);
      const claim = await trx.raw<{ rows: unknown[] }>('select 1 from point_window_claims where window_start = ? for update', [new Date(window.windowStart)]);
      if (!claim.rows.length) {
        await trx.raw('rollback to savepoint drop_window');
        return 'late';
      }
      await trx.raw('alter table ?? detach partition ??', [window.table, name]);
      await trx.raw('drop table ??', [name]);
      await trx.raw('delete from point_window_claims where window_start = ?', [new Date(window.windowStart)]);
      await trx.raw('release savepoint drop_window');
      return 'dropped';
    } catch (err) {
      // serialization_failure: the claim was counted in by a commit after the snapshot.
      const code = sqlState(err);
      const late = code === SQLSTATE.serializationFailure;
      if (!late && !isBusy(code)) throw err;
      await trx.raw('rollback to savepoint drop_window');
      return late ? 'late' : 'busy';
    }
  }

  /** The chunk table's partition of `day` (created if missing, as the writer does for points). */
  async ensureChunkPartition(day: number): Promise<void> {
    await this.chunks.ensure('point_chunks', [day]);
  }

  /** The distinct orgs with rows in one points partition (PartitionsRepository.orgsIn), read through `db` (a transaction: in its snapshot). */
  async orgsInPartition(p: PartitionInfo<'points'>, db: Knex = this.knex): Promise<string[]> {
    return (db === this.knex ? this.points : new PartitionsRepository(db, ['points'], [], POINT_WINDOWS)).orgsIn(p);
  }

  /**
   * Up to `limit` series of one org, in id order after `after` (null: from the first), that have
   * a point before `before` in the partition. A loose index scan over (org_id, series_id, ts):
   * two index descents per series (the next id; its oldest point), so a day of fresh points is
   * not read to find the few series with something to compact. The recursion is evaluated only
   * as far as the LIMIT pulls it.
   */
  async seriesWithPointsBefore(p: PartitionInfo<'points'>, orgId: string, before: Date, after: string | null, limit: number, db: Knex = this.knex): Promise<string[]> {
    const name = checkedPartitionName(p);
    const { rows } = await db.raw<{ rows: { id: string }[] }>(
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

  /**
   * Runs `fn` in one REPEATABLE READ transaction (committed when it resolves, rolled back when it
   * throws): takePoints reads a batch's points and then deletes them, and both statements must
   * see the same rows (one snapshot). A conflict with a concurrent writer of the same rows (a
   * retention delete of those points) fails it with SERIALIZATION_FAILURE, nothing done.
   */
  transaction<T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.knex.transaction(fn, { isolationLevel: 'repeatable read' });
  }

  /**
   * Deletes the points of `seriesIds` (one org) in [from, to) from the partition and returns
   * them, one entry per series, in ascending (ts, value) order. Times come back as epoch
   * milliseconds (every ingest path stores milliseconds; a sub-millisecond part is floored).
   *
   * Two statements in the transaction's one snapshot (REPEATABLE READ, see transaction): a SELECT
   * that reads the points in the order of the (org_id, series_id, ts) INCLUDE (value) index (an
   * index-only scan, no sort) and packs each series' into one value — per point timestamptz_send
   * (int8 microseconds since 2000-01-01) and float8send (big-endian IEEE 754, so -0 and NaN come
   * back bit for bit), sent base64: one row per series for the driver to parse — then a plain
   * DELETE of the same rows. That is about half the work of DELETE … RETURNING, which fetches
   * each deleted row again and materializes and sorts what it returns. The DELETE removes exactly
   * the rows the SELECT saw: a point inserted after the snapshot is not visible to it (it stays,
   * for the next run), and one deleted meanwhile by another session fails the transaction
   * (SERIALIZATION_FAILURE) instead of being compacted; the counts are checked besides. Row locks
   * only: inserts and reads of the table go on meanwhile.
   */
  async takePoints(trx: Knex.Transaction, p: PartitionInfo<'points'>, orgId: string, seriesIds: readonly string[], from: number, to: number): Promise<MovedSeries[]> {
    const moved = await this.readPoints(trx, p, orgId, seriesIds, from, to);
    let n = 0;
    for (const m of moved) n += m.ts.length;
    if (n) await this.deletePoints(trx, p, orgId, seriesIds, from, to, n);
    return moved;
  }

  /** takePoints' SELECT: the points, packed per series, in index order, unpacked (unpackPoints). */
  async readPoints(trx: Knex.Transaction, p: PartitionInfo<'points'>, orgId: string, seriesIds: readonly string[], from: number, to: number): Promise<MovedSeries[]> {
    const name = checkedPartitionName(p);
    if (from < partitionStart(p) || to > partitionEnd(p)) throw new Error(`window [${from}, ${to}) is not inside partition ${name}`);
    const { rows } = await trx.raw<{ rows: { series_id: string; n: number; pts: string }[] }>(
      `select series_id::text as series_id, count(*)::int4 as n, encode(string_agg(timestamptz_send(ts) || float8send(value), ''::bytea), 'base64') as pts
         from (select series_id, ts, value from ?? where org_id = ? and series_id = any(?::bigint[]) and ts >= ? and ts < ?
                order by series_id, ts) x
        group by series_id`,
      [name, orgId, seriesIds as string[], new Date(from), new Date(to)],
    );
    return rows.map((r) => unpackPoints(r.series_id, r.n, Buffer.from(r.pts, 'base64')));
  }

  /** takePoints' DELETE of what readPoints read (`expected` points: any other count throws). */
  async deletePoints(trx: Knex.Transaction, p: PartitionInfo<'points'>, orgId: string, seriesIds: readonly string[], from: number, to: number, expected: number): Promise<void> {
    const name = checkedPartitionName(p);
    const del = await trx.raw<{ rowCount: number | null }>('delete from ?? where org_id = ? and series_id = any(?::bigint[]) and ts >= ? and ts < ?', [
      name,
      orgId,
      seriesIds as string[],
      new Date(from),
      new Date(to),
    ]);
    if (del.rowCount !== expected) throw new Error(`partition ${name}: deleted ${del.rowCount} points, read ${expected}`);
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

  /**
   * Inserts the chunks, replacing any of the same (org, series, window), each with its head
   * (chunkHeadSql, computed by PostgreSQL from the row's own columns): one INSERT … SELECT FROM
   * unnest of one array per column (14 parameters whatever the batch size, instead of 14 per
   * chunk for node-postgres to serialize and PostgreSQL to parse and plan). Times go as Dates (each
   * element written as node-postgres writes a Date parameter), float8s as their shortest round-trip
   * text (-0 as '-0', NaN and ±Infinity by name), data and sub as bytea.
   */
  async upsertChunks(trx: Knex.Transaction, orgId: string, chunks: readonly ChunkRow[]): Promise<void> {
    if (!chunks.length) return;
    const col = <T>(f: (c: ChunkRow) => T): T[] => chunks.map(f);
    await trx.raw(
      `insert into point_chunks (org_id, series_id, ts, first_ts, last_ts, count, min, max, sum, first_value, last_value, increase, data, sub, head)
       select ?::uuid, x.*, ${chunkHeadSql('x')} from unnest(?::bigint[], ?::timestamptz[], ?::timestamptz[], ?::timestamptz[], ?::int4[],
                                      ?::float8[], ?::float8[], ?::float8[], ?::float8[], ?::float8[], ?::float8[], ?::bytea[], ?::bytea[])
         as x(series_id, ts, first_ts, last_ts, count, min, max, sum, first_value, last_value, increase, data, sub)
       on conflict (org_id, series_id, ts) do update set
         first_ts = excluded.first_ts, last_ts = excluded.last_ts, count = excluded.count, min = excluded.min, max = excluded.max,
         sum = excluded.sum, first_value = excluded.first_value, last_value = excluded.last_value, increase = excluded.increase,
         data = excluded.data, sub = excluded.sub, head = excluded.head`,
      [
        orgId,
        col((c) => c.seriesId),
        col((c) => new Date(c.windowStart)),
        col((c) => new Date(c.firstTs)),
        col((c) => new Date(c.lastTs)),
        col((c) => c.count),
        col((c) => float8Text(c.min)),
        col((c) => float8Text(c.max)),
        col((c) => float8Text(c.sum)),
        col((c) => float8Text(c.firstValue)),
        col((c) => float8Text(c.lastValue)),
        col((c) => float8Text(c.increase)),
        // bytea[] (node-postgres writes each Buffer as \\x hex, null as NULL): not among knex's binding types.
        col((c) => c.data) as unknown as Knex.Value,
        col((c) => c.sub) as unknown as Knex.Value,
      ],
    );
  }

  /**
   * Empties a points partition whose points were all compacted, giving its table and index space
   * back to the file system (a VACUUM only makes it reusable, and never shrinks an index). Meant
   * to run after a VACUUM (vacuumPartition, or an autovacuum's): the heap's dead rows are gone and its empty tail truncated, so
   * the check that it is still empty (a late point may have arrived since) reads next to nothing.
   * Its exclusive lock is waited for at most TRUNCATE_LOCK_TIMEOUT_MS, and the check and the
   * TRUNCATE under it may take at most TRUNCATE_STATEMENT_TIMEOUT_MS: ingest and queries touching
   * that day wait no longer than that. Returns false (nothing done) when the heap is larger than
   * TRUNCATE_MAX_HEAP_BYTES (checked first, without a lock), the lock was not had in time, the check
   * ran out of time, or a point is there. `heapBytes`: the heap's size as just read by the caller
   * (partitionBytes), so it is not read twice.
   */
  async truncateIfEmpty(p: PartitionInfo<'points'>, heapBytes?: number): Promise<boolean> {
    const name = checkedPartitionName(p);
    if ((heapBytes ?? (await this.partitionBytes(p)).heap) > TRUNCATE_MAX_HEAP_BYTES) return false;
    try {
      return await this.knex.transaction(async (trx) => {
        // The lock's wait is lock_timeout's alone: a statement_timeout set before the LOCK would cut it shorter.
        await trx.raw(`set local lock_timeout = ${TRUNCATE_LOCK_TIMEOUT_MS}`);
        await trx.raw('lock table ?? in access exclusive mode', [name]);
        await trx.raw(`set local statement_timeout = ${TRUNCATE_STATEMENT_TIMEOUT_MS}`);
        const { rows } = await trx.raw<{ rows: { any: boolean }[] }>('select exists (select 1 from ??) as any', [name]);
        if (rows[0].any) return false;
        await trx.raw('truncate table ??', [name]);
        return true;
      });
    } catch (err) {
      const code = sqlState(err);
      if (code === SQLSTATE.lockNotAvailable || code === SQLSTATE.queryCanceled) return false;
      throw err;
    }
  }

  /** The partition's heap and its whole size (heap, TOAST and indexes), in bytes: read without any lock. */
  async partitionBytes(p: PartitionInfo<'points'>): Promise<{ heap: number; total: number }> {
    const name = checkedPartitionName(p);
    const { rows } = await this.knex.raw<{ rows: { heap: string; total: string }[] }>(
      'select pg_relation_size(?::regclass)::text as heap, pg_total_relation_size(?::regclass)::text as total',
      [name, name],
    );
    return { heap: Number(rows[0].heap), total: Number(rows[0].total) };
  }

  /**
   * VACUUM (and ANALYZE) of a points partition whose points were all compacted, so its space is
   * reused at once, the next run's index scans do not walk dead entries, and its now empty heap
   * tail is truncated (what makes truncateIfEmpty's check instant). It takes no exclusive lock on
   * the table: ingest and queries go on meanwhile. Waits up to VACUUM_LOCK_TIMEOUT_MS for a
   * conflicting lock (an autovacuum's, which PostgreSQL cancels for it; an ANALYZE's); returns
   * false, nothing done, when it was not had by then.
   */
  async vacuumPartition(p: PartitionInfo<'points'>): Promise<boolean> {
    const name = checkedPartitionName(p);
    // VACUUM cannot run in a transaction (so no SET LOCAL): the pool's statement_timeout, meant
    // for API queries, is lifted on one connection for it, a lock_timeout set, and both restored after.
    return withPooledConnection(this.knex, async (conn) => {
      try {
        const lockTimeout = Math.max(1, Math.trunc(this.options.vacuumLockTimeoutMs ?? VACUUM_LOCK_TIMEOUT_MS));
        await conn.query(`set statement_timeout = 0; set lock_timeout = ${lockTimeout}`);
        await conn.query(`vacuum (analyze) ${name}`);
        return true;
      } catch (err) {
        if (sqlState(err) === SQLSTATE.lockNotAvailable) return false;
        throw err;
      } finally {
        // A connection that could not restore its timeouts is ended, so the pool discards it rather than lend it without them.
        await conn.query('reset statement_timeout; reset lock_timeout').catch(() => conn.end().catch(() => undefined));
      }
    });
  }
}
