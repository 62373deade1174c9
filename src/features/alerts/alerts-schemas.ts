import { Type, type Static } from '@sinclair/typebox';
import { NOT_BLANK_PATTERN } from '../../core/validation.js';
import { ALERT_STATES } from './alert-types.js';

const Timestamp = (description: string) => Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description });
const StringMap = Type.Record(Type.String(), Type.String());
const StateSchema = Type.Union(ALERT_STATES.map((s) => Type.Literal(s)));

export const AckSchema = Type.Object(
  {
    by: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], { description: 'The user who acknowledged; null for an API key (the audit log names the key).' }),
    at: Type.String({ format: 'date-time' }),
    comment: Type.String(),
    expires_at: Timestamp('When the acknowledgement stops holding back notifications; null: until the alert resolves.'),
  },
  { description: 'null: not acknowledged (or the acknowledgement ended with its firing episode).' },
);

/** One alert instance of a rule (or of a heartbeat: source heartbeat, rule_id null; a deleted rule's resolved alert awaiting its notification: source rule, rule_id null). */
export const AlertSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  rule_id: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  rule_name: Type.Union([Type.String(), Type.Null()], { description: "The rule's name; for other sources, and a deleted rule's alerts, the alert's alertname." }),
  source: Type.Union([Type.Literal('rule'), Type.Literal('heartbeat'), Type.Literal('instance')]),
  labels: StringMap,
  annotations: StringMap,
  state: StateSchema,
  value: Type.Union([Type.Number(), Type.Null()], { description: 'The last value evaluated.' }),
  since: Type.String({ format: 'date-time', description: 'Since when it is in this state (firing: fired_at; pending: active_at; resolved: resolved_at; otherwise its last change).' }),
  active_at: Timestamp('Since when the condition holds (pending or firing).'),
  fired_at: Timestamp('When the current (or last) firing episode began.'),
  resolved_at: Timestamp('When it last resolved.'),
  silenced: Type.Boolean({ description: 'An active silence or maintenance window matches its labels now: it is not notified.' }),
  ack: Type.Union([AckSchema, Type.Null()]),
});
export type Alert = Static<typeof AlertSchema>;

export const AlertListQuery = Type.Object(
  {
    state: Type.Optional(Type.Union(ALERT_STATES.map((s) => Type.Literal(s)), { description: 'Only alerts in this state; default: every state but ok.' })),
    rule_id: Type.Optional(Type.String({ format: 'uuid', description: "Only this rule's alerts." })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Items per page (default 50, at most 1000).' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'next_cursor of the previous page.' })),
  },
  { additionalProperties: false },
);
export type AlertListInput = Static<typeof AlertListQuery>;

export const AckBody = Type.Object(
  {
    comment: Type.String({ minLength: 1, maxLength: 2000, pattern: NOT_BLANK_PATTERN, description: 'Why, who is on it (stored without surrounding blanks).' }),
    expires_at: Type.Optional(
      Type.Union([Type.String({ format: 'date-time' }), Type.Integer({ minimum: 0, maximum: 253_402_300_799_999 })], {
        description: 'RFC 3339 or Unix epoch milliseconds, in the future: notifications resume after it if the alert still fires. Omit: until it resolves.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type AckInput = Static<typeof AckBody>;
