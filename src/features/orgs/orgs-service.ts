import { isPrivileged, type Actor } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { DomainError, conflict, notFound } from '../../core/errors.js';
import { SLUG_PATTERN, isSlug } from '../../core/ids.js';
import { decodeCursor, pageLimit, toPage, type Page, type PageRequest } from '../../core/pagination.js';
import type { OrgRow, OrgsRepository } from './orgs-repository.js';

export interface Organization {
  id: string;
  slug: string;
  name: string;
  limits: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export const toOrganization = (r: OrgRow): Organization => ({
  id: r.id,
  slug: r.slug,
  name: r.name,
  limits: r.limits,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

function requirePrivileged(actor: Actor): void {
  // Per-org roles arrive with the identity layer; until then only the operator and superadmins act.
  if (!isPrivileged(actor)) throw new DomainError('forbidden', 'not allowed');
}

export class OrgsService {
  constructor(
    private readonly repo: OrgsRepository,
    private readonly audit: AuditSink,
  ) {}

  async create(actor: Actor, input: { slug: string; name?: string }): Promise<Organization> {
    requirePrivileged(actor);
    if (!isSlug(input.slug)) {
      throw new DomainError('validation_failed', `invalid slug '${input.slug}': use lowercase letters, digits and inner hyphens, at most 63 characters`, {
        errors: [{ path: 'slug', message: `must match ${SLUG_PATTERN}` }],
      });
    }
    const name = (input.name ?? input.slug).trim();
    if (!name || name.length > 200) throw new DomainError('validation_failed', 'name must be 1 to 200 characters', { errors: [{ path: 'name', message: 'must be 1 to 200 characters' }] });
    if (await this.repo.findBySlug(input.slug)) throw conflict(`organization '${input.slug}' already exists`);
    let row: OrgRow;
    try {
      row = await this.repo.insert(input.slug, name);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw conflict(`organization '${input.slug}' already exists`);
      throw err;
    }
    await this.audit.record({ actor, action: 'org.create', orgId: row.id, targetType: 'organization', targetId: row.id, details: { slug: row.slug } });
    return toOrganization(row);
  }

  async list(actor: Actor, page: PageRequest = {}): Promise<Page<Organization>> {
    requirePrivileged(actor);
    const limit = pageLimit(page.limit);
    const rows = await this.repo.list(limit + 1, decodeCursor(page.cursor));
    const p = toPage(rows, limit, (r) => r.slug);
    return { items: p.items.map(toOrganization), next_cursor: p.next_cursor };
  }

  async get(actor: Actor, slug: string): Promise<Organization> {
    requirePrivileged(actor);
    return toOrganization(await this.require(slug));
  }

  async delete(actor: Actor, slug: string): Promise<void> {
    requirePrivileged(actor);
    const row = await this.require(slug);
    await this.repo.delete(row.id);
    await this.audit.record({ actor, action: 'org.delete', orgId: row.id, targetType: 'organization', targetId: row.id, details: { slug } });
  }

  /** The org row for a slug; 404 when it does not exist. */
  async require(slug: string): Promise<OrgRow> {
    const row = await this.repo.findBySlug(slug);
    if (!row) throw notFound(`organization '${slug}'`);
    return row;
  }
}
