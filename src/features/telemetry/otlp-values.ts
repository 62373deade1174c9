import protobuf from 'protobufjs';
import { DomainError } from '../../core/errors.js';

/**
 * Readers for the loosely typed request tree the encodings decode to: JSON.parse of the OTLP JSON
 * mapping, protobufjs toObject (logs: longs as decimal strings; bytes as Buffers), or for metrics
 * the decoded protobufjs message itself (64-bit fields as Long objects). Structures of the wrong
 * type make the whole request a 400; a scalar of the wrong type spoils only its item.
 *
 * A decoded message holds the fields that were on the wire as its own properties; the others read
 * as the defaults on its prototype (0, '', an empty list, a zero Long, null for messages). Where a
 * default would not read like an absent field (the members of a oneof, a KeyValue's key), the
 * readers ask `has`, which holds only for a field that was sent (or, in JSON, written out).
 */
export type Obj = Record<string, unknown>;

/** Whether `o` itself holds `key`, not null: the field was sent. */
export const has = (o: Obj, key: string): boolean => o[key] !== undefined && o[key] !== null && Object.hasOwn(o, key);

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

export const malformed = (where: string, what: string): DomainError => new DomainError('bad_request', `invalid OTLP request: ${where} must be ${what}`);

export function objectAt(v: unknown, where: string): Obj {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw malformed(where, 'an object');
  return v;
}

export function listAt(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw malformed(where, 'an array');
  return v;
}

export const stringAt = (v: unknown): string => (typeof v === 'string' ? v : '');

const UNSIGNED = /^\d+$/;
const SIGNED = /^-?\d+$/;
const NANOS_PER_MS = 1_000_000n;

/**
 * 64-bit fields of a protobuf metrics request are left as protobufjs's Long objects (decoding them
 * to decimal strings and parsing those back cost more than the rest of a data point). Only real
 * Long instances count: a JSON body cannot make one.
 */
type Long = { low: number; high: number; unsigned: boolean; toString(): string };
const LongClass = protobuf.util.Long as unknown as abstract new (...args: never[]) => Long;
const isLong = (v: unknown): v is Long => v instanceof LongClass;
const TWO_32 = 4_294_967_296;
/** A Long as a Number: exact within ±(2^53−1), beyond it a Number of at least that magnitude (never safe). */
const longToNumber = (v: Long): number => (v.unsigned ? (v.high >>> 0) * TWO_32 : v.high * TWO_32) + (v.low >>> 0);
/**
 * A non-negative Long of nanoseconds as whole milliseconds, exactly: 2^32 ns = 4294 ms + 967,296 ns,
 * and high × 967,296 + low stays below 2^53.
 */
const longNanosToMs = (v: Long): number => {
  const high = v.high >>> 0;
  return high * 4294 + Math.floor((high * 967_296 + (v.low >>> 0)) / 1_000_000);
};

/**
 * A *TimeUnixNano field as epoch milliseconds (truncated): null when absent or zero (OTLP's
 * "unset"), NaN when unreadable. Any other value is a real time, however small: 500 ns is the
 * epoch's first millisecond, not "unset". BigInt keeps a 19-digit nanosecond string exact
 * before the division.
 */
export function nanosToMs(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    if (!UNSIGNED.test(v)) return NaN;
    const ns = BigInt(v);
    return ns === 0n ? null : Number(ns / NANOS_PER_MS);
  }
  if (typeof v === 'number') return !Number.isFinite(v) || v < 0 ? NaN : v === 0 ? null : Math.floor(v / 1e6);
  if (isLong(v)) {
    if (!v.unsigned && v.high < 0) return NaN;
    return v.high === 0 && v.low === 0 ? null : longNanosToMs(v);
  }
  return NaN;
}

/**
 * A 64-bit integer field (string or number) as a Number; `absent` when missing, NaN when
 * unreadable and also when beyond ±(2^53−1): a Number (a stored double) would round such a value,
 * so it is never returned rounded. `int64Inexact` tells that case apart, for a message.
 */
export function int64(v: unknown, absent = NaN): number {
  if (v === undefined || v === null) return absent;
  let n = NaN;
  if (typeof v === 'string') n = SIGNED.test(v) ? Number(v) : NaN;
  else if (typeof v === 'number') n = Number.isInteger(v) ? v : NaN;
  else if (isLong(v)) n = longToNumber(v);
  return Number.isSafeInteger(n) ? n : NaN;
}

/** Integers beyond this magnitude do not survive a double exactly. */
export const INEXACT_INT64 = 'beyond ±(2^53−1), which cannot be stored exactly';

/** Whether `v` is a readable integer that int64 refuses only because it is beyond ±(2^53−1). */
export function int64Inexact(v: unknown): boolean {
  if (typeof v === 'string') return SIGNED.test(v) && !Number.isSafeInteger(Number(v));
  if (isLong(v)) return !Number.isSafeInteger(longToNumber(v));
  return typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v);
}

/** A double field: numbers, plus the strings proto3 JSON allows ("NaN", "Infinity", "1.5"). */
export function double(v: unknown, absent = NaN): number {
  if (v === undefined || v === null) return absent;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return NaN;
}

const bytesToBase64 = (v: unknown): string => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : stringAt(v));

// A hostile body could nest arrays thousands deep; the recursion below stops well before the stack does.
const MAX_DEPTH = 32;

/** An AnyValue as the JS value stored in a log's attributes/resource (jsonb). */
export function anyToJs(v: unknown, where: string, depth = 0): unknown {
  if (depth > MAX_DEPTH) throw malformed(where, `nested at most ${MAX_DEPTH} levels deep`);
  const a = objectAt(v, where);
  if (typeof a.stringValue === 'string' && has(a, 'stringValue')) return a.stringValue;
  if (typeof a.boolValue === 'boolean' && has(a, 'boolValue')) return a.boolValue;
  if (has(a, 'intValue')) {
    const n = int64(a.intValue);
    // Beyond 2^53 a Number would silently change the value; the decimal string keeps it.
    return Number.isSafeInteger(n) ? n : typeof a.intValue === 'string' ? a.intValue : isLong(a.intValue) ? a.intValue.toString() : null;
  }
  if (has(a, 'doubleValue')) {
    const n = double(a.doubleValue);
    // JSON (and jsonb) have no NaN or Infinity.
    return Number.isFinite(n) ? n : String(n);
  }
  if (has(a, 'arrayValue')) {
    const arr = objectAt(a.arrayValue, where);
    return listAt(arr.values, where).map((x) => anyToJs(x, where, depth + 1));
  }
  if (has(a, 'kvlistValue')) {
    const kv = objectAt(a.kvlistValue, where);
    return attributesToObject(kv.values, where, depth + 1);
  }
  if (has(a, 'bytesValue')) return bytesToBase64(a.bytesValue);
  return null;
}

/** obj[key] = value, also for the key "__proto__", which plain assignment would swallow. */
export function put<T>(obj: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** KeyValue[] → plain object (a repeated key: the last one wins). */
export function attributesToObject(list: unknown, where: string, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of listAt(list, where)) {
    const kv = objectAt(item, where);
    if (typeof kv.key !== 'string' || !has(kv, 'key')) throw malformed(`${where}[].key`, 'a string');
    put(out, kv.key, anyToJs(kv.value, where, depth));
  }
  return out;
}

/** An AnyValue as text: strings as they are, other scalars as JSON would print them, structures as compact JSON. */
export function anyToText(v: unknown, where: string): string {
  const js = anyToJs(v, where);
  if (typeof js === 'string') return js;
  if (js === null) return '';
  if (typeof js === 'number' || typeof js === 'boolean') return String(js);
  return JSON.stringify(js);
}

/** KeyValue[] → [key, text] pairs, for metric labels. */
export function attributesToText(list: unknown, where: string): [string, string][] {
  const out: [string, string][] = [];
  for (const item of listAt(list, where)) {
    const kv = objectAt(item, where);
    if (typeof kv.key !== 'string' || !has(kv, 'key')) throw malformed(`${where}[].key`, 'a string');
    out.push([kv.key, anyToText(kv.value, where)]);
  }
  return out;
}

const HEX = /^[0-9a-fA-F]*$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * traceId / spanId as lowercase hex, or null when empty, all zero (the spec's "invalid id") or
 * not `size` bytes. JSON carries hex per the OTLP mapping; base64 (the generic proto3 mapping some
 * encoders still use) is accepted too.
 */
export function idToHex(v: unknown, size: number): string | null {
  let hex: string | null = null;
  if (v instanceof Uint8Array) {
    if (v.length === size) hex = Buffer.from(v).toString('hex');
  } else if (typeof v === 'string') {
    if (v.length === size * 2 && HEX.test(v)) hex = v.toLowerCase();
    else if (v.length > 0 && BASE64.test(v)) {
      const b = Buffer.from(v, 'base64');
      if (b.length === size) hex = b.toString('hex');
    }
  }
  return hex === null || /^0*$/.test(hex) ? null : hex;
}

/** JSON length of a value as stored (strings count their characters). */
export const valueLength = (v: unknown): number => (typeof v === 'string' ? v.length : v === null || typeof v !== 'object' ? 0 : JSON.stringify(v).length);

/**
 * Counts dropped items by reason for OTLP's partialSuccess.errorMessage. The number of distinct
 * reasons kept is bounded: a request of many differently named bad metrics must not build a huge
 * message.
 */
export class Rejections {
  count = 0;
  readonly #reasons = new Map<string, number>();
  #other = 0;

  constructor(
    private readonly unit: string,
    private readonly maxReasons = 10,
  ) {}

  add(reason: string, n = 1): void {
    this.count += n;
    const seen = this.#reasons.get(reason);
    if (seen !== undefined) this.#reasons.set(reason, seen + n);
    else if (this.#reasons.size < this.maxReasons) this.#reasons.set(reason, n);
    else this.#other += n;
  }

  messages(): string[] {
    const out = [...this.#reasons].map(([reason, n]) => `${n} ${this.unit} rejected: ${reason}`);
    if (this.#other) out.push(`${this.#other} ${this.unit} rejected for other reasons`);
    return out;
  }
}

/**
 * What was stored otherwise than sent (a truncated attribute, a renamed label key, a part of a
 * data point not kept): OTLP lets partialSuccess.errorMessage carry such warnings with nothing
 * rejected. Distinct messages only, at most `max` of them.
 */
export class Warnings {
  readonly #messages = new Set<string>();
  constructor(private readonly max = 10) {}

  add(message: string): void {
    if (this.#messages.size < this.max) this.#messages.add(message);
  }

  messages(): string[] {
    return [...this.#messages];
  }
}
