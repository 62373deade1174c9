import { Type, type Static } from '@sinclair/typebox';
import { MatcherSchema, MatchersSchema } from './matchers.js';

/*
 * Silences as the API takes and answers them (DESIGN §6 silence). What the schema cannot say (the
 * times parse, ends_at after starts_at and ahead, the regexes are safe, at least one matcher
 * that does not match an absent label) is checked by the service with the same paths.
 */

export const SILENCE_STATES = ['active', 'pending', 'expired'] as const;

/** Timestamps in: RFC 3339 or Unix epoch milliseconds (a string of digits or a number). */
export const TimeIn = (description: string) =>
  Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Integer({ minimum: 0, maximum: 253_402_300_799_999 })], {
    description: `${description} RFC 3339 or Unix epoch milliseconds.`,
  });

const COMMENT_MAX = 4096;

export const CreateSilenceBody = Type.Object(
  {
    matchers: MatchersSchema,
    starts_at: Type.Optional(TimeIn('When it starts; default now.')),
    ends_at: TimeIn('When it ends: after starts_at, in the future.'),
    comment: Type.String({ maxLength: COMMENT_MAX, description: 'Why (shown with it).' }),
  },
  { additionalProperties: false },
);
export type CreateSilenceInput = Static<typeof CreateSilenceBody>;

export const UpdateSilenceBody = Type.Object(
  {
    matchers: Type.Optional(MatchersSchema),
    starts_at: Type.Optional(TimeIn('When it starts.')),
    ends_at: Type.Optional(TimeIn('When it ends: after starts_at (an expired silence cannot be revived).')),
    comment: Type.Optional(Type.String({ maxLength: COMMENT_MAX })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateSilenceInput = Static<typeof UpdateSilenceBody>;

export const SilenceSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  matchers: Type.Array(MatcherSchema),
  starts_at: Type.String({ format: 'date-time' }),
  ends_at: Type.String({ format: 'date-time' }),
  comment: Type.String(),
  state: Type.Union(
    SILENCE_STATES.map((s) => Type.Literal(s)),
    { description: 'pending: starts later; active: suppresses the notifications of the alerts it matches; expired: ended.' },
  ),
  created_by: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], { description: 'The user who created it; null for an API key or the CLI.' }),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});
export type Silence = Static<typeof SilenceSchema>;

export const SilenceListQuery = Type.Object(
  {
    state: Type.Optional(Type.Union(SILENCE_STATES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Items per page (default 50, at most 1000).' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'next_cursor of the previous page.' })),
  },
  { additionalProperties: false },
);
export type SilenceListInput = Static<typeof SilenceListQuery>;
