/*
 * When a recurring maintenance window is open. Times are wall-clock times in the window's IANA
 * time zone, read through Intl (the ICU data Node ships), so daylight saving needs no table of
 * ours: a window from 02:00 to 03:00 is open for two hours on the night the clocks go back, and
 * not at all on the night they skip that hour; 09:00–17:00 stays 09:00–17:00 local all year.
 *
 * `weekdays` are ISO (1 = Monday … 7 = Sunday) and name the day a window STARTS on: with an end
 * before its start (22:00–06:00) it runs past midnight into the next day; an end equal to its
 * start means 24 hours.
 */

export interface WindowSchedule {
  weekdays: readonly number[];
  /** "HH:MM", 24 h. */
  start: string;
  end: string;
  time_zone: string;
}

const WEEKDAYS: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };
const DAY_MS = 86_400_000;

const FORMAT_OPTIONS: Intl.DateTimeFormatOptions = {
  hourCycle: 'h23',
  weekday: 'short',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
};

/** Zones kept at most: far above the zones in use; a flood of spellings cannot grow it further. */
export const MAX_CACHED_ZONES = 64;

// Building a DateTimeFormat costs far more than using one: one per zone, kept. Keyed by the
// canonical name Intl resolves (it accepts any letter case: europe/berlin and EUROPE/BERLIN are
// one entry), bounded (the oldest entry goes first).
const formats = new Map<string, Intl.DateTimeFormat>();
/** Spelling as stored → canonical name, bounded like `formats`. */
const canonical = new Map<string, string>();

function remember<V>(m: Map<string, V>, key: string, value: V): void {
  if (m.size >= MAX_CACHED_ZONES) m.delete(m.keys().next().value as string);
  m.set(key, value);
}

function formatFor(timeZone: string): Intl.DateTimeFormat {
  const name = canonical.get(timeZone);
  const cached = name === undefined ? undefined : formats.get(name);
  if (cached) return cached;
  const f = new Intl.DateTimeFormat('en-US', { ...FORMAT_OPTIONS, timeZone });
  const resolved = f.resolvedOptions().timeZone;
  remember(canonical, timeZone, resolved);
  const kept = formats.get(resolved);
  if (kept) return kept;
  remember(formats, resolved, f);
  return f;
}

/** How many formatters are cached (tests: the cache stays bounded). */
export function cachedZoneCount(): number {
  return formats.size;
}

/** Whether `tz` is a time zone name Intl knows (an IANA name such as Europe/Berlin, or UTC). Caches nothing: input may be anything. */
export function isValidTimeZone(tz: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

interface LocalTime {
  /** The local date as a UTC midnight (for day arithmetic). */
  dayMs: number;
  /** ISO weekday of that date. */
  weekday: number;
  /** Minutes since local midnight. */
  minute: number;
  /** The local wall-clock time as if it were UTC, with seconds. */
  wallMs: number;
}

function localTime(at: Date, timeZone: string): LocalTime {
  const p: Record<string, string> = {};
  for (const part of formatFor(timeZone).formatToParts(at)) p[part.type] = part.value;
  const dayMs = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day));
  const minute = Number(p.hour) * 60 + Number(p.minute);
  return { dayMs, weekday: WEEKDAYS[p.weekday], minute, wallMs: dayMs + minute * 60_000 + Number(p.second) * 1000 };
}

const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

const wallAt = (t: number, timeZone: string): number => localTime(new Date(t), timeZone).wallMs;

/**
 * The first instant at which the wall clock of `timeZone` shows `wallMs` (read as UTC fields) or
 * later: the time itself, or the change of clocks when they skip it.
 */
function zonedInstant(wallMs: number, timeZone: string): number {
  // The zone's offset at a guess, twice: the second pass settles a guess that fell across a change.
  let t = wallMs;
  for (let i = 0; i < 2; i++) t = wallMs - (wallAt(t, timeZone) - t);
  if (wallAt(t, timeZone) === wallMs) return t;
  // Skipped (spring forward): search the minute the clocks jump past it, within the hours around.
  let lo = t - 3 * 3_600_000;
  let hi = t + 3 * 3_600_000;
  while (hi - lo > 60_000) {
    const mid = Math.floor((lo + hi) / 120_000) * 60_000;
    if (wallAt(mid, timeZone) >= wallMs) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * The local day (UTC-midnight ms) on which the window that is open at `at` started, or null when
 * it is closed.
 */
function openSince(w: WindowSchedule, at: Date): { startDayMs: number } | null {
  const local = localTime(at, w.time_zone);
  const start = minutesOf(w.start);
  const end = minutesOf(w.end);
  const days = new Set(w.weekdays);
  const previous = (local.weekday + 5) % 7 + 1;
  if (start < end) return days.has(local.weekday) && local.minute >= start && local.minute < end ? { startDayMs: local.dayMs } : null;
  // Past midnight (end < start) or 24 hours (end = start): open since today's start, or still
  // open from yesterday's.
  if (days.has(local.weekday) && local.minute >= start) return { startDayMs: local.dayMs };
  if (days.has(previous) && local.minute < end) return { startDayMs: local.dayMs - DAY_MS };
  return null;
}

export function isActive(w: WindowSchedule, now: Date): boolean {
  return openSince(w, now) !== null;
}

/**
 * When the window that is open at `now` closes (this occurrence; the next day's may follow at
 * once), or null when it is closed. A close time the clocks skip resolves near the skipped hour.
 */
export function activeUntil(w: WindowSchedule, now: Date): Date | null {
  const open = openSince(w, now);
  if (!open) return null;
  const start = minutesOf(w.start);
  const end = minutesOf(w.end);
  const endDayMs = end > start ? open.startDayMs : open.startDayMs + DAY_MS;
  return new Date(zonedInstant(endDayMs + end * 60_000, w.time_zone));
}
