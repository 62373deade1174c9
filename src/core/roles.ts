import { Type } from '@sinclair/typebox';

/**
 * Roles and the one permission table that services consult. Org roles are ordered: a higher
 * role can do everything a lower one can.
 */
export const ORG_ROLES = ['viewer', 'editor', 'admin', 'owner'] as const;
export type OrgRole = (typeof ORG_ROLES)[number];

export const isOrgRole = (r: string): r is OrgRole => (ORG_ROLES as readonly string[]).includes(r);

export const roleRank = (r: OrgRole): number => ORG_ROLES.indexOf(r);

export const atLeast = (have: OrgRole, need: OrgRole): boolean => roleRank(have) >= roleRank(need);

/** An org role in a request or an answer (members, users' memberships, invitations). */
export const OrgRoleSchema = Type.Unsafe<OrgRole>({ type: 'string', enum: [...ORG_ROLES] });
