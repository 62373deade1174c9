import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { isGoneTable, SQLSTATE, sqlState } from '../../db/pg-errors.js';
import { DAY_MS, partitionEnd, partitionStart, type PartitionInfo } from '../../db/partitions.js';
import { chunkAggregates, cmpFloat8, decodeChunk, encodeChunk, encodeChunkSub } from './chunk-codec.js';
import { TRUNCATE_MAX_HEAP_BYTES, type ChunkRow, type CompactionRepository, type MovedSeries } from './compaction-repository.js';
import { CHUNK_WINDOW_MS } from './telemetry-tables.js';

/** How many times a batch that met a serialization failure is tried again before the run fails (the next run carries on). */
const SERIALIZATION_RETRIES = 3;

export interface CompactionOptions {
  /** storage.compact_after in ms: a window is compacted once its end is at least this old. */
  compactAfterMs: number;
  /** storage.compact_batch_series: series per batch (one org, one window): a transaction of a whole-day partition, a step of a window's. */
  batchSeries: number;
  /**
   * Transactions in flight at once (default DEFAULT_CONCURRENCY): batches of whole-day partitions,
   * or windows: while one's points are read by PostgreSQL, another's are encoded in Node, or both
   * are in PostgreSQL on two cores.
   */
  concurrency?: number;
  /**
   * A window partition whose heap is larger than this (default WHOLE_WINDOW_MAX_BYTES) is not
   * compacted in one transaction: its batches are moved out one transaction each, as a whole-day
   * partition's are, and the emptied window is then dropped.
   */
  wholeWindowMaxBytes?: number;
  /** How long a window under maintenance (autovacuum, ANALYZE) is waited for before it is compacted (default MAINTENANCE_WAIT_MS). */
  maintenanceWaitMs?: number;
}

/**
 * The largest window partition of points (heap bytes: ~15 M points of ~68 bytes) compacted in one
 * transaction, which holds its snapshot for the whole window and is rolled back whole when the
 * job is aborted: about half a minute of the job's work on a two-core machine. A larger window
 * (a large install: 10k points/s fill 72 M points into one) goes batch by batch.
 */
export const WHOLE_WINDOW_MAX_BYTES = 1 << 30;

/** An emptied points partition keeps its indexes' metapages (8 KiB each); one larger than this is worth emptying. */
const EMPTIED_BYTES = 256 * 1024;

/** Batch transactions in flight at once unless CompactionOptions.concurrency says otherwise. */
export const DEFAULT_CONCURRENCY = 2;

export interface CompactionReport {
  /** The reference time (RFC 3339). */
  now: string;
  /** Points older than this (RFC 3339, a multiple of the window) were compacted. */
  horizon: string;
  /** Points moved from `points` into chunks. */
  points_compacted: number;
  /** Chunk rows written (new and merged). */
  chunks_written: number;
  /** Of those, chunks that existed and took late points. */
  chunks_merged: number;
  /** Batches that moved points (one org, one window, a batch of series): each a transaction of its own on a whole-day partition, a step of the window's one transaction on a window's. */
  batches: number;
  /** Points partitions compacted to their end (by this run, or by an earlier one that left them) and then empty: vacuumed, then truncated (their space given back). */
  partitions_emptied: string[];
  /** Points partitions compacted to their end by this run and vacuumed, but not emptied: a late point, the exclusive lock not had in time, or a heap still over 1 MiB. (A VACUUM that did not get its lock in time lists the partition in neither; a later run retries.) */
  partitions_vacuumed: string[];
  /** Window partitions dropped with the transaction that wrote their chunks. */
  windows_dropped: string[];
  /** Window partitions compacted by deleting their rows instead: a late point came, or a lock was not had in time (a later run drops them). */
  windows_deleted: string[];
  /** Of the windows dropped or emptied, those too large for one transaction (over CompactionOptions.wholeWindowMaxBytes): moved out batch by batch first, one transaction each. */
  windows_in_batches: string[];
  duration_ms: number;
}

/**
 * The compaction job (DESIGN §3, two tiers): rewrites the points of every window whose end is
 * at least `compactAfterMs` old into one chunk row per (org, series, window), in batches of
 * series: each batch's points of the window are read, merged with the window's existing chunk if
 * late points came after it was written (locked FOR UPDATE), encoded, and the chunk upserted.
 *
 * A window partition of points (compactLeafOnce) is compacted in one transaction, batch after
 * batch, and then dropped in it (or its rows deleted, when a point came for it meanwhile or its
 * locks stayed busy); an abort rolls the window back whole. A whole-day partition (made before
 * points was split into windows) is compacted one transaction per batch, its points deleted by
 * the transaction that writes their chunks, row locks only. Either way a crash at any moment
 * leaves each point in exactly one tier: a transaction commits both the removal and the chunks,
 * or neither. Ingest and queries go on meanwhile; a window's drop holds `points` exclusively for
 * a few milliseconds (CompactionRepository.dropWindow). One run at a time is the jobs kit's
 * advisory lock; run directly (tests) it is also correct alongside ingest.
 */
export class CompactionService {
  constructor(
    private readonly repo: CompactionRepository,
    private readonly o: CompactionOptions,
    private readonly logger: Logger,
  ) {
    if (!(o.batchSeries >= 1)) throw new Error('batchSeries must be at least 1');
    if (!(o.compactAfterMs >= 0)) throw new Error('compactAfterMs must not be negative');
    this.concurrency = o.concurrency ?? DEFAULT_CONCURRENCY;
    if (!(Number.isInteger(this.concurrency) && this.concurrency >= 1)) throw new Error('concurrency must be an integer of at least 1');
  }

  private readonly concurrency: number;

  /** `signal` (the job's timeout, shutdown) is checked before each batch; an aborted run throws its reason, what it committed stays. */
  async run(now = Date.now(), signal?: AbortSignal): Promise<CompactionReport> {
    const started = Date.now();
    const horizon = Math.floor((now - this.o.compactAfterMs) / CHUNK_WINDOW_MS) * CHUNK_WINDOW_MS;
    const report: CompactionReport = {
      now: new Date(now).toISOString(),
      horizon: new Date(horizon).toISOString(),
      points_compacted: 0,
      chunks_written: 0,
      chunks_merged: 0,
      batches: 0,
      partitions_emptied: [],
      partitions_vacuumed: [],
      windows_dropped: [],
      windows_deleted: [],
      windows_in_batches: [],
      duration_ms: 0,
    };
    const partitions = await this.repo.pointPartitions();
    await this.repo.pruneClaims(partitions.flatMap((p) => (p.windowStart === undefined ? [] : [p.windowStart])));
    await this.compactWindows(
      partitions.filter((p) => p.windowStart !== undefined && partitionEnd(p) <= horizon),
      report,
      signal,
    );
    // Days created before points were split into windows: compacted row by row.
    for (const p of partitions) {
      if (p.windowStart !== undefined) continue;
      if (p.day >= horizon) break;
      signal?.throwIfAborted();
      const before = report.points_compacted;
      await this.compactPartition(p, Math.min(p.day + DAY_MS, horizon), report, signal);
      if (p.day + DAY_MS > horizon) continue;
      // A day wholly behind the horizon is empty now: its space is reused at once (statistics of
      // the chunk partitions are the analyze job's).
      if (report.points_compacted > before) {
        // Vacuumed first (no exclusive lock): the dead rows go and the empty heap is truncated, so
        // the emptiness check under truncateIfEmpty's exclusive lock reads next to nothing. Then
        // emptied (table and index space back to the file system) when nothing arrived meanwhile
        // and the exclusive lock was had in time; else it stays vacuumed (space reusable), or, when
        // the VACUUM did not get its lock in time, as it was, for a later run (the branch below).
        const vacuumed = await this.repo.vacuumPartition(p);
        if (await this.repo.truncateIfEmpty(p)) report.partitions_emptied.push(p.name);
        else if (vacuumed) report.partitions_vacuumed.push(p.name);
      } else {
        // Compacted by an earlier run but not emptied then (its VACUUM's lock not had in time, the
        // exclusive lock busy, or the VACUUM's own truncation of the heap given up for a waiting
        // session): tried again, vacuumed first while its heap is still large.
        const bytes = await this.repo.partitionBytes(p);
        if (bytes.total <= EMPTIED_BYTES) continue;
        const vacuumed = bytes.heap > TRUNCATE_MAX_HEAP_BYTES && (await this.repo.vacuumPartition(p));
        if (await this.repo.truncateIfEmpty(p, vacuumed ? undefined : bytes.heap)) report.partitions_emptied.push(p.name);
      }
    }
    report.duration_ms = Date.now() - started;
    // Counts and partition names only: never org data.
    this.logger.info(
      {
        job: 'compaction',
        horizon: report.horizon,
        points_compacted: report.points_compacted,
        chunks_written: report.chunks_written,
        chunks_merged: report.chunks_merged,
        batches: report.batches,
        partitions_emptied: report.partitions_emptied.length,
        partitions_vacuumed: report.partitions_vacuumed.length,
        windows_dropped: report.windows_dropped.length,
        windows_deleted: report.windows_deleted.length,
        duration_ms: report.duration_ms,
      },
      'compaction run finished',
    );
    return report;
  }

  /**
   * Every org's series with points before `end` in one day-partition (or window partition too large
   * for one transaction), batch after batch, window by window, up to `concurrency` batch transactions at once (each its own series and window, so they
   * touch disjoint rows). Returns once none is in flight; the first failure (or the signal's
   * reason) is thrown after the others in flight have ended, what they committed stays.
   */
  private async compactPartition(p: PartitionInfo<'points'>, end: number, report: CompactionReport, signal?: AbortSignal): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    // The first batch failure, kept for after the others in flight have ended.
    const failed: { err?: unknown; yes: boolean } = { yes: false };
    const start = async (orgId: string, ids: string[], w: number) => {
      while (inFlight.size >= this.concurrency) await Promise.race(inFlight);
      if (failed.yes) throw failed.err;
      signal?.throwIfAborted();
      const batch: Promise<void> = this.compactWindow(p, orgId, ids, w, report)
        .catch((err: unknown) => {
          if (!failed.yes) Object.assign(failed, { err, yes: true });
        })
        .finally(() => inFlight.delete(batch));
      inFlight.add(batch);
    };
    try {
      let ensured = false;
      for (const orgId of await this.repo.orgsInPartition(p)) {
        for (let after: string | null = null; ; ) {
          signal?.throwIfAborted();
          if (failed.yes) throw failed.err;
          const ids = await this.repo.seriesWithPointsBefore(p, orgId, new Date(end), after, this.o.batchSeries);
          if (!ids.length) break;
          if (!ensured) {
            await this.repo.ensureChunkPartition(p.day);
            ensured = true;
          }
          const starts: number[] = [];
          for (let w = partitionStart(p); w < end; w += CHUNK_WINDOW_MS) starts.push(w);
          for (const w of await this.repo.windowsWithPoints(p, orgId, ids, starts, CHUNK_WINDOW_MS)) await start(orgId, ids, w);
          if (ids.length < this.o.batchSeries) break;
          after = ids[ids.length - 1];
        }
      }
    } finally {
      await Promise.all(inFlight);
    }
    if (failed.yes) throw failed.err;
  }

  /**
   * One transaction: the batch's points of one window out of `points`, into their chunks. Tried
   * again (at most SERIALIZATION_RETRIES times) when it conflicted with another session's write of
   * the same rows (a retention delete of those points): it did nothing then.
   */
  private async compactWindow(p: PartitionInfo<'points'>, orgId: string, ids: string[], w0: number, report: CompactionReport): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.compactWindowOnce(p, orgId, ids, w0, report);
      } catch (err) {
        if (sqlState(err) !== SQLSTATE.serializationFailure || attempt >= SERIALIZATION_RETRIES) throw err;
      }
    }
  }

  private async compactWindowOnce(p: PartitionInfo<'points'>, orgId: string, ids: string[], w0: number, report: CompactionReport): Promise<void> {
    const r = await this.repo.transaction(async (trx) => {
      await trx.raw("set local statement_timeout = '5min'");
      const moved = await this.repo.takePoints(trx, p, orgId, ids, w0, w0 + CHUNK_WINDOW_MS);
      if (!moved.length) return null;
      return this.writeChunks(trx, orgId, moved, w0);
    });
    if (!r) return;
    count(report, r);
  }

  /**
   * The window partitions wholly behind the horizon: each compacted in one transaction and its
   * partition dropped (compactLeaf), up to `concurrency` windows at once.
   */
  private async compactWindows(windows: PartitionInfo<'points'>[], report: CompactionReport, signal?: AbortSignal): Promise<void> {
    if (!windows.length) return;
    for (const day of new Set(windows.map((w) => w.day))) await this.repo.ensureChunkPartition(day);
    const queue = [...windows];
    let failure: { err: unknown } | null = null;
    const lane = async () => {
      for (let w = queue.shift(); w && !failure; w = queue.shift()) await this.compactLeaf(w, report, signal);
    };
    await Promise.all(
      Array.from({ length: Math.min(this.concurrency, queue.length) }, () =>
        lane().catch((err: unknown) => {
          failure ??= { err };
        }),
      ),
    );
    if (failure) throw (failure as { err: unknown }).err;
  }

  /** compactLeafOnce, tried again (at most SERIALIZATION_RETRIES times) when a concurrent delete of its rows failed it. */
  private async compactLeaf(leaf: PartitionInfo<'points'>, report: CompactionReport, signal?: AbortSignal): Promise<void> {
    try {
      // Too large for one transaction: its points moved out batch by batch (committed as they
      // go, an abort keeping what was done), and then the emptied window dropped as any other.
      if ((await this.repo.partitionBytes(leaf)).heap > (this.o.wholeWindowMaxBytes ?? WHOLE_WINDOW_MAX_BYTES)) {
        report.windows_in_batches.push(leaf.name);
        await this.compactPartition(leaf, partitionEnd(leaf), report, signal);
        // Its dead rows gone before the window is read again in one snapshot (and counted).
        await this.repo.vacuumPartition(leaf);
      }
    } catch (err) {
      if (isGoneTable(err)) return;
      throw err;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.awaitMaintenance(leaf, signal);
        return await this.compactLeafOnce(leaf, report, signal);
      } catch (err) {
        // Dropped since it was listed (retention dropped it past its retention): nothing to compact.
        if (isGoneTable(err)) return;
        if (sqlState(err) !== SQLSTATE.serializationFailure || attempt >= SERIALIZATION_RETRIES) throw err;
      }
    }
  }

  /** An autovacuum or ANALYZE of the window (common right after it closes) let finish first (repo.awaitMaintenance), a long wait or a give-up logged. */
  private async awaitMaintenance(leaf: PartitionInfo<'points'>, signal?: AbortSignal): Promise<void> {
    const t0 = Date.now();
    const free = await this.repo.awaitMaintenance(leaf, this.o.maintenanceWaitMs, signal);
    const waited_ms = Date.now() - t0;
    if (!free) {
      this.logger.warn({ job: 'compaction', window: leaf.name, waited_ms }, 'compaction: a window stayed under maintenance (autovacuum, ANALYZE) past the wait; compacted now, its rows may be deleted instead of its partition dropped');
    } else if (waited_ms >= 1000) {
      this.logger.info({ job: 'compaction', window: leaf.name, waited_ms }, 'compaction: waited for the maintenance of a window (autovacuum, ANALYZE) to end');
    }
  }

  /**
   * One window's partition, claimed (repo.claimWindow) and then in one REPEATABLE READ
   * transaction: its snapshot taken once the window's writers are done (repo.snapshotAfterWriters),
   * every org's points read batch by batch (as a day partition's) and written into their chunks,
   * and then the partition dropped (repo.dropWindow) when no point came for it since the snapshot;
   * otherwise (a late point, a lock busy) the rows read are deleted, as a day partition's are, and
   * the emptied partition is dropped by a later run. Either way the chunks and the points' removal
   * commit together.
   */
  private async compactLeafOnce(leaf: PartitionInfo<'points'>, report: CompactionReport, signal?: AbortSignal): Promise<void> {
    const w0 = partitionStart(leaf);
    const w1 = partitionEnd(leaf);
    if (w1 - w0 !== CHUNK_WINDOW_MS) throw new Error(`${leaf.name}: a window partition must be one chunk window`);
    await this.repo.claimWindow(leaf);
    const r = await this.repo.transaction(async (trx) => {
      const mayDrop = await this.repo.snapshotAfterWriters(trx, leaf);
      await trx.raw("set local statement_timeout = '5min'");
      const batches: { orgId: string; ids: string[]; points: number }[] = [];
      const done = { points: 0, chunks: 0, merged: 0, batches: 0 };
      for (const orgId of await this.repo.orgsInPartition(leaf, trx)) {
        for (let after: string | null = null; ; ) {
          // Aborted (the job's timeout, shutdown): the window's transaction is rolled back whole.
          signal?.throwIfAborted();
          const ids = await this.repo.seriesWithPointsBefore(leaf, orgId, new Date(w1), after, this.o.batchSeries, trx);
          if (!ids.length) break;
          const moved = await this.repo.readPoints(trx, leaf, orgId, ids, w0, w1);
          if (moved.length) {
            const c = await this.writeChunks(trx, orgId, moved, w0);
            batches.push({ orgId, ids, points: c.points });
            done.points += c.points;
            done.chunks += c.chunks;
            done.merged += c.merged;
            done.batches++;
          }
          if (ids.length < this.o.batchSeries) break;
          after = ids[ids.length - 1];
        }
      }
      // Dropped only with every row read: a row the batches missed would go with the partition.
      let dropped = false;
      if (mayDrop) {
        const held = await this.repo.countRows(trx, leaf);
        if (held !== done.points) this.logger.warn({ job: 'compaction', window: leaf.name, held, read: done.points }, 'compaction read fewer rows of a window than it holds: its rows read are deleted, the rest left in place');
        else dropped = await this.repo.dropWindow(trx, leaf);
      }
      if (!dropped) for (const b of batches) await this.repo.deletePoints(trx, leaf, b.orgId, b.ids, w0, w1, b.points);
      return { ...done, dropped };
    });
    if (r.dropped) report.windows_dropped.push(leaf.name);
    else report.windows_deleted.push(leaf.name);
    count(report, r);
  }

  /**
   * The chunks of `moved` (one org, one window) written: each series' points merged with its
   * existing chunk, if late points came after that was written (locked FOR UPDATE), encoded, and
   * upserted.
   */
  private async writeChunks(trx: Knex.Transaction, orgId: string, moved: MovedSeries[], w0: number): Promise<Counted> {
    const existing = await this.repo.lockChunks(
      trx,
      orgId,
      moved.map((m) => m.seriesId),
      w0,
    );
    const chunks: ChunkRow[] = [];
    let points = 0;
    for (const m of moved) {
      points += m.ts.length;
      let { ts, values } = m;
      const old = existing.get(m.seriesId);
      if (old) {
        // Stored in time order (ties by value as PostgreSQL orders them): what the aggregates
        // assume. The fresh points come in that order; merged with the chunk's, sorted again.
        const d = decodeChunk(old);
        const pts: { ts: number; value: number }[] = [];
        for (let i = 0; i < d.ts.length; i++) pts.push({ ts: d.ts[i], value: d.values[i] });
        for (let i = 0; i < ts.length; i++) pts.push({ ts: ts[i], value: values[i] });
        pts.sort((a, b) => a.ts - b.ts || cmpFloat8(a.value, b.value));
        ts = pts.map((x) => x.ts);
        values = pts.map((x) => x.value);
      }
      const a = chunkAggregates(ts, values);
      // With the halves' aggregates, so that 1-hour buckets need not decode the data (late merges too).
      chunks.push({ seriesId: m.seriesId, windowStart: w0, ...a, data: encodeChunk(ts, values), sub: encodeChunkSub(w0, CHUNK_WINDOW_MS, ts, values, a) });
    }
    await this.repo.upsertChunks(trx, orgId, chunks);
    return { points, chunks: chunks.length, merged: existing.size, batches: 1 };
  }
}

/** What a batch (or a window's batches) moved. */
interface Counted {
  points: number;
  chunks: number;
  merged: number;
  batches: number;
}

function count(report: CompactionReport, r: Counted): void {
  report.points_compacted += r.points;
  report.chunks_written += r.chunks;
  report.chunks_merged += r.merged;
  report.batches += r.batches;
}
