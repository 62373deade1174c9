/**
 * The one error model. Services throw DomainError with a code from this closed set; the HTTP
 * layer maps codes to statuses and the CLI maps them to exit codes (both tables live here so
 * that a new code cannot be added without deciding both).
 */
export const ERROR_CODES = [
  'bad_request',
  'validation_failed',
  'unauthenticated',
  'forbidden',
  'not_found',
  'conflict',
  'payload_too_large',
  /** A well-formed request that a server-side limit refuses (query too large, too many series). */
  'limit_exceeded',
  'unsupported_media_type',
  'rate_limited',
  'unavailable',
  'invalid_config',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorDetail {
  path: string;
  message: string;
}

export interface DomainErrorDetails {
  errors?: ErrorDetail[];
  /** Seconds the client should wait before retrying (429, 503). */
  retryAfter?: number;
  [key: string]: unknown;
}

export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly details: DomainErrorDetails;

  constructor(code: ErrorCode, message: string, details: DomainErrorDetails = {}) {
    super(message);
    this.name = 'DomainError';
    this.code = code;
    this.details = details;
  }
}

export const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  limit_exceeded: 422,
  unsupported_media_type: 415,
  rate_limited: 429,
  unavailable: 503,
  invalid_config: 500,
  internal: 500,
};

export const EXIT_CODE: Record<ErrorCode, number> = {
  bad_request: 2,
  validation_failed: 2,
  unauthenticated: 1,
  forbidden: 1,
  not_found: 3,
  conflict: 4,
  payload_too_large: 2,
  limit_exceeded: 2,
  unsupported_media_type: 2,
  rate_limited: 1,
  unavailable: 1,
  invalid_config: 2,
  internal: 1,
};

export const TITLES: Record<ErrorCode, string> = {
  bad_request: 'Bad Request',
  validation_failed: 'Validation Failed',
  unauthenticated: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not Found',
  conflict: 'Conflict',
  payload_too_large: 'Payload Too Large',
  limit_exceeded: 'Limit Exceeded',
  unsupported_media_type: 'Unsupported Media Type',
  rate_limited: 'Too Many Requests',
  unavailable: 'Service Unavailable',
  invalid_config: 'Invalid Configuration',
  internal: 'Internal Server Error',
};

export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError;
}

export const notFound = (what: string): DomainError => new DomainError('not_found', `${what} not found`);
export const conflict = (message: string): DomainError => new DomainError('conflict', message);
export const badRequest = (message: string, errors?: ErrorDetail[]): DomainError =>
  new DomainError(errors ? 'validation_failed' : 'bad_request', message, errors ? { errors } : {});

/** PostgreSQL's unique_violation (23505): a name (or other unique key) already taken. */
export const isUniqueViolation = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === '23505';

/** Runs `write`; a unique violation becomes a 409 conflict with `message` (anything else is rethrown). */
export async function conflictOnUnique<T>(write: () => Promise<T>, message: string): Promise<T> {
  try {
    return await write();
  } catch (err) {
    throw isUniqueViolation(err) ? conflict(message) : err;
  }
}
