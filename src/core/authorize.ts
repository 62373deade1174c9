import type { Actor } from './actor.js';
import { DomainError } from './errors.js';
import { PERMISSIONS, scopeGrants, type Permission } from './permissions.js';
import { atLeast, type OrgRole } from './roles.js';

/**
 * Decide whether `actor` may do `permission` in an org where it holds `role` (null: not a
 * member). Someone with no access to the org learns nothing about it: not_found, never forbidden.
 */
export function authorize(actor: Actor, permission: Permission, org: { id: string; role: OrgRole | null }, what = 'organization'): void {
  switch (actor.kind) {
    case 'system':
      return;
    case 'anonymous':
      throw new DomainError('unauthenticated', 'authentication required');
    case 'user':
      if (actor.superadmin) return;
      if (org.role === null) throw new DomainError('not_found', `${what} not found`);
      if (!atLeast(org.role, PERMISSIONS[permission].role)) throw new DomainError('forbidden', `requires the ${PERMISSIONS[permission].role} role`);
      return;
    case 'apikey':
      if (actor.orgId !== org.id) throw new DomainError('not_found', `${what} not found`);
      if (!scopeGrants(actor.scopes, permission)) throw new DomainError('forbidden', `this API key's scopes do not allow ${permission}`);
      return;
  }
}

/** Instance-level actions (user administration, all orgs, the admin API). */
export function requireSuperadmin(actor: Actor): void {
  if (actor.kind === 'system' || (actor.kind === 'user' && actor.superadmin)) return;
  if (actor.kind === 'anonymous') throw new DomainError('unauthenticated', 'authentication required');
  throw new DomainError('forbidden', 'requires a superadmin');
}

/** The org-level guard that features receive in their constructors. */
export interface OrgAccess {
  require(actor: Actor, slug: string, permission: Permission): Promise<{ id: string; slug: string; role: OrgRole | null }>;
}
