import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { SeriesKey, SeriesRepository } from './series-repository.js';

/**
 * Cache entries live this long; a series is looked up again and its last_seen_at refreshed when
 * it comes back. Retention removes series unseen for longer than the org's metrics retention (at
 * least a day), so a cached id always names a series that exists.
 */
const TOUCH_INTERVAL_MS = 3_600_000;
const COUNT_TTL_MS = 60_000;


export interface Resolution {
  /** Series id per input point, or null for a point whose new series was refused. */
  ids: (number | null)[];
  /** Indexes (into the input) of the points refused because their series would pass max_series. */
  refused: number[];
}

/** Canonical form of a label set: keys sorted, so {a,b} and {b,a} are one series. */
export function canonicalLabels(labels: Record<string, string>): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '{}';
  if (keys.length > 1) keys.sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) out += (i ? ',' : '') + JSON.stringify(keys[i]) + ':' + JSON.stringify(labels[keys[i]]);
  return out + '}';
}

/**
 * Series ids for ingest: an in-process LRU in front of the series table, the org's series
 * limit checked before anything new is created, and last_seen_at refreshed at most hourly.
 * New series of one org are created one request at a time (a per-org chain), so concurrent
 * requests cannot together pass the limit; the count is per process (documented).
 */
export class SeriesStore {
  private readonly cache: LRUCache<string, number>;
  private readonly counts = new Map<string, { n: number; at: number }>();
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly repo: SeriesRepository,
    opts: { cacheSize: number },
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new LRUCache({ max: opts.cacheSize, ttl: TOUCH_INTERVAL_MS, updateAgeOnGet: false, perf: { now } });
  }

  async resolve(orgId: string, points: readonly { name: string; labels: Record<string, string> }[], maxSeries: number): Promise<Resolution> {
    const now = this.now();
    const ids: (number | null)[] = new Array<number | null>(points.length).fill(null);
    const missing = new Map<string, number[]>();
    for (let i = 0; i < points.length; i++) {
      const p = points[i];
      const key = `${orgId}\u0000${p.name}\u0000${canonicalLabels(p.labels)}`;
      const hit = this.cache.get(key);
      if (hit !== undefined) {
        ids[i] = hit;
      } else {
        const at = missing.get(key);
        if (at) at.push(i);
        else missing.set(key, [i]);
      }
    }
    const refused: number[] = [];
    if (missing.size > 0) await this.serialized(orgId, () => this.load(orgId, missing, ids, refused, maxSeries, now));
    return { ids, refused };
  }

  private async load(orgId: string, missing: Map<string, number[]>, ids: (number | null)[], refused: number[], maxSeries: number, now: number): Promise<void> {
    const keys = new Map<string, SeriesKey>();
    for (const cacheKey of missing.keys()) {
      const [, name, canon] = cacheKey.split('\u0000');
      const hash = createHash('sha256').update(canon).digest();
      keys.set(`${name}\u0000${hash.toString('hex')}`, { name, canon, hash });
    }
    const assign = (rows: { id: number; name: string; labels_hash: Buffer }[]) => {
      for (const r of rows) {
        const k = keys.get(`${r.name}\u0000${r.labels_hash.toString('hex')}`);
        if (!k) continue;
        const cacheKey = `${orgId}\u0000${k.name}\u0000${k.canon}`;
        this.cache.set(cacheKey, r.id);
        for (const i of missing.get(cacheKey) ?? []) ids[i] = r.id;
        keys.delete(`${r.name}\u0000${r.labels_hash.toString('hex')}`);
      }
    };
    const found = await this.repo.find(orgId, [...keys.values()]);
    await this.repo.touch(orgId, found.map((r) => r.id));
    assign(found);
    if (keys.size === 0) return;

    // Recounted now and then: retention and other processes change the number too.
    const cached = this.counts.get(orgId);
    const count = cached && now - cached.at < COUNT_TTL_MS ? cached.n : await this.repo.count(orgId);
    const room = Math.max(0, maxSeries - count);
    const fresh = [...keys.values()];
    const allowed = fresh.slice(0, room);
    for (const k of fresh.slice(room)) for (const i of missing.get(`${orgId}\u0000${k.name}\u0000${k.canon}`) ?? []) refused.push(i);
    const rows = await this.repo.insertOrGet(orgId, allowed);
    this.counts.set(orgId, { n: count + rows.length, at: cached && now - cached.at < COUNT_TTL_MS ? cached.at : now });
    assign(rows);
    refused.sort((a, b) => a - b);
  }

  /** Runs `fn` after the org's previous series creation has finished. */
  private serialized<T>(orgId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(orgId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.chains.set(orgId, tail);
    void tail.then(() => {
      if (this.chains.get(orgId) === tail) this.chains.delete(orgId);
    });
    return run;
  }
}
