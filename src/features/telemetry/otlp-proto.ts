import protobuf from 'protobufjs';
// The static protobufjs code the OpenTelemetry JS packages generated from opentelemetry-proto
// v1.3 (CommonJS, typed only as a Root). Pinned through @opentelemetry/otlp-transformer 0.52.1,
// the last release that ships it.
import otlpRoot from '@opentelemetry/otlp-transformer/build/src/generated/root.js';
import type { ErrorCode } from '../../core/errors.js';

/** The part of a protobufjs message class (static or reflected) this feature uses. */
export interface ProtoMessageType {
  decode(bytes: Uint8Array): object;
  encode(message: object): { finish(): Uint8Array };
  fromObject(object: Record<string, unknown>): object;
  toObject(message: object, options?: protobuf.IConversionOptions): Record<string, unknown>;
}

interface CollectorNamespace {
  metrics: { v1: { ExportMetricsServiceRequest: ProtoMessageType; ExportMetricsServiceResponse: ProtoMessageType } };
  logs: { v1: { ExportLogsServiceRequest: ProtoMessageType; ExportLogsServiceResponse: ProtoMessageType } };
}

const collector = (otlpRoot as unknown as { opentelemetry: { proto: { collector: CollectorNamespace } } }).opentelemetry.proto.collector;

// The generated root lacks google.rpc.Status, which OTLP/HTTP error bodies carry; only its
// first two fields are used (details, field 3, is optional and never sent).
const statusRoot = protobuf.Root.fromJSON({
  nested: { google: { nested: { rpc: { nested: { Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 } } } } } } } },
});

export const OTLP_MESSAGES = {
  metricsRequest: collector.metrics.v1.ExportMetricsServiceRequest,
  metricsResponse: collector.metrics.v1.ExportMetricsServiceResponse,
  logsRequest: collector.logs.v1.ExportLogsServiceRequest,
  logsResponse: collector.logs.v1.ExportLogsServiceResponse,
  status: statusRoot.lookupType('google.rpc.Status') as unknown as ProtoMessageType,
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
