import type { Actor } from '../../core/actor.js';
import { authorize, type OrgAccess } from '../../core/authorize.js';
import { DomainError, notFound } from '../../core/errors.js';
import type { Permission } from '../../core/permissions.js';
import type { OrgRole } from '../../core/roles.js';
import type { OrgRow, OrgsRepository } from './orgs-repository.js';

/**
 * Resolves an org slug for an actor and checks one permission against the permission table.
 * An org the actor cannot see is "not found" — exactly like one that does not exist.
 * Every feature with org-scoped resources receives this (as core's OrgAccess) in its constructor.
 */
export class OrgGuard implements OrgAccess {
  constructor(private readonly repo: OrgsRepository) {}

  async require(actor: Actor, slug: string, permission: Permission): Promise<OrgRow & { role: OrgRole | null }> {
    // Both "does not exist" and "not yours" carry the same message: no existence oracle.
    const what = `organization '${slug}'`;
    if (actor.kind === 'anonymous') throw new DomainError('unauthenticated', 'authentication required');
    const org = await this.repo.findBySlug(slug);
    if (!org) throw notFound(what);
    // Read on every request (no cache), so a removed membership or changed role applies at once.
    const role = actor.kind === 'user' ? await this.repo.roleOf(org.id, actor.userId) : null;
    authorize(actor, permission, { id: org.id, role }, what);
    return { ...org, role };
  }
}
