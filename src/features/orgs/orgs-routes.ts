import { actorOf, metaOf } from '../../http/context.js';
import { OrgParams, PageQuerySchema, orgParamsWith, pageOf, uuid } from '../../http/schemas.js';
import type { ApiRegistry } from '../../http/registry.js';
import {
  AddMemberBodySchema,
  CreateOrgBodySchema,
  InvitationSentSchema,
  MemberSchema,
  OrganizationSchema,
  UpdateMemberBodySchema,
  UpdateOrgBodySchema,
} from './orgs-schemas.js';
import type { OrgsService } from './orgs-service.js';

const notFound = { description: 'No such organization (or not one the caller belongs to).' };
const MemberParams = orgParamsWith({ user_id: uuid() });
const forbidden = { description: 'The caller’s role (or API key scope) does not allow this.' };

export function registerOrgRoutes(registry: ApiRegistry, orgs: OrgsService): void {
  registry.route({
    method: 'get',
    path: '/organizations',
    operationId: 'listOrganizations',
    summary: 'Organizations the caller can see (superadmins: all; users: their memberships; API keys: their own)',
    tags: ['organizations'],
    auth: 'any',
    permission: 'org.read',
    query: PageQuerySchema,
    responses: { 200: { description: 'One page of organizations, by slug.', schema: pageOf(OrganizationSchema) } },
    handler: async (ctx, { query }) => {
      ctx.body = await orgs.list(actorOf(ctx), query);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations',
    operationId: 'createOrganization',
    summary: 'Create an organization (superadmins). The creator does not become a member; add an owner next',
    tags: ['organizations'],
    auth: 'user',
    body: CreateOrgBodySchema,
    responses: { 201: { description: 'Created.', schema: OrganizationSchema }, 403: { description: 'Not a superadmin.' }, 409: { description: 'The slug is taken.' } },
    handler: async (ctx, { body }) => {
      ctx.body = await orgs.create(actorOf(ctx), body, metaOf(ctx));
      ctx.status = 201;
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}',
    operationId: 'getOrganization',
    summary: 'One organization with its limits',
    tags: ['organizations'],
    auth: 'any',
    permission: 'org.read',
    params: OrgParams,
    responses: { 200: { description: 'The organization.', schema: OrganizationSchema }, 403: forbidden, 404: notFound },
    handler: async (ctx, { params }) => {
      ctx.body = await orgs.get(actorOf(ctx), params.org);
    },
  });

  registry.route({
    method: 'patch',
    path: '/organizations/{org}',
    operationId: 'updateOrganization',
    summary: 'Rename an organization or change its limits (admins)',
    description: 'Limits merge key by key: keys left out stay as they are, null removes an override (the instance default applies).',
    tags: ['organizations'],
    auth: 'any',
    permission: 'org.update',
    params: OrgParams,
    body: UpdateOrgBodySchema,
    responses: { 200: { description: 'The updated organization.', schema: OrganizationSchema }, 403: forbidden, 404: notFound },
    handler: async (ctx, { params, body }) => {
      ctx.body = await orgs.update(actorOf(ctx), params.org, body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'delete',
    path: '/organizations/{org}',
    operationId: 'deleteOrganization',
    summary: 'Delete an organization and everything it owns (owners)',
    tags: ['organizations'],
    auth: 'any',
    permission: 'org.delete',
    params: OrgParams,
    responses: { 204: { description: 'Deleted.' }, 403: forbidden, 404: notFound },
    handler: async (ctx, { params }) => {
      await orgs.delete(actorOf(ctx), params.org, metaOf(ctx));
      ctx.status = 204;
    },
  });

  registry.route({
    method: 'get',
    path: '/organizations/{org}/members',
    operationId: 'listMembers',
    summary: 'Members of an organization with their roles, by email',
    tags: ['members'],
    auth: 'any',
    permission: 'member.read',
    params: OrgParams,
    query: PageQuerySchema,
    responses: { 200: { description: 'One page of members.', schema: pageOf(MemberSchema) }, 403: forbidden, 404: notFound },
    handler: async (ctx, { params, query }) => {
      ctx.body = await orgs.members(actorOf(ctx), params.org, query);
    },
  });

  registry.route({
    method: 'post',
    path: '/organizations/{org}/members',
    operationId: 'addMember',
    summary: 'Add a user with a role: superadmins add directly, everyone else invites by email (admins; granting owner: owners)',
    description:
      'Superadmins add an existing user (by user_id or email) at once: 201 with the member. Anyone else (org admins, admin-scoped API keys) ' +
      'invites by email: 202 {status: "invited"}, the same answer whether or not the address has an account, and no membership until the ' +
      'invitee accepts it (GET /auth/invitations). user_id from a non-superadmin is refused (403) without being looked up.',
    tags: ['members'],
    auth: 'any',
    permission: 'member.manage',
    params: OrgParams,
    body: AddMemberBodySchema,
    responses: {
      201: { description: 'Added (superadmins).', schema: MemberSchema },
      202: { description: 'Invited (everyone else); the invitee accepts within 7 days.', schema: InvitationSentSchema },
      403: forbidden,
      404: { description: 'No such organization, or (superadmins) no such user.' },
      409: { description: 'Already a member (change the role with PATCH).' },
    },
    handler: async (ctx, { params, body }) => {
      const result = await orgs.addMember(actorOf(ctx), params.org, body, metaOf(ctx));
      ctx.status = result.kind === 'added' ? 201 : 202;
      ctx.body = result.kind === 'added' ? result.member : result.invitation;
    },
  });

  registry.route({
    method: 'patch',
    path: '/organizations/{org}/members/{user_id}',
    operationId: 'updateMember',
    summary: "Change a member's role (admins; giving or taking the owner role: owners)",
    tags: ['members'],
    auth: 'any',
    permission: 'member.manage',
    params: MemberParams,
    body: UpdateMemberBodySchema,
    responses: {
      200: { description: 'The member.', schema: MemberSchema },
      403: forbidden,
      404: { description: 'No such organization or member.' },
      409: { description: 'That would leave the organization without an owner.' },
    },
    handler: async (ctx, { params, body }) => {
      ctx.body = await orgs.setMemberRole(actorOf(ctx), params.org, params.user_id, body.role, metaOf(ctx));
    },
  });

  registry.route({
    method: 'delete',
    path: '/organizations/{org}/members/{user_id}',
    operationId: 'removeMember',
    summary: 'Remove a member (admins; removing an owner: owners). Effective on their next request',
    tags: ['members'],
    auth: 'any',
    permission: 'member.manage',
    params: MemberParams,
    responses: {
      204: { description: 'Removed.' },
      403: forbidden,
      404: { description: 'No such organization or member.' },
      409: { description: 'The last owner cannot be removed.' },
    },
    handler: async (ctx, { params }) => {
      await orgs.removeMember(actorOf(ctx), params.org, params.user_id, metaOf(ctx));
      ctx.status = 204;
    },
  });
}
