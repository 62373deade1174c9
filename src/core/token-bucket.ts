/**
 * Per-key token buckets (points per second with a one-second burst), kept in process memory.
 * A request may take more tokens than the bucket holds (a 10,000-item batch against a 1,000/s
 * limit): it is let through when the bucket is full enough for its share of the burst and
 * leaves the bucket in debt, so the sustained rate still holds.
 */
export interface BucketDecision {
  allowed: boolean;
  /** Seconds until the request would be allowed (0 when allowed). */
  retryAfterSeconds: number;
  limit: number;
  remaining: number;
}

interface Bucket {
  rate: number;
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = 0;

  constructor(private readonly now: () => number = Date.now) {}

  take(key: string, rate: number, cost: number): BucketDecision {
    const now = this.now();
    this.sweep(now);
    let b = this.buckets.get(key);
    if (!b || b.rate !== rate) {
      // A changed limit starts a fresh, full bucket at the new rate.
      b = { rate, tokens: rate, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    const need = Math.min(cost, rate);
    if (b.tokens < need) {
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((need - b.tokens) / rate)), limit: rate, remaining: Math.max(0, Math.floor(b.tokens)) };
    }
    b.tokens -= cost;
    return { allowed: true, retryAfterSeconds: 0, limit: rate, remaining: Math.max(0, Math.floor(b.tokens)) };
  }

  /** Buckets that have refilled completely carry no state worth keeping. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * b.rate >= b.rate) this.buckets.delete(k);
  }
}
