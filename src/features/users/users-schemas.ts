import { Type, type Static } from '@sinclair/typebox';
import { SLUG_PATTERN } from '../../core/ids.js';
import { OrgRoleSchema as RoleSchema } from '../../core/roles.js';
import { EMAIL_PATTERN } from '../../core/validation.js';

export const USER_NAME_MAX = 200;

/** A user as the API shows it (never the password hash). */
export const UserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  superadmin: Type.Boolean(),
  disabled: Type.Boolean(),
  memberships: Type.Array(Type.Object({ org: Type.String(), role: RoleSchema })),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

export const CreateUserBodySchema = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 254, pattern: EMAIL_PATTERN, description: 'An email address (surrounding blanks are dropped).' }),
    password: Type.String({ minLength: 8, maxLength: 72, description: 'At least 8 characters and at most 72 bytes (bcrypt ignores the rest, so longer ones are refused).' }),
    name: Type.Optional(Type.String({ maxLength: USER_NAME_MAX })),
    superadmin: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

export const UpdateUserBodySchema = Type.Object(
  {
    name: Type.Optional(Type.Union([Type.String({ maxLength: USER_NAME_MAX }), Type.Null()], { description: 'null or "" clears it.' })),
    disabled: Type.Optional(Type.Boolean({ description: 'Superadmins only. Disabling ends every session at once.' })),
    superadmin: Type.Optional(Type.Boolean({ description: 'Superadmins only.' })),
  },
  { additionalProperties: false },
);

export const ChangePasswordBodySchema = Type.Object(
  {
    current_password: Type.String({ minLength: 1, maxLength: 1024 }),
    new_password: Type.String({ minLength: 8, maxLength: 72, description: 'At least 8 characters and at most 72 bytes.' }),
  },
  { additionalProperties: false },
);

/**
 * What the service takes to create a user: the HTTP body, plus (the CLI's `user create --org
 * --role`) a first membership, which over HTTP is a separate POST …/members.
 */
export const CreateUserInputSchema = Type.Composite(
  [
    CreateUserBodySchema,
    Type.Object({
      org: Type.Optional(Type.String({ pattern: SLUG_PATTERN, description: 'Organization slug; with role.' })),
      role: Type.Optional(RoleSchema),
    }),
  ],
  { additionalProperties: false },
);

export type User = Static<typeof UserSchema>;
export type CreateUserInput = Static<typeof CreateUserInputSchema>;
export type UpdateUserInput = Static<typeof UpdateUserBodySchema>;
export type ChangePasswordInput = Static<typeof ChangePasswordBodySchema>;
