import { actorOf, metaOf } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import { OrgParams, PageQuerySchema, orgParamsWith, pageOf, uuid } from '../../http/schemas.js';
import { CreateRuleBody, PreviewQuery, PreviewSchema, RuleSchema, UpdateRuleBody } from './alert-rules-schemas.js';
import type { AlertRulesService } from './alert-rules-service.js';

const TAGS = ['alerts'];
const RuleParams = orgParamsWith({ id: uuid('Alert rule id.') });
const NOT_FOUND = { description: 'No such organization or rule (or not yours).' };
const FORBIDDEN = { description: "The caller's role or the key's scopes do not allow it." };
const INVALID = { description: 'Invalid rule: `errors` names each field (e.g. body/query/agg, body/channels/0).' };

export function registerAlertRuleRoutes(registry: ApiRegistry, rules: AlertRulesService): void {
  registry.route({
    method: 'get',
    path: '/organizations/{org}/alert-rules',
    operationId: 'listAlertRules',
    summary: "The organization's alert rules, oldest first, each with the worst state of its alerts (viewers and above; API keys with the read scope)",
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: OrgParams,
    query: PageQuerySchema,
    responses: { 200: { description: 'One page of rules.', schema: pageOf(RuleSchema) }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params, query }) => {
      ctx.body = await rules.list(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/alert-rules',
    operationId: 'createAlertRule',
    summary: 'Create an alert rule (editors and above; API keys with the write scope)',
    description:
      'Kinds: threshold (a metric query compared with op/threshold), no_data (no points within the window), log_count (logs matching level/q/attributes within the window compared with op/threshold), rate_of_change (change of the aggregated value per minute over the window compared with op/threshold). Durations in are `30s`/`5m`/`1h`/`7d`/`250ms` or plain seconds; out they are seconds. The first evaluation comes at a random point within one interval.',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: OrgParams,
    body: CreateRuleBody,
    responses: {
      201: { description: 'Created.', schema: RuleSchema },
      400: INVALID,
      403: FORBIDDEN,
      404: NOT_FOUND,
      409: { description: 'A rule of this name exists in the organization.' },
      422: { description: 'The organization has alerts.max_rules_per_org rules.' },
    },
    handler: async (ctx, { params, body }) => {
      const rule = await rules.create(actorOf(ctx), params.org, body, metaOf(ctx));
      ctx.status = 201;
      ctx.body = rule;
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/alert-rules/{id}',
    operationId: 'getAlertRule',
    summary: 'One alert rule (viewers and above; API keys with the read scope)',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.read',
    params: RuleParams,
    responses: { 200: { description: 'The rule.', schema: RuleSchema }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      ctx.body = await rules.get(actorOf(ctx), params.org, params.id);
    },
  });

  registry.route({
    method: 'patch',
    path: '/organizations/{org}/alert-rules/{id}',
    operationId: 'updateAlertRule',
    summary: 'Change an alert rule (editors and above; API keys with the write scope)',
    description:
      'Fields given replace the stored ones (`query` as a whole); null removes op, threshold or recovery_threshold. A new interval, query or kind, or enabling, reschedules the next evaluation within one interval. Disabling stops evaluation: its firing alerts resolve (one resolved notification for those that were notified) and its other alerts return to ok.',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: RuleParams,
    body: UpdateRuleBody,
    responses: {
      200: { description: 'The changed rule.', schema: RuleSchema },
      400: INVALID,
      403: FORBIDDEN,
      404: NOT_FOUND,
      409: { description: 'Another rule of the organization has this name.' },
    },
    handler: async (ctx, { params, body }) => {
      ctx.body = await rules.update(actorOf(ctx), params.org, params.id, body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'delete',
    path: '/organizations/{org}/alert-rules/{id}',
    operationId: 'deleteAlertRule',
    summary: 'Delete an alert rule and its alerts (editors and above; API keys with the write scope)',
    description: 'Its alerts are deleted with it and nothing is notified, not even a resolve: disable the rule first to resolve its firing alerts.',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: RuleParams,
    responses: { 204: { description: 'Deleted.' }, 403: FORBIDDEN, 404: NOT_FOUND },
    handler: async (ctx, { params }) => {
      await rules.delete(actorOf(ctx), params.org, params.id, metaOf(ctx));
      ctx.status = 204;
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/alert-rules/{id}/preview',
    operationId: 'previewAlertRule',
    summary: 'Evaluate a stored rule over stored history: when it would have fired and resolved (editors and above; API keys with the write scope)',
    description:
      'Evaluates the rule at start, start + interval, … up to end (at most alerts.preview_max_steps evaluations, and at most alerts.preview_max_steps × 60 evaluations × window/interval: a long window allows fewer) with the same condition and state machine as the evaluator (for, keep_firing_for, recovery_threshold). `notifications` counts per alert: the first firing, one more every repeat_interval while it fires, and one resolved per firing episode. Not simulated: group_wait, group_interval and grouping of alerts into one notification, silences, maintenance windows and acknowledgements. Nothing is stored or sent.',
    tags: TAGS,
    auth: 'any',
    permission: 'alert.write',
    params: RuleParams,
    query: PreviewQuery,
    responses: {
      200: { description: 'What the rule would have done.', schema: PreviewSchema },
      400: { description: 'Bad start or end, more evaluations than alerts.preview_max_steps, or too costly (evaluations × the intervals one window spans).' },
      403: FORBIDDEN,
      404: NOT_FOUND,
    },
    handler: async (ctx, { params, query }) => {
      // A client that goes away stops the preview's reads (the response closing before it was written).
      const gone = new AbortController();
      const onClose = () => {
        if (!ctx.res.writableEnded) gone.abort();
      };
      ctx.res.once('close', onClose);
      try {
        ctx.body = await rules.preview(actorOf(ctx), params.org, params.id, query, gone.signal);
      } finally {
        ctx.res.off('close', onClose);
      }
    },
  });
}
