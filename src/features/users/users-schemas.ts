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
