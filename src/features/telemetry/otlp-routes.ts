import type { Readable } from 'node:stream';
import inflate from 'inflation';
import getRawBody from 'raw-body';
import { DomainError, HTTP_STATUS } from '../../core/errors.js';
import { actorOf, type HttpContext } from '../../http/context.js';
import { setRateLimitHeaders } from '../../http/problem.js';
import type { ApiRegistry } from '../../http/registry.js';
import { decodeOtlpLogs, decodeOtlpMetrics, type OtlpDecoded } from './otlp-decode.js';
import { exportResponse, OTLP_CONTENT_TYPES, otlpFormatOf, statusBody, type OtlpFormat, type OtlpSignal } from './otlp-proto.js';
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
    throw err;
  }
}

function answerError(ctx: HttpContext, err: DomainError, format: OtlpFormat): void {
  const status = HTTP_STATUS[err.code];
  if (status >= 500) ctx.state.log?.error({ err, code: err.code }, err.message);
  else ctx.state.log?.debug({ code: err.code }, err.message);
  const retryAfter = err.details.retryAfter;
  if ((status === 429 || status === 503) && typeof retryAfter === 'number' && Number.isFinite(retryAfter)) {
    ctx.set('Retry-After', String(Math.max(0, Math.ceil(retryAfter))));
  }
  const rl = err.details.rateLimit as { limit: number; remaining: number; reset: number } | undefined;
  if (rl) setRateLimitHeaders(ctx, rl);
  ctx.status = status;
  ctx.body = statusBody(format, err.code, err.message);
  // After the body: assigning a Buffer body would otherwise make it application/octet-stream.
  ctx.type = OTLP_CONTENT_TYPES[format];
}

/**
 * OTLP/HTTP receivers (https://opentelemetry.io/docs/specs/otlp/#otlphttp): POST /v1/metrics and
 * POST /v1/logs, protobuf or JSON, optionally gzip. They sit outside /api/v1 and answer in OTLP's
 * own format (ExportMetricsServiceResponse / ExportLogsServiceResponse with partialSuccess, or a
 * google.rpc.Status on errors, in the request's encoding) instead of problem+json, because
 * exporters parse those bodies. Errors other than DomainErrors go to the problem layer. One
 * declaration per signal both serves and documents the route; the registry authenticates before
 * the handler runs, and the per-IP API limit leaves it alone (rateLimit 'ingest': the service's
 * per-organization token buckets apply).
 */
export function registerOtlpRoutes(registry: ApiRegistry, deps: OtlpRouteDeps): void {
  const now = deps.now ?? Date.now;
  const { json, protobuf } = OTLP_CONTENT_TYPES;
  const status = { [json]: RpcStatusSchema, [protobuf]: otlpProtobufSchema('google.rpc.Status') };
  const error = (description: string) => ({ description, content: status });
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
        '429 and 503 carry Retry-After.',
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
        429: error("Over the organization's ingest rate; see Retry-After."),
        503: error('The database is unavailable; retry after Retry-After.'),
        500: { description: 'A defect of ours (problem+json with the request id).' },
      },
      handler: async (ctx) => {
        const format = otlpFormatOf(ctx.request.type);
        if (!format) {
          throw new DomainError('unsupported_media_type', `Content-Type must be ${OTLP_CONTENT_TYPES.protobuf} or ${OTLP_CONTENT_TYPES.json}`);
        }
        const body = await readBody(ctx, deps.bodyLimitBytes);
        const decoded = DECODERS[signal](body, format, now());
        const result = await deps.ingest.ingest(actorOf(ctx), null, decoded.batch, { partial: true });
        const rejected = decoded.rejected + result.rejected[signal];
        // Warnings go out with nothing rejected too (the spec: rejected 0 and a non-empty message).
        const notes = [...(rejected > 0 ? [...decoded.messages, ...result.messages] : []), ...decoded.warnings];
        ctx.status = 200;
        ctx.body = exportResponse(signal, format, rejected, notes.length ? errorMessage(notes) : '');
        ctx.type = OTLP_CONTENT_TYPES[format];
      },
      // An unknown Content-Type gives no encoding to answer in; JSON is the readable choice.
      answerError: (ctx, err) => answerError(ctx, err, otlpFormatOf(ctx.request.type) ?? 'json'),
    });
  }
}
