import type { Logger } from 'pino';
import type { RejectionRow, StatsRepository } from './stats-repository.js';

/** Why ingest refused (part of) a request, with the status the client got. */
export const REJECTION_REASONS = {
  rate_limited: 429,
  too_many_items: 413,
  invalid_items: 400,
  outside_time_window: 400,
  series_limit: 400,
  /** A new series whose name already has series of another kind (a gauge beside a counter). */
  kind_conflict: 400,
  // OTLP answers partially: what it drops is not refused with a status of its own.
  dropped_outside_time_window: 200,
  dropped_series_limit: 200,
  dropped_kind_conflict: 200,
  /** Data points or log records the OTLP decoder refused (an int64 beyond 2^53, no aggregationTemporality, buckets not summing to the count, a limit on names, labels or attributes …). */
  dropped_invalid_items: 200,
  /** Data points or log records past the per-request limit (INGEST_LIMITS.maxItems) of one OTLP request. */
  dropped_too_many_items: 200,
} as const;
export type RejectionReason = keyof typeof REJECTION_REASONS;

export interface RejectionCounterOptions {
  /** How long a count waits in memory before it is written; default 1000. */
  flushIntervalMs?: number;
  /** Pending (org, day, reason) keys that trigger a write before the timer; default 1000. */
  flushAtKeys?: number;
  /** Pending keys kept across failed writes; beyond it new keys are dropped (and logged); default 10 000. */
  maxKeys?: number;
  now?: () => number;
}

/**
 * Counts refused ingest per org, UTC day and reason. Counting never touches the refusal's path:
 * `record` only adds to a map in memory (a 429 must stay cheap when the database is slow or
 * down); a timer (and a map grown large) writes the map in one upsert, one write at a time. A
 * failed write is logged and its counts go back into the map for the next write, up to
 * `maxKeys` keys; the stop hook writes what is left.
 */
export class RejectionCounter {
  readonly #pending = new Map<string, RejectionRow>();
  #writing: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #dropped = 0;
  readonly #intervalMs: number;
  readonly #flushAt: number;
  readonly #maxKeys: number;
  readonly #now: () => number;

  constructor(
    private readonly repo: StatsRepository,
    private readonly logger: Logger,
    opts: RejectionCounterOptions = {},
  ) {
    this.#intervalMs = opts.flushIntervalMs ?? 1000;
    this.#flushAt = opts.flushAtKeys ?? 1000;
    this.#maxKeys = opts.maxKeys ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  /** Synchronous: the count is written by a later flush. */
  record(orgId: string, reason: RejectionReason, items: number): void {
    const day = new Date(this.#now()).toISOString().slice(0, 10);
    this.#add({ orgId, day, reason, status: REJECTION_REASONS[reason], requests: 1, items });
    if (this.#pending.size >= this.#flushAt) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), this.#intervalMs).unref();
  }

  /** Pending (org, day, reason) keys not yet written. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Writes what is pending (after a write under way); never throws: a failed write is logged and
   * its counts are kept for the next one.
   */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    while (this.#writing) await this.#writing;
    if (this.#pending.size === 0) return;
    const rows = [...this.#pending.values()];
    this.#pending.clear();
    this.#writing = this.repo
      .addRejections(rows)
      .catch((err: unknown) => {
        for (const r of rows) this.#add(r);
        this.logger.warn({ err, keys: rows.length }, 'counting refused ingest failed; the counts are kept for the next write');
        this.#timer ??= setTimeout(() => void this.flush(), this.#intervalMs).unref();
      })
      .finally(() => (this.#writing = null));
    await this.#writing;
  }

  /** The stop hook: writes what is pending, and no timer is left. */
  async stop(): Promise<void> {
    await this.flush();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #add(r: RejectionRow): void {
    const key = `${r.orgId}\u0000${r.day}\u0000${r.reason}`;
    const row = this.#pending.get(key);
    if (row) {
      row.requests += r.requests;
      row.items += r.items;
    } else if (this.#pending.size < this.#maxKeys) {
      this.#pending.set(key, { ...r });
    } else if (this.#dropped++ % 1000 === 0) {
      this.logger.warn({ maxKeys: this.#maxKeys, dropped: this.#dropped }, 'refused-ingest counts dropped: too many unwritten');
    }
  }
}
