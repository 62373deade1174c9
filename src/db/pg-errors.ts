import { DomainError } from '../core/errors.js';

/** How long clients are told to wait while PostgreSQL is unreachable. */
export const DB_RETRY_AFTER_SECONDS = 2;

const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', 'EHOSTUNREACH', 'EAI_AGAIN']);
/** SQLSTATE classes 08 (connection exception), 57P01-57P03 (shutdown, cannot connect now), 53300 (too many connections). */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
const UNAVAILABLE_MESSAGES = /Connection terminated|connection timeout|Timeout acquiring a connection|Client has encountered a connection error|the database system is (starting up|shutting down)/i;

/**
 * Data exceptions only a request's values cause (validation refuses them first; this is the
 * backstop so a value that slips through is the client's 400, not our 500).
 */
const CLIENT_DATA_SQLSTATE = new Map([
  ['22021', 'invalid byte sequence'],
  ['22P05', 'untranslatable character'],
  ['22P02', 'invalid text representation'],
  ['22007', 'invalid datetime format'],
  ['22008', 'datetime out of range'],
  ['22003', 'number out of range'],
  ['22001', 'string too long'],
  ['2201B', 'invalid regular expression'],
]);

interface PgLikeError {
  code?: unknown;
  name?: unknown;
  message?: unknown;
  errors?: unknown;
}

/** True when the error means "PostgreSQL is not reachable right now" (as opposed to a bad query). */
export function isUnavailable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as PgLikeError;
  if (typeof e.code === 'string' && (UNAVAILABLE_NODE_CODES.has(e.code) || UNAVAILABLE_SQLSTATE.test(e.code))) return true;
  if (e.name === 'KnexTimeoutError') return true;
  if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message)) return true;
  // AggregateError from dual-stack connects (127.0.0.1 and ::1 both refused).
  if (Array.isArray(e.errors)) return e.errors.some(isUnavailable);
  return false;
}

/**
 * Map a database error to the domain error model: unreachable → `unavailable` (503 +
 * Retry-After), unique violation → `conflict`, a value PostgreSQL refuses → `bad_request`.
 * Anything else is not the client's fault and stays unknown (500).
 */
export function classifyDbError(err: unknown): DomainError | null {
  if (err instanceof DomainError) return err;
  if (isUnavailable(err)) {
    return new DomainError('unavailable', 'the database is unavailable; retry shortly', {
      retryAfter: DB_RETRY_AFTER_SECONDS,
    });
  }
  const code = (err as PgLikeError | null)?.code;
  if (code === '23505') return new DomainError('conflict', 'already exists');
  if (typeof code === 'string' && CLIENT_DATA_SQLSTATE.has(code)) {
    return new DomainError('bad_request', `the database refused a value of this request (${CLIENT_DATA_SQLSTATE.get(code)})`);
  }
  if (code === SQLSTATE.queryCanceled) return new DomainError('unavailable', 'the query took too long (statement timeout)', { retryAfter: DB_RETRY_AFTER_SECONDS });
  return null;
}

/** The SQLSTATEs (PostgreSQL's appendix A) that jobs, migrations and the writer act on. */
export const SQLSTATE = {
  /** lock_not_available: `lock_timeout` expired, or NOWAIT found the lock held. */
  lockNotAvailable: '55P03',
  /** query_canceled: `statement_timeout` expired. */
  queryCanceled: '57014',
  /** serialization_failure: a REPEATABLE READ transaction met a concurrent write of what it read or locks. */
  serializationFailure: '40001',
  /** deadlock_detected: a lock wait formed a cycle and was broken on this side. */
  deadlockDetected: '40P01',
  /** undefined_table: the statement named a table that no longer exists. */
  undefinedTable: '42P01',
} as const;

/** The error's SQLSTATE (or a Node error code), if it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * SQLSTATE undefined_table: the statement named a table that no longer exists — for a job walking
 * partitions it listed, one dropped meanwhile (compaction drops compacted windows of points,
 * retention expired days), which it skips.
 */
export function isGoneTable(err: unknown): boolean {
  return sqlState(err) === SQLSTATE.undefinedTable;
}
