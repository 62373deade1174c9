import { Type, type Static } from '@sinclair/typebox';
import { NOT_BLANK_PATTERN } from '../../core/validation.js';

export const SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
export const HEARTBEAT_STATES = ['new', 'up', 'down'] as const;

/** Period and grace: from 1 s (like rule intervals) up to 31 days. */
export const MIN_DURATION_MS = 1000;
export const MAX_DURATION_MS = 31 * 86_400_000;
export const MAX_LABELS = 32;
export const MAX_CHANNELS = 32;

const DurationIn = (description: string) =>
  Type.Union([Type.Number({ minimum: 1, maximum: MAX_DURATION_MS / 1000 }), Type.String({ pattern: '^\\s*\\d+(?:\\.\\d+)?(?:ms|s|m|h|d)?\\s*$', maxLength: 32 })], {
    description: `${description}: "30s", "5m", "1h", "7d", "250ms" or plain seconds; from 1 s to 31 days.`,
  });

const LabelKey = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' });
const Labels = Type.Record(LabelKey, Type.String({ maxLength: 1024 }), {
  maxProperties: MAX_LABELS,
  additionalProperties: false,
  description: `Added to the alert's labels (at most ${MAX_LABELS}; keys [A-Za-z_][A-Za-z0-9_]*, ≤ 128 characters; values ≤ 1024 characters).`,
});
const Severity = Type.Union(
  SEVERITIES.map((s) => Type.Literal(s)),
  { description: 'The alert severity label; default critical.' },
);
const Channels = Type.Array(Type.String({ format: 'uuid' }), {
  maxItems: MAX_CHANNELS,
  uniqueItems: true,
  description: "Notification channel ids of the organization that get the missed-heartbeat alert.",
});
const Name = Type.String({ minLength: 1, maxLength: 200, pattern: NOT_BLANK_PATTERN, description: 'Unique in the organization; the alert is named after it. Stored without surrounding blanks.' });

export const CreateHeartbeatBody = Type.Object(
  {
    name: Name,
    period: DurationIn('How often the job pings'),
    grace: DurationIn('How late a ping may be before the heartbeat is missed'),
    channels: Type.Optional(Channels),
    labels: Type.Optional(Labels),
    severity: Type.Optional(Severity),
  },
  { additionalProperties: false },
);
export type CreateHeartbeatInput = Static<typeof CreateHeartbeatBody>;

export const UpdateHeartbeatBody = Type.Partial(CreateHeartbeatBody, { additionalProperties: false, minProperties: 1 });
export type UpdateHeartbeatInput = Static<typeof UpdateHeartbeatBody>;

const Timestamp = (description: string) => Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description });

export const HeartbeatSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  period: Type.Number({ description: 'Seconds.' }),
  grace: Type.Number({ description: 'Seconds.' }),
  channels: Type.Array(Type.String({ format: 'uuid' })),
  labels: Type.Record(Type.String(), Type.String()),
  severity: Type.String(),
  token: Type.Optional(Type.String({ description: 'The ping credential (hb_…): anyone holding it can ping; keep it like a password. Only for callers with alert.write (editors, write keys); left out for viewers and read keys.' })),
  ping_url: Type.Optional(
    Type.String({ description: 'POST here to ping (alerts.external_url, else http://<http.host>:<http.port>, + /api/v1/heartbeats/<token>). Only with `token`.' }),
  ),
  state: Type.Union(
    HEARTBEAT_STATES.map((s) => Type.Literal(s)),
    { description: 'new: never pinged; up; down: missed (its alert fires until the next ping).' },
  ),
  last_ping_at: Timestamp('The last ping; null: never.'),
  due_at: Type.String({ format: 'date-time', description: 'Missed if no ping comes by then (last ping, or creation, + period + grace).' }),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});
export type Heartbeat = Static<typeof HeartbeatSchema>;

export const PingParams = Type.Object({ token: Type.String({ minLength: 1, maxLength: 256, description: 'The heartbeat token (hb_…).' }) });

export const PingAnswerSchema = Type.Object({
  ok: Type.Literal(true),
  state: Type.Union(HEARTBEAT_STATES.map((s) => Type.Literal(s))),
});
export type PingAnswer = Static<typeof PingAnswerSchema>;
