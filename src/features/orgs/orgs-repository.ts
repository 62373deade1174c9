import type { Knex } from 'knex';
import type { OrgRole } from '../../core/roles.js';

export interface OrgRow {
  id: string;
  slug: string;
  name: string;
  limits: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

export class OrgsRepository {
  constructor(private readonly knex: Knex) {}

  async insert(slug: string, name: string): Promise<OrgRow> {
    const [row] = await this.knex<OrgRow>('organizations').insert({ slug, name }).returning('*');
    return row;
  }

  async findBySlug(slug: string): Promise<OrgRow | undefined> {
    return this.knex<OrgRow>('organizations').where({ slug }).first();
  }

  async list(limit: number, afterSlug?: string): Promise<OrgRow[]> {
    const q = this.knex<OrgRow>('organizations').orderBy('slug').limit(limit);
    if (afterSlug !== undefined) q.where('slug', '>', afterSlug);
    return q;
  }

  /** The user's role in the org, or null when not a member. */
  async roleOf(orgId: string, userId: string): Promise<OrgRole | null> {
    const row = await this.knex('memberships').where({ org_id: orgId, user_id: userId }).first('role');
    return (row?.role as OrgRole | undefined) ?? null;
  }

  async delete(id: string): Promise<number> {
    return this.knex('organizations').where({ id }).delete();
  }
}
