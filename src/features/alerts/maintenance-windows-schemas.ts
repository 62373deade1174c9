import { Type, type Static } from '@sinclair/typebox';
import { NOT_BLANK_PATTERN } from '../../core/validation.js';
import { MatcherSchema, MatchersSchema } from './matchers.js';

/*
 * Recurring maintenance windows as the API takes and answers them (DESIGN §6 maintenance window).
 * The service checks what the schema cannot (a time zone Intl knows, safe regexes), with paths.
 */

const HHMM = '^(?:[01][0-9]|2[0-3]):[0-5][0-9]$';
const Weekdays = Type.Array(Type.Integer({ minimum: 1, maximum: 7 }), {
  minItems: 1,
  maxItems: 7,
  uniqueItems: true,
  description: 'ISO weekdays the window starts on: 1 = Monday … 7 = Sunday.',
});
const Clock = (description: string) => Type.String({ pattern: HHMM, description: `${description} "HH:MM", 24 h, local time in time_zone.` });
const TimeZone = Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone name (Europe/Berlin, America/New_York, UTC); daylight saving is followed.' });
const Name = Type.String({ minLength: 1, maxLength: 200, pattern: NOT_BLANK_PATTERN, description: 'Unique in the organization; stored without surrounding blanks.' });

export const CreateMaintenanceWindowBody = Type.Object(
  {
    name: Name,
    matchers: MatchersSchema,
    weekdays: Weekdays,
    start: Clock('Opens at.'),
    end: Clock('Closes at; before start: the next day (it spans midnight); equal to start: 24 hours.'),
    time_zone: TimeZone,
  },
  { additionalProperties: false },
);
export type CreateMaintenanceWindowInput = Static<typeof CreateMaintenanceWindowBody>;

export const UpdateMaintenanceWindowBody = Type.Object(
  {
    name: Type.Optional(Name),
    matchers: Type.Optional(MatchersSchema),
    weekdays: Type.Optional(Weekdays),
    start: Type.Optional(Clock('Opens at.')),
    end: Type.Optional(Clock('Closes at.')),
    time_zone: Type.Optional(TimeZone),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateMaintenanceWindowInput = Static<typeof UpdateMaintenanceWindowBody>;

export const MaintenanceWindowSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  matchers: Type.Array(MatcherSchema),
  weekdays: Type.Array(Type.Integer({ minimum: 1, maximum: 7 })),
  start: Type.String(),
  end: Type.String(),
  time_zone: Type.String(),
  active: Type.Boolean({ description: 'Open now: the alerts it matches are not notified.' }),
  created_by: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});
export type MaintenanceWindow = Static<typeof MaintenanceWindowSchema>;
