import { LRUCache } from 'lru-cache';

/**
 * Where the cache hears about writes it did not make itself: the change feed (PostgreSQL NOTIFY
 * from triggers, so any process's commits), or a stand-in in tests.
 */
export interface ChangeSource {
  /** False while changes may be going unheard: nothing may be served from the cache then. */
  readonly connected: boolean;
  /** A commit changed `table`; null: a change to tables unknown. */
  onChange(fn: (table: string | null) => void): void;
  /** Listening started or stopped; either way, changes may have been missed in between. */
  onStatus(fn: (connected: boolean) => void): void;
}

/** What repositories depend on: the cache, or a pass-through where there is none (CLI). */
export interface Cacher {
  /**
   * `keep`: whether a loaded value may be stored (default: every value). Lookups keyed by what
   * a client sends (an API key's hash) keep only hits, so a flood of made-up keys costs no
   * cache space and evicts nothing.
   */
  get<T>(tables: readonly string[], key: string, load: () => Promise<T>, keep?: (value: T) => boolean): Promise<T>;
  /**
   * Forget what was read from `table` (only what was read under `key`, when given). Call it after
   * the write has ended — committed, rolled back or failed — never before the commit, or a load
   * that starts in between would store the old row: see `writing`.
   */
  invalidate(table: string, key?: string): void;
}

export const NO_CACHE: Cacher = {
  get: (_tables, _key, load) => load(),
  invalidate: () => undefined,
};

export type Touch = (table: string, key?: string) => void;

/**
 * Runs a write (a statement or a whole transaction) and, once it has settled, applies the
 * invalidations it declared with `touch` — before the returned promise resolves, so the caller's
 * next read sees the write. Also when it failed: a failed COMMIT may still have committed.
 * Declare before the statement that writes, so a failure after it still invalidates.
 */
export async function writing<T>(cache: Cacher, write: (touch: Touch) => Promise<T>): Promise<T> {
  const touched: [string, string | undefined][] = [];
  try {
    return await write((table, key) => void touched.push([table, key]));
  } finally {
    for (const [table, key] of touched) cache.invalidate(table, key);
  }
}

export interface ReadCacheOptions {
  /** Entries kept (least recently used go first). */
  max?: number;
  /** Longest an entry is served, as a backstop; invalidation is what keeps entries correct. */
  ttlMs?: number;
  /** Clock for the TTL, in ms (tests). */
  now?: () => number;
}

interface Entry {
  value: unknown;
  /** Generation of each of the entry's tables when its load started. */
  gens: number[];
}

interface Load {
  tables: readonly string[];
  key: string;
  /** Set when an invalidation covering this load arrives while it runs: its value may predate it. */
  stale: boolean;
}

/**
 * A small read-through cache for the lookups every authenticated request makes (session state,
 * org by slug, membership role, API key by hash). Correctness over hit rate:
 *  - repositories invalidate after their own writes (`writing`), so this process reads its writes;
 *  - the change feed invalidates the tables other processes' commits changed, one table at a time
 *    (the NOTIFY names it); a whole-table invalidation bumps that table's generation, which kills
 *    every entry read from it in O(1);
 *  - a load that was running when an invalidation covering it arrived does not store its value,
 *    since it may have read the row before that write committed;
 *  - while the feed is not listening nothing is served or stored, and when it starts or stops
 *    listening everything is dropped: notifications may have been missed.
 */
export class ReadCache implements Cacher {
  private readonly entries: LRUCache<string, Entry>;
  private readonly generations = new Map<string, number>();
  private readonly loads = new Set<Load>();
  /** The table lists entries were read under, by their joined name: a keyed invalidation finds its entries directly. */
  private readonly tableSets = new Map<string, readonly string[]>();

  constructor(
    private readonly source: ChangeSource,
    opts: ReadCacheOptions = {},
  ) {
    const now = opts.now;
    this.entries = new LRUCache<string, Entry>({
      max: opts.max ?? 50_000,
      ttl: opts.ttlMs ?? 60_000,
      // Read the clock on every check: lru-cache's default reuses one reading for a millisecond.
      ttlResolution: 0,
      ...(now ? { perf: { now } } : {}),
    });
    source.onChange((table) => (table === null ? this.clear() : this.invalidate(table)));
    source.onStatus(() => this.clear());
  }

  async get<T>(tables: readonly string[], key: string, load: () => Promise<T>, keep?: (value: T) => boolean): Promise<T> {
    if (!this.source.connected) return load();
    const set = tables.join(',');
    const id = `${set}\u0000${key}`;
    const hit = this.entries.get(id);
    if (hit && tables.every((t, i) => this.gen(t) === hit.gens[i])) return hit.value as T;
    if (!this.tableSets.has(set)) this.tableSets.set(set, tables);
    const gens = tables.map((t) => this.gen(t));
    const running: Load = { tables, key, stale: false };
    this.loads.add(running);
    let value: T;
    try {
      value = await load();
    } finally {
      this.loads.delete(running);
    }
    if (!running.stale && this.source.connected && (keep?.(value) ?? true)) this.entries.set(id, { value, gens });
    return value;
  }

  invalidate(table: string, key?: string): void {
    for (const l of this.loads) if ((key === undefined || l.key === key) && l.tables.includes(table)) l.stale = true;
    if (key === undefined) {
      this.generations.set(table, this.gen(table) + 1);
      return;
    }
    for (const [set, tables] of this.tableSets) if (tables.includes(table)) this.entries.delete(`${set}\u0000${key}`);
  }

  clear(): void {
    for (const l of this.loads) l.stale = true;
    this.entries.clear();
  }

  private gen(table: string): number {
    return this.generations.get(table) ?? 0;
  }
}
