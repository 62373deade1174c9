/*
 * Number, time and size formats of the status screen: short enough for an 80-column terminal,
 * stable in width where a figure changes every second.
 */

/** 0.42, 7.3, 128, 1.2k, 3.4M. */
export function formatRate(n: number): string {
  if (!Number.isFinite(n)) return '-';
  const a = Math.abs(n);
  if (a >= 1e6) return `${trim(n / 1e6)}M`;
  if (a >= 1e3) return `${trim(n / 1e3)}k`;
  if (a >= 100) return String(Math.round(n));
  if (a >= 10) return n.toFixed(1).replace(/\.0$/, '');
  if (a === 0) return '0';
  return n.toFixed(2).replace(/0$/, '').replace(/\.0$/, '');
}

const trim = (n: number) => (Math.abs(n) >= 100 ? String(Math.round(n)) : n.toFixed(1).replace(/\.0$/, ''));

/** An integer count with k/M past ten thousand (12345 → 12.3k). */
export function formatCount(n: number): string {
  return Math.abs(n) < 10_000 ? String(n) : formatRate(n);
}

/** Milliseconds: 0.8 ms, 12 ms, 1.4 s; null → "-". */
export function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  if (ms >= 1000) return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1).replace(/\.0$/, '')} ms`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes in binary units: 512 B, 1.5 KiB, 23 MiB. */
export function formatBytes(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes)) return '-';
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v >= 100 ? Math.round(v) : v.toFixed(1).replace(/\.0$/, '')} ${UNITS[u]}`;
}

/** A duration in its two largest units: 45s, 12m 5s, 3h 12m, 4d 2h. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  if (m > 0) return s > 0 ? `${m}m ${s}s` : `${m}m`;
  return `${s}s`;
}

/**
 * "3m 5s ago" for a past instant, "in 3m 5s" for a future one, relative to `now` (ms since the
 * epoch); `short` keeps the largest unit only ("3m ago").
 */
export function formatRelative(iso: string | null, now: number, short = false): string {
  if (iso === null) return '-';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '-';
  const diff = (t - now) / 1000;
  if (Math.abs(diff) < 1) return 'now';
  const d = formatDuration(Math.abs(diff));
  const text = short ? d.split(' ')[0] : d;
  return diff > 0 ? `in ${text}` : `${text} ago`;
}

/** HH:MM:SS of an instant in local time. */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

const BARS = '▁▂▃▄▅▆▇█';

/**
 * The last `width` values as bars scaled to the largest of them; an all-zero series draws the
 * lowest bar so the line stays visible.
 */
export function sparkline(values: readonly number[], width: number): string {
  if (width <= 0) return '';
  const shown = values.slice(-width).map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
  const max = Math.max(0, ...shown);
  return shown.map((v) => (max === 0 ? BARS[0] : BARS[Math.min(BARS.length - 1, Math.round((v / max) * (BARS.length - 1)))])).join('');
}

/**
 * Text from the daemon as it may be printed on a terminal: control characters (C0, DEL, C1: the
 * start of every escape sequence) and bidirectional overrides become a space or nothing, so an
 * alert summary or a job error written by anyone cannot move the cursor, retitle the window or
 * reorder what the operator reads.
 */
export function terminalSafe(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '');
}
