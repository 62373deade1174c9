import { isPrivileged, type Actor, type RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { authorize, requireSuperadmin } from '../../core/authorize.js';
import { DomainError, conflict, notFound } from '../../core/errors.js';
import { decodeCursor, pageLimit, toPage, type Page, type PageRequest } from '../../core/pagination.js';
import { SIGNALS } from '../../core/signals.js';
import { compile, validationError } from '../../core/validation.js';
import type { InvitationsService } from './invitations-service.js';
import type { OrgGuard } from './org-guard.js';
import type { MemberRow, OrgRow, OrgsRepository } from './orgs-repository.js';
import type { WelcomeMail } from './welcome-mail.js';
import {
  AddMemberBodySchema,
  CreateOrgBodySchema,
  UpdateMemberBodySchema,
  UpdateOrgBodySchema,
  type AddMemberInput,
  type CreateOrgInput,
  type InvitationSent,
  type Member,
  type OrgLimits,
  type OrgLimitsPatch,
  type Organization,
  type UpdateOrgInput,
} from './orgs-schemas.js';

export type { AddMemberInput, CreateOrgInput, Member, Organization, UpdateOrgInput };

// The routes' own schemas: the CLI and other callers get the same checks and error paths as HTTP
// (and a body the registry already checked is not checked twice; see core/validation).
const validCreate = compile(CreateOrgBodySchema);
const validUpdate = compile(UpdateOrgBodySchema);
const validAddMember = compile(AddMemberBodySchema);
const validMemberRole = compile(UpdateMemberBodySchema);

/** What the orgs feature needs to know about users (the users feature's repository provides it). */
export interface UserDirectory {
  findById(id: string): Promise<{ id: string; email: string } | undefined>;
  findByEmail(email: string): Promise<{ id: string; email: string } | undefined>;
}

export const toOrganization = (r: OrgRow): Organization => ({
  id: r.id,
  slug: r.slug,
  name: r.name,
  limits: r.limits as OrgLimits,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

const toMember = (r: MemberRow): Member => ({
  user_id: r.user_id,
  email: r.email,
  name: r.name,
  role: r.role,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

/** Apply a patch to stored limits: numbers set, null removes, absent keeps. */
export function mergeLimits(current: OrgLimits, patch: OrgLimitsPatch): OrgLimits {
  const out: Record<string, unknown> = { ...current };
  if (patch.retention_days) {
    const rd: Record<string, number> = { ...(current.retention_days ?? {}) };
    for (const s of SIGNALS) {
      const v = patch.retention_days[s];
      if (v === null) delete rd[s];
      else if (v !== undefined) rd[s] = v;
    }
    if (Object.keys(rd).length) out.retention_days = rd;
    else delete out.retention_days;
  }
  for (const k of ['ingest_points_per_second', 'max_series'] as const) {
    const v = patch[k];
    if (v === null) delete out[k];
    else if (v !== undefined) out[k] = v;
  }
  return out as OrgLimits;
}

/** Superadmins and the CLI add directly; everyone else invites (see addMember). */
export type AddMemberResult = { kind: 'added'; member: Member } | { kind: 'invited'; invitation: InvitationSent };

export class OrgsService {
  constructor(
    private readonly repo: OrgsRepository,
    private readonly audit: AuditSink,
    private readonly guard: OrgGuard,
    private readonly users: UserDirectory,
    private readonly invitations: InvitationsService,
    private readonly welcome: WelcomeMail,
  ) {}

  /**
   * Instance-level: superadmins and the CLI only. The creator does not become a member; an owner
   * is added afterwards (POST …/members, `sentinel user grant`), because a superadmin already has
   * every permission in every org and should not show up as a member of each org they set up.
   */
  async create(actor: Actor, input: CreateOrgInput, meta: RequestMeta = {}): Promise<Organization> {
    requireSuperadmin(actor);
    input = validCreate(input);
    const name = (input.name ?? input.slug).trim();
    const limits = input.limits === undefined ? {} : mergeLimits({}, input.limits);
    if (await this.repo.findBySlug(input.slug)) throw conflict(`organization '${input.slug}' already exists`);
    let row: OrgRow;
    try {
      row = await this.repo.insert(input.slug, name, limits);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw conflict(`organization '${input.slug}' already exists`);
      throw err;
    }
    await this.audit.record({ actor, action: 'org.create', orgId: row.id, targetType: 'organization', targetId: row.id, details: { slug: row.slug, name, limits }, ...meta });
    return toOrganization(row);
  }

  /** Superadmins (and the CLI) see every org, a user the orgs they belong to, an API key its own org. */
  async list(actor: Actor, page: PageRequest = {}): Promise<Page<Organization>> {
    const limit = pageLimit(page.limit);
    const after = decodeCursor(page.cursor);
    let rows: OrgRow[];
    switch (actor.kind) {
      case 'anonymous':
        throw new DomainError('unauthenticated', 'authentication required');
      case 'apikey': {
        const own = await this.repo.findById(actor.orgId);
        if (own) authorize(actor, 'org.read', { id: own.id, role: null });
        rows = own && (after === undefined || own.slug > after) ? [own] : [];
        break;
      }
      case 'user':
        rows = actor.superadmin ? await this.repo.list(limit + 1, after) : await this.repo.listForUser(actor.userId, limit + 1, after);
        break;
      case 'system':
        rows = await this.repo.list(limit + 1, after);
        break;
    }
    const p = toPage(rows, limit, (r) => r.slug);
    return { items: p.items.map(toOrganization), next_cursor: p.next_cursor };
  }

  async get(actor: Actor, slug: string): Promise<Organization> {
    return toOrganization(await this.guard.require(actor, slug, 'org.read'));
  }

  async update(actor: Actor, slug: string, input: UpdateOrgInput, meta: RequestMeta = {}): Promise<Organization> {
    const org = await this.guard.require(actor, slug, 'org.update');
    input = validUpdate(input);
    const name = input.name?.trim();
    const patch = input.limits;
    if (name === undefined && patch === undefined) return toOrganization(org);
    const result = await this.repo.update(org.id, (row) => ({
      ...(name !== undefined ? { name } : {}),
      ...(patch !== undefined ? { limits: mergeLimits(row.limits as OrgLimits, patch) } : {}),
    }));
    if (!result) throw notFound(`organization '${slug}'`);
    const { before, after } = result;
    const changes: Record<string, { from: unknown; to: unknown }> = {};
    if (before.name !== after.name) changes.name = { from: before.name, to: after.name };
    if (JSON.stringify(before.limits) !== JSON.stringify(after.limits)) changes.limits = { from: before.limits, to: after.limits };
    if (Object.keys(changes).length) {
      await this.audit.record({ actor, action: 'org.update', orgId: org.id, targetType: 'organization', targetId: org.id, details: { slug, changes }, ...meta });
    }
    return toOrganization(after);
  }

  async delete(actor: Actor, slug: string, meta: RequestMeta = {}): Promise<void> {
    const org = await this.guard.require(actor, slug, 'org.delete');
    await this.repo.delete(org.id);
    await this.audit.record({ actor, action: 'org.delete', orgId: org.id, targetType: 'organization', targetId: org.id, details: { slug }, ...meta });
  }

  async members(actor: Actor, slug: string, page: PageRequest = {}): Promise<Page<Member>> {
    const org = await this.guard.require(actor, slug, 'member.read');
    const limit = pageLimit(page.limit);
    const rows = await this.repo.members(org.id, limit + 1, decodeCursor(page.cursor));
    const p = toPage(rows, limit, (r) => r.email);
    return { items: p.items.map(toMember), next_cursor: p.next_cursor };
  }

  /**
   * Add someone to an org. Granting `owner` needs an owner (member.manage_owners).
   * Superadmins and the CLI add an existing user directly. Anyone else (org admins, admin-scoped
   * API keys) must not be able to probe for or pull in users of other tenants (DESIGN §7), so:
   * - by email: always an invitation the invitee accepts, whether or not the address has an
   *   account and whatever orgs it belongs to (same work, same answer: no existence oracle);
   * - by user_id: refused (403) before the id is looked at. Ids of users outside the caller's org
   *   are nothing an org admin should know, and an invitation needs an address; inviting by id
   *   would either reveal whether the id exists or have nothing to send.
   */
  async addMember(actor: Actor, slug: string, input: AddMemberInput, meta: RequestMeta = {}): Promise<AddMemberResult> {
    const org = await this.guard.require(actor, slug, 'member.manage');
    input = validAddMember(input);
    const role = input.role;
    // A rule across two fields, which the schema (and so the document) states in words only.
    if ((input.user_id === undefined) === (input.email === undefined)) {
      throw validationError([{ path: input.user_id === undefined ? 'body/user_id' : 'body/email', message: 'give exactly one of user_id and email' }]);
    }
    if (role === 'owner') authorize(actor, 'member.manage_owners', org);
    if (!isPrivileged(actor)) {
      if (input.email === undefined) throw new DomainError('forbidden', 'only superadmins add users by user_id; invite them by email instead (they accept the invitation)');
      return { kind: 'invited', invitation: await this.invitations.invite(actor, org, input.email, role, meta) };
    }
    const user = input.user_id !== undefined ? await this.users.findById(input.user_id) : await this.users.findByEmail(input.email!.trim());
    if (!user) throw notFound(`user '${input.user_id ?? input.email}'`);
    const { added, firstOwner } = await this.repo.addMember(org.id, user.id, role);
    if (!added) throw conflict(`'${user.email}' is already a member of '${slug}'; change the role with PATCH …/members/${user.id}`);
    await this.audit.record({ actor, action: 'member.add', orgId: org.id, targetType: 'user', targetId: user.id, details: { email: user.email, role }, ...meta });
    if (firstOwner) await this.welcome.firstOwnerAdded(org, user);
    return { kind: 'added', member: toMember((await this.repo.member(org.id, user.id))!) };
  }

  /**
   * Change a member's role (`upsert`: add them when they are not a member, as `sentinel user
   * grant` does). Taking the owner role away or giving it needs an owner; the org's last owner
   * cannot be demoted (conflict).
   */
  async setMemberRole(actor: Actor, slug: string, userId: string, roleName: string, meta: RequestMeta = {}, upsert = false): Promise<Member> {
    const org = await this.guard.require(actor, slug, 'member.manage');
    // The PATCH body's schema (its role arrives here as a string; callers include the CLI's `user grant`).
    const { role } = validMemberRole({ role: roleName });
    // Adding through here skips the invitation: only for those who may add directly (see addMember).
    if (upsert && !isPrivileged(actor)) throw new DomainError('forbidden', 'only superadmins and the CLI add users directly; invite them by email instead');
    const user = await this.users.findById(userId);
    if (!user) throw notFound(upsert ? `user '${userId}'` : 'member');
    const { previous, lastOwner, firstOwner } = await this.repo.setRole(org.id, user.id, role, {
      upsert,
      check: (prev) => {
        if (prev === 'owner' || role === 'owner') authorize(actor, 'member.manage_owners', org);
      },
    });
    if (previous === null && !upsert) throw notFound('member');
    if (lastOwner) throw conflict(`'${user.email}' is the last owner of '${slug}'; make someone else owner first`);
    if (previous !== role) {
      await this.audit.record({
        actor,
        action: previous === null ? 'member.add' : 'member.role_change',
        orgId: org.id,
        targetType: 'user',
        targetId: user.id,
        details: previous === null ? { email: user.email, role } : { email: user.email, from: previous, to: role },
        ...meta,
      });
    }
    if (firstOwner) await this.welcome.firstOwnerAdded(org, user);
    return toMember((await this.repo.member(org.id, user.id))!);
  }

  /** Remove a member (effective on their next request: every request reads memberships afresh). */
  async removeMember(actor: Actor, slug: string, userId: string, meta: RequestMeta = {}): Promise<void> {
    const org = await this.guard.require(actor, slug, 'member.manage');
    const { previous, lastOwner } = await this.repo.removeMember(org.id, userId, (prev) => {
      if (prev === 'owner') authorize(actor, 'member.manage_owners', org);
    });
    if (previous === null) throw notFound('member');
    if (lastOwner) throw conflict(`the last owner of '${slug}' cannot be removed; make someone else owner first`);
    await this.audit.record({ actor, action: 'member.remove', orgId: org.id, targetType: 'user', targetId: userId, details: { role: previous }, ...meta });
  }

  /** The org row for a slug, without authorization (for other services' own lookups); 404 when missing. */
  async require(slug: string): Promise<OrgRow> {
    const row = await this.repo.findBySlug(slug);
    if (!row) throw notFound(`organization '${slug}'`);
    return row;
  }
}
