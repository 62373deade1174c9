import type { Knex } from 'knex';
import type { OrgRole } from '../../core/roles.js';
import { NO_CACHE, writing, type Cacher } from '../../db/read-cache.js';
import { lockedOwners } from './orgs-repository.js';

export interface InvitationRow {
  org_id: string;
  id: string;
  email: string;
  role: OrgRole;
  invited_by: string | null;
  created_at: Date;
  expires_at: Date;
}

/** A pending invitation as its invitee sees it: with the org's slug and name. */
export interface PendingInvitationRow extends InvitationRow {
  org_slug: string;
  org_name: string;
}

/** What accepting did: the membership's role (the existing one when already a member). */
export interface Acceptance {
  org_id: string;
  org_slug: string;
  org_name: string;
  role: OrgRole;
  invited_role: OrgRole;
  added: boolean;
  /** The invitee joined as the org's first owner (it had none before): they get the welcome email. */
  first_owner: boolean;
}

/**
 * Invitations to join an organization. The admin side is tenant-scoped (org_id in every WHERE);
 * the invitee side is scoped by the invitee's own address instead, which is what makes an
 * invitation theirs: an id alone never finds another address's invitation.
 */
export class InvitationsRepository {
  constructor(
    private readonly knex: Knex,
    private readonly cache: Cacher = NO_CACHE,
  ) {}

  /**
   * Create the invitation of (org, email), or refresh the one already there (new role, inviter
   * and expiry). One statement whatever the address, so inviting costs the same for an address
   * that has an account as for one that has none.
   */
  async upsert(orgId: string, email: string, role: OrgRole, invitedBy: string | null, expiresAt: Date): Promise<InvitationRow> {
    const [row] = await this.knex<InvitationRow>('invitations')
      .insert({ org_id: orgId, email, role, invited_by: invitedBy, expires_at: expiresAt })
      .onConflict(['org_id', 'email'])
      .merge({ role, invited_by: invitedBy, expires_at: expiresAt, created_at: this.knex.fn.now() as never, id: this.knex.raw('gen_random_uuid()') as never })
      .returning('*');
    return row;
  }

  /** Unexpired invitations addressed to `email`, by org slug (keyset on the slug: one per org). */
  async pendingFor(email: string, limit: number, afterSlug?: string): Promise<PendingInvitationRow[]> {
    const q = this.knex('invitations as i')
      .join('organizations as o', 'o.id', 'i.org_id')
      .where('i.email', email)
      .andWhere('i.expires_at', '>', this.knex.fn.now())
      .select('i.*', 'o.slug as org_slug', 'o.name as org_name')
      .orderBy('o.slug')
      .limit(limit);
    if (afterSlug !== undefined) q.where('o.slug', '>', afterSlug);
    return q as Promise<PendingInvitationRow[]>;
  }

  /**
   * Accept an unexpired invitation addressed to `email`: in one transaction, add the membership
   * with the invited role (an existing membership is kept as it is) and delete the invitation.
   * undefined when there is no such invitation for that address.
   */
  async accept(id: string, email: string, userId: string): Promise<Acceptance | undefined> {
    // Adds a membership, which the read cache holds (role by org and user).
    return writing(this.cache, (touch) => this.knex.transaction(async (trx) => {
      const inv = await trx<InvitationRow>('invitations').where({ id, email }).andWhere('expires_at', '>', trx.fn.now()).forUpdate().first();
      if (!inv) return undefined;
      touch('memberships', `${inv.org_id}:${userId}`);
      const owners = inv.role === 'owner' ? await lockedOwners(trx, inv.org_id, true) : [];
      const inserted = await trx('memberships').insert({ org_id: inv.org_id, user_id: userId, role: inv.role }).onConflict(['org_id', 'user_id']).ignore().returning('role');
      const current = inserted.length ? inv.role : ((await trx('memberships').where({ org_id: inv.org_id, user_id: userId }).first('role')) as { role: OrgRole }).role;
      await trx('invitations').where({ org_id: inv.org_id, id: inv.id }).delete();
      const org = (await trx('organizations').where({ id: inv.org_id }).first('slug', 'name')) as { slug: string; name: string };
      return { org_id: inv.org_id, org_slug: org.slug, org_name: org.name, role: current, invited_role: inv.role, added: inserted.length === 1, first_owner: inserted.length === 1 && inv.role === 'owner' && owners.length === 0 };
    }));
  }

  /** Delete an unexpired invitation addressed to `email`; undefined when there is none. */
  async decline(id: string, email: string): Promise<InvitationRow | undefined> {
    const [row] = await this.knex<InvitationRow>('invitations').where({ id, email }).andWhere('expires_at', '>', this.knex.fn.now()).delete().returning('*');
    return row;
  }
}
