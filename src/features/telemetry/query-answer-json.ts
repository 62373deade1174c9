import type { AnswerColumns } from './metric-read.js';

/*
 * A metric query's answer as the bytes of its JSON text, written straight into one buffer: the
 * same bytes as JSON.stringify({ series: [{ labels, ...descriptor, points: [[iso, v], …] }, …] })
 * in UTF-8, which is what the HTTP API answered by handing that object to Koa.
 *
 * Why: an answer of 150–250 series × 240 buckets holds 36,000–60,000 points. Built as objects it
 * cost a [timestamp, value] array per point, JSON.stringify of every such pair, the
 * 1.6–2.4 MB string, Koa's Buffer.byteLength of it and Node's UTF-8 encoding of it into another
 * fresh 1.6–2.4 MB on the socket write. Here each bucket start's `["<RFC 3339>",` is made once
 * per answer, a series' values get their texts from one JSON.stringify of them (of its values not
 * seen before in the answer, while most values repeat: ValueTexts), the bytes are copied into one
 * buffer, and that buffer goes to the socket as it is.
 */

/**
 * The longest text of a JSON number (Number.prototype.toString): 25 bytes, a negative 17-digit
 * value between -1e-5 and -1e-6, written in fixed notation (`-0.0000012345678901234567`); the
 * exponent forms are at most 24 (`-2.2250738585072014e-308`).
 */
const NUMBER_MAX = 25;

const OPEN = '{"series":[';

class ByteWriter {
  buf: Buffer;
  pos = 0;

  constructor(capacity: number) {
    // Untouched pages of an over-estimate are never faulted in; only `pos` bytes go out.
    this.buf = Buffer.allocUnsafe(Math.max(64, capacity));
  }

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Any string, as UTF-8 (lone surrogates as U+FFFD, as Node's string encoding does). */
  utf8(s: string): void {
    this.reserve(s.length * 3);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** A string known to hold only ASCII characters (number texts, punctuation). */
  ascii(s: string): void {
    const n = s.length;
    this.reserve(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Bytes `from` to `to` of `b`, copied one by one: these runs are a few dozen bytes, below a native copy's call cost. */
  slice(b: Uint8Array, from: number, to: number): void {
    this.reserve(to - from);
    const buf = this.buf;
    let p = this.pos;
    for (let i = from; i < to; i++) buf[p++] = b[i];
    this.pos = p;
  }

  byte(c: number): void {
    this.reserve(1);
    this.buf[this.pos++] = c;
  }

  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

const COMMA = 0x2c;
const CLOSE_BRACKET = 0x5d;

const DAY_MS = 86_400_000;
/** The largest |t| a Date holds (ECMAScript's time value range). */
const MAX_TIME = 8.64e15;
const DIGIT_0 = 0x30;

/**
 * Writes a bucket start's head, `["<RFC 3339>",`, as `["${new Date(t).toISOString()}",` has it:
 * the date part (`2026-12-01T`, or `+012345-…T` beyond year 9999) from toISOString once per UTC
 * day, the time of day (`HH:MM:SS.mmmZ`) by arithmetic. In the daemon's CPU profile a one-series
 * answer of 240 buckets spent ~0.35 ms of its ~0.6 ms of JSON on toISOString per bucket. A time
 * that is not an integer within the Date range goes through toISOString as before (a Date
 * truncates a fraction; outside the range it throws).
 */
class StampWriter {
  private day = NaN;
  private prefix = '';

  write(w: ByteWriter, t: number): void {
    if (!(Number.isInteger(t) && Math.abs(t) <= MAX_TIME)) {
      w.ascii(`[${JSON.stringify(new Date(t).toISOString())},`);
      return;
    }
    const day = Math.floor(t / DAY_MS) * DAY_MS;
    if (day !== this.day) {
      const iso = new Date(day).toISOString();
      this.prefix = `["${iso.slice(0, iso.indexOf('T') + 1)}`;
      this.day = day;
    }
    w.ascii(this.prefix);
    let r = t - day;
    const ms = r % 1000;
    r = (r - ms) / 1000;
    const sec = r % 60;
    r = (r - sec) / 60;
    const min = r % 60;
    const hour = (r - min) / 60;
    w.reserve(16);
    const b = w.buf;
    let p = w.pos;
    b[p++] = DIGIT_0 + ((hour / 10) | 0);
    b[p++] = DIGIT_0 + (hour % 10);
    b[p++] = 0x3a; // :
    b[p++] = DIGIT_0 + ((min / 10) | 0);
    b[p++] = DIGIT_0 + (min % 10);
    b[p++] = 0x3a;
    b[p++] = DIGIT_0 + ((sec / 10) | 0);
    b[p++] = DIGIT_0 + (sec % 10);
    b[p++] = 0x2e; // .
    b[p++] = DIGIT_0 + ((ms / 100) | 0);
    b[p++] = DIGIT_0 + (((ms / 10) | 0) % 10);
    b[p++] = DIGIT_0 + (ms % 10);
    b[p++] = 0x5a; // Z
    b[p++] = 0x22; // "
    b[p++] = COMMA;
    w.pos = p;
  }
}

/** A point's value as JSON.stringify writes it inside an array. */
function valueText(v: unknown): string {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (v === null) return 'null';
  // Not expected (answers hold numbers and nulls); whatever it is, as JSON.stringify has it in an array.
  return JSON.stringify([v]).slice(1, -1);
}

/** Whether a string is ASCII only (then its UTF-16 units are its bytes). */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * The JSON text, UTF-8, of `{ series: [...] }` with RFC 3339 bucket starts: byte for byte what
 * `Buffer.from(JSON.stringify(answer))` gives for the answer object QueryService.query returns
 * (each series' points `[[RFC 3339 of t[i], v[i]], …]`).
 */
export function metricAnswerJson(series: readonly AnswerColumns[]): Buffer {
  let points = 0;
  for (const a of series) points += a.t.length;
  // `["<24 characters>",` + value + `]` + `,` per point: enough unless stamps are longer (years
  // beyond 9999) or labels long; the writer grows then.
  const w = new ByteWriter(OPEN.length + 2 + series.length * 256 + points * (30 + NUMBER_MAX + 2));
  // `["<RFC 3339>",` per bucket start, encoded once into `heads` (the k-th found at bytes
  // [headStart[k], headEnd[k])): every series shares the same few. As bytes: copying them costs a
  // load and a store each, where a string's characters (a concatenation's, unflattened) may each
  // cost a walk of its parts.
  const headOf = new Map<number, number>();
  const heads = new ByteWriter(1024);
  const headStart: number[] = [];
  const headEnd: number[] = [];
  const stamps = new StampWriter();
  const head = (t: number): number => {
    let k = headOf.get(t);
    if (k === undefined) {
      k = headStart.length;
      headStart.push(heads.pos);
      stamps.write(heads, t);
      headEnd.push(heads.pos);
      headOf.set(t, k);
    }
    return k;
  };
  // The previous series' times and their heads' bytes: most series of an answer have the same
  // bucket starts, found again without a lookup per point.
  const texts = new ValueTexts();
  let scratch = Buffer.allocUnsafe(0);
  let ids = new Int32Array(0);
  let prevT: readonly number[] = [];
  /** The bytes of prevT's heads, all together. */
  let headBytes = 0;
  let from = new Int32Array(0);
  let to = new Int32Array(0);
  w.ascii(OPEN);
  for (let i = 0; i < series.length; i++) {
    const a = series[i];
    if (i > 0) w.byte(COMMA);
    // The series' members but points, in the answer's key order; its closing brace left off.
    const members = JSON.stringify(a.descriptor ? { labels: a.labels, ...a.descriptor } : { labels: a.labels });
    const open = members.slice(0, -1);
    if (isAscii(open)) w.ascii(open);
    else w.utf8(open);
    w.ascii(members.length > 2 ? ',"points":[' : '"points":[');
    const t = a.t;
    const v = a.v;
    const n = t.length;
    if (!sameTimes(t, prevT)) {
      if (from.length < n) {
        from = new Int32Array(Math.max(n, 2 * from.length));
        to = new Int32Array(from.length);
      }
      headBytes = 0;
      for (let j = 0; j < n; j++) {
        const k = head(t[j]);
        from[j] = headStart[k];
        to[j] = headEnd[k];
        headBytes += to[j] - from[j];
      }
      prevT = t;
    }
    let plain = true;
    for (let j = 0; j < n; j++) {
      const x = v[j];
      if (typeof x !== 'number' && x !== null) plain = false;
    }
    const hb = heads.buf;
    const hv = new DataView(hb.buffer, hb.byteOffset, hb.length);
    if (plain && !texts.worth(n)) {
      // The values' texts as JSON.stringify writes numbers (faster than String(x) each, and the
      // same text, non-finite ones as null): one string of them, split at its commas, which only
      // numbers and null hold. Read as bytes (written once into scratch): twice as fast as
      // reading the string's characters (measured).
      const text = JSON.stringify(n === v.length ? v : v.slice(0, n));
      // (Three bytes to spare: a four-byte read at the closing bracket.)
      if (scratch.length < text.length + 3) scratch = Buffer.allocUnsafe(Math.max(text.length + 3, 2 * scratch.length));
      scratch.write(text, 0, 'latin1');
      const sv = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);
      // Each point: its head, its value's text, ']' and (after the first) ','; text holds the
      // values, n − 1 commas and two brackets: text.length + n − 2 bytes besides the heads.
      let room = text.length + n;
      for (let j = 0; j < n; j++) room += to[j] - from[j];
      w.reserve(room);
      const buf = w.buf;
      const out = new DataView(buf.buffer, buf.byteOffset, buf.length);
      let p = w.pos;
      let q = 1; // after '['
      for (let j = 0; j < n; j++) {
        if (j > 0) buf[p++] = COMMA;
        p = copyBytes(buf, out, p, hb, hv, from[j], to[j]);
        // The value's text runs to the next comma (or the closing bracket): copied four bytes at a
        // time while a word holds neither (a zero byte of x ^ 0x2c2c2c2c or x ^ 0x5d5d5d5d: the
        // word test (y − 0x01010101) & ~y & 0x80808080 is non-zero exactly when y has one), then
        // byte by byte.
        for (;;) {
          const x = sv.getUint32(q);
          const a = x ^ 0x2c2c2c2c;
          const b = x ^ 0x5d5d5d5d;
          if ((((a - 0x01010101) & ~a) | ((b - 0x01010101) & ~b)) & 0x80808080) break;
          out.setUint32(p, x);
          p += 4;
          q += 4;
        }
        for (let c = scratch[q++]; c !== COMMA && c !== CLOSE_BRACKET; c = scratch[q++]) buf[p++] = c;
        buf[p++] = CLOSE_BRACKET;
      }
      w.pos = p;
    } else if (plain) {
      // Each value's text by its bits from the answer's table (texts.id): every distinct value is
      // formatted once per answer, however many points hold it (a counter's rates repeat: 3,428
      // distinct among 60,000 points measured), the new ones together by one JSON.stringify.
      if (ids.length < n) ids = new Int32Array(Math.max(n, 2 * ids.length));
      for (let j = 0; j < n; j++) ids[j] = texts.id(v[j] as number | null);
      texts.flush();
      const tb = texts.pool.buf;
      const tv = new DataView(tb.buffer, tb.byteOffset, tb.length);
      const ts = texts.start;
      const te = texts.end;
      // Each point: its head, its value's text (at most NUMBER_MAX bytes), ']' and (after the first) ','.
      w.reserve(headBytes + n * (NUMBER_MAX + 2));
      const buf = w.buf;
      const out = new DataView(buf.buffer, buf.byteOffset, buf.length);
      let p = w.pos;
      for (let j = 0; j < n; j++) {
        if (j > 0) buf[p++] = COMMA;
        p = copyBytes(buf, out, p, hb, hv, from[j], to[j]);
        const id = ids[j];
        p = copyBytes(buf, out, p, tb, tv, ts[id], te[id]);
        buf[p++] = CLOSE_BRACKET;
      }
      w.pos = p;
    } else {
      for (let j = 0; j < n; j++) {
        if (j > 0) w.byte(COMMA);
        w.slice(hb, from[j], to[j]);
        w.utf8(valueText(v[j]));
        w.byte(CLOSE_BRACKET);
      }
    }
    w.ascii(']}');
  }
  w.ascii(']}');
  return w.done();
}

/**
 * The texts of an answer's values (numbers and null) as JSON.stringify writes them in an array,
 * each distinct value's once: id(x) finds x by its 64 bits (an open-addressing table: -0 and 0,
 * or two NaNs of different bits, are different keys with the same text) or gives it the next id;
 * flush() writes the texts of the values given new ids since the last flush, taken from one
 * JSON.stringify of them, into pool: value id's text is pool bytes [start[id], end[id]).
 */
class ValueTexts {
  readonly pool = new ByteWriter(4096);
  start = new Int32Array(256);
  end = new Int32Array(256);
  /** Values looked up. */
  private looked = 0;
  /** Ids given: 0 is null's. */
  private count = 1;
  /** Values given ids since the last flush (their ids: count − pending.length …). */
  private pending: number[] = [];
  private mask = 1023;
  private lo = new Int32Array(1024);
  private hi = new Int32Array(1024);
  /** -1: an empty slot; else the id of the value whose bits are lo/hi. */
  private slot = new Int32Array(1024).fill(-1);

  constructor() {
    this.start[0] = 0;
    this.pool.ascii('null');
    this.end[0] = this.pool.pos;
  }

  /**
   * Whether the next series' n values go through the table: while it holds few enough ids to stay
   * small (cache-resident: a table of every value of an answer of distinct values cost more than
   * formatting them) and, past the first few thousand values, most of them were found in it.
   */
  worth(n: number): boolean {
    if (this.count + n > MAX_TEXTS) return false;
    return this.looked < 1024 || 2 * (this.count - 1) <= this.looked;
  }

  id(x: number | null): number {
    this.looked++;
    if (x === null) return 0;
    bits[0] = x;
    const lo = words[0] | 0;
    const hi = words[1] | 0;
    const mask = this.mask;
    for (let i = slotHash(lo, hi) & mask; ; i = (i + 1) & mask) {
      const s = this.slot[i];
      if (s === -1) {
        const id = this.count++;
        this.slot[i] = id;
        this.lo[i] = lo;
        this.hi[i] = hi;
        this.pending.push(x);
        if (2 * this.count > mask) this.grow();
        return id;
      }
      if (this.lo[i] === lo && this.hi[i] === hi) return s;
    }
  }

  /** Writes the pending values' texts into pool. */
  flush(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    if (this.start.length < this.count) {
      const size = Math.max(this.count, 2 * this.start.length);
      const start = new Int32Array(size);
      const end = new Int32Array(size);
      start.set(this.start);
      end.set(this.end);
      this.start = start;
      this.end = end;
    }
    // `[a,b,…]`: numbers and null only, so the commas split it.
    const text = JSON.stringify(pending);
    const pool = this.pool;
    pool.reserve(text.length);
    const buf = pool.buf;
    const base = pool.pos;
    pool.pos += buf.write(text, base, 'latin1');
    const { start, end } = this;
    let id = this.count - pending.length;
    start[id] = base + 1;
    for (let q = base + 1; q < pool.pos; q++) {
      const c = buf[q];
      if (c === COMMA || c === CLOSE_BRACKET) {
        end[id++] = q;
        start[id] = q + 1;
      }
    }
    pending.length = 0;
  }

  private grow(): void {
    const size = 2 * (this.mask + 1);
    const { lo, hi, slot } = this;
    this.mask = size - 1;
    this.lo = new Int32Array(size);
    this.hi = new Int32Array(size);
    this.slot = new Int32Array(size).fill(-1);
    for (let i = 0; i < slot.length; i++) {
      if (slot[i] === -1) continue;
      let k = slotHash(lo[i], hi[i]) & this.mask;
      while (this.slot[k] !== -1) k = (k + 1) & this.mask;
      this.slot[k] = slot[i];
      this.lo[k] = lo[i];
      this.hi[k] = hi[i];
    }
  }
}

/** The most ids of a ValueTexts: its table stays within 3 × 64 KiB. */
const MAX_TEXTS = 8192;

/** A number's 64 bits (as two 32-bit words, in the platform's order: only compared, never written). */
/** Where ValueTexts looks a value up first: a mix of its two 32-bit words. */
function slotHash(lo: number, hi: number): number {
  const h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  return h ^ (h >>> 15);
}

/**
 * Copies src[k, e) to dst from p, four bytes at a time (as integers: never through a float, whose
 * NaNs may change bits), then the rest byte by byte; returns the position after them. dv and sv
 * are DataViews of dst and src.
 */
function copyBytes(dst: Uint8Array, dv: DataView, p: number, src: Uint8Array, sv: DataView, k: number, e: number): number {
  for (; k + 4 <= e; k += 4, p += 4) dv.setUint32(p, sv.getUint32(k));
  for (; k < e; k++) dst[p++] = src[k];
  return p;
}

const bits = new Float64Array(1);
const words = new Int32Array(bits.buffer);

/** Whether two series have the same times (the same array, or equal ones). */
function sameTimes(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
