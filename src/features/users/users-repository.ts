import type { Knex } from 'knex';
import type { OrgRole } from '../../core/roles.js';

export interface UserRow {
  id: string;
  email: string;
  name: string | null;
  password_hash: string | null;
  superadmin: boolean;
  disabled_at: Date | null;
  token_version: number;
  created_at: Date;
  updated_at: Date;
}

export interface MembershipRow {
  org_id: string;
  user_id: string;
  role: OrgRole;
  org_slug: string;
}

export class UsersRepository {
  constructor(private readonly knex: Knex) {}

  async insert(u: { email: string; name: string | null; password_hash: string | null; superadmin: boolean }): Promise<UserRow> {
    const [row] = await this.knex<UserRow>('users').insert(u).returning('*');
    return row;
  }

  async findById(id: string): Promise<UserRow | undefined> {
    return this.knex<UserRow>('users').where({ id }).first();
  }

  async findByEmail(email: string): Promise<UserRow | undefined> {
    return this.knex<UserRow>('users').whereRaw('lower(email) = lower(?)', [email]).first();
  }

  async list(limit: number, afterEmail?: string, orgId?: string): Promise<UserRow[]> {
    const q = this.knex<UserRow>('users').select('users.*').orderBy('users.email').limit(limit);
    if (orgId) q.join('memberships', 'memberships.user_id', 'users.id').where('memberships.org_id', orgId);
    if (afterEmail !== undefined) q.where('users.email', '>', afterEmail);
    return q;
  }

  async update(id: string, patch: Partial<Pick<UserRow, 'password_hash' | 'disabled_at' | 'name'>>, bumpTokenVersion = false): Promise<void> {
    const q = this.knex('users').where({ id });
    await q.update({ ...patch, updated_at: this.knex.fn.now(), ...(bumpTokenVersion ? { token_version: this.knex.raw('token_version + 1') } : {}) });
  }

  async membershipsOf(userIds: string[]): Promise<MembershipRow[]> {
    if (userIds.length === 0) return [];
    return this.knex('memberships')
      .join('organizations', 'organizations.id', 'memberships.org_id')
      .whereIn('memberships.user_id', userIds)
      .select('memberships.org_id', 'memberships.user_id', 'memberships.role', 'organizations.slug as org_slug')
      .orderBy('organizations.slug');
  }

  /**
   * Set a user's role in an org. Runs in one transaction that locks the org's owner rows, so two
   * concurrent demotions cannot leave the org without an owner.
   */
  async setRole(orgId: string, userId: string, role: OrgRole): Promise<{ previous: OrgRole | null; lastOwner: boolean }> {
    return this.knex.transaction(async (trx) => {
      const owners = await trx('memberships').where({ org_id: orgId, role: 'owner' }).forUpdate().select('user_id');
      const current = await trx('memberships').where({ org_id: orgId, user_id: userId }).first('role');
      const previous = (current?.role as OrgRole | undefined) ?? null;
      if (previous === 'owner' && role !== 'owner' && owners.length <= 1) return { previous, lastOwner: true };
      await trx('memberships')
        .insert({ org_id: orgId, user_id: userId, role })
        .onConflict(['org_id', 'user_id'])
        .merge({ role, updated_at: trx.fn.now() });
      return { previous, lastOwner: false };
    });
  }
}
