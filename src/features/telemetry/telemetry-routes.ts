import { actorOf, type HttpContext } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import { OrgParams } from '../../http/schemas.js';
import { AcceptedSchema, isPlainMetricsBody, TelemetryBody } from './telemetry-schemas.js';
import type { TelemetryService } from './telemetry-service.js';

const TAGS = ['telemetry'];
const DESCRIPTION =
  'A batch of metrics, logs and events, stored all or nothing: 202 means committed. ' +
  'Bodies may be gzip-compressed (Content-Encoding: gzip); the size limit applies after decompression. ' +
  'With an Idempotency-Key header a retried batch is stored once and answered with the first answer.';
const RESPONSES = {
  202: { description: 'Stored (committed) — the counts per kind.', schema: AcceptedSchema },
  400: { description: 'Invalid items (each listed in `errors`) or a new series beyond the organization limit; nothing stored.' },
  403: { description: "The caller's role or the key's scopes do not allow ingest." },
  409: { description: 'The Idempotency-Key was used before with a different body.' },
  413: { description: 'Body (after decompression) or item count over the limit.' },
  415: { description: 'Not application/json, or an unsupported Content-Encoding.' },
  429: { description: "Over the organization's ingest rate; see Retry-After." },
  503: { description: 'The database is unavailable; nothing stored, retry after Retry-After.' },
};

const idempotencyKey = (ctx: HttpContext): string | undefined => ctx.get('Idempotency-Key') || undefined;

export function registerTelemetryRoutes(registry: ApiRegistry, telemetry: TelemetryService): void {
  registry.route({
    method: 'post',
    path: '/telemetry',
    operationId: 'ingestTelemetry',
    summary: 'Send telemetry with an API key (scope ingest); the key decides the organization',
    description: DESCRIPTION,
    tags: TAGS,
    auth: 'any',
    permission: 'telemetry.ingest',
    apiKeyOnly: true,
    body: TelemetryBody,
    bulkBody: true,
    bodyAccepts: isPlainMetricsBody,
    // Per-organization token buckets (points/s) limit ingest, not the per-IP request limit.
    rateLimit: 'ingest',
    responses: RESPONSES,
    handler: async (ctx, { body }) => {
      ctx.body = await telemetry.ingestNative(actorOf(ctx), null, body, { idempotencyKey: idempotencyKey(ctx) });
      ctx.status = 202;
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/telemetry',
    operationId: 'ingestOrgTelemetry',
    summary: "Send telemetry to an organization (role editor or above, or an API key of that org with scope ingest)",
    description: DESCRIPTION,
    tags: TAGS,
    auth: 'any',
    permission: 'telemetry.ingest',
    params: OrgParams,
    body: TelemetryBody,
    bulkBody: true,
    bodyAccepts: isPlainMetricsBody,
    // Per-organization token buckets (points/s) limit ingest, not the per-IP request limit.
    rateLimit: 'ingest',
    responses: { ...RESPONSES, 404: { description: 'No such organization, or not visible to the caller.' } },
    handler: async (ctx, { params, body }) => {
      ctx.body = await telemetry.ingestNative(actorOf(ctx), params.org, body, { idempotencyKey: idempotencyKey(ctx) });
      ctx.status = 202;
    },
  });
}
