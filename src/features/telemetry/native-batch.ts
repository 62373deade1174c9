import type { ErrorDetail } from '../../core/errors.js';
import { parseRfc3339 } from '../../core/timestamp.js';
import type { TelemetryBodyT } from './telemetry-schemas.js';
import { LEVELS, type PointIn, type TelemetryBatch } from './telemetry-types.js';

/** `ts` in: RFC 3339 or epoch milliseconds; absent means now. Returns NaN for an unreadable value. */
export function parseTimestamp(ts: string | number | undefined, now: number): number {
  if (ts === undefined) return now;
  if (typeof ts === 'number') return Number.isSafeInteger(ts) ? ts : NaN;
  return parseRfc3339(ts) ?? NaN;
}

/**
 * The native body (already checked against TelemetryBody) as a normalized batch. Items map one
 * to one, so batch.points[i] is body.metrics[i] and error paths can name the item. The body is
 * not changed.
 */
export function nativeBatch(body: TelemetryBodyT, now: number): { batch: TelemetryBatch; errors: ErrorDetail[] } {
  const errors: ErrorDetail[] = [];
  // The error path is built only for an item in error.
  const ts = (value: string | number | undefined, list: string, i: number): number => {
    const ms = parseTimestamp(value, now);
    if (Number.isNaN(ms)) errors.push({ path: `body/${list}/${i}/ts`, message: 'must be an RFC 3339 time or Unix epoch milliseconds' });
    return ms;
  };
  const metrics = body.metrics ?? [];
  const points: TelemetryBatch['points'] = [];
  for (let i = 0; i < metrics.length; i++) {
    const m = metrics[i];
    // An item with epoch milliseconds and labels (what batching clients send) already is its
    // point (the schema allows no other fields): it is taken as it is, not copied. Any other
    // time is parsed, and a point made.
    if (typeof m.ts === 'number' && Number.isSafeInteger(m.ts) && m.labels !== undefined) points.push(m as PointIn);
    else points.push({ name: m.name, labels: m.labels ?? {}, ts: ts(m.ts, 'metrics', i), value: m.value });
  }
  const batch: TelemetryBatch = {
    points,
    logs: (body.logs ?? []).map((l, i) => ({
      ts: ts(l.ts, 'logs', i),
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
    events: (body.events ?? []).map((e, i) => ({ ts: ts(e.ts, 'events', i), type: e.type, title: e.title, text: e.text ?? null, tags: e.tags ?? [] })),
  };
  return { batch, errors };
}
