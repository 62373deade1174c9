import { actorOf, metaOf } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import { OrgParams, orgParamsWith, pageOf, uuid } from '../../http/schemas.js';
import { AckBody, AlertListQuery, AlertSchema } from './alerts-schemas.js';
import type { AlertsService } from './alerts-service.js';

const TAGS = ['alerts'];
const AlertParams = orgParamsWith({ id: uuid('Alert id.') });
const NOT_FOUND = { description: 'No such organization or alert (or not yours).' };
const FORBIDDEN = { description: "The caller's role or the key's scopes do not allow it." };

export function registerAlertRoutes(registry: ApiRegistry, alerts: AlertsService): void {
  registry.route({
    method: 'get',
    path: '/organizations/{org}/alerts',
    operationId: 'listAlerts',
    summary: "The organization's alerts, newest first (viewers and above; API keys with the read scope)",
    description: 'One item per alert instance (a rule with `by` has one per group). Without `state`, every alert that is not ok.',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: OrgParams,
    query: AlertListQuery,
    responses: { 200: { description: 'One page of alerts.', schema: pageOf(AlertSchema) }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      ctx.body = await alerts.list(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/alerts/{id}',
    operationId: 'getAlert',
    summary: 'One alert (viewers and above; API keys with the read scope)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: AlertParams,
    responses: { 200: { description: 'The alert.', schema: AlertSchema }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      ctx.body = await alerts.get(actorOf(ctx), params.org, params.id);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/alerts/{id}/ack',
    operationId: 'acknowledgeAlert',
    summary: 'Acknowledge a pending or firing alert (editors and above; API keys with the write scope)',
    description:
      'Records who (the user; null for an API key, which the audit log names), when, the comment and the optional expiry. An acknowledged alert is not re-notified until it resolves, the acknowledgement expires, or it fires again after resolving. Acknowledging again replaces the acknowledgement.',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: AlertParams,
    body: AckBody,
    responses: {
      200: { description: 'The acknowledged alert.', schema: AlertSchema },
      400: { description: 'Bad comment or expires_at (it must be in the future).' },
      403: FORBIDDEN,
      404: NOT_FOUND,
      409: { description: 'The alert is neither pending nor firing.' },
    },
    handler: async (ctx, { params, body }) => {
      ctx.body = await alerts.acknowledge(actorOf(ctx), params.org, params.id, body, metaOf(ctx));
    },
  });
}
