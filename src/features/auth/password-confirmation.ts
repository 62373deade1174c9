import { rateLimitError, type RateLimiter } from '../../core/rate-limiter.js';
import type { PasswordVerifier } from './auth-service.js';

/** What re-authentication needs to know about a user (the users feature's repository provides it). */
export interface ConfirmationUserStore {
  findById(id: string): Promise<{ email: string; password_hash: string | null; disabled_at: Date | null } | undefined>;
}

/**
 * "Type your password again" for signed-in users about to do something a stolen access token
 * must not be able to do on its own (turn 2FA on, change the password). It shares the per-account
 * failure limiter with login, so a token thief cannot use these routes as an unthrottled password
 * oracle: every wrong password counts as a failed login, and once the account is over the limit
 * these routes and login both answer 429 until the window ends.
 */
export class PasswordConfirmation {
  constructor(
    private readonly users: ConfirmationUserStore,
    private readonly passwords: PasswordVerifier,
    /** The same instance AuthService counts failed logins in (rate_limits.login_failures_per_account). */
    private readonly failuresPerAccount: RateLimiter,
  ) {}

  /**
   * true when `password` is the user's current password; false when wrong (counted). Throws 429
   * while the account is over its limit, before bcrypt runs, exactly as login does. The attempt is
   * counted before bcrypt and refunded when it was right: counting after the comparison let any
   * number of concurrent guesses pass the same check. A success does not reset the count (unlike
   * login): re-authenticating is no proof that the failures counted so far were the owner's typos
   * rather than someone else's guesses through login.
   */
  async confirm(userId: string, password: string): Promise<boolean> {
    const user = await this.users.findById(userId);
    if (!user || user.disabled_at || !user.password_hash) return false;
    const account = user.email.trim().toLowerCase();
    const decision = this.failuresPerAccount.hit(account);
    if (!decision.allowed) throw rateLimitError(decision, 'too many failed password attempts for this account', 'login_account');
    if (!(await this.passwords.verify(password, user.password_hash))) return false;
    this.failuresPerAccount.refund(account);
    return true;
  }
}
