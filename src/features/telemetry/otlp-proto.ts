import protobuf from 'protobufjs';
import type { ErrorCode } from '../../core/errors.js';
import { OTLP_PROTO_FILES } from './otlp-proto-files.js';

/** The part of a protobufjs message class (static or reflected) this feature uses. */
export interface ProtoMessageType {
  decode(bytes: Uint8Array): object;
  encode(message: object): { finish(): Uint8Array };
  fromObject(object: Record<string, unknown>): object;
  toObject(message: object, options?: protobuf.IConversionOptions): Record<string, unknown>;
}

/**
 * The vendored opentelemetry-proto files (otlp-proto-files.ts) parsed into one protobufjs Root,
 * field names in camelCase as the OTLP JSON mapping spells them. The metrics decoder reads the
 * decoded message itself; for logs, toObject({ longs: String }) gives the tree it reads:
 * (fixed/s)int64 as decimal strings, bytes as Buffers, enums as numbers, unset fields absent
 * (otlp-values describes both). google.rpc.Status, which OTLP/HTTP error bodies carry, is not among them;
 * only its first two fields are used (details, field 3, is optional and never sent).
 */
function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  for (const text of Object.values(OTLP_PROTO_FILES)) protobuf.parse(text, root, { keepCase: false });
  root.define('google.rpc').add(new protobuf.Type('Status').add(new protobuf.Field('code', 1, 'int32')).add(new protobuf.Field('message', 2, 'string')));
  // Resolving every reference now turns a broken definition into a startup failure, not a 500.
  root.resolveAll();
  return root;
}

const root = loadRoot();
const message = (name: string): ProtoMessageType => root.lookupType(name) as unknown as ProtoMessageType;

export const OTLP_MESSAGES = {
  metricsRequest: message('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest'),
  metricsResponse: message('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse'),
  logsRequest: message('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
  logsResponse: message('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse'),
  status: message('google.rpc.Status'),
} as const;

export type OtlpFormat = 'json' | 'protobuf';
export type OtlpSignal = 'metrics' | 'logs';

export const OTLP_CONTENT_TYPES: Record<OtlpFormat, string> = { json: 'application/json', protobuf: 'application/x-protobuf' };

/** The OTLP format a media type (parameters already stripped) names, or null. */
export function otlpFormatOf(mediaType: string): OtlpFormat | null {
  const t = mediaType.trim().toLowerCase();
  if (t === OTLP_CONTENT_TYPES.json) return 'json';
  if (t === OTLP_CONTENT_TYPES.protobuf) return 'protobuf';
  return null;
}

/**
 * google.rpc.Status.code is a gRPC code, not an HTTP status (OTLP/HTTP sends the HTTP status on
 * the response line). A Record so that a new DomainError code cannot be added without a choice.
 */
export const GRPC_CODE: Record<ErrorCode, number> = {
  bad_request: 3, // INVALID_ARGUMENT
  validation_failed: 3,
  unauthenticated: 16, // UNAUTHENTICATED
  forbidden: 7, // PERMISSION_DENIED
  not_found: 5, // NOT_FOUND
  conflict: 6, // ALREADY_EXISTS
  payload_too_large: 8, // RESOURCE_EXHAUSTED, what gRPC answers for an oversized message
  limit_exceeded: 8,
  unsupported_media_type: 3,
  rate_limited: 8,
  unavailable: 14, // UNAVAILABLE
  invalid_config: 13, // INTERNAL
  internal: 13,
};

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Serializes a plain object in the OTLP JSON mapping or as protobuf. */
export function encodeOtlp(type: ProtoMessageType, format: OtlpFormat, value: Record<string, unknown>): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify(value));
  return toBuffer(type.encode(type.fromObject(value)).finish());
}

/** ExportMetricsServiceResponse / ExportLogsServiceResponse; partialSuccess only when something was rejected. */
export function exportResponse(signal: OtlpSignal, format: OtlpFormat, rejected: number, errorMessage: string): Buffer {
  const counter = signal === 'metrics' ? 'rejectedDataPoints' : 'rejectedLogRecords';
  // int64 fields are decimal strings in the OTLP JSON mapping.
  const body = rejected > 0 || errorMessage ? { partialSuccess: { [counter]: String(rejected), errorMessage } } : {};
  return encodeOtlp(signal === 'metrics' ? OTLP_MESSAGES.metricsResponse : OTLP_MESSAGES.logsResponse, format, body);
}

/** A google.rpc.Status error body. */
export function statusBody(format: OtlpFormat, code: ErrorCode, message: string): Buffer {
  return encodeOtlp(OTLP_MESSAGES.status, format, { code: GRPC_CODE[code], message });
}
