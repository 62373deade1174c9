import { parseDuration } from '../../core/duration.js';
import { DomainError, type ErrorDetail } from '../../core/errors.js';
import { decodeCursor, encodeCursor } from '../../core/pagination.js';
import { parseRfc3339 } from '../../core/timestamp.js';
import { INGEST_LIMITS } from './telemetry-limits.js';

/**
 * Parsing of the telemetry query parameters (DESIGN §6): timestamps, steps, label matchers,
 * `by` lists and keyset cursors. Pure functions, so the HTTP API, the CLI and the tests share
 * them; every failure is a 400 naming the parameter (`query/<name>`).
 */

export const HOUR_MS = 3_600_000;

/** Most label matchers in one query, `by` labels and `attr.` filters: far above any real use. */
export const MAX_MATCHERS = 32;
export const MAX_BY = 16;
export const MAX_ATTR_FILTERS = 16;
/** A regex longer than any label value is never needed; bounds the regex compiler's work. */
export const MAX_REGEX_LENGTH = INGEST_LIMITS.labelValueMax;

export function invalid(param: string, message: string, detail = message): DomainError {
  return new DomainError('validation_failed', `${param}: ${message}`, { errors: [{ path: `query/${param}`, message: detail }] });
}

export function invalidMany(message: string, errors: ErrorDetail[]): DomainError {
  return new DomainError('validation_failed', message, { errors });
}

const EPOCH_MS = /^-?\d{1,16}$/;

/** Times in are bounded to the years 0001–9999: inside both JavaScript's and PostgreSQL's range. */
export const MIN_TIME_MS = -62_135_596_800_000;
export const MAX_TIME_MS = 253_402_300_799_999;
/** The largest `step`: a year of 366 days (a bucket wider than the query range is refused too). */
export const MAX_STEP_MS = 366 * 86_400_000;

function bounded(param: string, ms: number): number {
  if (ms < MIN_TIME_MS || ms > MAX_TIME_MS) {
    throw invalid(param, `${ms} is out of range: times must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z`, 'must lie between years 0001 and 9999');
  }
  return ms;
}

/**
 * A timestamp in: RFC 3339 (`2026-11-28T10:00:00Z`, any offset, fractions beyond milliseconds
 * dropped) or Unix epoch milliseconds. Returns epoch milliseconds.
 */
export function parseTimestamp(param: string, raw: string | number): number {
  if (typeof raw === 'number') {
    if (Number.isFinite(raw)) return bounded(param, Math.trunc(raw));
    throw invalid(param, 'must be an RFC 3339 timestamp or Unix epoch milliseconds');
  }
  const s = raw.trim();
  if (EPOCH_MS.test(s)) return bounded(param, Number(s));
  const ms = parseRfc3339(s);
  if (ms !== null) return bounded(param, ms);
  throw invalid(param, `'${raw}' is not an RFC 3339 timestamp or Unix epoch milliseconds`, 'must be an RFC 3339 timestamp or Unix epoch milliseconds');
}

export interface TimeRange {
  startMs: number;
  endMs: number;
}

/** `end` defaults to now and `start` to an hour before `end`; start must be before end. */
export function parseRange(input: { start?: string | number; end?: string | number }, now: number, defaultSpanMs = HOUR_MS): TimeRange {
  const endMs = input.end === undefined || input.end === '' ? now : parseTimestamp('end', input.end);
  const startMs = input.start === undefined || input.start === '' ? endMs - defaultSpanMs : parseTimestamp('start', input.start);
  if (startMs >= endMs) throw invalid('start', `start (${iso(startMs)}) must be before end (${iso(endMs)})`, 'must be before end');
  return { startMs, endMs };
}

/**
 * `30s`, `5m`, `1h`, `250ms` or plain seconds; more than zero, at most MAX_STEP_MS and at most
 * the query range (`rangeMs`) it divides. Returns milliseconds.
 */
export function parseStep(raw: string | number | undefined, defaultMs = 60_000, rangeMs = Infinity): number {
  if (raw === undefined || raw === '') return defaultMs;
  const ms = parseDuration(raw);
  if (ms === null) throw invalid('step', `'${raw}' is not a duration: use 30s, 5m, 1h or plain seconds`, 'must be a duration such as 30s, 5m, 1h or plain seconds');
  if (ms <= 0) throw invalid('step', 'must be more than zero');
  if (ms > MAX_STEP_MS) throw invalid('step', `must be at most ${MAX_STEP_MS / 86_400_000}d`);
  if (ms > rangeMs) throw invalid('step', `must not be longer than the query range (${rangeMs} ms from start to end)`, 'must not be longer than the query range');
  return ms;
}

export function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

// ---------------------------------------------------------------------------------------------
// Label matchers and `by`

export type MatchOp = '=' | '!=' | '=~' | '!~';

/** One label matcher as the repository applies it; regexes are already anchored. */
export interface LabelMatcher {
  label: string;
  op: MatchOp;
  value: string;
  /** The matcher as the client wrote it, for error messages. */
  source: string;
}

/**
 * Label names in filters, `by` and `attr.`: what ingest accepts as a label key, plus any other
 * character but the matcher syntax (OTLP attribute keys are looser than native label keys).
 */
const KEY = '[^=!~,\\s]+';
const MATCHER = new RegExp(`^(${KEY})(=~|!~|!=|=)([\\s\\S]*)$`);
/** A comma starts a new matcher only when what follows reads as one (`label` then an operator). */
const SPLIT = new RegExp(`,(?=${KEY}(?:=~|!~|!=|=))`);
const LABEL_KEY_MAX = INGEST_LIMITS.labelKeyMax;

/** Leading embedded options PostgreSQL allows only at the very start of a regex: hoisted before the anchor. */
const LEADING_OPTIONS = /^\(\?([ic]+)\)/;

/**
 * Prometheus semantics: the regex must match the whole label value. `(?i)` at the start (case
 * insensitive) is kept working by moving it in front of the anchor, where PostgreSQL wants it.
 */
export function anchorRegex(re: string): string {
  const m = LEADING_OPTIONS.exec(re);
  return m ? `(?${m[1]})^(?:${re.slice(m[0].length)})$` : `^(?:${re})$`;
}

const list = (raw: string | string[] | undefined): string[] => (raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]);

/**
 * `filter` values: each a comma-separated list of `label=value`, `label!=value`, `label=~regex`
 * or `label!~regex`; repeating the parameter adds more (all must hold). A comma inside a value
 * or regex (`a{1,3}`) stays part of it unless what follows looks like another matcher.
 */
export function parseFilters(raw: string | string[] | undefined): LabelMatcher[] {
  const out: LabelMatcher[] = [];
  for (const param of list(raw)) {
    if (param === '') continue;
    for (const part of param.split(SPLIT)) {
      const m = MATCHER.exec(part);
      if (!m) throw invalid('filter', `malformed filter '${part}': use label=value, label!=value, label=~regex or label!~regex`, `malformed filter '${part}'`);
      const [, label, op, value] = m;
      if (label.length > LABEL_KEY_MAX) throw invalid('filter', `label name in filter '${part}' is longer than ${LABEL_KEY_MAX} characters`);
      const isRegex = op === '=~' || op === '!~';
      if (isRegex && value.length > MAX_REGEX_LENGTH) throw invalid('filter', `regex in filter '${part}' is longer than ${MAX_REGEX_LENGTH} characters`);
      out.push({ label, op: op as MatchOp, value: isRegex ? anchorRegex(value) : value, source: part });
    }
  }
  if (out.length > MAX_MATCHERS) throw invalid('filter', `at most ${MAX_MATCHERS} label matchers`);
  return out;
}

const LABEL_NAME = new RegExp(`^${KEY}$`);

/** `by`: comma-separated label names (the parameter may repeat); duplicates dropped, order kept. */
export function parseBy(raw: string | string[] | undefined): string[] {
  const out: string[] = [];
  for (const param of list(raw)) {
    for (const name of param.split(',').map((s) => s.trim())) {
      if (name === '') continue;
      if (!LABEL_NAME.test(name) || name.length > LABEL_KEY_MAX) throw invalid('by', `'${name}' is not a label name`);
      if (!out.includes(name)) out.push(name);
    }
  }
  if (out.length > MAX_BY) throw invalid('by', `at most ${MAX_BY} labels`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cursors

/** A (ts, id) position in a newest-first listing; ts in epoch microseconds (PostgreSQL's precision). */
export interface TsIdCursor {
  tsUs: string;
  id: string;
}

const TS_ID = /^(-?\d{1,19}):(\d{1,19})$/;

export const encodeTsIdCursor = (c: TsIdCursor): string => encodeCursor(`${c.tsUs}:${c.id}`);

export function decodeTsIdCursor(raw: string | undefined): TsIdCursor | undefined {
  const key = decodeCursor(raw);
  if (key === undefined) return undefined;
  const m = TS_ID.exec(key);
  if (!m) throw invalid('cursor', 'invalid cursor');
  return { tsUs: m[1], id: m[2] };
}

/** Escapes LIKE's wildcards so `q` is a plain substring (the repository uses ESCAPE '\'). */
export const escapeLike = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);
