import { Type, type Static } from '@sinclair/typebox';
import { EMAIL_PATTERN, NOT_BLANK_PATTERN } from '../../core/validation.js';
import { PageQuerySchema } from '../../core/pagination.js';

export const CHANNEL_TYPES = ['webhook', 'email', 'slack'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

/** Write-only fields, per type: sealed at rest, never answered (their names are, in secrets_set). */
export const WRITE_ONLY: Record<ChannelType, readonly string[]> = { webhook: ['secret'], email: [], slack: ['webhook_url'] };

const Url = (description: string) => Type.String({ minLength: 1, maxLength: 2048, description });
const Name = Type.String({ minLength: 1, maxLength: 100, pattern: NOT_BLANK_PATTERN, description: 'Unique in the organization; stored without surrounding blanks.' });
const Secret = Type.String({
  minLength: 16,
  maxLength: 256,
  description: 'HMAC-SHA256 key of the X-Sentinel-Signature header (at least 16 characters). Write-only.',
});

/** The config of each type as it is written (create, and PATCH where write-only fields may be omitted). */
export const WebhookConfig = Type.Object({ url: Url('http or https URL the v4 payload is POSTed to.'), secret: Type.Optional(Secret) }, { additionalProperties: false });
export const EmailConfig = Type.Object(
  {
    to: Type.Array(Type.String({ minLength: 3, maxLength: 254, pattern: EMAIL_PATTERN }), { minItems: 1, maxItems: 50, uniqueItems: true, description: 'Recipients.' }),
  },
  { additionalProperties: false },
);
export const SlackConfig = Type.Object({ webhook_url: Url('The incoming-webhook URL (it is the credential: write-only).') }, { additionalProperties: false });
/** PATCH: write-only fields may be omitted (the stored one stays); the webhook secret may be null (removed). */
export const WebhookPatchConfig = Type.Object(
  { url: Url('http or https URL the v4 payload is POSTed to.'), secret: Type.Optional(Type.Union([Secret, Type.Null()])) },
  { additionalProperties: false },
);
export const SlackPatchConfig = Type.Object({ webhook_url: Type.Optional(SlackConfig.properties.webhook_url) }, { additionalProperties: false });

const AnyConfig = Type.Object(
  {},
  {
    additionalProperties: true,
    description: 'webhook: {url, secret?}; email: {to: [address]}; slack: {webhook_url}. Checked against the type (errors name body/config/…).',
  },
);

export const CreateChannelBody = Type.Object(
  {
    name: Name,
    type: Type.Union(CHANNEL_TYPES.map((t) => Type.Literal(t))),
    config: AnyConfig,
  },
  { additionalProperties: false },
);

export const PatchChannelBody = Type.Object(
  {
    name: Type.Optional(Name),
    config: Type.Optional(
      Type.Object({}, { additionalProperties: true, description: "The channel's whole config (its type cannot change); a write-only field left out keeps its stored value." }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

const Timestamp = Type.String({ format: 'date-time' });
const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T, description?: string) =>
  Type.Union([t, Type.Null()], description ? { description } : {});

export const ChannelSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  type: Type.Union(CHANNEL_TYPES.map((t) => Type.Literal(t))),
  config: Type.Object({}, { additionalProperties: true, description: 'The config without its write-only fields.' }),
  secrets_set: Type.Array(Type.String(), { description: 'Names of the write-only fields that are set.' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const ChannelTestSchema = Type.Object({
  ok: Type.Boolean(),
  status_code: Nullable(Type.Integer(), "The receiver's HTTP status; null for email or when no answer came."),
  error: Nullable(Type.String()),
  latency_ms: Type.Integer({ minimum: 0 }),
  notification_id: Type.String({ format: 'uuid' }),
});

export const NOTIFICATION_STATES = ['queued', 'sent', 'retrying', 'failed'] as const;

export const AttemptSchema = Type.Object({
  attempt: Type.Integer({ minimum: 1 }),
  at: Timestamp,
  outcome: Type.Union([Type.Literal('sent'), Type.Literal('retrying'), Type.Literal('failed')]),
  status_code: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  latency_ms: Type.Integer({ minimum: 0 }),
});

export const NotificationSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  channel_id: Type.String({ format: 'uuid' }),
  channel_type: Type.Union(CHANNEL_TYPES.map((t) => Type.Literal(t))),
  rule_id: Nullable(Type.String({ format: 'uuid' })),
  group_key: Type.String(),
  dedup_key: Type.String(),
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved'), Type.Literal('test')]),
  state: Type.Union(NOTIFICATION_STATES.map((s) => Type.Literal(s))),
  attempts: Type.Array(AttemptSchema, { description: 'Every delivery attempt, first first.' }),
  last_error: Nullable(Type.String()),
  created_at: Timestamp,
  sent_at: Nullable(Timestamp),
  resend_of: Nullable(Type.String({ format: 'uuid' }), 'The notification this one re-sends.'),
});

export const NotificationsQuery = Type.Object(
  {
    ...PageQuerySchema.properties,
    state: Type.Optional(Type.Union(NOTIFICATION_STATES.map((s) => Type.Literal(s)))),
    rule_id: Type.Optional(Type.String({ format: 'uuid' })),
    channel_id: Type.Optional(Type.String({ format: 'uuid' })),
  },
  { additionalProperties: false },
);

export type CreateChannelInput = Static<typeof CreateChannelBody>;
export type PatchChannelInput = Static<typeof PatchChannelBody>;
export type Channel = Static<typeof ChannelSchema>;
export type ChannelTestResult = Static<typeof ChannelTestSchema>;
export type Notification = Static<typeof NotificationSchema>;
export type NotificationAttempt = Static<typeof AttemptSchema>;
export type NotificationsQueryInput = Static<typeof NotificationsQuery>;
