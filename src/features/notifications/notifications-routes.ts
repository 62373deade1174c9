import { actorOf, metaOf } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import { OrgParams, PageQuerySchema, orgParamsWith, pageOf, uuid } from '../../http/schemas.js';
import type { ChannelsService } from './channels-service.js';
import type { DeliveryService } from './delivery-service.js';
import { ChannelSchema, ChannelTestSchema, CreateChannelBody, NotificationSchema, NotificationsQuery, PatchChannelBody } from './notifications-schemas.js';

const CHANNELS = ['channels'];
const NOTIFICATIONS = ['notifications'];
const ChannelParams = orgParamsWith({ id: uuid('Channel id.') });
const NotificationParams = orgParamsWith({ id: uuid('Notification id.') });
const FORBIDDEN = { description: 'Role or scope too low.' };
const NO_CHANNEL = { description: 'No such organization or channel (or not visible to the caller).' };
const INVALID = { description: 'Invalid input, or a URL the outbound guard refuses; `errors` names each field.' };

export function registerNotificationRoutes(registry: ApiRegistry, s: { channels: ChannelsService; delivery: DeliveryService }): void {
  const { channels, delivery } = s;
  registry.route({
    method: 'get',
    path: '/organizations/{org}/channels',
    operationId: 'listChannels',
    summary: "The organization's notification channels, oldest first (admins; API keys with the admin scope); never their write-only fields",
    tags: CHANNELS,
    auth: 'any',
    permission: 'channel.manage',
    params: OrgParams,
    query: PageQuerySchema,
    responses: { 200: { description: 'One page of channels.', schema: pageOf(ChannelSchema) }, 403: FORBIDDEN, 404: NO_CHANNEL },
    handler: async (ctx, { params, query }) => {
      ctx.body = await channels.list(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/channels',
    operationId: 'createChannel',
    summary: 'Create a webhook, email or Slack channel',
    description: 'URLs must be http or https and pass the outbound guard (no loopback, private or link-local targets unless notifications.allow_private_networks; link-local never).',
    tags: CHANNELS,
    auth: 'any',
    permission: 'channel.manage',
    params: OrgParams,
    body: CreateChannelBody,
    responses: { 201: { description: 'Created.', schema: ChannelSchema }, 400: INVALID, 403: FORBIDDEN, 404: NO_CHANNEL, 409: { description: 'A channel of that name exists.' } },
    handler: async (ctx, { params, body }) => {
      ctx.status = 201;
      ctx.body = await channels.create(actorOf(ctx), params.org, body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/channels/{id}',
    operationId: 'getChannel',
    summary: 'One channel (without its write-only fields)',
    tags: CHANNELS,
    auth: 'any',
    permission: 'channel.manage',
    params: ChannelParams,
    responses: { 200: { description: 'The channel.', schema: ChannelSchema }, 403: FORBIDDEN, 404: NO_CHANNEL },
    handler: async (ctx, { params }) => {
      ctx.body = await channels.get(actorOf(ctx), params.org, params.id);
    },
  });

  registry.route({
    method: 'patch',
    path: '/organizations/{org}/channels/{id}',
    operationId: 'updateChannel',
    summary: "Rename a channel or replace its config (a write-only field left out keeps its value; the webhook secret null removes it)",
    tags: CHANNELS,
    auth: 'any',
    permission: 'channel.manage',
    params: ChannelParams,
    body: PatchChannelBody,
    responses: { 200: { description: 'The channel.', schema: ChannelSchema }, 400: INVALID, 403: FORBIDDEN, 404: NO_CHANNEL, 409: { description: 'A channel of that name exists.' } },
    handler: async (ctx, { params, body }) => {
      ctx.body = await channels.update(actorOf(ctx), params.org, params.id, body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'delete',
    path: '/organizations/{org}/channels/{id}',
    operationId: 'deleteChannel',
    summary: 'Delete a channel (with its delivery log)',
    tags: CHANNELS,
    auth: 'any',
    permission: 'channel.manage',
    params: ChannelParams,
    responses: { 204: { description: 'Deleted.' }, 403: FORBIDDEN, 404: NO_CHANNEL },
    handler: async (ctx, { params }) => {
      await channels.delete(actorOf(ctx), params.org, params.id, metaOf(ctx));
      ctx.status = 204;
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/channels/{id}/test',
    operationId: 'testChannel',
    summary: 'Send a test notification through the channel now (one attempt) and answer the outcome',
    description: 'Recorded in the delivery log with status "test". A receiver that refuses it is still a 200 with ok false.',
    tags: CHANNELS,
    auth: 'any',
    permission: 'channel.manage',
    params: ChannelParams,
    responses: { 200: { description: 'What happened.', schema: ChannelTestSchema }, 403: FORBIDDEN, 404: NO_CHANNEL },
    handler: async (ctx, { params }) => {
      ctx.body = await channels.test(actorOf(ctx), params.org, params.id, metaOf(ctx));
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/notifications',
    operationId: 'listNotifications',
    summary: 'The delivery log, newest first: every notification with each delivery attempt (viewers and above; API keys with the read scope)',
    tags: NOTIFICATIONS,
    auth: 'any',
    permission: 'alert.read',
    params: OrgParams,
    query: NotificationsQuery,
    responses: { 200: { description: 'One page of notifications.', schema: pageOf(NotificationSchema) }, 403: FORBIDDEN, 404: { description: 'No such organization.' } },
    handler: async (ctx, { params, query }) => {
      ctx.body = await delivery.list(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/notifications/{id}/resend',
    operationId: 'resendNotification',
    summary: 'Send a notification again: a new notification (resend_of names the original), queued for delivery',
    tags: NOTIFICATIONS,
    auth: 'any',
    permission: 'channel.manage',
    params: NotificationParams,
    responses: { 202: { description: 'Queued.', schema: NotificationSchema }, 403: FORBIDDEN, 404: { description: 'No such organization or notification.' } },
    handler: async (ctx, { params }) => {
      ctx.status = 202;
      ctx.body = await delivery.resend(actorOf(ctx), params.org, params.id, metaOf(ctx));
    },
  });
}
