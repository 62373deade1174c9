import { isPrivileged, type Actor } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { DomainError, conflict, notFound } from '../../core/errors.js';
import { decodeCursor, pageLimit, toPage, type Page, type PageRequest } from '../../core/pagination.js';
import { isOrgRole, ORG_ROLES, type OrgRole } from '../../core/roles.js';
import type { PasswordHasher } from './passwords.js';
import type { MembershipRow, UserRow, UsersRepository } from './users-repository.js';

/** What the users feature needs from organizations. */
export interface OrgLookup {
  require(slug: string): Promise<{ id: string; slug: string }>;
}

export interface User {
  id: string;
  email: string;
  name: string | null;
  superadmin: boolean;
  disabled: boolean;
  memberships: { org: string; role: OrgRole }[];
  created_at: string;
  updated_at: string;
}

export interface CreateUserInput {
  email: string;
  password: string;
  name?: string;
  superadmin?: boolean;
  org?: string;
  role?: string;
}

// Deliberately simple: one @, no spaces, a dot in the domain. Real validation is the mail that arrives.
const EMAIL = /^[^\s@]{1,64}@[^\s@]+\.[^\s@]+$/;

function toUser(r: UserRow, memberships: MembershipRow[]): User {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    superadmin: r.superadmin,
    disabled: r.disabled_at !== null,
    memberships: memberships.filter((m) => m.user_id === r.id).map((m) => ({ org: m.org_slug, role: m.role })),
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

function requirePrivileged(actor: Actor): void {
  if (!isPrivileged(actor)) throw new DomainError('forbidden', 'not allowed');
}

function requireRole(role: string): OrgRole {
  if (!isOrgRole(role)) {
    throw new DomainError('validation_failed', `unknown role '${role}': use one of ${ORG_ROLES.join(', ')}`, {
      errors: [{ path: 'role', message: `must be one of ${ORG_ROLES.join(', ')}` }],
    });
  }
  return role;
}

export class UsersService {
  constructor(
    private readonly repo: UsersRepository,
    private readonly orgs: OrgLookup,
    private readonly hasher: PasswordHasher,
    private readonly audit: AuditSink,
  ) {}

  async create(actor: Actor, input: CreateUserInput): Promise<User> {
    requirePrivileged(actor);
    const email = input.email.trim();
    if (!EMAIL.test(email) || email.length > 254) {
      throw new DomainError('validation_failed', `invalid email '${input.email}'`, { errors: [{ path: 'email', message: 'must be an email address' }] });
    }
    if ((input.org === undefined) !== (input.role === undefined)) {
      throw new DomainError('bad_request', '--org and --role go together');
    }
    const role = input.role === undefined ? undefined : requireRole(input.role);
    const org = input.org === undefined ? undefined : await this.orgs.require(input.org);
    if (await this.repo.findByEmail(email)) throw conflict(`user '${email}' already exists`);
    const password_hash = await this.hasher.hash(input.password);
    let row: UserRow;
    try {
      row = await this.repo.insert({ email, name: input.name ?? null, password_hash, superadmin: input.superadmin ?? false });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw conflict(`user '${email}' already exists`);
      throw err;
    }
    await this.audit.record({ actor, action: 'user.create', targetType: 'user', targetId: row.id, details: { email, superadmin: row.superadmin } });
    if (org && role) await this.applyRole(actor, org, row, role);
    return this.present(row);
  }

  async list(actor: Actor, opts: PageRequest & { org?: string } = {}): Promise<Page<User>> {
    requirePrivileged(actor);
    const limit = pageLimit(opts.limit);
    const org = opts.org === undefined ? undefined : await this.orgs.require(opts.org);
    const rows = await this.repo.list(limit + 1, decodeCursor(opts.cursor), org?.id);
    const page = toPage(rows, limit, (r) => r.email);
    const memberships = await this.repo.membershipsOf(page.items.map((r) => r.id));
    return { items: page.items.map((r) => toUser(r, memberships)), next_cursor: page.next_cursor };
  }

  async get(actor: Actor, email: string): Promise<User> {
    requirePrivileged(actor);
    return this.present(await this.require(email));
  }

  /** The signed-in user's own profile. */
  async profile(actor: Actor): Promise<User> {
    if (actor.kind !== 'user') throw new DomainError('unauthenticated', 'a user session is required');
    const row = await this.repo.findById(actor.userId);
    if (!row) throw new DomainError('unauthenticated', 'session is no longer valid');
    return this.present(row);
  }

  async setPassword(actor: Actor, email: string, password: string): Promise<void> {
    requirePrivileged(actor);
    const row = await this.require(email);
    const password_hash = await this.hasher.hash(password);
    await this.repo.update(row.id, { password_hash }, true);
    await this.audit.record({ actor, action: 'user.password_change', targetType: 'user', targetId: row.id });
  }

  async setDisabled(actor: Actor, email: string, disabled: boolean): Promise<User> {
    requirePrivileged(actor);
    const row = await this.require(email);
    await this.repo.update(row.id, { disabled_at: disabled ? new Date() : null }, disabled);
    await this.audit.record({ actor, action: disabled ? 'user.disable' : 'user.enable', targetType: 'user', targetId: row.id });
    return this.present((await this.repo.findByEmail(email))!);
  }

  async grant(actor: Actor, email: string, orgSlug: string, role: string): Promise<User> {
    requirePrivileged(actor);
    const r = requireRole(role);
    const row = await this.require(email);
    const org = await this.orgs.require(orgSlug);
    await this.applyRole(actor, org, row, r);
    return this.present(row);
  }

  private async applyRole(actor: Actor, org: { id: string; slug: string }, user: UserRow, role: OrgRole): Promise<void> {
    const { previous, lastOwner } = await this.repo.setRole(org.id, user.id, role);
    if (lastOwner) throw conflict(`'${user.email}' is the last owner of '${org.slug}'; make someone else owner first`);
    await this.audit.record({ actor, action: 'member.role_change', orgId: org.id, targetType: 'user', targetId: user.id, details: { from: previous, to: role } });
  }

  private async require(email: string): Promise<UserRow> {
    const row = await this.repo.findByEmail(email.trim());
    if (!row) throw notFound(`user '${email}'`);
    return row;
  }

  private async present(row: UserRow): Promise<User> {
    return toUser(row, await this.repo.membershipsOf([row.id]));
  }
}
