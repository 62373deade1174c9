import type { Logger } from 'pino';
import type { RejectionRow, StatsRepository } from './stats-repository.js';

/** Why ingest refused (part of) a request, with the status the client got. */
export const REJECTION_REASONS = {
  rate_limited: 429,
  too_many_items: 413,
  invalid_items: 400,
  outside_time_window: 400,
  series_limit: 400,
  // OTLP answers partially: what it drops is not refused with a status of its own.
  dropped_outside_time_window: 200,
  dropped_series_limit: 200,
} as const;
export type RejectionReason = keyof typeof REJECTION_REASONS;

/**
 * Counts refused ingest per org, UTC day and reason. A flood of 429s must not become a flood of
 * upserts: counts that arrive while a write is under way are merged and written together by the
 * next one (one statement at a time, like the group-commit writer). Counting never changes an
 * answer: a failed write is logged and its counts are lost, the refusal still goes out.
 */
export class RejectionCounter {
  readonly #pending = new Map<string, RejectionRow>();
  #writing: Promise<void> | null = null;

  constructor(
    private readonly repo: StatsRepository,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Resolves once the count is stored (or its write failed and was logged). */
  async record(orgId: string, reason: RejectionReason, items: number): Promise<void> {
    const day = new Date(this.now()).toISOString().slice(0, 10);
    const key = `${orgId}\u0000${day}\u0000${reason}`;
    const row = this.#pending.get(key);
    if (row) {
      row.requests++;
      row.items += items;
    } else {
      this.#pending.set(key, { orgId, day, reason, status: REJECTION_REASONS[reason], requests: 1, items });
    }
    try {
      await this.#flush();
    } catch (err) {
      this.logger.warn({ err }, 'counting refused ingest failed');
    }
  }

  async #flush(): Promise<void> {
    while (this.#writing) await this.#writing.catch(() => undefined);
    if (this.#pending.size === 0) return; // another caller's write took ours along
    const rows = [...this.#pending.values()];
    this.#pending.clear();
    this.#writing = this.repo.addRejections(rows).finally(() => (this.#writing = null));
    await this.#writing;
  }
}
