/** Timestamps in (DESIGN §6): RFC 3339 with any offset; fractions beyond milliseconds are dropped. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Epoch milliseconds of an RFC 3339 time, or null — also for impossible dates (Feb 30), which Date.parse would roll over. */
export function parseRfc3339(s: string): number | null {
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [, y, mo, d, h, mi, sec] = m.map(Number);
  const ms = Date.parse(s.toUpperCase().replace(' ', 'T'));
  const day = new Date(Date.UTC(y, mo - 1, d));
  return !Number.isNaN(ms) && day.getUTCMonth() === mo - 1 && day.getUTCDate() === d && h < 24 && mi < 60 && sec < 60 ? ms : null;
}

/** RFC 3339 out, or null for a time not set. */
export const isoOrNull = (d: Date | null): string | null => (d ? d.toISOString() : null);
