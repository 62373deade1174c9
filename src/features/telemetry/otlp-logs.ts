import { INGEST_LIMITS as L } from './telemetry-limits.js';
import { LEVELS, levelOf, type LogIn } from './telemetry-types.js';
import { anyToText, attributesToObject, idToHex, listAt, nanosToMs, objectAt, put, Rejections, Warnings, stringAt, valueLength, type Obj } from './otlp-values.js';

// The mapping rule itself is documented at the top of otlp-decode.ts.

export const SCOPE_NAME_ATTRIBUTE = 'otel.scope.name';
/** Resource attribute listing the keys of resource attribute values cut to INGEST_LIMITS.attributeValueMax. */
export const TRUNCATED_ATTRIBUTE = 'sentinel.truncated_attributes';

// Spellings loggers commonly put in severityText for the six OpenTelemetry ranges.
const TEXT_LEVELS: Record<string, number> = {
  ...LEVELS,
  warning: LEVELS.warn,
  err: LEVELS.error,
  critical: LEVELS.fatal,
  crit: LEVELS.fatal,
};
const LEVEL_TEXT = /^([a-z]+)([1-4])?$/;

/** The severity number a severityText names ("WARN", "warning", "ERROR3"), or 0. */
export function severityFromText(text: string): number {
  const m = LEVEL_TEXT.exec(text.trim().toLowerCase());
  if (!m || !Object.hasOwn(TEXT_LEVELS, m[1])) return 0;
  // The digit picks within a range only for the spec's own short names (INFO2 … INFO4).
  const step = m[2] && Object.hasOwn(LEVELS, m[1]) ? Number(m[2]) - 1 : m[2] ? -1 : 0;
  return step < 0 ? 0 : TEXT_LEVELS[m[1]] + step;
}

const SEVERITY_NAME = /^SEVERITY_NUMBER_([A-Z]+[1-4]?)$/;

/** severityNumber as sent: an integer 1–24 (or, leniently, the enum's name); 0 for unset or out of range. */
function severityNumberOf(v: unknown): number {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 1 && v <= 24 ? v : 0;
  if (typeof v === 'string') {
    const m = SEVERITY_NAME.exec(v);
    return m ? severityFromText(m[1]) : 0;
  }
  return 0;
}

/** Why an attribute map cannot be stored, or null. `values`: whether over-long values are a problem too. */
function attributesProblem(attrs: Record<string, unknown>, what: string, values = true): string | null {
  const keys = Object.keys(attrs);
  if (keys.length > L.maxAttributes) return `more than ${L.maxAttributes} ${what} attributes`;
  for (const k of keys) {
    if (k === '') return `a ${what} attribute with an empty key`;
    if (k.length > L.attributeKeyMax) return `a ${what} attribute key longer than ${L.attributeKeyMax} characters`;
    if (values && valueLength(attrs[k]) > L.attributeValueMax) return `a ${what} attribute value longer than ${L.attributeValueMax} characters`;
  }
  return null;
}

/** The first `max` characters of `s`, one fewer when the cut would split a surrogate pair. */
function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const end = /[\ud800-\udbff]/.test(s[max - 1]) ? max - 1 : max;
  return s.slice(0, end);
}

/**
 * A resource with every value longer than attributeValueMax cut to that length (a structured value:
 * its compact JSON, cut, as a string) and the cut keys listed in TRUNCATED_ATTRIBUTE, which replaces
 * an attribute sent under that name. A long value such as a Java agent's process.command_line is
 * common, and refusing it would refuse every record of the process. `resource` itself is not changed.
 */
function truncateResource(resource: Record<string, unknown>): { resource: Record<string, unknown>; truncated: string[] } {
  const truncated = Object.keys(resource).filter((k) => valueLength(resource[k]) > L.attributeValueMax);
  if (truncated.length === 0) return { resource, truncated };
  const out = { ...resource };
  for (const k of truncated) {
    const v = resource[k];
    put(out, k, cut(typeof v === 'string' ? v : JSON.stringify(v), L.attributeValueMax));
  }
  put(out, TRUNCATED_ATTRIBUTE, truncated);
  return { resource: out, truncated };
}

const MAX_FIXED64 = 2n ** 64n - 1n;

/** nanosToMs, with values beyond a fixed64 (possible in JSON only) unreadable too: they would be past any date. */
function timeOf(v: unknown): number | null {
  const ms = nanosToMs(v);
  if (ms === null || Number.isNaN(ms)) return ms;
  return (typeof v === 'string' ? BigInt(v) > MAX_FIXED64 : (v as number) > Number(MAX_FIXED64)) ? NaN : ms;
}

export interface LogsDecodeState {
  logs: LogIn[];
  rejections: Rejections;
  warnings: Warnings;
  /** Log records seen so far (the unit of INGEST_LIMITS.maxItems and of rejectedLogRecords). */
  seen: number;
}

function collectRecord(rec: Obj, resource: Record<string, unknown>, where: string, now: number, state: LogsDecodeState): void {
  const reject = (reason: string) => state.rejections.add(reason);
  if (++state.seen > L.maxItems) return reject(`the request holds more than ${L.maxItems} log records`);
  const time = timeOf(rec.timeUnixNano);
  const observed = timeOf(rec.observedTimeUnixNano);
  if (Number.isNaN(time) || Number.isNaN(observed)) return reject('an unreadable timeUnixNano or observedTimeUnixNano');
  const ts = time ?? observed ?? now;

  const givenText = stringAt(rec.severityText);
  // 0: SEVERITY_NUMBER_UNSPECIFIED, kept as such when the text names no level either.
  const severityNumber = severityNumberOf(rec.severityNumber) || severityFromText(givenText);
  // No limit of its own in INGEST_LIMITS; an attribute value's bound is the closest kind of text.
  if (givenText.length > L.attributeValueMax) return reject(`a severityText longer than ${L.attributeValueMax} characters`);

  // proto3 cannot tell an empty eventName from none: both are stored as null.
  if (rec.eventName !== undefined && rec.eventName !== null && typeof rec.eventName !== 'string') return reject('an eventName that is not a string');
  const eventName = stringAt(rec.eventName);
  if (eventName.length > L.attributeValueMax) return reject(`an eventName longer than ${L.attributeValueMax} characters`);

  const body = anyToText(rec.body, `${where}.body`);
  if (body.length > L.logBodyMax) return reject(`a body longer than ${L.logBodyMax} characters`);
  const attributes = attributesToObject(rec.attributes, `${where}.attributes`);
  const problem = attributesProblem(attributes, 'log');
  if (problem) return reject(problem);

  state.logs.push({
    ts,
    severityNumber,
    severityText: givenText || (severityNumber > 0 ? levelOf(severityNumber) : ''),
    body,
    attributes,
    resource,
    traceId: idToHex(rec.traceId, 16),
    spanId: idToHex(rec.spanId, 8),
    observedTs: observed,
    eventName: eventName || null,
  });
}

/** Walks ExportLogsServiceRequest (as a plain object) into `state`. */
export function collectLogs(request: Obj, now: number, state: LogsDecodeState): void {
  listAt(request.resourceLogs, 'resourceLogs').forEach((rlItem, r) => {
    const rl = objectAt(rlItem, `resourceLogs[${r}]`);
    const resourceObj = objectAt(rl.resource, `resourceLogs[${r}].resource`);
    const resourceAttrs = attributesToObject(resourceObj.attributes, `resourceLogs[${r}].resource.attributes`);
    listAt(rl.scopeLogs, `resourceLogs[${r}].scopeLogs`).forEach((slItem, s) => {
      const sWhere = `resourceLogs[${r}].scopeLogs[${s}]`;
      const sl = objectAt(slItem, sWhere);
      const scopeName = stringAt(objectAt(sl.scope, `${sWhere}.scope`).name);
      let withScope = resourceAttrs;
      if (scopeName) {
        withScope = { ...resourceAttrs };
        put(withScope, SCOPE_NAME_ATTRIBUTE, scopeName);
      }
      const records = listAt(sl.logRecords, `${sWhere}.logRecords`);
      // The same resource object is shared by the records of one scope, so it is checked once.
      // Over-long values are cut (below), not refused.
      const problem = attributesProblem(withScope, 'resource', false);
      if (problem) {
        for (let i = 0; i < records.length; i++) {
          if (++state.seen > L.maxItems) state.rejections.add(`the request holds more than ${L.maxItems} log records`);
          else state.rejections.add(problem);
        }
        return;
      }
      const { resource, truncated } = truncateResource(withScope);
      const stored = state.logs.length;
      records.forEach((rec, i) => collectRecord(objectAt(rec, `${sWhere}.logRecords[${i}]`), resource, `${sWhere}.logRecords[${i}]`, now, state));
      if (state.logs.length > stored) {
        for (const k of truncated) {
          state.warnings.add(`resource attribute ${JSON.stringify(k)} truncated to ${L.attributeValueMax} characters (listed in ${TRUNCATED_ATTRIBUTE})`);
        }
      }
    });
  });
}
