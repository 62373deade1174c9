/**
 * Chunk codec: the compact encoding of one series' points for one time window (the `data`
 * column of `point_chunks`), plus the aggregates stored beside it.
 *
 * Format (versions 1 and 2). Header bytes, then one bit stream (most significant bit first)
 * padded with zero bits to a whole byte:
 *
 *   u8      version (1 or 2)
 *   varint  count (unsigned LEB128, < 2^31)
 *   u8      value mode (only when count > 0): 0 = XOR floats; 1 + k + 5·(order − 1) = decimal
 *           values scaled by 10^k (k = 0..4) and coded as deltas (order 1) or
 *           delta-of-deltas (order 2)
 *   u8      decimal modes only: the value buckets' base width b (1..20)
 *   version 2 only (grid timestamps, below):
 *   u8      the offset width w (0..32)
 *   varint  the grid interval Δ, zigzag-coded (z = 2e for e ≥ 0, −2e − 1 below; |Δ| ≤ 2^52)
 *   varint  the grid's lowest offset lo, zigzag-coded (|lo| ≤ 2^52)
 *   bits    timestamps: version 1, an integer sequence of order 2 with the timestamp buckets;
 *           version 2, grid offsets
 *   bits    values: an integer sequence with the value buckets (decimal) or Gorilla XOR floats
 *
 * Grid offsets (version 2): the first timestamp t₀ as a sign bit and a 53-bit magnitude; the
 * grid point G starts at t₀ + lo. Then per timestamp tᵢ (i ≥ 1), G becomes G + Δ and a w-bit
 * code c follows: c < 2^w − 1 means tᵢ = G + c; c = 2^w − 1 (all ones) is an escape: tᵢ itself
 * follows as a sign bit and a 53-bit magnitude, then w more bits c′, and the grid continues from
 * it: G becomes tᵢ − c′ (so tᵢ is G + c′, as if it had been coded c′; the next point's grid point
 * is tᵢ − c′ + Δ). With w = 0 there is no code and no escape: every tᵢ is G. All of it is
 * float64 arithmetic, the same in the encoder and the decoder; the encoder uses a code only when
 * G + c reproduces tᵢ exactly. The encoder picks Δ (the median delta, or the span over the
 * number of median intervals it holds), for each the width w and lo whose window of codes holds
 * the most offsets for the fewest bits, and c′ so that a point after a gap of whole intervals
 * keeps its place in the grid ((tᵢ − G) mod Δ when that is a code, else the middle code 2^(w−1) − 1,
 * or 0 when tᵢ − c′ would not be a safe integer); the decoder takes whatever c′ it reads.
 * It writes version 2 only when the header's extra bytes and the offsets take fewer bits than
 * version 1's delta-of-deltas, else version 1 bytes, unchanged: no chunk is larger than in
 * version 1 (the byte count is at most version 1's).
 *
 * Integer sequence (timestamps in ms; decimal values as integers v·10^k): the first element as
 * a sign bit and a 53-bit magnitude; then, per element, its delta (order 1) or delta-of-delta
 * (order 2) zigzag-coded into the first bucket wide enough, with a unary prefix:
 * `0` = zero, `10` + w₁ bits, `110` + w₂ bits, … and all ones = escape, followed by the element
 * itself as a sign bit and 53-bit magnitude (any jump, including one whose delta is not a safe
 * integer). After an escape the running delta is the exact delta if it is a safe integer, else 0
 * — the decoder follows the same rule.
 *
 * XOR floats (Gorilla, as Prometheus writes them): the first value's 64 bits; then per value `0`
 * if its bits equal the previous value's, else `1`, then `0` + the XOR's meaningful bits inside
 * the previous window of leading/trailing zeros, or `1` + 5 bits of leading zeros (capped at 31)
 * + 6 bits of (meaningful length − 1) + the meaningful bits. Every float64 bit pattern
 * round-trips (NaN payloads as far as the JavaScript engine keeps them, ±Infinity, -0, subnormals).
 *
 * Decimal mode is chosen when every value v is finite, not -0, and for one k in 0..4 the
 * integer s = Math.round(v·10^k) is a safe integer with s / 10^k === v exactly (the decoder
 * computes s / 10^k), so decoding gives back the same float64 bits; the encoder measures both
 * orders and every bucket table, and keeps the smallest stream.
 *
 * Timestamps are safe integers (|t| ≤ 2^53 − 1) in any order; equal and decreasing allowed.
 */

/** The newest format the encoder writes (it writes version 1 where grid timestamps would not be smaller). */
export const CHUNK_CODEC_VERSION = 2;
/** Version 1: timestamps as delta-of-deltas (still written when smaller, and read). */
const CHUNK_CODEC_V1 = 1;
/** Grid parameters the encoder considers: |Δ| and |lo| up to 2^52 (zigzag codes stay safe integers), w up to 24. */
const MAX_GRID_PARAM = 2 ** 52;
const MAX_GRID_WIDTH = 24;

/** Bucket widths (bits of the zigzag-coded delta-of-delta) for timestamps. A 10 s interval with
 * ±5 ms of jitter gives |dod| ≤ 20 (zigzag < 41): 6, 8 or 10 bits, 6.5 on average. */
const TS_BUCKETS = [4, 5, 6, 12, 20, 32] as const;
/** Bucket widths for decimal values (deltas or delta-of-deltas of the scaled integers): one
 * table per base width b = 1..20, [b, b+3, b+6, b+9, b+12, 32] (capped at 32); the encoder picks
 * the base (and the order) that gives the fewest bits for the chunk. */
const MAX_BASE = 20;
const VALUE_TABLES: number[][] = Array.from({ length: MAX_BASE + 1 }, (_, b) =>
  b === 0 ? [] : [b, b + 3, b + 6, b + 9, b + 12, 32].map((w) => Math.min(w, 32)),
);

const POW10 = [1, 10, 100, 1000, 10000] as const;
const TWO32 = 4294967296;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_COUNT = 0x7fffffff;

export type ValueMode = 'xor' | 'decimal-delta' | 'decimal-dod';

export interface DecodedChunk {
  ts: number[];
  values: number[];
}

// ---------------------------------------------------------------- float64 <-> two uint32 halves

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HI = LITTLE ? 1 : 0;
const LO = LITTLE ? 0 : 1;

// ---------------------------------------------------------------- bits

class BitWriter {
  buf: Uint8Array;
  pos = 0; // bit position

  constructor(bytes: number) {
    this.buf = new Uint8Array(bytes);
  }

  private ensure(bits: number): void {
    const need = ((this.pos + bits + 7) >>> 3) + 1;
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.max(need, this.buf.length * 2));
      next.set(this.buf);
      this.buf = next;
    }
  }

  bit(b: number): void {
    this.ensure(1);
    if (b) this.buf[this.pos >>> 3] |= 0x80 >>> (this.pos & 7);
    this.pos++;
  }

  /** The low `n` bits of `v` (n ≤ 32), most significant first. */
  bits(v: number, n: number): void {
    if (n === 0) return;
    this.ensure(n);
    const buf = this.buf;
    let pos = this.pos;
    while (n > 0) {
      const space = 8 - (pos & 7);
      const take = space < n ? space : n;
      const chunk = (v >>> (n - take)) & ((1 << take) - 1);
      buf[pos >>> 3] |= chunk << (space - take);
      pos += take;
      n -= take;
    }
    this.pos = pos;
  }

  /** The low `n` bits (n ≤ 64) of the 64-bit value hi:lo. */
  bits64(hi: number, lo: number, n: number): void {
    if (n > 32) {
      this.bits(hi, n - 32);
      this.bits(lo, 32);
    } else {
      this.bits(lo, n);
    }
  }

  /** A sign bit and the 53-bit magnitude of a safe integer. */
  signed53(v: number): void {
    const neg = v < 0 ? 1 : 0;
    const m = neg ? -v : v;
    this.bit(neg);
    this.bits(Math.floor(m / TWO32), 21);
    this.bits(m >>> 0, 32);
  }

  byte(b: number): void {
    // Only used before any partial byte: header bytes.
    this.ensure(8);
    this.buf[this.pos >>> 3] = b & 0xff;
    this.pos += 8;
  }

  finish(): Buffer {
    const len = (this.pos + 7) >>> 3;
    return Buffer.from(this.buf.buffer, this.buf.byteOffset, len);
  }
}

function corrupt(what: string): Error {
  return new Error(`chunk data is corrupt: ${what}`);
}

class BitReader {
  pos: number;
  readonly end: number; // in bits

  /** Bytes [0, length) of buf are the data (length: all of them by default); those after it read as zeros. */
  constructor(
    readonly buf: Uint8Array,
    startByte: number,
    length = buf.length,
  ) {
    this.pos = startByte * 8;
    this.end = length * 8;
  }

  bit(): number {
    if (this.pos >= this.end) throw corrupt('truncated');
    const b = (this.buf[this.pos >>> 3] >>> (7 - (this.pos & 7))) & 1;
    this.pos++;
    return b;
  }

  /** The next 32 bits (zeros past the end), most significant first, without consuming them. */
  private peek32(): number {
    const buf = this.buf;
    const i = this.pos >>> 3;
    const off = this.pos & 7;
    const len = buf.length;
    // (No helper closure: this runs per field read, and a closure per call is not free everywhere.)
    const w = (((i < len ? buf[i] : 0) << 24) | (i + 1 < len ? buf[i + 1] << 16 : 0) | (i + 2 < len ? buf[i + 2] << 8 : 0) | (i + 3 < len ? buf[i + 3] : 0)) >>> 0;
    return off === 0 ? w : ((w << off) | ((i + 4 < len ? buf[i + 4] : 0) >>> (8 - off))) >>> 0;
  }

  /** n ≤ 32 bits as an unsigned number. */
  bits(n: number): number {
    if (n === 0) return 0;
    if (this.pos + n > this.end) throw corrupt('truncated');
    const out = this.peek32() >>> (32 - n);
    this.pos += n;
    return out;
  }

  /**
   * A unary prefix: leading one bits up to `max` (< 32); the zero that ends a shorter run is
   * consumed too, as reading bit by bit while fewer than `max` ones were seen would.
   */
  ones(max: number): number {
    let ones = Math.clz32(~this.peek32());
    const used = ones >= max ? ((ones = max), max) : ones + 1;
    if (this.pos + used > this.end) throw corrupt('truncated');
    this.pos += used;
    return ones;
  }

  signed53(): number {
    const neg = this.bit();
    const m = this.bits(21) * TWO32 + this.bits(32);
    if (neg) {
      if (m === 0) throw corrupt('negative zero integer');
      return -m;
    }
    return m;
  }
}

// ---------------------------------------------------------------- integer sequences

const zigzag = (e: number): number => (e >= 0 ? e * 2 : -e * 2 - 1);
const limitsOf = (buckets: readonly number[]): number[] => buckets.map((w) => 2 ** w);
const LIMITS = new Map<readonly number[], number[]>();
const limits = (buckets: readonly number[]): number[] => {
  let l = LIMITS.get(buckets);
  if (!l) LIMITS.set(buckets, (l = limitsOf(buckets)));
  return l;
};
const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

function writeIntSeq(w: BitWriter, xs: ArrayLike<number>, order: 1 | 2, buckets: readonly number[]): void {
  const n = xs.length;
  if (n === 0) return;
  let prev = xs[0];
  w.signed53(prev);
  let prevD = 0;
  const nb = buckets.length;
  const lim = limits(buckets);
  for (let i = 1; i < n; i++) {
    const x = xs[i];
    const d = x - prev;
    const dSafe = Number.isSafeInteger(d);
    const e = order === 1 ? d : d - prevD;
    if (e === 0 && dSafe) {
      w.bit(0);
    } else {
      let done = false;
      if (dSafe && Number.isSafeInteger(e)) {
        const z = zigzag(e);
        for (let b = 0; b < nb; b++) {
          if (z < lim[b]) {
            // b + 1 ones then a zero, then the zigzag value
            w.bits(((1 << (b + 1)) - 1) << 1, b + 2);
            w.bits(z >>> 0, buckets[b]);
            done = true;
            break;
          }
        }
      }
      if (!done) {
        w.bits((1 << (nb + 1)) - 1, nb + 1);
        w.signed53(x);
      }
    }
    prev = x;
    prevD = dSafe ? d : 0;
  }
}

/**
 * Reads n integers into out[0..n). The reader's bytes are followed by at least four zero bytes
 * (decodeWith pads them), so a 32-bit window is four or five plain loads; a prefix and the bits
 * after it are taken from one window when they fit in it.
 */
function readIntSeq(r: BitReader, n: number, order: 1 | 2, buckets: readonly number[], out: Float64Array): void {
  if (n === 0) return;
  const dv = paddedView; // (r.buf is padded)
  let prev = r.signed53();
  out[0] = prev;
  let prevD = 0;
  const nb = buckets.length;
  const max = nb + 1;
  const buf = r.buf;
  const end = r.end;
  let pos = r.pos;
  for (let i = 1; i < n; i++) {
    // The next 32 bits (zeros past the end), most significant first.
    let j = pos >>> 3;
    let off = pos & 7;
    let w = dv.getUint32(j);
    if (off !== 0) w = ((w << off) | (buf[j + 4] >>> (8 - off))) >>> 0;
    // A unary prefix: leading ones up to max; the zero ending a shorter run is consumed too.
    let ones = Math.clz32(~w);
    let used = ones + 1;
    if (ones >= max) ones = used = max;
    if (pos + used > end) throw corrupt('truncated');
    pos += used;
    let x: number;
    let d: number;
    if (ones === 0) {
      d = order === 1 ? 0 : prevD;
      x = prev + d;
    } else if (ones <= nb) {
      const width = buckets[ones - 1];
      if (pos + width > end) throw corrupt('truncated');
      let z: number;
      if (used + width <= 32) {
        z = (w << used) >>> (32 - width);
      } else {
        j = pos >>> 3;
        off = pos & 7;
        w = dv.getUint32(j);
        if (off !== 0) w = ((w << off) | (buf[j + 4] >>> (8 - off))) >>> 0;
        z = w >>> (32 - width);
      }
      pos += width;
      const e = (z >>> 1) ^ -(z & 1); // unzigzag of a field of at most 32 bits
      d = order === 1 ? e : prevD + e;
      x = prev + d;
    } else {
      r.pos = pos;
      x = r.signed53();
      pos = r.pos;
      d = x - prev;
    }
    // (x and d are integers, sums of integers: safe is within ±MAX_SAFE_INTEGER.)
    if (!(x <= MAX_SAFE && x >= -MAX_SAFE)) throw corrupt('integer out of range');
    prevD = d <= MAX_SAFE && d >= -MAX_SAFE ? d : 0;
    prev = x;
    out[i] = x;
  }
  r.pos = pos;
}

// ---------------------------------------------------------------- grid timestamps (version 2)

/**
 * The grid offsets of `ts` (n ≥ 2) with interval delta, lowest offset lo and width w, as the
 * format comment defines them: written to `out` when given; returns the stream's bits (Infinity
 * when w = 0 and a timestamp is off the grid). The encoder's measure and its writer in one, so
 * that both take the same decisions.
 */
function gridStream(ts: readonly number[], delta: number, lo: number, w: number, out: BitWriter | null): number {
  const n = ts.length;
  const t0 = ts[0];
  if (out) out.signed53(t0);
  let g = t0 + lo;
  if (w === 0) {
    for (let i = 1; i < n; i++) {
      g += delta;
      if (g !== ts[i]) return Infinity;
    }
    return 54;
  }
  const esc = w < 31 ? (1 << w) - 1 : 2 ** w - 1;
  const mid = Math.floor(esc / 2);
  let bits = 54 + (n - 1) * w;
  for (let i = 1; i < n; i++) {
    g += delta;
    const t = ts[i];
    const c = t - g;
    if (c >= 0 && c < esc && g + c === t) {
      if (out) out.bits(c, w);
      continue;
    }
    // Escape: the timestamp, then its code in the grid that continues from it.
    let c2 = mid;
    if (delta > 0 && Number.isSafeInteger(c)) {
      const m = ((c % delta) + delta) % delta;
      if (m < esc) c2 = m;
    }
    if (!Number.isSafeInteger(t - c2)) c2 = 0;
    bits += 54 + w;
    if (out) {
      out.bits(esc, w);
      out.signed53(t);
      out.bits(c2, w);
    }
    g = t - c2;
  }
  return bits;
}

/** Bytes of an unsigned LEB128 varint. */
const varintBytes = (v: number): number => {
  let b = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    b++;
  }
  return b;
};

/**
 * The grid (interval, lowest offset, width) whose header bytes and offsets take fewer bits than
 * version 1's delta-of-deltas of `ts` (n ≥ 2), the fewest of those tried; null when none does.
 */
function chooseGrid(ts: readonly number[]): { delta: number; lo: number; w: number } | null {
  const n = ts.length;
  const deltas = new Float64Array(n - 1);
  for (let i = 1; i < n; i++) deltas[i - 1] = ts[i] - ts[i - 1];
  // Intervals tried: the median delta, and the span over the number of median intervals it holds
  // (closer when jitter or a slow drift puts the median a millisecond off: a grid that is one off
  // drifts out of its window within the chunk).
  const median = select(deltas, (n - 1) >> 1);
  const slots = median > 0 ? Math.round((ts[n - 1] - ts[0]) / median) : 0;
  const spanned = slots > 0 ? Math.round((ts[n - 1] - ts[0]) / slots) : median;
  const best = { delta: 0, lo: 0, w: -1, bits: histogramCost(histogram(ts, 2), TS_BUCKETS) };
  gridFor(ts, median, best);
  if (spanned !== median) gridFor(ts, spanned, best);
  return best.w < 0 ? null : { delta: best.delta, lo: best.lo, w: best.w };
}

/** chooseGrid for one interval: replaces `best` with its (lo, w) when its header and stream take fewer bits. */
function gridFor(ts: readonly number[], delta: number, best: { delta: number; lo: number; w: number; bits: number }): void {
  const n = ts.length;
  if (!(Math.abs(delta) <= MAX_GRID_PARAM)) return;
  // Each timestamp's offset from the grid through t₀, folded into (−Δ/2, Δ/2] when Δ > 0 (a point
  // after a gap of whole intervals is then where it would be without the gap).
  const off = new Float64Array(n - 1);
  const half = delta / 2;
  for (let i = 1; i < n; i++) {
    let r = ts[i] - ts[0] - i * delta;
    if (delta > 0 && (r > half || r <= -half)) {
      r = ((r % delta) + delta) % delta;
      if (r > half) r -= delta;
    }
    off[i - 1] = r;
  }
  let min = off[0];
  let max = off[0];
  for (let i = 1; i < n - 1; i++) {
    const r = off[i];
    if (r < min) min = r;
    else if (r > max) max = r;
  }
  const range = max - min;
  // Offsets within a few thousand of each other (jitter) are counted per value; others sorted.
  const counts = range < 4096 ? new Int32Array(range + 1) : null;
  if (counts) for (let i = 0; i < n - 1; i++) counts[off[i] - min]++;
  else off.sort();
  // Each width's estimate: its window (the 2^w − 1 codes, one for w = 0, holding the most
  // offsets: lo is its lowest) and an escape for each offset outside it; the best is measured.
  let bestW = -1;
  let bestLo = 0;
  let bestEstimate = Infinity;
  for (let w = 0; w <= MAX_GRID_WIDTH; w++) {
    const codes = w === 0 ? 1 : (1 << w) - 1;
    let lo = min;
    let most = 0;
    if (counts) {
      // The window [v, v + codes) over the counts, slid one value at a time.
      let inside = 0;
      for (let v = 0; v < codes && v <= range; v++) inside += counts[v];
      most = inside;
      for (let v = 1; v + codes - 1 <= range; v++) {
        inside += counts[v + codes - 1] - counts[v - 1];
        if (inside > most) {
          most = inside;
          lo = min + v;
        }
      }
    } else {
      for (let s = 0, e = 0; s < n - 1; s++) {
        while (e < n - 1 && off[e] - off[s] < codes) e++;
        if (e - s > most) {
          most = e - s;
          lo = off[s];
        }
      }
    }
    const estimate = w === 0 ? (most === n - 1 ? 0 : Infinity) : (n - 1) * w + (n - 1 - most) * (54 + w);
    if (estimate < bestEstimate && Math.abs(lo) <= MAX_GRID_PARAM) {
      bestEstimate = estimate;
      bestW = w;
      bestLo = lo;
    }
    if (codes > range + 1) break; // wider windows hold no more offsets
  }
  if (bestW < 0) return;
  const header = 8 * (1 + varintBytes(zigzag(delta)) + varintBytes(zigzag(bestLo)));
  const bits = header + gridStream(ts, delta, bestLo, bestW, null) - 54;
  if (bits < best.bits) {
    best.bits = bits;
    best.delta = delta;
    best.lo = bestLo;
    best.w = bestW;
  }
}

/** The k-th smallest of xs (reordered in place; quickselect: a typed array's sort costs more than the rest of the encoder). */
function select(xs: Float64Array, k: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const pivot = xs[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (xs[i] < pivot) i++;
      while (xs[j] > pivot) j--;
      if (i <= j) {
        const x = xs[i];
        xs[i] = xs[j];
        xs[j] = x;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return xs[k];
  }
  return xs[k];
}

/** An unsigned LEB128 varint of a safe integer ≥ 0, as header bytes. */
function headerVarint(w: BitWriter, v: number): void {
  while (v >= 0x80) {
    w.byte((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  w.byte(v);
}

/** The header varint reader's cursor (decoding is synchronous). */
const hdr = { p: 0 };

/** A varint of at most 2^53 at hdr.p. */
function readHeaderVarint(data: Uint8Array): number {
  let v = 0;
  let scale = 1;
  for (;;) {
    if (hdr.p >= data.length) throw corrupt('truncated header');
    const b = data[hdr.p++];
    v += (b & 0x7f) * scale;
    if (!(b & 0x80)) break;
    scale *= 0x80;
    if (scale > 2 ** 49) throw corrupt('grid parameter too large');
  }
  if (v > 2 * MAX_GRID_PARAM) throw corrupt('grid parameter too large');
  return v;
}

/** Whether the timestamps the last readGrid read are strictly increasing (foldChunk then need not check them again). */
let gridIncreasing = false;

/** Reads n grid-coded timestamps into out[0..n). */
function readGrid(r: BitReader, n: number, w: number, delta: number, lo: number, out: Float64Array): void {
  const t0 = r.signed53();
  out[0] = t0;
  let g = t0 + lo;
  let increasing = true;
  let prev = t0;
  if (w === 0) {
    for (let i = 1; i < n; i++) {
      g += delta;
      if (!Number.isSafeInteger(g)) throw corrupt('integer out of range');
      if (!(g > prev)) increasing = false;
      prev = g;
      out[i] = g;
    }
    gridIncreasing = increasing;
    return;
  }
  const esc = w < 31 ? (1 << w) - 1 : 2 ** w - 1;
  const dv = paddedView; // (r.buf is padded)
  // The offsets read from a 32-bit window in place (r.bits(w) inlined: a call per point was most of
  // this loop's time), every offset the window holds whole from one load (8 of 4 bits: measured
  // a third less time than a load per offset); the reader's buffer is padded with zero bytes past
  // the data (decodeWith).
  const buf = r.buf;
  const end = r.end;
  const shift = 32 - w;
  const per = Math.floor(32 / w);
  let pos = r.pos;
  let i = 1;
  while (i < n) {
    const j = pos >>> 3;
    const off = pos & 7;
    let win = dv.getUint32(j);
    if (off !== 0) win = ((win << off) | (buf[j + 4] >>> (8 - off))) >>> 0;
    const k = Math.min(per, n - i);
    for (let m = 0; m < k; m++) {
      g += delta;
      if (pos + w > end) throw corrupt('truncated');
      // (m · w ≤ 32 − w: the m-th offset of the window.)
      const c = (win << (m * w)) >>> shift;
      pos += w;
      if (c !== esc) {
        const t = g + c;
        // (An integer: safe is within ±MAX_SAFE_INTEGER.)
        if (!(t <= MAX_SAFE && t >= -MAX_SAFE)) throw corrupt('integer out of range');
        if (!(t > prev)) increasing = false;
        prev = t;
        out[i++] = t;
      } else {
        r.pos = pos;
        const t = r.signed53();
        g = t - r.bits(w);
        pos = r.pos;
        if (!(t > prev)) increasing = false;
        prev = t;
        out[i++] = t;
        break; // (the window's later bits were the escape's)
      }
    }
  }
  r.pos = pos;
  gridIncreasing = increasing;
}

// ---------------------------------------------------------------- XOR floats

const ctz32 = (x: number): number => 31 - Math.clz32(x & -x);

function writeXor(w: BitWriter, values: readonly number[]): void {
  const n = values.length;
  if (n === 0) return;
  f64[0] = values[0];
  let ph = u32[HI];
  let pl = u32[LO];
  w.bits(ph, 32);
  w.bits(pl, 32);
  let pLead = -1;
  let pTrail = 0;
  for (let i = 1; i < n; i++) {
    f64[0] = values[i];
    const h = u32[HI];
    const l = u32[LO];
    const xh = (h ^ ph) >>> 0;
    const xl = (l ^ pl) >>> 0;
    ph = h;
    pl = l;
    if (xh === 0 && xl === 0) {
      w.bit(0);
      continue;
    }
    let lead = xh !== 0 ? Math.clz32(xh) : 32 + Math.clz32(xl);
    if (lead > 31) lead = 31;
    const trail = xl !== 0 ? ctz32(xl) : 32 + ctz32(xh);
    let t: number;
    let sig: number;
    if (pLead >= 0 && lead >= pLead && trail >= pTrail) {
      w.bits(0b10, 2);
      t = pTrail;
      sig = 64 - pLead - pTrail;
    } else {
      sig = 64 - lead - trail;
      w.bits(0b11, 2);
      w.bits(lead, 5);
      w.bits(sig - 1, 6);
      pLead = lead;
      pTrail = trail;
      t = trail;
    }
    // shift hi:lo right by t, write the low `sig` bits
    let sh: number;
    let sl: number;
    if (t >= 32) {
      sh = 0;
      sl = xh >>> (t - 32);
    } else if (t > 0) {
      sl = ((xl >>> t) | (xh << (32 - t))) >>> 0;
      sh = xh >>> t;
    } else {
      sh = xh;
      sl = xl;
    }
    w.bits64(sh, sl, sig);
  }
}

/** Reads n XOR'd floats into out[0..n). */
function readXor(r: BitReader, n: number, out: Float64Array): void {
  if (n === 0) return;
  let ph = r.bits(32);
  let pl = r.bits(32);
  u32[HI] = ph;
  u32[LO] = pl;
  out[0] = f64[0];
  let pLead = -1;
  let pTrail = 0;
  for (let i = 1; i < n; i++) {
    if (r.bit() === 1) {
      let sig: number;
      let t: number;
      if (r.bit() === 0) {
        if (pLead < 0) throw corrupt('XOR window reused before one was set');
        t = pTrail;
        sig = 64 - pLead - pTrail;
      } else {
        const lead = r.bits(5);
        sig = r.bits(6) + 1;
        t = 64 - lead - sig;
        if (t < 0) throw corrupt('XOR window wider than 64 bits');
        pLead = lead;
        pTrail = t;
      }
      let xh: number;
      let xl: number;
      if (sig > 32) {
        xh = r.bits(sig - 32);
        xl = r.bits(32);
      } else {
        xh = 0;
        xl = r.bits(sig);
      }
      // shift hi:lo left by t
      if (t >= 32) {
        xh = xl << (t - 32);
        xl = 0;
      } else if (t > 0) {
        xh = (xh << t) | (xl >>> (32 - t));
        xl = xl << t;
      }
      ph = (ph ^ xh) >>> 0;
      pl = (pl ^ xl) >>> 0;
      u32[HI] = ph;
      u32[LO] = pl;
    }
    out[i] = f64[0];
  }
}

// ---------------------------------------------------------------- decimal detection

/** The smallest k (0..4) at which every value is an exact decimal, or -1. Fills `scaled`. */
function decimalScale(values: readonly number[], scaled: Float64Array): number {
  let k = 0;
  const n = values.length;
  outer: while (k <= 4) {
    const p = POW10[k];
    for (let i = 0; i < n; i++) {
      const v = values[i];
      let s = Math.round(v * p);
      if (s === 0) s = 0; // no -0 integers: the decoder's 0 / 10^k is +0
      // (s / p === v also holds for v = -0, hence the reciprocal test; NaN fails both sides)
      if (!(s / p === v) || !(s <= Number.MAX_SAFE_INTEGER && s >= -Number.MAX_SAFE_INTEGER) || (v === 0 && 1 / v < 0)) {
        // Not representable at this k; a larger k may do (values with more fraction digits).
        if (v !== v || v === Infinity || v === -Infinity || Object.is(v, -0)) return -1;
        k++;
        continue outer;
      }
      scaled[i] = s;
    }
    return k;
  }
  return -1;
}

/** Histogram of an integer sequence's deltas (order 1) or delta-of-deltas (order 2), as
 * writeIntSeq would code them: [0] zeros, [1..32] zigzag bit lengths, [33] escapes. */
function histogram(xs: ArrayLike<number>, order: 1 | 2): Float64Array {
  const h = new Float64Array(34);
  let prevD = 0;
  for (let i = 1; i < xs.length; i++) {
    const d = xs[i] - xs[i - 1];
    const dSafe = Number.isSafeInteger(d);
    const e = order === 1 ? d : d - prevD;
    if (!dSafe || !Number.isSafeInteger(e)) h[33]++;
    else if (e === 0) h[0]++;
    else {
      const z = zigzag(e);
      h[z < TWO32 ? 32 - Math.clz32(z) : 33]++;
    }
    prevD = dSafe ? d : 0;
  }
  return h;
}

function histogramCost(h: Float64Array, buckets: readonly number[]): number {
  let bits = h[0] + h[33] * (buckets.length + 1 + 54);
  let b = 0;
  for (let len = 1; len <= 32; len++) {
    while (buckets[b] < len) b++;
    bits += h[len] * (b + 2 + buckets[b]);
  }
  return bits;
}

// ---------------------------------------------------------------- API

/**
 * Encodes one chunk. `ts` are safe-integer epoch milliseconds in any order (the decoder returns
 * them in the same order); `values` any float64. Throws a RangeError on mismatched lengths or a
 * timestamp that is not a safe integer.
 */
export function encodeChunk(ts: readonly number[], values: readonly number[]): Buffer {
  const n = ts.length;
  if (values.length !== n) throw new RangeError(`encodeChunk: ${n} timestamps but ${values.length} values`);
  if (n > MAX_COUNT) throw new RangeError('encodeChunk: too many points');
  for (let i = 0; i < n; i++) {
    if (!Number.isSafeInteger(ts[i])) throw new RangeError(`encodeChunk: timestamp ${ts[i]} is not a safe integer`);
  }
  const grid = n >= 2 ? chooseGrid(ts) : null;
  const w = new BitWriter(32 + n * 4);
  w.byte(grid ? CHUNK_CODEC_VERSION : CHUNK_CODEC_V1);
  let c = n;
  do {
    const b = c & 0x7f;
    c >>>= 7;
    w.byte(c ? b | 0x80 : b);
  } while (c);
  if (n === 0) return w.finish();

  const scaled = new Float64Array(n);
  const k = decimalScale(values, scaled);
  let order: 1 | 2 = 1;
  let base = 1;
  if (k >= 0) {
    let best = Infinity;
    for (const o of [1, 2] as const) {
      const h = histogram(scaled, o);
      for (let b = 1; b <= MAX_BASE; b++) {
        const c = histogramCost(h, VALUE_TABLES[b]);
        if (c < best) {
          best = c;
          order = o;
          base = b;
        }
      }
    }
    w.byte(1 + k + 5 * (order - 1));
    w.byte(base);
  } else {
    w.byte(0);
  }
  if (grid) {
    w.byte(grid.w);
    headerVarint(w, zigzag(grid.delta));
    headerVarint(w, zigzag(grid.lo));
    gridStream(ts, grid.delta, grid.lo, grid.w, w);
  } else {
    writeIntSeq(w, ts, 2, TS_BUCKETS);
  }
  if (k >= 0) writeIntSeq(w, scaled, order, VALUE_TABLES[base]);
  else writeXor(w, values);
  return w.finish();
}

/** Decodes a chunk written by encodeChunk; throws an Error on anything malformed. */
export function decodeChunk(data: Uint8Array): DecodedChunk {
  // Through the typed-array decoder, so that its readers only ever see Float64Arrays: fed both
  // kinds, they ran at half speed (measured in one process, both in use, as in the daemon).
  const n = decodeChunkInto(data, shared);
  const ts: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    ts.push(shared.ts[i]);
    values.push(shared.values[i]);
  }
  return { ts, values };
}

/** Reusable output arrays of decodeChunkInto (replaced by larger ones when a chunk does not fit). */
export interface DecodeScratch {
  ts: Float64Array;
  values: Float64Array;
}

/** decodeChunk's scratch (decoding is synchronous). */
const shared: DecodeScratch = { ts: new Float64Array(1024), values: new Float64Array(1024) };

/**
 * Decodes a chunk into scratch.ts / scratch.values [0, count) without allocating per chunk
 * (a query decodes thousands); returns the count. Same checks and results as decodeChunk.
 */
export function decodeChunkInto(data: Uint8Array, scratch: DecodeScratch): number {
  return decodeWith(data, scratch);
}

/** decodeWith's copy of the data, zero-padded (decoding is synchronous). */
let padded = new Uint8Array(1024);
/** padded as a DataView: a window's four bytes in one big-endian load. */
let paddedView = new DataView(padded.buffer);

/** A chunk's header as readHead leaves it (decoding is synchronous): count, value mode, bucket base, grid parameters (gw -1: version 1), first stream byte. */
const head = { n: 0, mode: 0, base: 0, gw: -1, gDelta: 0, gLo: 0, p: 0 };

/** Reads a chunk's header into `head` (an empty chunk: n 0, its bytes checked to end there). */
function readHead(data: Uint8Array): void {
  if (data.length < 2) throw corrupt('truncated header');
  const version = data[0];
  if (version !== CHUNK_CODEC_V1 && version !== CHUNK_CODEC_VERSION) throw corrupt(`unknown version ${version}`);
  let p = 1;
  let n = 0;
  let shift = 0;
  for (;;) {
    if (p >= data.length) throw corrupt('truncated count');
    if (shift > 28) throw corrupt('count too large');
    const b = data[p++];
    n += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) break;
  }
  if (n > MAX_COUNT) throw corrupt('count too large');
  head.n = n;
  if (n === 0) {
    if (p !== data.length) throw corrupt('trailing bytes');
    return;
  }
  if (p >= data.length) throw corrupt('truncated header');
  const mode = data[p++];
  if (mode > 10) throw corrupt(`unknown value mode ${mode}`);
  let base = 0;
  if (mode !== 0) {
    if (p >= data.length) throw corrupt('truncated header');
    base = data[p++];
    if (base < 1 || base > MAX_BASE) throw corrupt(`unknown bucket base ${base}`);
  }
  let gw = -1;
  let gDelta = 0;
  let gLo = 0;
  if (version !== CHUNK_CODEC_V1) {
    if (p >= data.length) throw corrupt('truncated header');
    gw = data[p++];
    if (gw > 32) throw corrupt(`unknown offset width ${gw}`);
    hdr.p = p;
    gDelta = unzigzag(readHeaderVarint(data));
    gLo = unzigzag(readHeaderVarint(data));
    p = hdr.p;
  }
  // Every point after the first costs at least one bit in each stream (grid offsets: w bits, maybe
  // none): bound the count by the bytes present before allocating anything for it.
  if (gw < 0 ? n - 1 > ((data.length - p) * 8 - 54 - 1) / 2 : (n - 1) * (gw + 1) > (data.length - p) * 8 - 108) throw corrupt('count larger than the data');
  head.mode = mode;
  head.base = base;
  head.gw = gw;
  head.gDelta = gDelta;
  head.gLo = gLo;
  head.p = p;
}

/** After readHead (n > 0): the timestamps into out.ts (grown to fit); returns the reader, at the values. */
function readTimes(data: Uint8Array, out: DecodeScratch): BitReader {
  const n = head.n;
  if (out.ts.length < n) {
    const size = Math.max(n, out.ts.length * 2);
    out.ts = new Float64Array(size);
    out.values = new Float64Array(size);
  }
  // The data followed by eight zero bytes: the sequence reader's windows need no bounds checks.
  if (padded.length < data.length + 8) {
    padded = new Uint8Array(Math.max(data.length + 8, 2 * padded.length));
    paddedView = new DataView(padded.buffer);
  }
  padded.set(data);
  padded.fill(0, data.length, data.length + 8);
  const r = new BitReader(padded, head.p, data.length);
  if (head.gw < 0) readIntSeq(r, n, 2, TS_BUCKETS, out.ts);
  else readGrid(r, n, head.gw, head.gDelta, head.gLo, out.ts);
  return r;
}

/** Only zero padding may follow the last bit. */
function checkEnd(r: BitReader, data: Uint8Array): void {
  if (((r.pos + 7) >>> 3) !== data.length) throw corrupt('trailing bytes');
  if (r.pos & 7 && data[data.length - 1] & (0xff >>> (r.pos & 7))) throw corrupt('non-zero padding');
}

/** The decoder, into `out`'s arrays (replaced by larger ones once the count is known to fit the data). */
function decodeWith(data: Uint8Array, out: DecodeScratch): number {
  readHead(data);
  const n = head.n;
  if (n === 0) return 0;
  const mode = head.mode;
  const r = readTimes(data, out);
  const values = out.values;
  if (mode === 0) {
    readXor(r, n, values);
  } else {
    const k = (mode - 1) % 5;
    const order = mode > 5 ? 2 : 1;
    readIntSeq(r, n, order, VALUE_TABLES[head.base], values);
    const pw = POW10[k];
    if (pw !== 1) for (let i = 0; i < n; i++) values[i] = values[i] / pw; // (x / 1 is x: integers stay as read)
  }
  checkEnd(r, data);
  return n;
}

// ---------------------------------------------------------------- folding into buckets

/** ChunkFold.mode: each point's value. */
export const FOLD_VALUES = 0;
/** ChunkFold.mode: a cumulative counter's delta from the previous point (DELTA_SQL: the value itself after a drop). */
export const FOLD_COUNTER = 1;
/** ChunkFold.mode: an up-down counter's delta from the previous point (value − previous). */
export const FOLD_UPDOWN = 2;

/**
 * Where foldChunk adds a chunk's points: per bucket i (start startMs + i · stepMs) a count n[i]
 * and a sum sum[i]; a bucket's first addition sets start[i] and appends i to seen. prev/hasPrev:
 * the previous point's value (deltas), carried from chunk to chunk.
 */
export interface ChunkFold {
  mode: number;
  startMs: number;
  endMs: number;
  stepMs: number;
  /** Points before it are skipped; those in [lowMs, startMs) only become prev. */
  lowMs: number;
  n: Float64Array;
  sum: Float64Array;
  start: Float64Array;
  /** Where a bucket's index goes when first seen (tier-read's IndexList, or an array). */
  seen: { push(i: number): unknown };
  prev: number;
  hasPrev: boolean;
}

/**
 * Decodes a chunk (into scratch) and adds its points to buckets, without a stream step per point
 * or a series' points collected and sorted first: per point in [lowMs, endMs) in stored order, a point before startMs becomes prev; a later one
 * adds (FOLD_VALUES) its value, or (the others, once there is a prev) its delta from prev, to its
 * bucket: `n[i] += 1; sum[i] += x`, or `n[i] = 1; sum[i] = x` for a bucket not yet seen. Those are
 * the same float64 operations, in the same order, as adding the decoded points one by one.
 * Returns the count (scratch.ts holds the times), or -1, having added nothing, when the values are
 * not decimal-coded or the times not strictly increasing: then decode the chunk. The same errors
 * as decodeChunkInto, thrown before anything is added. startMs, endMs and
 * stepMs must be safe integers with stepMs > 0 and every bucket start a safe integer: a point's
 * bucket is found by comparing its time with the bucket's end.
 */
export function foldChunk(data: Uint8Array, scratch: DecodeScratch, fold: ChunkFold): number {
  readHead(data);
  const n = head.n;
  if (n === 0) return 0;
  if (head.mode === 0) return -1;
  const mode = head.mode;
  const r = readTimes(data, scratch);
  const ts = scratch.ts;
  if (!(head.gw >= 0 && gridIncreasing)) for (let i = 1; i < n; i++) if (!(ts[i] > ts[i - 1])) return -1;
  const values = scratch.values;
  readIntSeq(r, n, mode > 5 ? 2 : 1, VALUE_TABLES[head.base], values);
  const pw = POW10[(mode - 1) % 5];
  if (pw !== 1) for (let i = 0; i < n; i++) values[i] = values[i] / pw; // (as decodeWith)
  checkEnd(r, data);
  foldPoints(ts, values, n, fold);
  return n;
}

/**
 * The fold of decoded points ts/vs [0, n) into f's buckets, as foldChunk says. Decoding first
 * (readIntSeq's tight loop) and then this plain loop over the arrays measured 15% less time than
 * one loop doing both (bench:prometheus's counter chunks, one implementation per process).
 */
function foldPoints(ts: Float64Array, vs: Float64Array, n: number, f: ChunkFold): void {
  const { mode, startMs, endMs, stepMs, lowMs } = f;
  const N = f.n;
  const SUM = f.sum;
  let prevV = f.prev;
  let hasPrev = f.hasPrev;
  let bi = -1;
  let edge = -Infinity;
  let open = false;
  let bn = 0;
  let bs = 0;
  for (let i = 0; i < n; i++) {
    const t = ts[i];
    if (!(t >= lowMs && t < endMs)) continue;
    const v = vs[i];
    if (t < startMs || (mode !== FOLD_VALUES && !hasPrev)) {
      prevV = v;
      hasPrev = true;
      continue;
    }
    if (t >= edge) {
      if (open) {
        N[bi] = bn;
        SUM[bi] = bs;
        open = false;
      }
      bi = Math.floor((t - startMs) / stepMs);
      edge = startMs + (bi + 1) * stepMs;
    }
    const add = mode === FOLD_VALUES ? v : mode === FOLD_UPDOWN ? v - prevV : counterDelta(prevV, v);
    if (open) {
      bn += 1;
      bs += add;
    } else {
      open = true;
      if (N[bi] === 0) {
        f.seen.push(bi);
        f.start[bi] = startMs + bi * stepMs;
        bn = 1;
        bs = add;
      } else {
        bn = N[bi] + 1;
        bs = SUM[bi] + add;
      }
    }
    prevV = v;
    hasPrev = true;
  }
  if (open) {
    N[bi] = bn;
    SUM[bi] = bs;
  }
  f.prev = prevV;
  f.hasPrev = hasPrev;
}

/** How the values of an encoded chunk are stored (for tests and benchmarks). */
export function chunkValueMode(data: Uint8Array): ValueMode | 'empty' {
  let p = 1;
  while (data[p] & 0x80) p++;
  if (data[1] === 0) return 'empty';
  const mode = data[p + 1];
  return mode === 0 ? 'xor' : mode > 5 ? 'decimal-dod' : 'decimal-delta';
}

export interface ChunkAggregates {
  count: number;
  firstTs: number;
  lastTs: number;
  min: number;
  max: number;
  sum: number;
  firstValue: number;
  lastValue: number;
  increase: number;
}

/** PostgreSQL's float8 order: NaN above everything (and equal to NaN), -0 equal to 0. */
export function cmpFloat8(a: number, b: number): number {
  if (a !== a) return b !== b ? 0 : 1;
  if (b !== b) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A cumulative counter's growth from prev to v as a metric read's `increase` computes it
 * (query-repository's DELTA_SQL): v − prev, or v itself after a drop (a reset), compared as
 * PostgreSQL compares float8 (NaN above everything). The plain comparison answers unless a NaN
 * is involved.
 */
export function counterDelta(prev: number, v: number): number {
  return v >= prev ? v - prev : prev === prev && v === v ? v : cmpFloat8(v, prev) >= 0 ? v - prev : v;
}

/**
 * The aggregates stored beside a chunk's data. Points are taken in ascending (ts, value) order —
 * ties on ts ordered by value as PostgreSQL orders float8 (NaN last, -0 equal to 0), otherwise
 * in input order — and `sum` and `increase` are accumulated in that order, sum starting from the
 * first value as PostgreSQL's sum(float8) does (so a chunk of -0 sums to -0). min/max follow
 * PostgreSQL's float8 min()/max(): NaN counts as the largest value. increase is the counter
 * growth: the sum over consecutive pairs of (v >= prev ? v - prev : v), a drop being a reset.
 * Throws a RangeError when there is no point.
 */
export function chunkAggregates(ts: readonly number[], values: readonly number[]): ChunkAggregates {
  const n = ts.length;
  if (values.length !== n) throw new RangeError(`chunkAggregates: ${n} timestamps but ${values.length} values`);
  if (n === 0) throw new RangeError('chunkAggregates: no points');
  let sorted = true;
  for (let i = 1; i < n; i++) {
    const c = ts[i] - ts[i - 1];
    if (c < 0 || (c === 0 && cmpFloat8(values[i - 1], values[i]) > 0)) {
      sorted = false;
      break;
    }
  }
  if (sorted) return sortedAggregates(ts, values, 0, n);
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => ts[a] - ts[b] || cmpFloat8(values[a], values[b]) || a - b);
  return sortedAggregates(
    order.map((k) => ts[k]),
    order.map((k) => values[k]),
    0,
    n,
  );
}

/**
 * chunkAggregates of the points [from, to) (from < to), already in (ts, value) order: the same
 * float64 operations in the same order, without the copy a slice would take.
 */
function sortedAggregates(ts: readonly number[], values: readonly number[], from: number, to: number): ChunkAggregates {
  const v0 = values[from];
  let min = v0;
  let max = v0;
  let sum = v0;
  let increase = 0;
  let prev = v0;
  for (let i = from + 1; i < to; i++) {
    const v = values[i];
    if (cmpFloat8(v, min) < 0) min = v;
    if (cmpFloat8(v, max) > 0) max = v;
    sum += v;
    increase += v >= prev ? v - prev : v;
    prev = v;
  }
  return {
    count: to - from,
    firstTs: ts[from],
    lastTs: ts[to - 1],
    min,
    max,
    sum,
    firstValue: v0,
    lastValue: prev,
    increase,
  };
}

// ---------------------------------------------------------------- halves (the `sub` column)

/**
 * A chunk's aggregates or a half's, as numbers in one Float64Array (the order of the read's chunk
 * records): first ts, last ts, count, min, max, sum, first value, last value, increase.
 */
export const AGG_FIRST_TS = 0;
export const AGG_LAST_TS = 1;
export const AGG_COUNT = 2;
export const AGG_MIN = 3;
export const AGG_MAX = 4;
export const AGG_SUM = 5;
export const AGG_FIRST = 6;
export const AGG_LAST = 7;
export const AGG_INCREASE = 8;
/** Numbers per aggregate set. */
export const AGG_SIZE = 9;

export const SUB_VERSION = 1;

/** The largest k of a `reference + k/100` field: its zigzag code stays a safe integer. */
const MAX_STEP = 2 ** 51;

/**
 * Encodes the aggregates of a chunk's two halves (the `sub` column of `point_chunks`): the
 * points before windowStart + windowMs/2 and those from it. Format (version 1), bytes:
 *
 *   u8      version (1)
 *   varint  n1, the first half's count (the second's is the chunk's count − n1); when one half
 *           is empty (n1 = 0 or n1 = count) nothing follows: the other half is the whole chunk
 *   varint  (mid − 1) − the first half's last ts;  varint  the second half's first ts − mid
 *           (the first half's first ts and the second half's last ts are the chunk's)
 *   3 bytes 2-bit tags, most significant first, of the ten value fields below (4 bits of zeros)
 *   then    each field's payload, in field order
 *
 * Value fields, each given by a tag: 0 = equal to its reference R; 3 = equal to its second
 * reference R2; 1 = R + k/100, k a zigzag varint (|k| ≤ 2^51); 2 = the float64 itself (8 bytes,
 * big-endian). References are numbers the reader has already (the chunk's aggregates, earlier
 * fields), computed by the same float64 operations on both sides:
 *
 *   field                 R                            R2
 *   first half's last     chunk's first value          chunk's last value
 *   second half's first   first half's last            chunk's last value
 *   first half's min      chunk's min                  chunk's first value (the half's first)
 *   first half's max      chunk's max                  first half's last
 *   second half's min     chunk's min                  second half's first
 *   second half's max     chunk's max                  chunk's last value (the half's last)
 *   first half's sum      n1 · chunk's first value     chunk's sum
 *   second half's sum     chunk's sum − first half's   n2 · second half's first
 *   first half's increase first half's last − first   0
 *   second half's increase chunk's last − 2nd's first chunk's increase − first half's
 *
 * The encoder checks every tag it writes bit for bit (Object.is: -0 is not 0, NaN is NaN), so a
 * half's aggregates read back are exactly chunkAggregates of its points. Returns null (no `sub`:
 * readers decode the data, as for chunks written before the column existed) when the points are
 * not in (ts, value) order, a timestamp is not a whole number inside the window, the window's
 * start is not a multiple of its length, or there is no point. `whole`, when the caller has it,
 * must be chunkAggregates(ts, values) (it is not computed again).
 */
export function encodeChunkSub(windowStart: number, windowMs: number, ts: readonly number[], values: readonly number[], whole?: ChunkAggregates): Buffer | null {
  const n = ts.length;
  if (values.length !== n) throw new RangeError(`encodeChunkSub: ${n} timestamps but ${values.length} values`);
  if (n === 0 || !(windowMs > 0 && windowMs % 2 === 0 && Number.isSafeInteger(windowMs)) || !Number.isSafeInteger(windowStart) || windowStart % windowMs !== 0) return null;
  const mid = windowStart + windowMs / 2;
  let n1 = 0;
  for (let i = 0; i < n; i++) {
    const t = ts[i];
    if (!Number.isSafeInteger(t) || t < windowStart || t >= windowStart + windowMs) return null;
    if (i > 0) {
      const d = t - ts[i - 1];
      if (d < 0 || (d === 0 && cmpFloat8(values[i - 1], values[i]) > 0)) return null;
    }
    if (t < mid) n1++;
  }
  const out: number[] = [SUB_VERSION];
  varint(out, n1);
  if (n1 === 0 || n1 === n) return Buffer.from(out);
  // In (ts, value) order (checked above): the halves are ranges of it.
  whole ??= sortedAggregates(ts, values, 0, n);
  const a = sortedAggregates(ts, values, 0, n1);
  const b = sortedAggregates(ts, values, n1, n);
  varint(out, mid - 1 - a.lastTs);
  varint(out, b.firstTs - mid);
  const n2 = n - n1;
  const fields: [number, number, number][] = [
    [a.lastValue, whole.firstValue, whole.lastValue],
    [b.firstValue, a.lastValue, whole.lastValue],
    [a.min, whole.min, whole.firstValue],
    [a.max, whole.max, a.lastValue],
    [b.min, whole.min, b.firstValue],
    [b.max, whole.max, whole.lastValue],
    [a.sum, n1 * whole.firstValue, whole.sum],
    [b.sum, whole.sum - a.sum, n2 * b.firstValue],
    [a.increase, a.lastValue - whole.firstValue, 0],
    [b.increase, whole.lastValue - b.firstValue, whole.increase - a.increase],
  ];
  const tagsAt = out.length;
  out.push(0, 0, 0);
  fields.forEach(([v, r, r2], f) => {
    let tag: number;
    const k = Math.round((v - r) * 100);
    if (Object.is(v, r)) tag = 0;
    else if (Object.is(v, r2)) tag = 3;
    else if (Math.abs(k) <= MAX_STEP && Object.is(r + k / 100, v)) {
      tag = 1;
      varint(out, k >= 0 ? k * 2 : -k * 2 - 1);
    } else {
      tag = 2;
      f64[0] = v;
      const h = u32[HI];
      const l = u32[LO];
      out.push(h >>> 24, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff, l >>> 24, (l >>> 16) & 0xff, (l >>> 8) & 0xff, l & 0xff);
    }
    out[tagsAt + (f >>> 2)] |= tag << (6 - 2 * (f & 3));
  });
  return Buffer.from(out);
}

/** Unsigned LEB128 of a safe integer ≥ 0. */
function varint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/**
 * Decodes a `sub` (buf[start, end)) of the chunk whose aggregates are agg[ai, ai + AGG_SIZE) into
 * out[0, AGG_SIZE) (the first half) and out[AGG_SIZE, 2·AGG_SIZE) (the second); an empty half has
 * count 0 (its other numbers are left as they were). windowStart is the chunk's window. Throws an
 * Error on anything malformed. No allocation: a read decodes tens of thousands.
 */
export function decodeChunkSubInto(buf: Uint8Array, start: number, end: number, windowStart: number, windowMs: number, agg: Float64Array, ai: number, out: Float64Array): void {
  // Module-level cursor and plain functions, no closures: this runs per chunk of a read.
  if (sub.buf !== buf) {
    sub.buf = buf;
    sub.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  sub.p = start;
  sub.end = end;
  if (subByte() !== SUB_VERSION) throw subCorrupt(`unknown version ${buf[start]}`);
  const count = agg[ai + AGG_COUNT];
  const n1 = subVarint();
  if (n1 > count) throw subCorrupt('first half larger than the chunk');
  const B = AGG_SIZE;
  if (n1 === 0 || n1 === count) {
    if (sub.p !== end) throw subCorrupt('trailing bytes');
    const whole = n1 === 0 ? B : 0;
    out[B - whole + AGG_COUNT] = 0;
    for (let i = 0; i < B; i++) out[whole + i] = agg[ai + i];
    return;
  }
  const mid = windowStart + windowMs / 2;
  const n2 = count - n1;
  out[AGG_COUNT] = n1;
  out[B + AGG_COUNT] = n2;
  out[AGG_FIRST_TS] = agg[ai + AGG_FIRST_TS];
  out[AGG_LAST_TS] = mid - 1 - subVarint();
  out[B + AGG_FIRST_TS] = mid + subVarint();
  out[B + AGG_LAST_TS] = agg[ai + AGG_LAST_TS];
  if (out[AGG_LAST_TS] < out[AGG_FIRST_TS] || out[B + AGG_FIRST_TS] > out[B + AGG_LAST_TS]) throw subCorrupt('half times outside the chunk');
  const t0 = subByte();
  const t1 = subByte();
  const t2 = subByte();
  if (t2 & 0x0f) throw subCorrupt('non-zero tag padding');
  const tags = (t0 << 16) | (t1 << 8) | t2;
  const first = agg[ai + AGG_FIRST];
  const last = agg[ai + AGG_LAST];
  out[AGG_FIRST] = first;
  out[B + AGG_LAST] = last;
  const aLast = (out[AGG_LAST] = subField(tags, 0, first, last));
  const bFirst = (out[B + AGG_FIRST] = subField(tags, 1, aLast, last));
  out[AGG_MIN] = subField(tags, 2, agg[ai + AGG_MIN], first);
  out[AGG_MAX] = subField(tags, 3, agg[ai + AGG_MAX], aLast);
  out[B + AGG_MIN] = subField(tags, 4, agg[ai + AGG_MIN], bFirst);
  out[B + AGG_MAX] = subField(tags, 5, agg[ai + AGG_MAX], last);
  const sum = agg[ai + AGG_SUM];
  const aSum = (out[AGG_SUM] = subField(tags, 6, n1 * first, sum));
  out[B + AGG_SUM] = subField(tags, 7, sum - aSum, n2 * bFirst);
  const aInc = (out[AGG_INCREASE] = subField(tags, 8, aLast - first, 0));
  out[B + AGG_INCREASE] = subField(tags, 9, last - bFirst, agg[ai + AGG_INCREASE] - aInc);
  if (sub.p !== end) throw subCorrupt('trailing bytes');
}

/** decodeChunkSubInto's cursor (decoding is synchronous). */
const sub = { buf: new Uint8Array(0) as Uint8Array, view: new DataView(new ArrayBuffer(0)) as DataView<ArrayBufferLike>, p: 0, end: 0 };

function subByte(): number {
  if (sub.p >= sub.end) throw subCorrupt('truncated');
  return sub.buf[sub.p++];
}

function subVarint(): number {
  let v = 0;
  let scale = 1;
  for (;;) {
    const b = subByte();
    v += (b & 0x7f) * scale;
    if (!(b & 0x80)) return v;
    scale *= 0x80;
    if (scale > 2 ** 56) throw subCorrupt('varint too long');
  }
}

/** Value field f (its 2-bit tag in `tags`) from its references r and r2. */
function subField(tags: number, f: number, r: number, r2: number): number {
  const tag = (tags >>> (22 - 2 * f)) & 3;
  if (tag === 0) return r;
  if (tag === 3) return r2;
  if (tag === 1) {
    const z = subVarint();
    if (z > 2 * MAX_STEP) throw subCorrupt('step out of range');
    return r + (z % 2 === 0 ? z / 2 : -(z + 1) / 2) / 100;
  }
  const p = sub.p;
  if (p + 8 > sub.end) throw subCorrupt('truncated');
  sub.p = p + 8;
  // One big-endian load (not two words through f64: a 64-bit load of two fresh 32-bit stores stalls).
  return sub.view.getFloat64(p);
}

function subCorrupt(what: string): Error {
  return new Error(`chunk sub is corrupt: ${what}`);
}

/** decodeChunkSubInto for one chunk's aggregates as an object: [first half, second half], null for an empty half (tests, tools). */
export function decodeChunkSub(sub: Uint8Array, windowStart: number, windowMs: number, whole: ChunkAggregates): [ChunkAggregates | null, ChunkAggregates | null] {
  const agg = Float64Array.of(whole.firstTs, whole.lastTs, whole.count, whole.min, whole.max, whole.sum, whole.firstValue, whole.lastValue, whole.increase);
  const out = new Float64Array(2 * AGG_SIZE);
  decodeChunkSubInto(sub, 0, sub.length, windowStart, windowMs, agg, 0, out);
  const half = (o: number): ChunkAggregates | null =>
    out[o + AGG_COUNT] === 0
      ? null
      : {
          count: out[o + AGG_COUNT],
          firstTs: out[o + AGG_FIRST_TS],
          lastTs: out[o + AGG_LAST_TS],
          min: out[o + AGG_MIN],
          max: out[o + AGG_MAX],
          sum: out[o + AGG_SUM],
          firstValue: out[o + AGG_FIRST],
          lastValue: out[o + AGG_LAST],
          increase: out[o + AGG_INCREASE],
        };
  return [half(0), half(AGG_SIZE)];
}

/** How the timestamps of an encoded chunk are stored (for tests and benchmarks). */
export function chunkTimestampMode(data: Uint8Array): 'delta-of-delta' | 'grid' | 'empty' {
  if (data[1] === 0) return 'empty';
  return data[0] === CHUNK_CODEC_V1 ? 'delta-of-delta' : 'grid';
}
