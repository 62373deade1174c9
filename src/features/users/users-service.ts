import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { requireSuperadmin } from '../../core/authorize.js';
import { DomainError, conflict, notFound } from '../../core/errors.js';
import { decodeCursor, pageLimit, toPage, type Page, type PageRequest } from '../../core/pagination.js';
import { compile, validationError } from '../../core/validation.js';
import type { PasswordHasher } from './passwords.js';
import type { MembershipRow, UserRow, UsersRepository } from './users-repository.js';
import {
  ChangePasswordBodySchema,
  CreateUserBodySchema,
  CreateUserInputSchema,
  UpdateUserBodySchema,
  type ChangePasswordInput,
  type CreateUserInput,
  type UpdateUserInput,
  type User,
} from './users-schemas.js';

export type { ChangePasswordInput, CreateUserInput, UpdateUserInput, User };

// The routes' schemas: the CLI gets the same checks and error paths (core/validation). The
// create body is a part of the create input, so a body the registry checked is not checked again.
const validCreate = compile(CreateUserInputSchema, { trusts: [CreateUserBodySchema] });
const validUpdate = compile(UpdateUserBodySchema);
const validChangePassword = compile(ChangePasswordBodySchema);

/** What the users feature needs from organizations (the orgs feature's service provides it). */
export interface OrgMembership {
  /** Existence only, no authorization. */
  require(slug: string): Promise<{ id: string; slug: string }>;
  /** Give a user a role in an org (adding them when `upsert`), with the orgs feature's checks. */
  setMemberRole(actor: Actor, slug: string, userId: string, role: string, meta?: RequestMeta, upsert?: boolean): Promise<unknown>;
}

/** Ends every session of a user (the auth feature's sessions repository). */
export interface SessionRevoker {
  revokeAllOfUser(userId: string): Promise<void>;
}

/**
 * Checks a signed-in user's current password against the per-account failed-login limit (the
 * auth feature's PasswordConfirmation): false when wrong, 429 while the account is limited.
 */
export interface PasswordConfirmer {
  confirm(userId: string, password: string): Promise<boolean>;
}

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

/** Names are stored trimmed; blank clears. */
const cleanName = (name: string | null | undefined): string | null => name?.trim() || null;

export class UsersService {
  constructor(
    private readonly repo: UsersRepository,
    private readonly orgs: OrgMembership,
    private readonly hasher: PasswordHasher,
    private readonly audit: AuditSink,
    private readonly sessions: SessionRevoker,
    private readonly confirmation: PasswordConfirmer,
  ) {}

  async create(actor: Actor, input: CreateUserInput, meta: RequestMeta = {}): Promise<User> {
    requireSuperadmin(actor);
    input = validCreate(input);
    const email = input.email.trim();
    const name = cleanName(input.name);
    if ((input.org === undefined) !== (input.role === undefined)) {
      throw new DomainError('bad_request', '--org and --role go together');
    }
    const role = input.role;
    const org = input.org === undefined ? undefined : await this.orgs.require(input.org);
    if (await this.repo.findByEmail(email)) throw conflict(`user '${email}' already exists`);
    const password_hash = await this.hasher.hash(input.password);
    let row: UserRow;
    try {
      row = await this.repo.insert({ email, name, password_hash, superadmin: input.superadmin ?? false });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw conflict(`user '${email}' already exists`);
      throw err;
    }
    await this.audit.record({ actor, action: 'user.create', targetType: 'user', targetId: row.id, details: { email, superadmin: row.superadmin }, ...meta });
    if (org && role) await this.orgs.setMemberRole(actor, org.slug, row.id, role, meta, true);
    return this.present(row);
  }

  async list(actor: Actor, opts: PageRequest & { org?: string } = {}): Promise<Page<User>> {
    requireSuperadmin(actor);
    const limit = pageLimit(opts.limit);
    const org = opts.org === undefined ? undefined : await this.orgs.require(opts.org);
    const rows = await this.repo.list(limit + 1, decodeCursor(opts.cursor), org?.id);
    const page = toPage(rows, limit, (r) => r.email);
    const memberships = await this.repo.membershipsOf(page.items.map((r) => r.id));
    return { items: page.items.map((r) => toUser(r, memberships)), next_cursor: page.next_cursor };
  }

  /** By email (the CLI). */
  async get(actor: Actor, email: string): Promise<User> {
    requireSuperadmin(actor);
    return this.present(await this.require(email));
  }

  /** By id: superadmins see anyone; a user sees only themself (anyone else is "not found"). */
  async getById(actor: Actor, id: string): Promise<User> {
    return this.present(await this.visible(actor, id));
  }

  /** The signed-in user's own profile. */
  async profile(actor: Actor): Promise<User> {
    if (actor.kind !== 'user') throw new DomainError('unauthenticated', 'a user session is required');
    const row = await this.repo.findById(actor.userId);
    if (!row) throw new DomainError('unauthenticated', 'session is no longer valid');
    return this.present(row);
  }

  /**
   * Superadmins may change name, superadmin and disabled; users only their own name. Nobody
   * disables or demotes themself here (that could lock the last administrator out; the CLI can).
   */
  async update(actor: Actor, id: string, input: UpdateUserInput, meta: RequestMeta = {}): Promise<User> {
    const row = await this.visible(actor, id);
    input = validUpdate(input);
    const privileged = actor.kind === 'system' || (actor.kind === 'user' && actor.superadmin);
    if (!privileged && (input.disabled !== undefined || input.superadmin !== undefined)) {
      throw new DomainError('forbidden', 'only a superadmin may change disabled or superadmin');
    }
    const self = actor.kind === 'user' && actor.userId === row.id;
    if (self && (input.disabled === true || input.superadmin === false)) {
      throw conflict('you cannot disable yourself or drop your own superadmin role; ask another superadmin or use the CLI');
    }
    const patch: { name?: string | null; superadmin?: boolean; disabled_at?: Date | null } = {};
    const changes: Record<string, { from: unknown; to: unknown }> = {};
    if (input.name !== undefined) {
      const name = cleanName(input.name);
      if (name !== row.name) {
        patch.name = name;
        changes.name = { from: row.name, to: name };
      }
    }
    if (input.superadmin !== undefined && input.superadmin !== row.superadmin) {
      patch.superadmin = input.superadmin;
      changes.superadmin = { from: row.superadmin, to: input.superadmin };
    }
    const disabling = input.disabled === true && row.disabled_at === null;
    const enabling = input.disabled === false && row.disabled_at !== null;
    if (disabling || enabling) patch.disabled_at = disabling ? new Date() : null;
    if (Object.keys(patch).length === 0) return this.present(row);

    await this.repo.update(row.id, patch, disabling);
    if (disabling) await this.sessions.revokeAllOfUser(row.id);
    if (Object.keys(changes).length) {
      await this.audit.record({ actor, action: 'user.update', targetType: 'user', targetId: row.id, details: { email: row.email, changes }, ...meta });
    }
    if (disabling || enabling) {
      await this.audit.record({ actor, action: disabling ? 'user.disable' : 'user.enable', targetType: 'user', targetId: row.id, details: { email: row.email }, ...meta });
    }
    return this.present((await this.repo.findById(row.id))!);
  }

  /**
   * Superadmins only, never oneself; refused while the user is the last owner of an org. As with
   * GET and PATCH, anyone else's id is "not found" to a non-superadmin (never forbidden: another
   * tenant's user is 404); their own id is forbidden.
   */
  async delete(actor: Actor, id: string, meta: RequestMeta = {}): Promise<void> {
    const row = await this.visible(actor, id);
    requireSuperadmin(actor);
    if (actor.kind === 'user' && actor.userId === id) throw conflict('you cannot delete yourself; ask another superadmin or use the CLI');
    const { deleted, lastOwnerOf } = await this.repo.deleteUnlessLastOwner(row.id);
    if (lastOwnerOf.length) throw conflict(`'${row.email}' is the last owner of ${lastOwnerOf.map((s) => `'${s}'`).join(', ')}; make someone else owner first`);
    if (!deleted) throw notFound('user');
    await this.audit.record({ actor, action: 'user.delete', targetType: 'user', targetId: row.id, details: { email: row.email }, ...meta });
  }

  /** An administrator sets someone's password (the CLI's `user passwd`): every session of theirs ends. */
  async setPassword(actor: Actor, email: string, password: string, meta: RequestMeta = {}): Promise<void> {
    requireSuperadmin(actor);
    const row = await this.require(email);
    const password_hash = await this.hasher.hash(password);
    await this.repo.update(row.id, { password_hash }, true);
    await this.sessions.revokeAllOfUser(row.id);
    await this.audit.record({ actor, action: 'user.password_change', targetType: 'user', targetId: row.id, details: { email: row.email, by: 'admin' }, ...meta });
  }

  /**
   * The signed-in user changes their own password. A wrong current password is a 400 naming
   * `body/current_password` (not 401: the caller's token is fine, and clients treat 401 as "sign
   * in again"). A wrong current password counts as a failed login of the account (a stolen access
   * token must not be a way to guess the password without the login limit), and while the account
   * is over that limit the answer is 429, even for the right password.
   * Afterwards every session ends, this one included: sign in with the new password.
   */
  async changeOwnPassword(actor: Actor, input: ChangePasswordInput, meta: RequestMeta = {}): Promise<void> {
    if (actor.kind !== 'user') throw new DomainError('unauthenticated', 'a user session is required');
    input = validChangePassword(input);
    const row = await this.repo.findById(actor.userId);
    if (!row || row.disabled_at) throw new DomainError('unauthenticated', 'session is no longer valid');
    if (!(await this.confirmation.confirm(row.id, input.current_password))) {
      await this.audit.record({ actor, action: 'user.password_change_failed', targetType: 'user', targetId: row.id, details: { email: row.email, reason: 'wrong current password' }, ...meta });
      throw validationError([{ path: 'body/current_password', message: 'is not the current password' }], 'the current password is wrong');
    }
    const password_hash = await this.hasher.hash(input.new_password, 'new_password');
    await this.repo.update(row.id, { password_hash }, true);
    await this.sessions.revokeAllOfUser(row.id);
    await this.audit.record({ actor, action: 'user.password_change', targetType: 'user', targetId: row.id, details: { email: row.email, by: 'self' }, ...meta });
  }

  /** The CLI's `user disable|enable`: disabling ends every session at once. */
  async setDisabled(actor: Actor, email: string, disabled: boolean, meta: RequestMeta = {}): Promise<User> {
    requireSuperadmin(actor);
    const row = await this.require(email);
    await this.repo.update(row.id, { disabled_at: disabled ? new Date() : null }, disabled);
    if (disabled) await this.sessions.revokeAllOfUser(row.id);
    await this.audit.record({ actor, action: disabled ? 'user.disable' : 'user.enable', targetType: 'user', targetId: row.id, details: { email: row.email }, ...meta });
    return this.present((await this.repo.findById(row.id))!);
  }

  /** The CLI's `user grant`: set (or add) a membership through the orgs feature's checks. */
  async grant(actor: Actor, email: string, orgSlug: string, role: string, meta: RequestMeta = {}): Promise<User> {
    const row = await this.require(email);
    // The orgs feature validates the role (body/role, as PATCH …/members says).
    await this.orgs.setMemberRole(actor, orgSlug, row.id, role, meta, true);
    return this.present(row);
  }

  /** The user behind `sentinel token create` (the auth feature signs for it): CLI and superadmins only. */
  async authUserByEmail(actor: Actor, email: string): Promise<UserRow> {
    requireSuperadmin(actor);
    return this.require(email);
  }

  /** The user row `actor` may see: anyone for superadmins, only themself otherwise (else 404). */
  private async visible(actor: Actor, id: string): Promise<UserRow> {
    if (actor.kind === 'anonymous') throw new DomainError('unauthenticated', 'authentication required');
    const privileged = actor.kind === 'system' || (actor.kind === 'user' && actor.superadmin);
    const self = actor.kind === 'user' && actor.userId === id;
    const row = privileged || self ? await this.repo.findById(id) : undefined;
    if (!row) throw notFound('user');
    return row;
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
