import { Type } from '@sinclair/typebox';
import { ORG_ROLES } from '../../core/roles.js';

export const RoleSchema = Type.Unsafe<(typeof ORG_ROLES)[number]>({ type: 'string', enum: [...ORG_ROLES] });

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

export const UserParamsSchema = Type.Object({ id: Type.String({ format: 'uuid' }) });

export const CreateUserBodySchema = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 254 }),
    password: Type.String({ minLength: 8, maxLength: 72, description: 'At least 8 characters and at most 72 bytes (bcrypt ignores the rest, so longer ones are refused).' }),
    name: Type.Optional(Type.String({ maxLength: 200 })),
    superadmin: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

export const UpdateUserBodySchema = Type.Object(
  {
    name: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()], { description: 'null or "" clears it.' })),
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
