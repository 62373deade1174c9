import type { Logger } from 'pino';
import { DomainError } from '../../core/errors.js';
import type { PartitionsRepository } from '../../db/partitions.js';
import type { TelemetryTable } from './telemetry-tables.js';
import { classifyDbError, DB_RETRY_AFTER_SECONDS } from '../../db/pg-errors.js';
import type { IngestRepository, WriteItem } from './ingest-repository.js';

export interface WriterOptions {
  /** How long a group smaller than flushMinItems waits for others to join it while a connection is free. */
  flushIntervalMs: number;
  /** A group this large is written as soon as a connection is free, without waiting. */
  flushMinItems: number;
  /** Largest group: one this large is written at once, and none is made larger. */
  maxFlushItems: number;
  /** Commits in flight at the same time. */
  connections: number;
}

/** Told about every commit that succeeded (the ingest statistics). */
export interface CommitObserver {
  committed(rows: number, seconds: number): void;
}

export type WriteOutcome = 'stored' | 'duplicate';

interface Pending {
  item: WriteItem;
  size: number;
  resolve(outcome: WriteOutcome): void;
  reject(err: unknown): void;
}

const NO_PARTITION = '23514'; // check_violation: "no partition of relation … found for row"
/** How many times a group is committed when its partitions keep being dropped under it. */
const NO_PARTITION_TRIES = 4;

/**
 * Group commit (DESIGN §7): concurrent requests are written in one transaction, and each
 * request's promise settles only after that transaction has committed. When it fails because
 * the database is unreachable, every request in it fails (503, and only those); when it fails
 * otherwise, its requests are committed one at a time so that only the one at fault fails.
 *
 * When to write: while a connection is free, a group of at least `flushMinItems` rows is written
 * at once; a smaller one waits up to `flushIntervalMs` for others to join it (a commit's fixed
 * cost, its round trips and the WAL flush, is shared by more rows), and is written as soon as it
 * reaches that size. While every connection is busy, requests gather into the next group, which
 * is written when a commit finishes, whatever its size: it has waited long enough. So a busy
 * writer makes bigger, cheaper commits instead of a queue of small ones, and a large request
 * never waits for company it does not need: large requests arriving together are committed in
 * parallel, one per free connection, as a bulk load would be.
 */
export class GroupCommitWriter {
  private queue: Pending[] = [];
  private queuedSize = 0;
  private timer: NodeJS.Timeout | null = null;
  private active = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly knownPartitions = new Set<string>();
  private stopping = false;
  private readonly freeSlots: number[];

  constructor(
    private readonly repo: IngestRepository,
    private readonly partitions: PartitionsRepository<TelemetryTable>,
    private readonly opts: WriterOptions,
    private readonly log: Logger,
    private readonly observer?: CommitObserver,
  ) {
    this.freeSlots = Array.from({ length: opts.connections }, (_, i) => i);
  }

  write(item: WriteItem): Promise<WriteOutcome> {
    if (this.stopping) return Promise.reject(new DomainError('unavailable', 'the server is shutting down', { retryAfter: DB_RETRY_AFTER_SECONDS }));
    return new Promise<WriteOutcome>((resolve, reject) => {
      const size = item.points.length + item.logs.length + item.events.length || 1;
      this.queue.push({ item, size, resolve, reject });
      this.queuedSize += size;
      // All connections busy: the next commit to finish writes what has gathered by then.
      if (this.active >= this.opts.connections) return;
      if (this.queuedSize >= this.opts.flushMinItems || this.queuedSize >= this.opts.maxFlushItems || this.opts.flushIntervalMs === 0) this.kick();
      else this.timer ??= setTimeout(() => this.kick(), this.opts.flushIntervalMs);
    });
  }

  /** Rows (points, log records, events; an empty request counts one) waiting for a commit. */
  get queuedRows(): number {
    return this.queuedSize;
  }

  /** Writes what is queued and waits for every commit in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.kick();
    while (this.inFlight.size > 0 || this.queue.length > 0) {
      await Promise.allSettled([...this.inFlight]);
      this.kick();
    }
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.active < this.opts.connections && this.queue.length > 0) {
      let size = 0;
      let n = 0;
      while (n < this.queue.length && (n === 0 || size + this.queue[n].size <= this.opts.maxFlushItems)) size += this.queue[n++].size;
      const group = this.queue.slice(0, n);
      this.queue = this.queue.slice(n);
      this.queuedSize -= size;
      this.active++;
      const slot = this.freeSlots.pop() ?? 0;
      const run = this.flush(group, slot).finally(() => {
        this.active--;
        this.freeSlots.push(slot);
        this.inFlight.delete(run);
        // Whatever arrived during this commit has already waited long enough.
        if (this.queue.length > 0) this.kick();
      });
      this.inFlight.add(run);
    }
  }

  private async flush(group: Pending[], slot: number): Promise<void> {
    const started = performance.now();
    let duplicates: Set<number>;
    try {
      duplicates = await this.commit(group.map((p) => p.item), slot);
    } catch (err) {
      const domain = classifyDbError(err);
      if (domain?.code === 'unavailable' || group.length === 1) {
        this.fail(group, err);
        return;
      }
      // Anything else failed the whole transaction, and it may be one request's value (a data
      // exception that validation let through) or a defect of ours: either way not the fault of
      // every request merged into it, other orgs included, so none of them may get that request's
      // 400 (OTLP exporters drop data on 400). Retrying the requests one at a time isolates the
      // culprit, and only it fails; the rest are stored, as their clients were promised. Rare
      // enough that N small commits on this connection cost nothing that matters; simpler and
      // more robust than a blanket 503, which would have every client retry into the same value.
      this.log.error({ err, requests: group.length, sqlstate: (err as { code?: unknown }).code }, 'telemetry group commit failed; committing its requests one at a time');
      await this.commitOneByOne(group, slot);
      return;
    }
    group.forEach((p, n) => p.resolve(duplicates.has(n) ? 'duplicate' : 'stored'));
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ requests: group.length, items: group.reduce((n, p) => n + p.size, 0), ms: Math.round((performance.now() - started) * 10) / 10 }, 'telemetry committed');
    }
  }

  private async commitOneByOne(group: Pending[], slot: number): Promise<void> {
    for (let n = 0; n < group.length; n++) {
      const p = group[n];
      try {
        const duplicates = await this.commit([p.item], slot);
        p.resolve(duplicates.has(0) ? 'duplicate' : 'stored');
      } catch (err) {
        if (classifyDbError(err)?.code === 'unavailable') {
          // The database went away meanwhile: the rest would each wait for their own timeout.
          this.fail(group.slice(n), err);
          return;
        }
        this.fail([p], err);
      }
    }
  }

  private async commit(items: WriteItem[], slot: number): Promise<Set<number>> {
    const started = performance.now();
    const duplicates = await this.commitOnce(items, slot);
    if (this.observer) {
      let rows = 0;
      for (const item of items) rows += item.points.length + item.logs.length + item.events.length;
      this.observer.committed(rows, (performance.now() - started) / 1000);
    }
    return duplicates;
  }

  private async commitOnce(items: WriteItem[], slot: number): Promise<Set<number>> {
    await this.ensurePartitions(items);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.repo.commit(items, slot);
      } catch (err) {
        // A partition dropped since we last looked (retention; compaction drops each compacted
        // window's, and a late point for it needs it back): create it again and retry. A group
        // with late points in several windows can meet a compaction run dropping them one after
        // another: a few tries, then the error (the requests' 503 and Retry-After).
        if ((err as { code?: string }).code !== NO_PARTITION || attempt >= NO_PARTITION_TRIES) throw err;
        this.knownPartitions.clear();
        await this.ensurePartitions(items);
      }
    }
  }

  /** Fails requests that were committed on their own (or all of them, the database being unreachable). */
  private fail(requests: Pending[], err: unknown): void {
    const domain = classifyDbError(err);
    if (domain?.code === 'unavailable') {
      this.log.warn({ requests: requests.length, reason: (err as Error).message }, 'telemetry commit failed: database unavailable');
    } else {
      // A value PostgreSQL refused (the request's 400 now that it was committed alone) still
      // means validation let it through: a defect to see in the log, like an unknown error.
      this.log.error({ err, requests: requests.length, orgs: [...new Set(requests.map((p) => p.item.orgId))] }, 'telemetry commit failed');
    }
    const answer = domain ?? new DomainError('unavailable', 'telemetry could not be stored; retry shortly', { retryAfter: DB_RETRY_AFTER_SECONDS });
    for (const p of requests) p.reject(answer);
  }

  private async ensurePartitions(items: readonly WriteItem[]): Promise<void> {
    const needed = new Map<TelemetryTable, Set<number>>();
    // Rows of a batch share a few partitions (days; windows of points): a row within the one last
    // looked at costs one comparison.
    const note = (table: TelemetryTable, rows: readonly { ts: number }[]) => {
      const unit = this.partitions.unitMs(table);
      let from = Infinity;
      let to = -Infinity;
      for (const row of rows) {
        if (row.ts >= from && row.ts < to) continue;
        from = Math.floor(row.ts / unit) * unit;
        to = from + unit;
        if (this.knownPartitions.has(`${table}:${from}`)) continue;
        let starts = needed.get(table);
        if (!starts) needed.set(table, (starts = new Set()));
        starts.add(from);
      }
    };
    for (const item of items) {
      note('points', item.points);
      note('logs', item.logs);
      note('events', item.events);
    }
    for (const [table, starts] of needed) {
      const { created } = await this.partitions.ensure(table, starts, { exact: true });
      if (created.length) this.log.info({ partitions: created }, 'telemetry partitions created');
      for (const start of starts) this.knownPartitions.add(`${table}:${start}`);
    }
  }
}
