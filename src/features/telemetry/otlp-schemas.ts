import { Type, type TSchema } from '@sinclair/typebox';
import type { OtlpSignal } from './otlp-proto.js';

/**
 * The OTLP/HTTP bodies as the OpenAPI document describes them. Documentation only: the receivers
 * decode with the generated protobuf messages (otlp-decode.ts), which check far more than a JSON
 * Schema could, so these stay at the top level and point at the spec for the rest.
 */

const SPEC = 'https://opentelemetry.io/docs/specs/otlp/#otlphttp';

const REQUEST_MESSAGE: Record<OtlpSignal, { message: string; field: string; counter: string }> = {
  metrics: { message: 'ExportMetricsServiceRequest', field: 'resourceMetrics', counter: 'rejectedDataPoints' },
  logs: { message: 'ExportLogsServiceRequest', field: 'resourceLogs', counter: 'rejectedLogRecords' },
};

/** The request in OTLP's JSON mapping (camelCase fields, int64 as decimal strings, ids as hex). */
export function otlpJsonRequestSchema(signal: OtlpSignal): TSchema {
  const { message, field } = REQUEST_MESSAGE[signal];
  return Type.Object(
    { [field]: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { description: `See ${message} in opentelemetry-proto.` })) },
    { additionalProperties: true, description: `${message} in the OTLP/JSON encoding (${SPEC}).` },
  );
}

/** A protobuf body: binary, so no JSON Schema constrains it (OpenAPI 3.1 says so with contentMediaType). */
export function otlpProtobufSchema(message: string): TSchema {
  return Type.Unsafe({ contentMediaType: 'application/x-protobuf', description: `${message}, protobuf-encoded.` });
}

export function otlpRequestMessage(signal: OtlpSignal): string {
  return REQUEST_MESSAGE[signal].message;
}

/** ExportMetricsServiceResponse / ExportLogsServiceResponse as the receivers write it in JSON. */
export function otlpJsonResponseSchema(signal: OtlpSignal): TSchema {
  const { counter } = REQUEST_MESSAGE[signal];
  return Type.Object(
    {
      partialSuccess: Type.Optional(
        Type.Object(
          {
            [counter]: Type.String({ pattern: '^[0-9]+$', description: 'How many items were dropped (an int64, so a decimal string in JSON).' }),
            errorMessage: Type.String({ description: 'Why, for a human reading the exporter log; at most 1,000 characters.' }),
          },
          { description: 'Present when some items could not be stored; the rest were.' },
        ),
      ),
    },
    { description: 'Empty when everything was stored.' },
  );
}

export const OtlpHeadersSchema = Type.Object({
  'Content-Encoding': Type.Optional(Type.Union([Type.Literal('gzip'), Type.Literal('identity')], { description: 'gzip or none; the size limit applies after decompression.' })),
});

/** google.rpc.Status: the error body of OTLP/HTTP. */
export const RpcStatusSchema = Type.Object(
  {
    code: Type.Integer({ description: 'A gRPC status code (3 invalid argument, 7 permission denied, 8 resource exhausted, 12 unimplemented, 13 internal, 14 unavailable, 16 unauthenticated), not the HTTP status.' }),
    message: Type.String(),
  },
  { description: 'google.rpc.Status, in the request\'s encoding (JSON or protobuf).' },
);
