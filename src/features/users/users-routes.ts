import { Type } from '@sinclair/typebox';
import { actorOf, metaOf } from '../../http/context.js';
import { IdParams, OrgSlugSchema, PageQuerySchema, pageOf } from '../../http/schemas.js';
import type { ApiRegistry } from '../../http/registry.js';
import { ChangePasswordBodySchema, CreateUserBodySchema, UpdateUserBodySchema, UserSchema } from './users-schemas.js';
import type { UsersService } from './users-service.js';

const notFound = { description: 'No such user (or, for non-superadmins, not yourself).' };

export function registerUserRoutes(registry: ApiRegistry, users: UsersService): void {
  registry.route({
    method: 'get',
    path: '/users',
    operationId: 'listUsers',
    summary: 'All users with their memberships, by email (superadmins)',
    tags: ['users'],
    auth: 'user',
    query: Type.Composite([PageQuerySchema, Type.Object({ org: Type.Optional({ ...OrgSlugSchema, description: 'Only members of this organization.' }) })], {
      additionalProperties: false,
    }),
    responses: { 200: { description: 'One page of users.', schema: pageOf(UserSchema) }, 403: { description: 'Not a superadmin.' } },
    handler: async (ctx, { query }) => {
      ctx.body = await users.list(actorOf(ctx), query);
    },
  });

  registry.route({
    method: 'post',
    path: '/users',
    operationId: 'createUser',
    summary: 'Create a user (superadmins); add them to organizations with POST /organizations/{org}/members',
    tags: ['users'],
    auth: 'user',
    body: CreateUserBodySchema,
    responses: { 201: { description: 'Created.', schema: UserSchema }, 403: { description: 'Not a superadmin.' }, 409: { description: 'The email is taken (in any case).' } },
    handler: async (ctx, { body }) => {
      ctx.body = await users.create(actorOf(ctx), body, metaOf(ctx));
      ctx.status = 201;
    },
  });

  // Registered before /users/{id} for readability only: the paths differ in length, so they never clash.
  registry.route({
    method: 'post',
    path: '/users/me/password',
    operationId: 'changeOwnPassword',
    summary: 'Change your own password; every session of yours ends (sign in again)',
    description:
      'A wrong current_password answers 400 with errors[].path "body/current_password" (not 401: the access token itself is valid). ' +
      'Each wrong current_password counts as a failed login of the account (rate_limits.login_failures_per_account per login_window): ' +
      'over the limit this route and login answer 429 with Retry-After until the window ends.',
    tags: ['users'],
    auth: 'user',
    body: ChangePasswordBodySchema,
    responses: {
      204: { description: 'Changed; all sessions, this one included, are revoked.' },
      400: { description: 'Wrong current password or unacceptable new one.' },
      429: { description: 'Too many failed passwords (logins included) for this account (Retry-After).' },
    },
    handler: async (ctx, { body }) => {
      await users.changeOwnPassword(actorOf(ctx), body, metaOf(ctx));
      ctx.status = 204;
    },
  });

  registry.route({
    method: 'get',
    path: '/users/{id}',
    operationId: 'getUser',
    summary: 'One user (superadmins: anyone; others: only themselves)',
    tags: ['users'],
    auth: 'user',
    params: IdParams,
    responses: { 200: { description: 'The user.', schema: UserSchema }, 404: notFound },
    handler: async (ctx, { params }) => {
      ctx.body = await users.getById(actorOf(ctx), params.id);
    },
  });

  registry.route({
    method: 'patch',
    path: '/users/{id}',
    operationId: 'updateUser',
    summary: 'Change name (yourself or superadmins), disabled or superadmin (superadmins)',
    description: 'Disabling ends every session of the user at once. Nobody can disable themselves or drop their own superadmin role here (409).',
    tags: ['users'],
    auth: 'user',
    params: IdParams,
    body: UpdateUserBodySchema,
    responses: { 200: { description: 'The user.', schema: UserSchema }, 403: { description: 'Only superadmins change disabled or superadmin.' }, 404: notFound, 409: { description: 'Would lock yourself out.' } },
    handler: async (ctx, { params, body }) => {
      ctx.body = await users.update(actorOf(ctx), params.id, body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'delete',
    path: '/users/{id}',
    operationId: 'deleteUser',
    summary: 'Delete a user (superadmins; not yourself; not the last owner of an organization)',
    tags: ['users'],
    auth: 'user',
    params: IdParams,
    responses: { 204: { description: 'Deleted; their sessions end with them.' }, 403: { description: "Not a superadmin, and the id is your own (anyone else's is 404)." }, 404: notFound, 409: { description: 'Yourself, or the last owner of an organization.' } },
    handler: async (ctx, { params }) => {
      await users.delete(actorOf(ctx), params.id, metaOf(ctx));
      ctx.status = 204;
    },
  });
}
