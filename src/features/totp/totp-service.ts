import { randomBytes } from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { requireSuperadmin } from '../../core/authorize.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { badRequest, conflict, DomainError } from '../../core/errors.js';
import { rateLimitError, type RateLimiter } from '../../core/rate-limiter.js';
import { sha256, type SecretBox } from '../../core/secrets.js';
import type { TotpRepository, TotpRow } from './totp-repository.js';

export const TOTP_ISSUER = 'Sentinel';
/** RFC 6238 defaults that every authenticator app understands (sha1, 6 digits). */
export const TOTP_PERIOD_SECONDS = 30;
/** Codes from one step before or after the server's are accepted (clock drift, slow typing). */
export const TOTP_WINDOW_STEPS = 1;
/** Code attempts per user (enable, disable, login) per window before 429; a success resets the count. */
export const TOTP_ATTEMPT_LIMIT = 5;
export const TOTP_ATTEMPT_WINDOW_MS = 5 * 60_000;
export const RECOVERY_CODE_COUNT = 10;

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
// 16 base32 characters = 80 bits: hashed with a plain sha256, a leaked table still cannot be
// brute-forced back to usable codes.
const RECOVERY_CODE_CHARS = 16;
const RECOVERY_CODE_RE = new RegExp(`^[${BASE32}]{${RECOVERY_CODE_CHARS}}$`);
const TOTP_CODE_RE = /^\d{6}$/;

/** What setup needs to know about a user (the users feature's repository provides it). */
export interface UserLookup {
  findById(id: string): Promise<{ email: string; disabled_at: Date | null } | undefined>;
}

/**
 * Checks a signed-in user's current password against the per-account failed-login limit (the
 * auth feature's PasswordConfirmation): false when wrong, 429 while the account is limited.
 */
export interface PasswordConfirmer {
  confirm(userId: string, password: string): Promise<boolean>;
}

export interface TotpDeps {
  repo: TotpRepository;
  /** Enabling 2FA asks for the password again. */
  password: PasswordConfirmer;
  box: SecretBox;
  users: UserLookup;
  audit: AuditSink;
  /** Per user, shared by enable, disable and login codes. */
  attempts: RateLimiter;
  clock?: Clock;
}

export interface TotpSetup {
  secret: string;
  otpauth_url: string;
}

export interface TotpStatus {
  enabled: boolean;
  pending: boolean;
  enabled_at: Date | null;
  recovery_codes_remaining: number;
}

function newRecoveryCode(): string {
  // 256 is a multiple of 32, so masking each byte keeps the characters uniform.
  const chars = [...randomBytes(RECOVERY_CODE_CHARS)].map((b) => BASE32[b & 31]).join('');
  return chars.match(/.{4}/g)!.join('-');
}

/** Users type recovery codes in any case, with or without the dashes. */
const normalizeRecoveryCode = (code: string): string => code.toLowerCase().replace(/[\s-]/g, '');

// Bound to the user, so equal codes of two users do not share a hash.
const recoveryHash = (userId: string, normalized: string): string => sha256(`sentinel-recovery:${userId}:${normalized}`);

const invalidCode = (): DomainError => badRequest('invalid code', [{ path: 'body/code', message: 'is not a valid current TOTP code or unused recovery code' }]);

/**
 * TOTP second factor (RFC 6238 through otplib): enrolment, recovery codes and the login check the
 * auth feature calls through its SecondFactor interface.
 */
export class TotpService {
  private readonly clock: Clock;

  constructor(private readonly d: TotpDeps) {
    this.clock = d.clock ?? systemClock;
  }

  async status(actor: Actor): Promise<TotpStatus> {
    const userId = requireUser(actor);
    const row = await this.d.repo.find(userId);
    const enabled = Boolean(row?.enabled_at);
    return {
      enabled,
      pending: Boolean(row && !row.enabled_at),
      enabled_at: row?.enabled_at ?? null,
      recovery_codes_remaining: enabled ? await this.d.repo.remainingRecoveryCodes(userId) : 0,
    };
  }

  /** A new seed for the caller (replacing an unconfirmed one); 2FA stays off until enable. */
  async setup(actor: Actor, meta: RequestMeta): Promise<TotpSetup> {
    const userId = requireUser(actor);
    const user = await this.d.users.findById(userId);
    if (!user || user.disabled_at) throw new DomainError('unauthenticated', 'session is no longer valid');
    const secret = generateSecret();
    if (!(await this.d.repo.savePending(userId, this.d.box.seal(secret)))) {
      throw conflict('two-factor authentication is already enabled; disable it before setting it up again');
    }
    await this.d.audit.record({ actor, action: 'totp.setup', targetType: 'user', targetId: userId, ...meta });
    return { secret, otpauth_url: generateURI({ issuer: TOTP_ISSUER, label: user.email, secret, period: TOTP_PERIOD_SECONDS }) };
  }

  /**
   * Confirm the pending seed with a code from the app; returns the recovery codes (shown once).
   * Needs the current password too: with an access token alone, someone could otherwise set up
   * a seed of their own and turn 2FA on, locking the owner out of their account (as disabling
   * needs a code). A wrong password counts as a failed login of the account.
   */
  async enable(actor: Actor, input: { code: string; password: string }, meta: RequestMeta): Promise<{ recovery_codes: string[] }> {
    const userId = requireUser(actor);
    this.throttle(userId);
    const row = await this.d.repo.find(userId);
    if (!row) throw conflict('no pending two-factor setup; call POST /auth/totp/setup first');
    if (row.enabled_at) throw conflict('two-factor authentication is already enabled');
    if (!(await this.d.password.confirm(userId, input.password))) {
      await this.d.audit.record({ actor, action: 'totp.enable_failed', targetType: 'user', targetId: userId, details: { reason: 'wrong password' }, ...meta });
      // 400 naming the field, as POST /users/me/password answers a wrong current password (the
      // token is fine; a 401 would make clients sign the user out).
      throw badRequest('the password is wrong', [{ path: 'body/password', message: 'is not the current password' }]);
    }
    const step = await this.matchStep(row, input.code.trim());
    if (step === null) throw invalidCode();
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    const hashes = codes.map((c) => recoveryHash(userId, normalizeRecoveryCode(c)));
    if (!(await this.d.repo.enable(userId, step, hashes))) throw conflict('two-factor setup changed meanwhile; start again');
    this.d.attempts.reset(userId);
    await this.d.audit.record({ actor, action: 'totp.enable', targetType: 'user', targetId: userId, ...meta });
    return { recovery_codes: codes };
  }

  /** Turn 2FA off; a current code or a recovery code proves the caller still holds the factor. */
  async disable(actor: Actor, input: { code: string }, meta: RequestMeta): Promise<void> {
    const userId = requireUser(actor);
    this.throttle(userId);
    const row = await this.d.repo.find(userId);
    if (!row?.enabled_at) throw conflict('two-factor authentication is not enabled');
    const how = await this.check(row, input.code);
    if (!how) throw invalidCode();
    await this.d.repo.remove(userId);
    this.d.attempts.reset(userId);
    await this.d.audit.record({ actor, action: 'totp.disable', targetType: 'user', targetId: userId, details: { proof: how }, ...meta });
  }

  /**
   * Operator recovery (`sentinel user reset-2fa`): turn 2FA off for a user who lost both the
   * authenticator and the recovery codes. Superadmins and the CLI only.
   */
  async reset(actor: Actor, userId: string, meta: RequestMeta = {}): Promise<boolean> {
    requireSuperadmin(actor);
    const had = Boolean(await this.d.repo.find(userId));
    await this.d.repo.remove(userId);
    this.d.attempts.reset(userId);
    if (had) await this.d.audit.record({ actor, action: 'totp.reset', targetType: 'user', targetId: userId, ...meta });
    return had;
  }

  // --- SecondFactor (called by the auth feature's login) ---

  async isEnabled(userId: string): Promise<boolean> {
    return Boolean((await this.d.repo.find(userId))?.enabled_at);
  }

  async verifyLogin(userId: string, code: string): Promise<boolean> {
    this.throttle(userId);
    const row = await this.d.repo.find(userId);
    if (!row?.enabled_at) return false;
    const how = await this.check(row, code);
    if (!how) return false;
    this.d.attempts.reset(userId);
    if (how === 'recovery_code') {
      const remaining = await this.d.repo.remainingRecoveryCodes(userId);
      await this.d.audit.record({ actor: { kind: 'anonymous' }, action: 'totp.recovery_code_used', targetType: 'user', targetId: userId, details: { remaining } });
    }
    return true;
  }

  // --- internals ---

  /** Counts an attempt; over the limit → 429 (before any code is looked at). */
  private throttle(userId: string): void {
    const d = this.d.attempts.hit(userId);
    if (!d.allowed) {
      throw rateLimitError(d, 'too many 2FA code attempts', 'totp');
    }
  }

  /** A TOTP code whose step is claimed atomically, or an unused recovery code spent atomically. */
  private async check(row: TotpRow, raw: string): Promise<'totp' | 'recovery_code' | null> {
    const code = raw.trim();
    if (TOTP_CODE_RE.test(code)) {
      const step = await this.matchStep(row, code);
      return step !== null && (await this.d.repo.claimStep(row.user_id, step)) ? 'totp' : null;
    }
    const normalized = normalizeRecoveryCode(code);
    if (!RECOVERY_CODE_RE.test(normalized)) return null;
    return (await this.d.repo.useRecoveryCode(row.user_id, recoveryHash(row.user_id, normalized))) ? 'recovery_code' : null;
  }

  /** The time step the code belongs to, within ±window and after the last accepted step; else null. */
  private async matchStep(row: TotpRow, code: string): Promise<number | null> {
    if (!TOTP_CODE_RE.test(code)) return null;
    const now = Math.floor(this.clock.now().getTime() / 1000);
    const tolerance = TOTP_WINDOW_STEPS * TOTP_PERIOD_SECONDS;
    const maxStep = Math.floor((now + tolerance) / TOTP_PERIOD_SECONDS);
    // otplib throws when afterTimeStep lies beyond the window (a clock set back): nothing can match then.
    if (row.last_step !== null && row.last_step >= maxStep) return null;
    const result = await verify({
      secret: this.d.box.open(row.secret_enc),
      token: code,
      epoch: now,
      period: TOTP_PERIOD_SECONDS,
      epochTolerance: tolerance,
      afterTimeStep: row.last_step ?? undefined,
    });
    // The functional API's result type also covers HOTP, whose results carry no timeStep.
    return result.valid && 'timeStep' in result ? result.timeStep : null;
  }
}

function requireUser(actor: Actor): string {
  if (actor.kind !== 'user') throw new DomainError('forbidden', 'two-factor authentication belongs to a user account; sign in as that user');
  return actor.userId;
}
