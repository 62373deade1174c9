import type { Actor } from '../../core/actor.js';
import { requireSuperadmin, type OrgAccess } from '../../core/authorize.js';
import { decodeCursor, invalidCursor, pageLimit, toPage, type Page, type PageRequest } from '../../core/pagination.js';
import type { AuditRepository, AuditRow } from './audit-repository.js';
import type { AuditLogEntry } from './audit-schemas.js';

export type { AuditLogEntry };

function toEntry(r: AuditRow): AuditLogEntry {
  const colon = r.actor.indexOf(':');
  return {
    id: String(r.id),
    org_id: r.org_id,
    actor: colon < 0 ? { type: r.actor, id: null } : { type: r.actor.slice(0, colon), id: r.actor.slice(colon + 1) },
    action: r.action,
    target: r.target_type === null ? null : { type: r.target_type, id: r.target_id },
    ip: r.ip,
    user_agent: r.user_agent,
    details: r.details,
    created_at: r.created_at.toISOString(),
  };
}

function cursorId(cursor?: string): string | undefined {
  const key = decodeCursor(cursor);
  if (key !== undefined && !/^[1-9][0-9]{0,18}$/.test(key)) {
    throw invalidCursor();
  }
  return key;
}

/** Reading the append-only audit log: per org with `audit.read`, all of it for superadmins. Newest first. */
export class AuditService {
  constructor(
    private readonly repo: AuditRepository,
    private readonly orgs: OrgAccess,
  ) {}

  async listForOrg(actor: Actor, slug: string, page: PageRequest = {}): Promise<Page<AuditLogEntry>> {
    const org = await this.orgs.require(actor, slug, 'audit.read');
    return this.page(org.id, page);
  }

  async listAll(actor: Actor, page: PageRequest = {}): Promise<Page<AuditLogEntry>> {
    requireSuperadmin(actor);
    return this.page(null, page);
  }

  private async page(orgId: string | null, page: PageRequest): Promise<Page<AuditLogEntry>> {
    const limit = pageLimit(page.limit);
    const rows = await this.repo.list(orgId, limit + 1, cursorId(page.cursor));
    const p = toPage(rows, limit, (r) => String(r.id));
    return { items: p.items.map(toEntry), next_cursor: p.next_cursor };
  }
}
