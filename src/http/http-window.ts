import type { HttpStatus } from '../core/status.js';

/** What the status answer reads of HTTP: the last minute's figures, from memory. */
export interface HttpStatusSource {
  httpStatus(): HttpStatus;
}

const WINDOW_SECONDS = 60;
/*
 * Durations in a fixed log-scale histogram: bin 0 holds everything up to FIRST_MS, bin i up to
 * FIRST_MS·RATIO^i, the last bin everything beyond. With RATIO 1.25 a quantile read from a bin's
 * geometric middle is within ±12 % of the true value; 64 bins reach FIRST_MS·1.25^63 ≈ 13 min.
 */
const BINS = 64;
const FIRST_MS = 0.05;
const RATIO = 1.25;
const LOG_RATIO = Math.log(RATIO);

/** Bin of a duration: one logarithm, no search. */
export function binOf(ms: number): number {
  if (!(ms > FIRST_MS)) return 0;
  return Math.min(BINS - 1, Math.ceil(Math.log(ms / FIRST_MS) / LOG_RATIO));
}

/** The value reported for a quantile falling in `bin`: its geometric middle (its bound for bin 0). */
export function binValue(bin: number): number {
  return bin === 0 ? FIRST_MS : FIRST_MS * RATIO ** (bin - 0.5);
}

/** One second of requests. */
interface Slot {
  /** The Unix second it holds; a slot of another second is stale and reset before use. */
  second: number;
  requests: number;
  status4xx: number;
  status5xx: number;
  bins: Uint32Array;
}

/**
 * Requests of the last minute in 60 one-second slots (a ring): recording a request is a slot
 * lookup, three increments and one logarithm, whatever the traffic; reading merges 60 slots.
 * The frame middleware records every answered request (status and duration).
 */
export class HttpWindow {
  readonly #slots: Slot[] = Array.from({ length: WINDOW_SECONDS }, () => ({ second: -1, requests: 0, status4xx: 0, status5xx: 0, bins: new Uint32Array(BINS) }));
  readonly #startSecond: number;

  constructor(private readonly now: () => number = Date.now) {
    this.#startSecond = Math.floor(now() / 1000);
  }

  record(status: number, durationMs: number): void {
    const second = Math.floor(this.now() / 1000);
    const slot = this.#slots[second % WINDOW_SECONDS];
    if (slot.second !== second) {
      slot.second = second;
      slot.requests = 0;
      slot.status4xx = 0;
      slot.status5xx = 0;
      slot.bins.fill(0);
    }
    slot.requests++;
    if (status >= 500) slot.status5xx++;
    else if (status >= 400) slot.status4xx++;
    slot.bins[binOf(durationMs)]++;
  }

  /**
   * The figures of the last 60 s (the current second included), or of the seconds since this
   * window was made when that is shorter: `window_seconds` says which, and the rate is per it.
   */
  status(inFlight: number): HttpStatus {
    const now = Math.floor(this.now() / 1000);
    const windowSeconds = Math.max(1, Math.min(WINDOW_SECONDS, now - this.#startSecond + 1));
    const merged = new Uint32Array(BINS);
    let requests = 0;
    let status4xx = 0;
    let status5xx = 0;
    for (const slot of this.#slots) {
      if (slot.second > now || slot.second <= now - windowSeconds) continue;
      requests += slot.requests;
      status4xx += slot.status4xx;
      status5xx += slot.status5xx;
      for (let i = 0; i < BINS; i++) merged[i] += slot.bins[i];
    }
    return {
      window_seconds: windowSeconds,
      requests_per_second: requests / windowSeconds,
      p50_ms: quantile(merged, requests, 0.5),
      p99_ms: quantile(merged, requests, 0.99),
      status_4xx: status4xx,
      status_5xx: status5xx,
      in_flight: Math.max(0, inFlight),
    };
  }
}

function quantile(bins: Uint32Array, total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < BINS; i++) {
    seen += bins[i];
    if (seen >= rank) return Math.round(binValue(i) * 1000) / 1000;
  }
  return Math.round(binValue(BINS - 1) * 1000) / 1000;
}
