import { STATUS_CODES } from 'node:http';
import { Type, type Static } from '@sinclair/typebox';
import type { ParameterizedContext } from 'koa';
import type { Logger } from 'pino';
import { DomainError, HTTP_STATUS, TITLES, isDomainError, type ErrorCode, type ErrorDetail } from '../core/errors.js';
import type { HttpState } from './context.js';

/**
 * RFC 9457 problem details. `type` is always `PROBLEM_TYPE_BASE + <slug>` where the slug is the
 * DomainError code (or, for statuses no code covers such as 405, the snake-cased reason phrase),
 * so clients can switch on the suffix without parsing prose.
 */
export const PROBLEM_TYPE_BASE = 'https://sentinel.dev/problems/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ format: 'uri', description: `${PROBLEM_TYPE_BASE}<code>` }),
    title: Type.String(),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.String(),
    request_id: Type.String({ description: 'Same value as the X-Request-Id response header; quote it in bug reports.' }),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String({ description: 'Where the problem is: "body/email", "query/limit", "params/org".' }),
          message: Type.String(),
        }),
      ),
    ),
  },
  { description: 'RFC 9457 problem details (application/problem+json).' },
);

export type ProblemDocument = Static<typeof ProblemSchema>;

export interface ProblemOptions {
  logger: Logger;
  /** Turns infrastructure errors (e.g. "PostgreSQL unreachable") into DomainErrors; null = unknown. */
  classify?: (err: unknown) => DomainError | null;
}

// The first code listed for a status wins, except 500 whose generic meaning is "internal".
const CODE_BY_STATUS = new Map<number, ErrorCode>();
for (const [code, status] of Object.entries(HTTP_STATUS) as [ErrorCode, number][]) {
  if (!CODE_BY_STATUS.has(status)) CODE_BY_STATUS.set(status, code);
}
CODE_BY_STATUS.set(500, 'internal');

// Entity headers a failing handler may already have set; they would describe a body we no longer send.
const STALE_HEADERS = ['content-disposition', 'content-encoding', 'content-language', 'etag', 'last-modified'];

type AnyContext = ParameterizedContext<Partial<HttpState>>;

function slugFor(status: number): { slug: string; title: string } {
  const code = CODE_BY_STATUS.get(status);
  if (code) return { slug: code, title: TITLES[code] };
  const title = STATUS_CODES[status] ?? 'Error';
  return { slug: title.toLowerCase().replace(/[^a-z0-9]+/g, '_'), title };
}

function writeProblem(
  ctx: AnyContext,
  status: number,
  fields: { slug: string; title: string; detail: string; errors?: ErrorDetail[] },
): void {
  const body: ProblemDocument = {
    type: PROBLEM_TYPE_BASE + fields.slug,
    title: fields.title,
    status,
    detail: fields.detail,
    request_id: ctx.state.requestId ?? String(ctx.response.get('X-Request-Id') || ''),
  };
  if (fields.errors && fields.errors.length > 0) body.errors = fields.errors;
  for (const h of STALE_HEADERS) ctx.remove(h);
  ctx.status = status;
  ctx.body = body;
  // After the body: assigning an object body may reset the type to application/json.
  ctx.type = PROBLEM_CONTENT_TYPE;
}

/** Answers with the problem document for `err`. */
export function sendProblem(ctx: ParameterizedContext, err: DomainError): void {
  const status = HTTP_STATUS[err.code];
  const retryAfter = err.details.retryAfter;
  if (typeof retryAfter === 'number' && Number.isFinite(retryAfter)) {
    ctx.set('Retry-After', String(Math.max(0, Math.ceil(retryAfter))));
  }
  const rl = err.details.rateLimit as { limit: number; remaining: number; reset: number } | undefined;
  if (rl) setRateLimitHeaders(ctx, rl);
  writeProblem(ctx as AnyContext, status, {
    slug: err.code,
    title: TITLES[err.code],
    detail: err.message,
    errors: err.details.errors,
  });
}

/** Writes a problem for a bare HTTP status (405, 501 …) that no DomainError code stands for. */
export function sendStatusProblem(ctx: ParameterizedContext, status: number, detail: string): void {
  writeProblem(ctx as AnyContext, status, { ...slugFor(status), detail });
}

interface HttpErrorLike {
  status: number;
  message: string;
  expose?: boolean;
  headers?: Record<string, string>;
}

// http-errors (raw-body, co-body, ctx.throw) carry status/statusCode; co-body's JSON SyntaxError has no `expose`.
function asHttpError(err: unknown): HttpErrorLike | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as { status?: unknown; statusCode?: unknown; message?: unknown; expose?: unknown; headers?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : NaN;
  if (!Number.isInteger(status) || status < 400 || status > 599) return null;
  return {
    status,
    message: typeof e.message === 'string' ? e.message : '',
    expose: typeof e.expose === 'boolean' ? e.expose : undefined,
    headers: typeof e.headers === 'object' && e.headers !== null ? (e.headers as Record<string, string>) : undefined,
  };
}

function classifySafely(opts: ProblemOptions, err: unknown, log: Logger): DomainError | null {
  if (!opts.classify) return null;
  try {
    return opts.classify(err);
  } catch (classifyErr) {
    log.error({ err: classifyErr }, 'error classifier threw');
    return null;
  }
}

/** The problem layer as two calls, for a middleware that wraps the rest of the stack itself (the frame). */
export interface ProblemAnswerer {
  /** Answers whatever was thrown downstream. */
  answer(ctx: ParameterizedContext, err: unknown): void;
  /** Gives a router's bare 404/405/501 (a status without a body) the problem shape. */
  settle(ctx: ParameterizedContext): void;
}

export function problemAnswerer(opts: ProblemOptions): ProblemAnswerer {
  return {
    answer: (ctx, err) => handleError(ctx as AnyContext, err, opts),
    settle: (ctx) => {
      if (ctx.body != null) return;
      if (ctx.status === 404) {
        sendProblem(ctx, new DomainError('not_found', 'no route matches this path'));
      } else if (ctx.status === 405) {
        sendStatusProblem(ctx, 405, `method ${ctx.method} is not allowed here; allowed: ${ctx.response.get('Allow')}`);
      } else if (ctx.status === 501) {
        sendStatusProblem(ctx, 501, `method ${ctx.method} is not implemented`);
      }
    },
  };
}

function handleError(ctx: AnyContext, err: unknown, opts: ProblemOptions): void {
  const log = ctx.state.log ?? opts.logger;
  if (ctx.headerSent || !ctx.writable) {
    // A streamed body failed midway: the status line is gone, all we can do is record it.
    log.error({ err }, 'error after response headers were sent');
    return;
  }
  const domain = isDomainError(err) ? err : classifySafely(opts, err, log);
  if (domain) {
    const status = HTTP_STATUS[domain.code];
    if (status >= 500) log.error({ err, code: domain.code }, domain.message);
    else log.debug({ code: domain.code }, domain.message);
    sendProblem(ctx, domain);
    return;
  }
  const httpErr = asHttpError(err);
  if (httpErr && httpErr.status < 500) {
    if (httpErr.headers) ctx.set(httpErr.headers);
    const { slug, title } = slugFor(httpErr.status);
    const detail = httpErr.expose === false || !httpErr.message ? title.toLowerCase() : httpErr.message;
    log.debug({ status: httpErr.status, detail }, 'client error');
    writeProblem(ctx, httpErr.status, { slug, title, detail });
    return;
  }
  const status = httpErr?.status ?? 500;
  log.error({ err }, 'unhandled error');
  const { slug, title } = slugFor(status);
  writeProblem(ctx, status, { slug, title, detail: status === 500 ? 'internal error' : title.toLowerCase() });
}

/** IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers), as seconds and counts. */
export function setRateLimitHeaders(ctx: ParameterizedContext, rl: { limit: number; remaining: number; reset: number; limiter?: string }): void {
  // Every 429 answer (problem+json and OTLP's Status) passes here: the frame counts it under this name.
  if (rl.limiter) (ctx.state as HttpState).rateLimiter = rl.limiter;
  ctx.set('RateLimit-Limit', String(rl.limit));
  ctx.set('RateLimit-Remaining', String(rl.remaining));
  ctx.set('RateLimit-Reset', String(rl.reset));
}
