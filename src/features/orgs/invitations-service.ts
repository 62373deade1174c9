import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { DomainError, conflict, notFound } from '../../core/errors.js';
import { decodeCursor, pageLimit, toPage, type Page, type PageRequest } from '../../core/pagination.js';
import type { OrgRole } from '../../core/roles.js';
import type { InvitationsRepository } from './invitations-repository.js';
import type { OrgsRepository } from './orgs-repository.js';
import type { WelcomeMail } from './welcome-mail.js';
import type { Invitation, InvitationAccepted, InvitationSent } from './orgs-schemas.js';

export type { Invitation, InvitationAccepted, InvitationSent };

/** How long an invitation can be accepted. */
export const INVITATION_TTL_MS = 7 * 24 * 3_600_000;

/** What the invitee side needs to know about the caller (the users feature's repository provides it). */
export interface InviteeLookup {
  findById(id: string): Promise<{ id: string; email: string; disabled_at: Date | null } | undefined>;
}

/**
 * Invitations (DESIGN §7 "Membership"): an org admin who is not a superadmin never adds a user
 * directly. Whatever the address, the same work runs (one membership lookup in the admin's own
 * org, one upsert, one audit row) and the same answer comes back, so neither the answer nor its
 * timing says whether the address has an account or belongs to another organization; the
 * invitee decides whether to join. Authorization of the inviter is the orgs service's job.
 */
export class InvitationsService {
  private readonly clock: Clock;

  constructor(
    private readonly repo: InvitationsRepository,
    private readonly orgs: OrgsRepository,
    private readonly users: InviteeLookup,
    private readonly audit: AuditSink,
    private readonly welcome: WelcomeMail,
    clock?: Clock,
  ) {
    this.clock = clock ?? systemClock;
  }

  /** Invite `email` into `org` (the caller is already authorized for it, and validated the address with AddMemberBodySchema). */
  async invite(actor: Actor, org: { id: string; slug: string }, email: string, role: OrgRole, meta: RequestMeta = {}): Promise<InvitationSent> {
    const address = email.trim().toLowerCase();
    // Members of the caller's own org are no secret to an admin of it (GET …/members lists them).
    const member = await this.orgs.memberByEmail(org.id, address);
    if (member) throw conflict(`'${member.email}' is already a member of '${org.slug}'; change the role with PATCH …/members/${member.user_id}`);
    const expiresAt = new Date(this.clock.now().getTime() + INVITATION_TTL_MS);
    const row = await this.repo.upsert(org.id, address, role, actor.kind === 'user' ? actor.userId : null, expiresAt);
    await this.audit.record({ actor, action: 'invitation.create', orgId: org.id, targetType: 'invitation', targetId: row.id, details: { email: address, role }, ...meta });
    return { status: 'invited', id: row.id, email: address, role: row.role, expires_at: row.expires_at.toISOString() };
  }

  /** The caller's unexpired invitations, by org slug. */
  async list(actor: Actor, page: PageRequest = {}): Promise<Page<Invitation>> {
    const { email } = await this.invitee(actor);
    const limit = pageLimit(page.limit);
    const rows = await this.repo.pendingFor(email, limit + 1, decodeCursor(page.cursor));
    const p = toPage(rows, limit, (r) => r.org_slug);
    return {
      items: p.items.map((r) => ({ id: r.id, org: { slug: r.org_slug, name: r.org_name }, role: r.role, created_at: r.created_at.toISOString(), expires_at: r.expires_at.toISOString() })),
      next_cursor: p.next_cursor,
    };
  }

  /** Join the org with the invited role. Someone else's invitation, or an expired one, is "not found". */
  async accept(actor: Actor, id: string, meta: RequestMeta = {}): Promise<InvitationAccepted> {
    const user = await this.invitee(actor);
    const done = await this.repo.accept(id, user.email, user.id);
    if (!done) throw notFound('invitation');
    await this.audit.record({
      actor,
      action: 'invitation.accept',
      orgId: done.org_id,
      targetType: 'user',
      targetId: user.id,
      details: { invitation_id: id, email: user.email, role: done.invited_role, ...(done.added ? {} : { already_member_as: done.role }) },
      ...meta,
    });
    if (done.first_owner) await this.welcome.firstOwnerAdded({ id: done.org_id, slug: done.org_slug, name: done.org_name }, user);
    return { org: { slug: done.org_slug, name: done.org_name }, role: done.role };
  }

  async decline(actor: Actor, id: string, meta: RequestMeta = {}): Promise<void> {
    const user = await this.invitee(actor);
    const row = await this.repo.decline(id, user.email);
    if (!row) throw notFound('invitation');
    await this.audit.record({ actor, action: 'invitation.decline', orgId: row.org_id, targetType: 'user', targetId: user.id, details: { invitation_id: id, email: user.email, role: row.role }, ...meta });
  }

  /** Invitations are addressed to a user's email: only a signed-in user has one. */
  private async invitee(actor: Actor): Promise<{ id: string; email: string }> {
    if (actor.kind !== 'user') throw new DomainError('forbidden', 'invitations belong to a user account; sign in as that user');
    const user = await this.users.findById(actor.userId);
    if (!user || user.disabled_at) throw new DomainError('unauthenticated', 'session is no longer valid');
    return { id: user.id, email: user.email.trim().toLowerCase() };
  }
}
