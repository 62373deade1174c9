import { actorOf } from '../../http/context.js';
import { OrgParams, pageOf } from '../../http/schemas.js';
import type { ApiRegistry } from '../../http/registry.js';
import {
  ATTR_PREFIX,
  EventSchema,
  EventsQuery,
  LogRecordSchema,
  LogsQuery,
  MetricNameSchema,
  MetricNamesQuery,
  MetricQueryQuery,
  MetricQueryResultSchema,
  UsageSchema,
} from './query-schemas.js';
import type { QueryService } from './query-service.js';

const TAGS = ['telemetry'];
const FORBIDDEN = { description: "The caller's role or the key's scopes do not allow reading telemetry (viewer role or read scope needed)." };
const NOT_FOUND = { description: 'No such organization, or not visible to the caller.' };
const LIMIT = { description: 'A server-side limit refuses the query (query.max_series, query.max_buckets or query.statement_timeout_ms); the detail names it.' };

/** `attr.<key>` query parameters as an attribute filter ({key: values}). */
function attributesOf(query: Record<string, unknown>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(query)) if (k.startsWith(ATTR_PREFIX)) out[k.slice(ATTR_PREFIX.length)] = v as string[];
  return out;
}

/** The telemetry query API (DESIGN §6 "Query"): user tokens (viewer or above) and API keys with the read scope. */
export function registerQueryRoutes(registry: ApiRegistry, service: QueryService): void {
  registry.route({
    method: 'get',
    path: '/organizations/{org}/metrics',
    operationId: 'listMetrics',
    summary: 'Metric names with their label keys and series counts',
    tags: TAGS,
    auth: 'any',
    permission: 'telemetry.read',
    params: OrgParams,
    query: MetricNamesQuery,
    responses: { 200: { description: 'A page of metric names, by name.', schema: pageOf(MetricNameSchema) }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      ctx.body = await service.listMetrics(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/metrics/query',
    operationId: 'queryMetric',
    summary: 'Aggregate a metric in time buckets, per series or grouped by labels',
    description:
      'Buckets are aligned to `start`: bucket k covers [start + k·step, start + (k+1)·step) and is labelled by its start; empty buckets are left out. ' +
      'The aggregation runs over the raw points in each bucket (with `by`, over all points of the group); increase and rate run per series (with `by`, the per-series increases are summed).',
    tags: TAGS,
    auth: 'any',
    permission: 'telemetry.read',
    params: OrgParams,
    query: MetricQueryQuery,
    responses: { 200: { description: 'The answer series.', schema: MetricQueryResultSchema }, 403: FORBIDDEN, 404: NOT_FOUND, 422: LIMIT },
    handler: async (ctx, { params, query }) => {
      // The JSON text itself (query-answer-json.ts): 1.6–2.4 MB for a few hundred series is
      // cheaper written as bytes than built as objects for Koa to stringify and Node to encode.
      const json = await service.queryJson(actorOf(ctx), params.org, query);
      ctx.type = 'json';
      ctx.body = json;
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/logs',
    operationId: 'listLogs',
    summary: 'Log records, newest first; filter by level, body substring and attr.<key>=<value>',
    tags: TAGS,
    auth: 'any',
    permission: 'telemetry.read',
    params: OrgParams,
    query: LogsQuery,
    responses: { 200: { description: 'A page of log records, newest first.', schema: pageOf(LogRecordSchema) }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      const { start, end, level, q, limit, cursor } = query;
      ctx.body = await service.logs(actorOf(ctx), params.org, { start, end, level, q, limit, cursor, attributes: attributesOf(query) });
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/events',
    operationId: 'listEvents',
    summary: 'Events, newest first; filter by type and tags',
    tags: TAGS,
    auth: 'any',
    permission: 'telemetry.read',
    params: OrgParams,
    query: EventsQuery,
    responses: { 200: { description: 'A page of events, newest first.', schema: pageOf(EventSchema) }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      ctx.body = await service.events(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/usage',
    operationId: 'getUsage',
    summary: 'Ingested today and this month (UTC), series in use, and the effective limits',
    tags: TAGS,
    auth: 'any',
    permission: 'telemetry.read',
    params: OrgParams,
    responses: { 200: { description: 'Usage against limits.', schema: UsageSchema }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      ctx.body = await service.usage(actorOf(ctx), params.org);
    },
  });
}
