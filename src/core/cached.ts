/**
 * One value, loaded at most every `ttlMs`: concurrent callers share the load in progress, and a
 * failed load is not kept (the next call tries again).
 */
export class Cached<T> {
  #entry: { at: number; value: Promise<T> } | null = null;

  constructor(
    private readonly ttlMs: number,
    private readonly load: () => Promise<T>,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    const now = this.now();
    if (this.#entry && now - this.#entry.at < this.ttlMs) return this.#entry.value;
    const value = this.load();
    const entry = { at: now, value };
    this.#entry = entry;
    value.catch(() => {
      if (this.#entry === entry) this.#entry = null;
    });
    return value;
  }
}
