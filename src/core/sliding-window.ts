/*
 * The pieces of an in-memory "last N seconds" figure: a fixed log-scale histogram (a quantile in
 * a few hundred bytes, whatever the number of values) and a ring of time slots (recording is a
 * slot lookup, reading merges the slots of the window). The HTTP and ingest figures of the admin
 * status are built from them.
 */

export interface LogBucketsOptions {
  /** Upper bound of bin 0 (which holds everything up to it, zero, negatives and NaN included). */
  first: number;
  /** Each bin's bound is this many times the previous one's. */
  ratio: number;
  /** Number of bins; the last holds everything beyond the one before it. */
  bins: number;
}

/** Which value a quantile reports of the bin it falls in. */
export type BinPoint = 'middle' | 'upper';

/**
 * A fixed log-scale histogram layout: bin 0 holds values up to `first`, bin i those up to
 * first·ratio^i, the last bin everything beyond. A quantile read from a bin's upper bound is at
 * most `ratio` times the true value; from its geometric middle within a factor of √ratio.
 */
export class LogBuckets {
  readonly first: number;
  readonly ratio: number;
  readonly bins: number;
  readonly #logRatio: number;

  constructor(o: LogBucketsOptions) {
    if (!(o.first > 0) || !(o.ratio > 1) || !Number.isInteger(o.bins) || o.bins < 2) throw new RangeError('LogBuckets: first > 0, ratio > 1, bins an integer ≥ 2');
    this.first = o.first;
    this.ratio = o.ratio;
    this.bins = o.bins;
    this.#logRatio = Math.log(o.ratio);
  }

  /** A value's bin: one logarithm, no search; anything odd (NaN, negative, infinite) in an end bin. */
  bin(value: number): number {
    if (!(value > this.first)) return 0;
    return Math.min(this.bins - 1, Math.ceil(Math.log(value / this.first) / this.#logRatio));
  }

  /** The upper bound of `bin`. */
  upper(bin: number): number {
    return this.first * this.ratio ** bin;
  }

  /** The geometric middle of `bin` (its bound for bin 0). */
  middle(bin: number): number {
    return bin === 0 ? this.first : this.first * this.ratio ** (bin - 0.5);
  }

  /** An empty count per bin. */
  counts(): Uint32Array {
    return new Uint32Array(this.bins);
  }

  /**
   * The q-quantile of the values counted in `counts` (null when none), as the middle or the upper
   * bound of its bin, rounded to 3 decimals.
   */
  quantile(counts: Uint32Array, q: number, point: BinPoint): number | null {
    let total = 0;
    for (let i = 0; i < this.bins; i++) total += counts[i];
    if (total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    let bin = this.bins - 1;
    for (let i = 0; i < this.bins; i++) {
      seen += counts[i];
      if (seen >= rank) {
        bin = i;
        break;
      }
    }
    const v = point === 'middle' ? this.middle(bin) : this.upper(bin);
    return Math.round(v * 1000) / 1000;
  }
}

/** Adds `from` into `into`, bin by bin. */
export function addCounts(into: Uint32Array, from: Uint32Array): void {
  for (let i = 0; i < into.length; i++) into[i] += from[i];
}

export interface SlotRingOptions<S> {
  /** Length of one slot; slot n covers [n·slotMs, (n+1)·slotMs). */
  slotMs: number;
  /** How many slots the ring keeps (the current one included). */
  slots: number;
  /** A new, empty slot's figures. */
  make: () => S;
  /** Empties a slot's figures for reuse by a later slot. */
  reset: (figures: S) => void;
  now?: () => number;
}

/**
 * The last `slots` time slots in a ring: the figures of the current slot to add to, and any slot
 * still kept to read. An entry of an older lap is emptied before reuse and never read as another
 * slot's.
 */
export class SlotRing<S> {
  readonly slotMs: number;
  readonly slots: number;
  readonly now: () => number;
  readonly #entries: ({ n: number; figures: S } | undefined)[];
  readonly #make: () => S;
  readonly #reset: (figures: S) => void;

  constructor(o: SlotRingOptions<S>) {
    this.slotMs = o.slotMs;
    this.slots = o.slots;
    this.now = o.now ?? Date.now;
    this.#make = o.make;
    this.#reset = o.reset;
    this.#entries = new Array<{ n: number; figures: S } | undefined>(o.slots);
  }

  /** The slot number of a time (ms). */
  slotOf(ms: number): number {
    return Math.floor(ms / this.slotMs);
  }

  /** The figures of the slot now is in, emptied first if the ring entry held an older slot. */
  current(): S {
    const n = this.slotOf(this.now());
    const i = this.#index(n);
    const e = this.#entries[i];
    if (e?.n === n) return e.figures;
    if (e) {
      this.#reset(e.figures);
      e.n = n;
      return e.figures;
    }
    const fresh = { n, figures: this.#make() };
    this.#entries[i] = fresh;
    return fresh.figures;
  }

  /** Slot n's figures, if the ring still holds that slot (undefined: nothing recorded in it, or gone). */
  at(n: number): S | undefined {
    const e = this.#entries[this.#index(n)];
    return e?.n === n ? e.figures : undefined;
  }

  #index(n: number): number {
    return ((n % this.slots) + this.slots) % this.slots;
  }
}
