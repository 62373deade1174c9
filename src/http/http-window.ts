import { addCounts, LogBuckets, SlotRing } from '../core/sliding-window.js';
import type { HttpStatus } from '../core/status.js';

/** What the status answer reads of HTTP: the last minute's figures, from memory. */
export interface HttpStatusSource {
  httpStatus(): HttpStatus;
}

const WINDOW_SECONDS = 60;
/*
 * Durations in a fixed log-scale histogram: bin 0 holds everything up to 0.05 ms, each bin's bound
 * 1.25 times the previous one's. A quantile read from a bin's geometric middle is within ±12 % of
 * the true value; 64 bins reach 0.05·1.25^63 ms ≈ 13 min.
 */
export const HTTP_DURATIONS = new LogBuckets({ first: 0.05, ratio: 1.25, bins: 64 });

/** One second of requests. */
interface Slot {
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
  readonly #ring: SlotRing<Slot>;
  readonly #startSecond: number;

  constructor(private readonly now: () => number = Date.now) {
    this.#ring = new SlotRing<Slot>({
      slotMs: 1000,
      slots: WINDOW_SECONDS,
      make: () => ({ requests: 0, status4xx: 0, status5xx: 0, bins: HTTP_DURATIONS.counts() }),
      reset: (slot) => {
        slot.requests = 0;
        slot.status4xx = 0;
        slot.status5xx = 0;
        slot.bins.fill(0);
      },
      now,
    });
    this.#startSecond = Math.floor(now() / 1000);
  }

  record(status: number, durationMs: number): void {
    const slot = this.#ring.current();
    slot.requests++;
    if (status >= 500) slot.status5xx++;
    else if (status >= 400) slot.status4xx++;
    slot.bins[HTTP_DURATIONS.bin(durationMs)]++;
  }

  /**
   * The figures of the last 60 s (the current second included), or of the seconds since this
   * window was made when that is shorter: `window_seconds` says which, and the rate is per it.
   */
  status(inFlight: number): HttpStatus {
    const now = Math.floor(this.now() / 1000);
    const windowSeconds = Math.max(1, Math.min(WINDOW_SECONDS, now - this.#startSecond + 1));
    const merged = HTTP_DURATIONS.counts();
    let requests = 0;
    let status4xx = 0;
    let status5xx = 0;
    for (let second = now - windowSeconds + 1; second <= now; second++) {
      const slot = this.#ring.at(second);
      if (!slot) continue;
      requests += slot.requests;
      status4xx += slot.status4xx;
      status5xx += slot.status5xx;
      addCounts(merged, slot.bins);
    }
    return {
      window_seconds: windowSeconds,
      requests_per_second: requests / windowSeconds,
      p50_ms: HTTP_DURATIONS.quantile(merged, 0.5, 'middle'),
      p99_ms: HTTP_DURATIONS.quantile(merged, 0.99, 'middle'),
      status_4xx: status4xx,
      status_5xx: status5xx,
      in_flight: Math.max(0, inFlight),
    };
  }
}
