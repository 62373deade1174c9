import type { Knex } from 'knex';

/**
 * A small read-through cache for the lookups every authenticated request makes (session state,
 * org by slug, membership role, API key by hash). Correctness over hit rate:
 *  - each entry records the generation of every table it was read from; a write to one of those
 *    tables (seen in this process through knex, or from anywhere through the change feed's
 *    NOTIFY at commit) bumps the generation and the entry is dead;
 *  - a value whose load overlapped an invalidation is not stored;
 *  - while the change feed is not listening, nothing is served from the cache.
 */
export interface CacheSignal {
  readonly connected: boolean;
}

interface Entry {
  value: unknown;
  expires: number;
  gens: number[];
}

const WRITE_SQL = /^\s*(?:insert\s+into|update|delete\s+from|truncate(?:\s+table)?)\s+"?([a-z_][a-z0-9_]*)"?/i;
const COMMIT_SQL = /^\s*(commit|rollback|release\s+savepoint)/i;

export class ReadCache {
  private readonly entries = new Map<string, Entry>();
  private readonly generations = new Map<string, number>();
  private epoch = 0;

  constructor(
    private readonly signal: CacheSignal,
    private readonly opts: { ttlMs: number; maxEntries: number } = { ttlMs: 60_000, maxEntries: 50_000 },
  ) {}

  get enabled(): boolean {
    return this.signal.connected;
  }

  async get<T>(tables: readonly string[], key: string, load: () => Promise<T>): Promise<T> {
    if (!this.enabled) return load();
    const id = `${tables.join(',')}|${key}`;
    const now = Date.now();
    const hit = this.entries.get(id);
    if (hit && hit.expires > now && this.current(tables, hit.gens)) return hit.value as T;
    const gens = tables.map((t) => this.gen(t));
    const epoch = this.epoch;
    const value = await load();
    if (this.enabled && epoch === this.epoch && this.current(tables, gens)) {
      if (this.entries.size >= this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
      this.entries.delete(id);
      this.entries.set(id, { value, expires: now + this.opts.ttlMs, gens });
    }
    return value;
  }

  invalidate(table: string): void {
    this.generations.set(table, this.gen(table) + 1);
  }

  clear(): void {
    this.epoch++;
    this.entries.clear();
  }

  /** Invalidate on this process's own writes, before and after each statement and at transaction end. */
  watch(knex: Knex): void {
    const onQuery = (q: { sql?: string }) => {
      const sql = q.sql ?? '';
      const m = WRITE_SQL.exec(sql);
      if (m) this.invalidate(m[1].toLowerCase());
      else if (COMMIT_SQL.test(sql)) this.clear();
    };
    knex.on('query', onQuery);
    knex.on('query-response', (_r: unknown, q: { sql?: string }) => onQuery(q));
    knex.on('query-error', (_e: unknown, q: { sql?: string }) => onQuery(q));
  }

  private gen(table: string): number {
    return this.generations.get(table) ?? 0;
  }

  private current(tables: readonly string[], gens: number[]): boolean {
    return tables.every((t, i) => this.gen(t) === gens[i]);
  }
}

/** What repositories depend on: the cache, or a pass-through where there is none (CLI). */
export interface Cacher {
  get<T>(tables: readonly string[], key: string, load: () => Promise<T>): Promise<T>;
}

export const NO_CACHE: Cacher = { get: (_tables, _key, load) => load() };
