import type { Knex } from 'knex';
import type { OrgRole } from '../../core/roles.js';
import { NO_CACHE, writing, type Cacher } from '../../db/read-cache.js';

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

/**
 * Nothing here is cached, but the read cache holds session state joined with users (see
 * SessionsRepository.state): every write invalidates `users`.
 */
export class UsersRepository {
  constructor(
    private readonly knex: Knex,
    private readonly cache: Cacher = NO_CACHE,
  ) {}

  async insert(u: { email: string; name: string | null; password_hash: string | null; superadmin: boolean }): Promise<UserRow> {
    return writing(this.cache, async (touch) => {
      touch('users');
      const [row] = await this.knex<UserRow>('users').insert(u).returning('*');
      return row;
    });
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

  async update(id: string, patch: Partial<Pick<UserRow, 'password_hash' | 'disabled_at' | 'name' | 'superadmin'>>, bumpTokenVersion = false): Promise<void> {
    await writing(this.cache, async (touch) => {
      touch('users');
      await this.knex('users')
        .where({ id })
        .update({ ...patch, updated_at: this.knex.fn.now(), ...(bumpTokenVersion ? { token_version: this.knex.raw('token_version + 1') } : {}) });
    });
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
   * Delete a user unless they are the last owner of some org (returns those orgs' slugs and
   * deletes nothing). Locks the owner rows of the user's orgs like the membership changes do.
   * Sessions and memberships go with the user (ON DELETE CASCADE).
   */
  async deleteUnlessLastOwner(id: string): Promise<{ deleted: boolean; lastOwnerOf: string[] }> {
    return writing(this.cache, (touch) => this.knex.transaction(async (trx) => {
      for (const table of ['users', 'memberships', 'sessions']) touch(table);
      const owned = trx('memberships').where({ user_id: id, role: 'owner' }).select('org_id');
      const owners: { org_id: string; user_id: string }[] = await trx('memberships').whereIn('org_id', owned).andWhere({ role: 'owner' }).forUpdate().select('org_id', 'user_id');
      const counts = new Map<string, number>();
      for (const o of owners) counts.set(o.org_id, (counts.get(o.org_id) ?? 0) + 1);
      const sole = [...counts].filter(([, n]) => n <= 1).map(([orgId]) => orgId);
      if (sole.length) {
        const slugs: { slug: string }[] = await trx('organizations').whereIn('id', sole).orderBy('slug').select('slug');
        return { deleted: false, lastOwnerOf: slugs.map((r) => r.slug) };
      }
      const n = await trx('users').where({ id }).delete();
      return { deleted: n === 1, lastOwnerOf: [] };
    }));
  }
}
