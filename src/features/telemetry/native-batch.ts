import type { ErrorDetail } from '../../core/errors.js';
import { parseRfc3339 } from '../../core/timestamp.js';
import type { TelemetryBodyT } from './telemetry-schemas.js';
import { LEVELS, type TelemetryBatch } from './telemetry-types.js';

/** `ts` in: RFC 3339 or epoch milliseconds; absent means now. Returns NaN for an unreadable value. */
export function parseTimestamp(ts: string | number | undefined, now: number): number {
  if (ts === undefined) return now;
  if (typeof ts === 'number') return Number.isSafeInteger(ts) ? ts : NaN;
  return parseRfc3339(ts) ?? NaN;
}

/**
 * The native body (already checked against TelemetryBody) as a normalized batch. Items map one
 * to one, so batch.points[i] is body.metrics[i] and error paths can name the item.
 */
export function nativeBatch(body: TelemetryBodyT, now: number): { batch: TelemetryBatch; errors: ErrorDetail[] } {
  const errors: ErrorDetail[] = [];
  const ts = (value: string | number | undefined, path: string): number => {
    const ms = parseTimestamp(value, now);
    if (Number.isNaN(ms)) errors.push({ path, message: 'must be an RFC 3339 time or Unix epoch milliseconds' });
    return ms;
  };
  const batch: TelemetryBatch = {
    points: (body.metrics ?? []).map((m, i) => ({ name: m.name, labels: m.labels ?? {}, ts: ts(m.ts, `body/metrics/${i}/ts`), value: m.value })),
    logs: (body.logs ?? []).map((l, i) => ({
      ts: ts(l.ts, `body/logs/${i}/ts`),
      severityNumber: LEVELS[l.level],
      severityText: l.level,
      body: l.message,
      attributes: l.attributes ?? {},
      resource: {},
      traceId: null,
      spanId: null,
      observedTs: null,
      eventName: null,
    })),
    events: (body.events ?? []).map((e, i) => ({ ts: ts(e.ts, `body/events/${i}/ts`), type: e.type, title: e.title, text: e.text ?? null, tags: e.tags ?? [] })),
  };
  return { batch, errors };
}
