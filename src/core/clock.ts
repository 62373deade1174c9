/** Injected wherever "now" matters, so tests can pin time without touching globals. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
