import type { Readable } from 'node:stream';
import inflate from 'inflation';
import getRawBody from 'raw-body';
import { DomainError, HTTP_STATUS } from '../../core/errors.js';
import { actorOf, type HttpContext } from '../../http/context.js';
import { setRateLimitHeaders } from '../../http/problem.js';
import type { ApiRegistry } from '../../http/registry.js';
import { decodeOtlpLogs, decodeOtlpMetrics, type OtlpDecoded } from './otlp-decode.js';
import { encodeOtlp, exportResponse, OTLP_CONTENT_TYPES, OTLP_MESSAGES, otlpFormatOf, statusBody, type OtlpFormat, type OtlpSignal } from './otlp-proto.js';
import { OtlpHeadersSchema, otlpJsonRequestSchema, otlpJsonResponseSchema, otlpProtobufSchema, otlpRequestMessage, RpcStatusSchema } from './otlp-schemas.js';
import type { TelemetryIngest } from './telemetry-types.js';

export interface OtlpRouteDeps {
  ingest: TelemetryIngest;
  /** Applies to the decompressed body, so a small gzip bomb is refused like a large body. */
  bodyLimitBytes: number;
  now?: () => number;
}

export const OTLP_PATHS: Record<OtlpSignal, string> = { metrics: '/v1/metrics', logs: '/v1/logs' };

// partialSuccess.errorMessage is for a human reading the exporter's log, not a report.
const MAX_ERROR_MESSAGE = 1000;

const DECODERS: Record<OtlpSignal, (body: Uint8Array, format: OtlpFormat, now: number) => OtlpDecoded> = {
  metrics: decodeOtlpMetrics,
  logs: decodeOtlpLogs,
};

function errorMessage(messages: string[]): string {
  const text = messages.join('; ');
  return text.length <= MAX_ERROR_MESSAGE ? text : `${text.slice(0, MAX_ERROR_MESSAGE - 1)}…`;
}

/** The request body, decompressed; DomainErrors for what the client got wrong. */
async function readBody(ctx: HttpContext, limit: number): Promise<Buffer> {
  const encoding = (ctx.get('Content-Encoding') || 'identity').trim().toLowerCase();
  // OTLP/HTTP names gzip as its only compression.
  if (encoding !== 'identity' && encoding !== 'gzip') {
    throw new DomainError('unsupported_media_type', `Content-Encoding "${encoding}" is not supported; send gzip or no encoding`);
  }
  // @types/inflation calls the option `gzip`; the library reads `encoding`.
  const stream: Readable = inflate(ctx.req, { encoding } as inflate.Options);
  try {
    // Content-Length describes the compressed bytes, so it is only checked when nothing is decompressed.
    return await getRawBody(stream, { limit, length: encoding === 'identity' ? ctx.request.length : undefined });
  } catch (err) {
    // Left paused, the unread rest would hold the keep-alive connection; read it off and discard it.
    if (stream !== ctx.req) {
      ctx.req.unpipe();
      stream.destroy();
    }
    ctx.req.resume();
    const e = err as { type?: unknown; code?: unknown };
    if (e.type === 'entity.too.large') {
      throw new DomainError('payload_too_large', `the request body is larger than ${limit} bytes${encoding === 'identity' ? '' : ' after decompression'}`);
    }
    if (e.type === 'request.size.invalid') throw new DomainError('bad_request', 'the request body is shorter or longer than its Content-Length');
    if (typeof e.code === 'string' && e.code.startsWith('Z_')) throw new DomainError('bad_request', 'the request body is not valid gzip');
    // Any other client-side failure of the read (an aborted upload, a bad Content-Length): the
    // client's 400, not a defect of ours.
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) throw new DomainError('bad_request', `the request body could not be read: ${(err as Error).message}`);
    throw err;
  }
}

/**
 * The OTLP spec lets 429 and 503 carry Retry-After; Sentinel always sends it, at least 1 s, so
 * exporters wait the server's time instead of their own backoff (or none). Errors that name no
 * wait get this one.
 */
const DEFAULT_RETRY_AFTER_SECONDS = 1;

/** google.rpc.Code UNIMPLEMENTED: what the Collector's receiver pairs with HTTP 404 (and gRPC answers for an unknown method). */
const GRPC_UNIMPLEMENTED = 12;

/**
 * The format of the request's body, which the answer uses: protobuf for application/x-protobuf,
 * else JSON (an unknown or missing Content-Type gives no encoding to answer in; JSON is the readable choice).
 */
const answerFormat = (ctx: HttpContext): OtlpFormat => otlpFormatOf(ctx.request.type) ?? 'json';

/**
 * Every error of the receivers as a google.rpc.Status in the request's encoding, with the HTTP
 * status that tells the exporter whether to retry (429/503 yes, with Retry-After; the rest no).
 * The registry has classified what was thrown (PostgreSQL unreachable: unavailable) and logged it.
 */
function answerError(ctx: HttpContext, err: DomainError): void {
  const format = answerFormat(ctx);
  const status = HTTP_STATUS[err.code];
  if (status === 429 || status === 503) {
    const retryAfter = err.details.retryAfter;
    const seconds = typeof retryAfter === 'number' && Number.isFinite(retryAfter) ? Math.max(1, Math.ceil(retryAfter)) : DEFAULT_RETRY_AFTER_SECONDS;
    ctx.set('Retry-After', String(seconds));
  }
  const rl = err.details.rateLimit as { limit: number; remaining: number; reset: number } | undefined;
  if (rl) setRateLimitHeaders(ctx, rl);
  ctx.status = status;
  ctx.body = statusBody(format, err.code, err.message);
  // After the body: assigning a Buffer body would otherwise make it application/octet-stream.
  ctx.type = OTLP_CONTENT_TYPES[format];
}

const MAX_PATH_IN_MESSAGE = 200;

/**
 * Requests under /v1/ that no receiver takes: 404 for a path (POST /v1/traces: traces are not
 * accepted) and 405 with Allow for another method on /v1/metrics or /v1/logs, as a Status too.
 */
function answerUnmatched(ctx: HttpContext, allow: readonly string[]): void {
  const format = answerFormat(ctx);
  const path = ctx.path.length <= MAX_PATH_IN_MESSAGE ? ctx.path : `${ctx.path.slice(0, MAX_PATH_IN_MESSAGE - 1)}…`;
  const accepted = `this server receives OTLP metrics (POST ${OTLP_PATHS.metrics}) and logs (POST ${OTLP_PATHS.logs})`;
  let message: string;
  if (allow.length) {
    ctx.status = 405;
    message = `${ctx.method} is not allowed on ${path}; OTLP/HTTP exports are ${allow.join(', ')} requests`;
  } else {
    ctx.status = 404;
    message = ctx.path === '/v1/traces' ? `traces are not accepted: ${accepted}` : `no OTLP receiver at ${path}: ${accepted}`;
  }
  ctx.state.log?.debug({ status: ctx.status }, message);
  ctx.body = encodeOtlp(OTLP_MESSAGES.status, format, { code: GRPC_UNIMPLEMENTED, message });
  ctx.type = OTLP_CONTENT_TYPES[format];
}

/**
 * OTLP/HTTP receivers (https://opentelemetry.io/docs/specs/otlp/#otlphttp): POST /v1/metrics and
 * POST /v1/logs, protobuf or JSON, optionally gzip. They sit outside /api/v1 and answer in OTLP's
 * own format (ExportMetricsServiceResponse / ExportLogsServiceResponse with partialSuccess, or a
 * google.rpc.Status on errors, in the request's encoding) instead of problem+json, because
 * exporters parse those bodies (https://opentelemetry.io/docs/specs/otlp/#failures-1: every 4xx
 * and 5xx carries a Status). That holds for every answer under /v1/: authentication's errors, a
 * database outage (503), a defect (500), unknown paths (404) and other methods (405). One
 * declaration per signal both serves and documents the route; the registry authenticates before
 * the handler runs, and the per-IP API limit leaves it alone (rateLimit 'ingest': the service's
 * per-organization token buckets apply).
 */
export function registerOtlpRoutes(registry: ApiRegistry, deps: OtlpRouteDeps): void {
  const now = deps.now ?? Date.now;
  const { json, protobuf } = OTLP_CONTENT_TYPES;
  const status = { [json]: RpcStatusSchema, [protobuf]: otlpProtobufSchema('google.rpc.Status') };
  const error = (description: string) => ({ description, content: status });
  registry.rawScope({ prefix: '/v1/', unmatched: answerUnmatched });
  for (const signal of ['metrics', 'logs'] as const) {
    const message = otlpRequestMessage(signal);
    const answer = `Export${signal === 'metrics' ? 'Metrics' : 'Logs'}ServiceResponse`;
    registry.raw({
      method: 'post',
      path: OTLP_PATHS[signal],
      operationId: signal === 'metrics' ? 'otlpExportMetrics' : 'otlpExportLogs',
      summary: `OTLP/HTTP ${signal} receiver (${message}); the API key decides the organization`,
      description:
        'OpenTelemetry exporters post here (https://opentelemetry.io/docs/specs/otlp/#otlphttp). The answer uses the ' +
        "request's encoding. Items that cannot be stored are dropped and counted in partialSuccess; the rest are stored. " +
        'Every error is a google.rpc.Status; 429 and 503 carry Retry-After and are the only ones to retry. Other methods ' +
        'on this path answer 405 (with Allow), other paths under /v1/ 404 (traces are not accepted), both as a Status.',
      tags: ['telemetry'],
      auth: 'any',
      permission: 'telemetry.ingest',
      apiKeyOnly: true,
      rateLimit: 'ingest',
      headers: OtlpHeadersSchema,
      requestBody: { content: { [protobuf]: otlpProtobufSchema(message), [json]: otlpJsonRequestSchema(signal) } },
      responses: {
        200: { description: `Stored, or partly stored (partialSuccess). ${answer}.`, content: { [json]: otlpJsonResponseSchema(signal), [protobuf]: otlpProtobufSchema(answer) } },
        400: error('Undecodable body, invalid gzip, or a user token (only API keys decide the organization).'),
        401: error('Missing or invalid API key.'),
        403: error("The key's scopes do not include ingest."),
        413: error('Body (after decompression) over http.body_limit_bytes.'),
        415: error('Not application/x-protobuf or application/json, or a Content-Encoding other than gzip.'),
        429: error("Over the organization's ingest rate, or too many refused credentials from this address; see Retry-After."),
        503: error('The database is unavailable; retry after Retry-After.'),
        500: error('A defect of ours; the message names the request id (also in X-Request-Id).'),
      },
      handler: async (ctx) => {
        const format = otlpFormatOf(ctx.request.type);
        if (!format) {
          throw new DomainError('unsupported_media_type', `Content-Type must be ${OTLP_CONTENT_TYPES.protobuf} or ${OTLP_CONTENT_TYPES.json}`);
        }
        const body = await readBody(ctx, deps.bodyLimitBytes);
        const decoded = DECODERS[signal](body, format, now());
        const result = await deps.ingest.ingest(actorOf(ctx), null, decoded.batch, {
          partial: true,
          decoded: { invalid: { [signal]: decoded.rejected - decoded.tooMany }, tooMany: { [signal]: decoded.tooMany } },
        });
        const rejected = decoded.rejected + result.rejected[signal];
        // Warnings go out with nothing rejected too (the spec: rejected 0 and a non-empty message).
        const notes = [...(rejected > 0 ? [...decoded.messages, ...result.messages] : []), ...decoded.warnings];
        ctx.status = 200;
        ctx.body = exportResponse(signal, format, rejected, notes.length ? errorMessage(notes) : '');
        ctx.type = OTLP_CONTENT_TYPES[format];
      },
      answerError,
    });
  }
}
