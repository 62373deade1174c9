import { actorOf, metaOf } from '../../http/context.js';
import { IdParams, PageQuerySchema, pageOf } from '../../http/schemas.js';
import type { ApiRegistry } from '../../http/registry.js';
import type { InvitationsService } from './invitations-service.js';
import { InvitationAcceptedSchema, InvitationSchema } from './orgs-schemas.js';

const notFound = { description: 'No such unexpired invitation addressed to you.' };

/** The invitee's side of invitations: under /auth, because they belong to the signed-in user, not to an org. */
export function registerInvitationRoutes(registry: ApiRegistry, invitations: InvitationsService): void {
  registry.route({
    method: 'get',
    path: '/auth/invitations',
    operationId: 'listInvitations',
    summary: 'Your pending (unexpired) invitations to join organizations, by org slug',
    tags: ['auth'],
    auth: 'user',
    query: PageQuerySchema,
    responses: { 200: { description: 'One page of invitations.', schema: pageOf(InvitationSchema) } },
    handler: async (ctx, { query }) => {
      ctx.body = await invitations.list(actorOf(ctx), query);
    },
  });

  registry.route({
    method: 'post',
    path: '/auth/invitations/{id}/accept',
    operationId: 'acceptInvitation',
    summary: 'Join the organization with the invited role (the invitation is used up)',
    tags: ['auth'],
    auth: 'user',
    params: IdParams,
    responses: { 200: { description: 'You are a member now.', schema: InvitationAcceptedSchema }, 404: notFound },
    handler: async (ctx, { params }) => {
      ctx.body = await invitations.accept(actorOf(ctx), params.id, metaOf(ctx));
    },
  });

  registry.route({
    method: 'post',
    path: '/auth/invitations/{id}/decline',
    operationId: 'declineInvitation',
    summary: 'Decline an invitation (it is deleted; the org may invite you again)',
    tags: ['auth'],
    auth: 'user',
    params: IdParams,
    responses: { 204: { description: 'Declined.' }, 404: notFound },
    handler: async (ctx, { params }) => {
      await invitations.decline(actorOf(ctx), params.id, metaOf(ctx));
      ctx.status = 204;
    },
  });
}
