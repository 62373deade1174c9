import type { Knex } from 'knex';
import { NO_CACHE, writing, type Cacher } from '../../db/read-cache.js';
import type { OrgRole } from '../../core/roles.js';

export interface OrgRow {
  id: string;
  slug: string;
  name: string;
  limits: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

export interface MemberRow {
  user_id: string;
  email: string;
  name: string | null;
  role: OrgRole;
  created_at: Date;
  updated_at: Date;
}

/** What a membership change did; `lastOwner` means it was refused to keep the org's last owner. */
export interface MembershipChange {
  previous: OrgRole | null;
  lastOwner: boolean;
  /** The user became the org's first owner (it had none before): they get the welcome email. */
  firstOwner: boolean;
}

/**
 * The org's owners, locked, inside a membership write. Making someone owner also locks the org
 * row (FOR NO KEY UPDATE, which leaves foreign-key checks alone) so that two first owners added at
 * once are told apart: with no owner row yet there is nothing else to lock.
 */
export async function lockedOwners(trx: Knex.Transaction, orgId: string, addingOwner: boolean): Promise<string[]> {
  if (addingOwner) await trx('organizations').where({ id: orgId }).forNoKeyUpdate().first('id');
  const rows = await trx('memberships').where({ org_id: orgId, role: 'owner' }).forUpdate().select('user_id');
  return rows.map((r: { user_id: string }) => r.user_id);
}

export class OrgsRepository {
  constructor(
    private readonly knex: Knex,
    private readonly cache: Cacher = NO_CACHE,
  ) {}

  async insert(slug: string, name: string, limits: Record<string, unknown> = {}): Promise<OrgRow> {
    return writing(this.cache, async (touch) => {
      touch('organizations', slug); // a lookup of the slug before it existed cached "no such org"
      const [row] = await this.knex<OrgRow>('organizations').insert({ slug, name, limits: JSON.stringify(limits) as never }).returning('*');
      return row;
    });
  }

  /** Cached (see ReadCache; every write below invalidates): every org-scoped request resolves its slug here. */
  async findBySlug(slug: string): Promise<OrgRow | undefined> {
    return this.cache.get(['organizations'], slug, () => this.knex<OrgRow>('organizations').where({ slug }).first());
  }

  async findById(id: string): Promise<OrgRow | undefined> {
    // Keyed apart from slugs (which cannot contain ':').
    return this.cache.get(['organizations'], `id:${id}`, () => this.knex<OrgRow>('organizations').where({ id }).first());
  }

  async list(limit: number, afterSlug?: string): Promise<OrgRow[]> {
    const q = this.knex<OrgRow>('organizations').orderBy('slug').limit(limit);
    if (afterSlug !== undefined) q.where('slug', '>', afterSlug);
    return q;
  }

  /** The orgs a user is a member of, by slug. */
  async listForUser(userId: string, limit: number, afterSlug?: string): Promise<OrgRow[]> {
    const q = this.knex<OrgRow>('organizations as o')
      .join('memberships as m', 'm.org_id', 'o.id')
      .where('m.user_id', userId)
      .select('o.*')
      .orderBy('o.slug')
      .limit(limit);
    if (afterSlug !== undefined) q.where('o.slug', '>', afterSlug);
    return q;
  }

  /**
   * Read-modify-write of one org under a row lock, so concurrent PATCHes of different limit keys
   * do not lose each other's changes. `change` gets the current row and returns the new values.
   */
  async update(id: string, change: (row: OrgRow) => { name?: string; limits?: Record<string, unknown> }): Promise<{ before: OrgRow; after: OrgRow } | undefined> {
    return writing(this.cache, (touch) => this.knex.transaction(async (trx) => {
      const before = await trx<OrgRow>('organizations').where({ id }).forUpdate().first();
      if (!before) return undefined;
      touch('organizations', before.slug);
      touch('organizations', `id:${id}`);
      const patch = change(before);
      const [after] = await trx<OrgRow>('organizations')
        .where({ id })
        .update({
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.limits !== undefined ? { limits: JSON.stringify(patch.limits) as never } : {}),
          updated_at: trx.fn.now() as never,
        })
        .returning('*');
      return { before, after };
    }));
  }

  /** The user's role in the org, or null when not a member. */
  async roleOf(orgId: string, userId: string): Promise<OrgRole | null> {
    return this.cache.get(['memberships'], `${orgId}:${userId}`, async () => {
      const row = await this.knex('memberships').where({ org_id: orgId, user_id: userId }).first('role');
      return (row?.role as OrgRole | undefined) ?? null;
    });
  }

  async delete(id: string): Promise<number> {
    return writing(this.cache, (touch) => {
      // Its memberships and API keys go with it (ON DELETE CASCADE); their cache keys are unknown here.
      for (const table of ['organizations', 'memberships', 'api_keys']) touch(table);
      return this.knex('organizations').where({ id }).delete();
    });
  }

  private membersQuery(orgId: string) {
    return this.knex('memberships as m')
      .join('users as u', 'u.id', 'm.user_id')
      .where('m.org_id', orgId)
      .select('m.user_id', 'u.email', 'u.name', 'm.role', 'm.created_at', 'm.updated_at');
  }

  /** Members of one org by email (keyset on email: emails are unique). */
  async members(orgId: string, limit: number, afterEmail?: string): Promise<MemberRow[]> {
    const q = this.membersQuery(orgId).orderBy('u.email').limit(limit);
    if (afterEmail !== undefined) q.where('u.email', '>', afterEmail);
    return q as Promise<MemberRow[]>;
  }

  async member(orgId: string, userId: string): Promise<MemberRow | undefined> {
    return this.membersQuery(orgId).where('m.user_id', userId).first() as Promise<MemberRow | undefined>;
  }

  /** The member of the org with this email (any case), if any. */
  async memberByEmail(orgId: string, email: string): Promise<MemberRow | undefined> {
    return this.membersQuery(orgId).whereRaw('lower(u.email) = lower(?)', [email]).first() as Promise<MemberRow | undefined>;
  }

  /**
   * Set a user's role in an org (adding the membership if `upsert`). One transaction locks the
   * org's owner rows, so two concurrent demotions cannot leave the org without an owner.
   * Returns previous null and does nothing when the user is not a member and `upsert` is false.
   * `check` sees the locked current role and may throw to refuse (authorization that depends on it).
   */
  async setRole(orgId: string, userId: string, role: OrgRole, opts: { upsert?: boolean; check?: (previous: OrgRole | null) => void } = {}): Promise<MembershipChange> {
    return writing(this.cache, (touch) => this.knex.transaction(async (trx) => {
      touch('memberships', `${orgId}:${userId}`);
      const owners = await lockedOwners(trx, orgId, role === 'owner');
      const current = await trx('memberships').where({ org_id: orgId, user_id: userId }).forUpdate().first('role');
      const previous = (current?.role as OrgRole | undefined) ?? null;
      if (previous === null && opts.upsert === false) return { previous, lastOwner: false, firstOwner: false };
      opts.check?.(previous);
      if (previous === 'owner' && role !== 'owner' && owners.length <= 1) return { previous, lastOwner: true, firstOwner: false };
      await trx('memberships')
        .insert({ org_id: orgId, user_id: userId, role })
        .onConflict(['org_id', 'user_id'])
        .merge({ role, updated_at: trx.fn.now() });
      return { previous, lastOwner: false, firstOwner: role === 'owner' && owners.length === 0 };
    }));
  }

  /** Add a membership; `added` false when the user is already a member. */
  async addMember(orgId: string, userId: string, role: OrgRole): Promise<{ added: boolean; firstOwner: boolean }> {
    return writing(this.cache, (touch) => this.knex.transaction(async (trx) => {
      touch('memberships', `${orgId}:${userId}`);
      const owners = role === 'owner' ? await lockedOwners(trx, orgId, true) : [];
      const rows = await trx('memberships').insert({ org_id: orgId, user_id: userId, role }).onConflict(['org_id', 'user_id']).ignore().returning('user_id');
      const added = rows.length === 1;
      return { added, firstOwner: added && role === 'owner' && owners.length === 0 };
    }));
  }

  /** Remove a membership unless it is the org's last owner (same lock as setRole). */
  async removeMember(orgId: string, userId: string, check?: (previous: OrgRole) => void): Promise<MembershipChange> {
    return writing(this.cache, (touch) => this.knex.transaction(async (trx) => {
      touch('memberships', `${orgId}:${userId}`);
      const owners = await trx('memberships').where({ org_id: orgId, role: 'owner' }).forUpdate().select('user_id');
      const current = await trx('memberships').where({ org_id: orgId, user_id: userId }).forUpdate().first('role');
      const previous = (current?.role as OrgRole | undefined) ?? null;
      if (previous === null) return { previous, lastOwner: false, firstOwner: false };
      check?.(previous);
      if (previous === 'owner' && owners.length <= 1) return { previous, lastOwner: true, firstOwner: false };
      await trx('memberships').where({ org_id: orgId, user_id: userId }).delete();
      return { previous, lastOwner: false, firstOwner: false };
    }));
  }
}
