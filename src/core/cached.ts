/**
 * One value, loaded at most every `ttlMs`: concurrent callers share the load in progress (however
 * long it takes: loads never overlap), the ttl counts from when a load settled, and a failed load
 * is not kept (the next call tries again).
 */
export class Cached<T> {
  /** `at` is null while the load runs. */
  #entry: { at: number | null; value: Promise<T> } | null = null;

  constructor(
    private readonly ttlMs: number,
    private readonly load: () => Promise<T>,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    const e = this.#entry;
    if (e && (e.at === null || this.now() - e.at < this.ttlMs)) return e.value;
    const value = this.load();
    const entry: { at: number | null; value: Promise<T> } = { at: null, value };
    this.#entry = entry;
    value.then(
      () => {
        entry.at = this.now();
      },
      () => {
        if (this.#entry === entry) this.#entry = null;
      },
    );
    return value;
  }
}
