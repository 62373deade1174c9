import { randomUUID } from 'node:crypto';
import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { DomainError, conflict } from '../../core/errors.js';
import { randomToken } from '../../core/ids.js';
import { rateLimitError, type RateLimiter } from '../../core/rate-limiter.js';
import { sha256 } from '../../core/secrets.js';
import type { SessionsRepository } from './sessions-repository.js';
import type { AccessTokens } from './tokens.js';
import type { LoginInput, TokenPair } from './auth-schemas.js';

/** What login needs to know about a user (the users feature's repository provides it). */
export interface AuthUser {
  id: string;
  email: string;
  name: string | null;
  password_hash: string | null;
  superadmin: boolean;
  disabled_at: Date | null;
  token_version: number;
}

export interface UserStore {
  findByEmail(email: string): Promise<AuthUser | undefined>;
  findById(id: string): Promise<AuthUser | undefined>;
}

export interface PasswordVerifier {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
}

/** TOTP (the totp feature): whether a user must give a code, and checking one (or a recovery code). */
export interface SecondFactor {
  isEnabled(userId: string): Promise<boolean>;
  verifyLogin(userId: string, code: string): Promise<boolean>;
}

/** API keys (the api-keys feature): the actor a presented key stands for, or null. */
export interface ApiKeyAuthenticator {
  authenticate(secret: string, ip: string | null): Promise<Actor | null>;
}

export type { LoginInput, TokenPair };

export interface AuthDeps {
  users: UserStore;
  sessions: SessionsRepository;
  tokens: AccessTokens;
  passwords: PasswordVerifier;
  audit: AuditSink;
  secondFactor: SecondFactor;
  apiKeys: ApiKeyAuthenticator;
  loginPerIp: RateLimiter;
  failuresPerAccount: RateLimiter;
  refreshTtlMs: number;
}

export const REFRESH_TOKEN_PREFIX = 'sntr_';
export const API_KEY_PREFIX = 'snt_';

const invalidCredentials = () => new DomainError('unauthenticated', 'invalid email or password');

export class AuthService {
  private dummyHash: Promise<string> | null = null;

  constructor(private readonly d: AuthDeps) {}

  async login(input: LoginInput, meta: RequestMeta): Promise<TokenPair> {
    const ipDecision = this.d.loginPerIp.hit(meta.ip ?? 'unknown');
    if (!ipDecision.allowed) throw rateLimitError(ipDecision, 'too many login attempts from this address', 'login_ip');
    const account = input.email.trim().toLowerCase();
    // Only failures count against an account; once they reach the limit, even the right password
    // waits out the window. The attempt is counted here, before bcrypt, and forgiven below when it
    // was not a failure: a count taken after the comparison let any number of concurrent guesses
    // pass the same check.
    const accountDecision = this.d.failuresPerAccount.hit(account);
    if (!accountDecision.allowed) throw rateLimitError(accountDecision, 'too many failed logins for this account', 'login_account');

    const user = await this.d.users.findByEmail(input.email.trim());
    // Unknown emails cost one bcrypt comparison too, so timing does not reveal which emails exist.
    this.dummyHash ??= this.d.passwords.hash('dummy-password-for-timing');
    const hash = user?.password_hash ?? (await this.dummyHash);
    const passwordOk = await this.d.passwords.verify(input.password, hash);
    if (!user || !user.password_hash || !passwordOk || user.disabled_at) {
      await this.fail(account, user?.id ?? null, meta, 'password');
      throw invalidCredentials();
    }
    if (await this.d.secondFactor.isEnabled(user.id)) {
      if (!input.totp_code) {
        // The password was right: asking for the code is no failed login.
        this.d.failuresPerAccount.refund(account);
        throw new DomainError('unauthenticated', 'this account requires a 2FA code (totp_code)', {
          errors: [{ path: 'body/totp_code', message: 'is required' }],
        });
      }
      if (!(await this.d.secondFactor.verifyLogin(user.id, input.totp_code))) {
        await this.fail(account, user.id, meta, 'totp');
        throw new DomainError('unauthenticated', 'invalid 2FA code');
      }
    }
    this.d.failuresPerAccount.reset(account);
    const pair = await this.issue(user, randomUUID(), meta);
    await this.d.audit.record({ actor: { kind: 'user', userId: user.id, superadmin: user.superadmin }, action: 'auth.login', targetType: 'user', targetId: user.id, ...meta });
    return pair;
  }

  async refresh(refreshToken: string, meta: RequestMeta): Promise<TokenPair> {
    const session = refreshToken.startsWith(REFRESH_TOKEN_PREFIX) ? await this.d.sessions.findByRefreshHash(sha256(refreshToken)) : undefined;
    if (!session || session.revoked_at || session.expires_at.getTime() <= Date.now()) {
      throw new DomainError('unauthenticated', 'invalid refresh token');
    }
    // A spent token presented again means it leaked: end every session of that login.
    if (session.rotated_at || !(await this.d.sessions.markRotated(session.id))) {
      await this.d.sessions.revokeFamily(session.family_id);
      await this.d.audit.record({ actor: { kind: 'anonymous' }, action: 'auth.refresh_reuse', targetType: 'user', targetId: session.user_id, details: { family_id: session.family_id }, ...meta });
      throw new DomainError('unauthenticated', 'refresh token already used; the session has been revoked');
    }
    const user = await this.d.users.findById(session.user_id);
    if (!user || user.disabled_at) throw new DomainError('unauthenticated', 'invalid refresh token');
    return this.issue(user, session.family_id, meta);
  }

  async logout(actor: Actor, meta: RequestMeta): Promise<void> {
    if (actor.kind !== 'user' || !actor.sessionId) throw new DomainError('unauthenticated', 'a user session is required');
    const family = await this.d.sessions.familyOf(actor.sessionId);
    if (family) await this.d.sessions.revokeFamily(family);
    await this.d.audit.record({ actor, action: 'auth.logout', targetType: 'user', targetId: actor.userId, ...meta });
  }

  /** The actor behind a bearer token (user access JWT or API key); 401 otherwise. */
  async authenticate(token: string, ip: string | null): Promise<Actor> {
    if (token.startsWith(API_KEY_PREFIX)) {
      const actor = await this.d.apiKeys.authenticate(token, ip);
      if (!actor) throw new DomainError('unauthenticated', 'invalid API key');
      return actor;
    }
    const claims = this.d.tokens.verify(token);
    const state = await this.d.sessions.state(claims.sid);
    if (!state || state.revoked_at || state.disabled_at || state.user_id !== claims.sub || state.token_version !== claims.tv) {
      throw new DomainError('unauthenticated', 'session is no longer valid');
    }
    return { kind: 'user', userId: state.user_id, superadmin: state.superadmin, sessionId: claims.sid };
  }

  /** An access token for scripting (`sentinel token create`): its own session, no refresh token. */
  /** `sentinel token create`: an access token with a session of its own, recorded in the audit log. */
  async scriptToken(actor: Actor, user: AuthUser, ttlSeconds: number): Promise<{ access_token: string; expires_in: number }> {
    if (user.disabled_at) throw conflict(`user '${user.email}' is disabled; enable them first`);
    const session = await this.d.sessions.insert({
      user_id: user.id,
      family_id: randomUUID(),
      refresh_hash: sha256(`unused:${randomToken(32)}`),
      expires_at: new Date(Date.now() + ttlSeconds * 1000),
      ip: null,
      user_agent: 'sentinel token create',
    });
    await this.d.sessions.markRotated(session.id);
    await this.d.audit.record({ actor, action: 'auth.token_create', targetType: 'user', targetId: user.id, details: { ttl_seconds: ttlSeconds } });
    return { access_token: this.d.tokens.sign({ sub: user.id, sid: session.id, tv: user.token_version }, ttlSeconds), expires_in: ttlSeconds };
  }

  private async issue(user: AuthUser, familyId: string, meta: RequestMeta): Promise<TokenPair> {
    const refresh = `${REFRESH_TOKEN_PREFIX}${randomToken(32)}`;
    const session = await this.d.sessions.insert({
      user_id: user.id,
      family_id: familyId,
      refresh_hash: sha256(refresh),
      expires_at: new Date(Date.now() + this.d.refreshTtlMs),
      ip: meta.ip ?? null,
      user_agent: meta.userAgent ?? null,
    });
    return {
      access_token: this.d.tokens.sign({ sub: user.id, sid: session.id, tv: user.token_version }),
      token_type: 'Bearer',
      expires_in: this.d.tokens.expiresIn,
      refresh_token: refresh,
      user: { id: user.id, email: user.email, name: user.name, superadmin: user.superadmin },
    };
  }

  /** The attempt was already counted against the account (login counts before checking). */
  private async fail(account: string, userId: string | null, meta: RequestMeta, factor: 'password' | 'totp'): Promise<void> {
    await this.d.audit.record({
      actor: { kind: 'anonymous' },
      action: 'auth.login_failed',
      targetType: 'user',
      targetId: userId ?? undefined,
      details: { email: account, factor },
      ...meta,
    });
  }
}
