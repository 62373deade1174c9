import { DomainError } from './errors.js';

/**
 * Fixed-window counters kept in process memory (one daemon; a restart forgets them, which only
 * ever errs towards letting a client in). Old windows are swept so memory stays bounded by the
 * number of active keys.
 */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private lastSweep = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Count one hit against `key` and say whether it is within the limit. */
  hit(key: string): RateDecision {
    const now = this.now();
    this.sweep(now);
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + this.windowMs };
      this.windows.set(key, w);
    }
    w.count++;
    return this.decision(w, now);
  }

  /** The state of `key` without counting. */
  peek(key: string): RateDecision {
    const now = this.now();
    const w = this.windows.get(key);
    if (!w || w.resetAt <= now) return { allowed: true, limit: this.limit, remaining: this.limit, resetSeconds: Math.ceil(this.windowMs / 1000) };
    return this.decision(w, now);
  }

  /**
   * Take back one hit of `key` in its current window: for limits that count attempts before
   * the work (so concurrent attempts cannot all pass one check) and then find an attempt was
   * not a failure after all.
   */
  refund(key: string): void {
    const w = this.windows.get(key);
    if (w && w.count > 0 && w.resetAt > this.now()) w.count--;
  }

  reset(key: string): void {
    this.windows.delete(key);
  }

  private decision(w: { count: number; resetAt: number }, now: number): RateDecision {
    return {
      allowed: w.count <= this.limit,
      limit: this.limit,
      remaining: Math.max(0, this.limit - w.count),
      resetSeconds: Math.max(1, Math.ceil((w.resetAt - now) / 1000)),
    };
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
  }
}

/**
 * Every limit that answers 429, by the name `sentinel_rate_limited_total{limiter}` counts it under:
 * api (per client IP on /api/), login_ip and login_account (logins), auth_failures_ip (refused
 * credentials per IP), totp (2FA code attempts), ingest (an organization's points per second),
 * heartbeat_ping (pings per heartbeat).
 */
export const RATE_LIMITERS = ['api', 'login_ip', 'login_account', 'auth_failures_ip', 'totp', 'ingest', 'heartbeat_ping'] as const;
export type RateLimiterName = (typeof RATE_LIMITERS)[number];

/** `details.rateLimit` of a 429: the RateLimit-* header values and which limit refused. */
export interface RateLimitDetails {
  limit: number;
  remaining: number;
  reset: number;
  limiter: RateLimiterName;
}

/** The 429 for a refused decision: Retry-After and RateLimit-* come from `details`. */
export function rateLimitError(d: RateDecision, message: string, limiter: RateLimiterName): DomainError {
  const rateLimit: RateLimitDetails = { limit: d.limit, remaining: d.remaining, reset: d.resetSeconds, limiter };
  return new DomainError('rate_limited', `${message}; retry in ${d.resetSeconds} s`, { retryAfter: d.resetSeconds, rateLimit });
}
