import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { SIGNALS, type Signal } from '../../core/signals.js';
import { addCounts, LogBuckets, SlotRing } from '../../core/sliding-window.js';
import type { IngestStatus, IngestStatusSource } from '../../core/status.js';
import type { RejectionReason } from './rejection-counter.js';

/** The telemetry feature's metric names, in one place (Prometheus naming: base unit, `_total` on counters). */
export const INGEST_METRICS = {
  items: 'sentinel_ingest_items_total',
  rejected: 'sentinel_ingest_rejected_items_total',
  commitRows: 'sentinel_ingest_commit_rows',
  commitDuration: 'sentinel_ingest_commit_duration_seconds',
  queueRows: 'sentinel_ingest_queue_rows',
  seriesActive: 'sentinel_series_active',
} as const;

/** The status answer's slots: 10 s each, the last 10 minutes (what the sparkline draws). */
export const SLOT_MS = 10_000;
export const HISTORY_SLOTS = 60;
/** Rates and writer figures of the status answer cover this much (less while the process is younger). */
export const WINDOW_SECONDS = 60;

/*
 * Commit latency distribution per slot: log-spaced bounds (each 10 % above the previous) from
 * 0.05 ms, so a p99 read as its bin's upper bound is at most 10 % high whatever the latency, in a
 * fixed few hundred bytes per slot however many commits. 160 bins: 0.05 ms · 1.1^159 ≈ 190 s,
 * past any commit timeout.
 */
const LATENCY = new LogBuckets({ first: 0.05, ratio: 1.1, bins: 160 });

interface Slot {
  items: Record<Signal, number>;
  commits: number;
  commitRows: number;
  latency: Uint32Array;
}

export interface IngestStatsOptions {
  /** Rows waiting in the group-commit writer (read when asked). */
  queueDepth: () => number;
  /** Series ids the process keeps (read when asked); null when unknown. */
  activeSeries: () => number | null;
  now?: () => number;
}

/**
 * What ingest did, for /metrics and for the admin status answer: items accepted per signal,
 * items refused by signal and reason, each group commit's rows and latency. Recording is a few
 * additions in memory (the ingest path calls it per request, the writer per commit); the
 * Prometheus series and the status answer's rolling 10 s slots are fed by the same calls, so the
 * two never disagree. Per process: with several instances, sum them.
 */
export class IngestStats implements IngestStatusSource {
  readonly #now: () => number;
  readonly #queueDepth: () => number;
  readonly #activeSeries: () => number | null;
  readonly #ring: SlotRing<Slot>;
  readonly #rejected = new Map<string, { signal: Signal; reason: RejectionReason; items: number }>();
  readonly #startedAt: number;
  readonly #items: Counter<'signal'>;
  readonly #rejectedItems: Counter<'signal' | 'reason'>;
  readonly #commitRows: Histogram;
  readonly #commitSeconds: Histogram;
  readonly #accepted: Record<Signal, { inc(n: number): void }>;

  constructor(registry: Registry, opts: IngestStatsOptions) {
    this.#now = opts.now ?? Date.now;
    this.#queueDepth = opts.queueDepth;
    this.#activeSeries = opts.activeSeries;
    this.#startedAt = this.#now();
    this.#ring = new SlotRing<Slot>({
      slotMs: SLOT_MS,
      slots: HISTORY_SLOTS,
      make: () => ({ items: { metrics: 0, logs: 0, events: 0 }, commits: 0, commitRows: 0, latency: LATENCY.counts() }),
      reset: (slot) => {
        slot.items = { metrics: 0, logs: 0, events: 0 };
        slot.commits = 0;
        slot.commitRows = 0;
        slot.latency.fill(0);
      },
      now: this.#now,
    });
    this.#items = new Counter({
      name: INGEST_METRICS.items,
      help: 'Telemetry items stored, by signal (metrics: points; logs: log records; events: events).',
      labelNames: ['signal'] as const,
      registers: [registry],
    });
    // Children made once, so a request adds without hashing labels; every signal shows from the start.
    this.#accepted = Object.fromEntries(SIGNALS.map((s) => [s, this.#items.labels(s)])) as Record<Signal, { inc(n: number): void }>;
    for (const signal of SIGNALS) this.#items.inc({ signal }, 0);
    this.#rejectedItems = new Counter({
      name: INGEST_METRICS.rejected,
      help: 'Telemetry items refused or dropped, by signal and reason (OTLP data points count once however many rows).',
      labelNames: ['signal', 'reason'] as const,
      registers: [registry],
    });
    this.#commitRows = new Histogram({
      name: INGEST_METRICS.commitRows,
      help: 'Rows (points, log records, events) written per group commit.',
      buckets: [1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000],
      registers: [registry],
    });
    this.#commitSeconds = new Histogram({
      name: INGEST_METRICS.commitDuration,
      help: 'Duration of one group commit (the transaction, including partition checks).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    const queueDepth = this.#queueDepth;
    new Gauge({
      name: INGEST_METRICS.queueRows,
      help: 'Rows waiting in the group-commit writer for the next commit.',
      registers: [registry],
      collect() {
        this.set(queueDepth());
      },
    });
    const activeSeries = this.#activeSeries;
    new Gauge({
      name: INGEST_METRICS.seriesActive,
      help: "Series ids this process keeps in its cache (series written to recently, up to ingest.series_cache_size).",
      registers: [registry],
      collect() {
        this.set(activeSeries() ?? 0);
      },
    });
  }

  /** Items stored by one request (after its commit). */
  accepted(counts: Readonly<Record<Signal, number>>): void {
    const slot = this.#ring.current();
    for (const s of SIGNALS) {
      const n = counts[s];
      if (n > 0) {
        this.#accepted[s].inc(n);
        slot.items[s] += n;
      }
    }
  }

  /** Items refused or dropped, for one reason the ingest path records. */
  rejected(signal: Signal, reason: RejectionReason, items: number): void {
    if (!(items > 0)) return;
    this.#rejectedItems.inc({ signal, reason }, items);
    const key = `${signal}\u0000${reason}`;
    const row = this.#rejected.get(key);
    if (row) row.items += items;
    else this.#rejected.set(key, { signal, reason, items });
  }

  /** One group commit that succeeded. */
  committed(rows: number, seconds: number): void {
    this.#commitRows.observe(rows);
    this.#commitSeconds.observe(seconds);
    const slot = this.#ring.current();
    slot.commits++;
    slot.commitRows += rows;
    slot.latency[LATENCY.bin(seconds * 1000)]++;
  }

  ingestStatus(): IngestStatus {
    const now = this.#now();
    const current = this.#ring.slotOf(now);
    const slotsInWindow = WINDOW_SECONDS / (SLOT_MS / 1000);
    // The window: the current (partial) slot and the full ones before it, never before the start;
    // in whole seconds (the current one counted whole), so rate × window_seconds is the count.
    const windowStart = Math.max((current - slotsInWindow + 1) * SLOT_MS, this.#startedAt);
    const windowSeconds = Math.max(1, Math.ceil((now - windowStart) / 1000));
    const items: Record<Signal, number> = { metrics: 0, logs: 0, events: 0 };
    let commits = 0;
    let commitRows = 0;
    const latency = LATENCY.counts();
    for (let n = current - slotsInWindow + 1; n <= current; n++) {
      const slot = this.#ring.at(n);
      if (!slot) continue;
      for (const s of SIGNALS) items[s] += slot.items[s];
      commits += slot.commits;
      commitRows += slot.commitRows;
      addCounts(latency, slot.latency);
    }
    const history: IngestStatus['history'] = [];
    for (let n = current - HISTORY_SLOTS + 1; n <= current; n++) {
      const slot = this.#ring.at(n);
      // The current slot has only run so far (and no slot before the start ran at all).
      const seconds = Math.max(1, (Math.min(now, (n + 1) * SLOT_MS) - Math.max(n * SLOT_MS, this.#startedAt)) / 1000);
      history.push({
        ts: new Date(n * SLOT_MS).toISOString(),
        points_per_second: slot ? slot.items.metrics / seconds : 0,
        logs_per_second: slot ? slot.items.logs / seconds : 0,
      });
    }
    return {
      window_seconds: windowSeconds,
      points_per_second: items.metrics / windowSeconds,
      logs_per_second: items.logs / windowSeconds,
      events_per_second: items.events / windowSeconds,
      rejected: [...this.#rejected.values()].map((r) => ({ ...r })).sort((a, b) => a.signal.localeCompare(b.signal) || a.reason.localeCompare(b.reason)),
      writer: {
        queue_depth: this.#queueDepth(),
        batch_rows_avg: commits ? commitRows / commits : null,
        // The bin's upper bound: at most 10 % above the true p99.
        commit_ms_p99: LATENCY.quantile(latency, 0.99, 'upper'),
      },
      active_series: this.#activeSeries(),
      history,
    };
  }
}
