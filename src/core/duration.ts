/** Durations in: `30s`, `5m`, `1h`, `7d`, `250ms`, or plain seconds. Returns milliseconds or null. */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(input: string | number): number | null {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input * 1000 : null;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(input.trim());
  if (!m) return null;
  const n = Number(m[1]);
  return Math.round(n * UNITS[m[2] ?? 's']);
}

/** A duration the config schema has already checked (`30s`, `24h` …), in milliseconds. */
export function configuredMs(input: string): number {
  const ms = parseDuration(input);
  if (ms === null) throw new Error(`not a duration: ${input}`);
  return ms;
}
