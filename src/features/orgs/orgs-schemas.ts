import { Type, type Static } from '@sinclair/typebox';
import { SLUG_PATTERN } from '../../core/ids.js';
import { OrgRoleSchema as RoleSchema } from '../../core/roles.js';
import { EMAIL_PATTERN, NOT_BLANK_PATTERN } from '../../core/validation.js';

/** Bounds of the per-org limits. */
export const LIMIT_BOUNDS = {
  retention_days: { minimum: 1, maximum: 3650 },
  ingest_points_per_second: { minimum: 1, maximum: 10_000_000 },
  max_series: { minimum: 1, maximum: 100_000_000 },
} as const;

export const NAME_MAX = 200;

const Name = Type.String({ minLength: 1, maxLength: NAME_MAX, pattern: NOT_BLANK_PATTERN, description: 'Stored without surrounding blanks.' });

const days = (signal: string) => Type.Integer({ ...LIMIT_BOUNDS.retention_days, description: `Days ${signal} are kept.` });
const nullable = <T extends ReturnType<typeof Type.Integer>>(s: T) => Type.Union([s, Type.Null()]);

/** Limits as stored and shown: only the overrides that were set (the rest use the instance defaults). */
export const LimitsSchema = Type.Object(
  {
    retention_days: Type.Optional(
      Type.Object(
        { metrics: Type.Optional(days('metrics')), logs: Type.Optional(days('logs')), events: Type.Optional(days('events')) },
        { additionalProperties: false },
      ),
    ),
    ingest_points_per_second: Type.Optional(Type.Integer({ ...LIMIT_BOUNDS.ingest_points_per_second, description: 'Sustained ingest rate (points per second).' })),
    max_series: Type.Optional(Type.Integer({ ...LIMIT_BOUNDS.max_series, description: 'Distinct metric series the org may hold.' })),
  },
  { additionalProperties: false },
);
export type OrgLimits = Static<typeof LimitsSchema>;

/** A change to the limits: a number sets a value, null removes the override. */
export const LimitsPatchSchema = Type.Object(
  {
    retention_days: Type.Optional(
      Type.Object(
        { metrics: Type.Optional(nullable(days('metrics'))), logs: Type.Optional(nullable(days('logs'))), events: Type.Optional(nullable(days('events'))) },
        { additionalProperties: false },
      ),
    ),
    ingest_points_per_second: Type.Optional(nullable(Type.Integer(LIMIT_BOUNDS.ingest_points_per_second))),
    max_series: Type.Optional(nullable(Type.Integer(LIMIT_BOUNDS.max_series))),
  },
  { additionalProperties: false, description: 'Keys left out are unchanged; null removes an override.' },
);
export type OrgLimitsPatch = Static<typeof LimitsPatchSchema>;

export const OrganizationSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  slug: Type.String(),
  name: Type.String(),
  limits: LimitsSchema,
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

export const CreateOrgBodySchema = Type.Object(
  {
    slug: Type.String({ pattern: SLUG_PATTERN, description: 'Lowercase letters, digits and inner hyphens, at most 63 characters.' }),
    name: Type.Optional(Name),
    limits: Type.Optional(LimitsSchema),
  },
  { additionalProperties: false },
);

export const UpdateOrgBodySchema = Type.Object(
  {
    name: Type.Optional(Name),
    limits: Type.Optional(LimitsPatchSchema),
  },
  { additionalProperties: false },
);

export const MemberSchema = Type.Object({
  user_id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  role: RoleSchema,
  created_at: Type.String({ format: 'date-time', description: 'When the user joined the organization.' }),
  updated_at: Type.String({ format: 'date-time' }),
});

export const AddMemberBodySchema = Type.Object(
  {
    user_id: Type.Optional(Type.String({ format: 'uuid', description: 'The user to add (or give email). Superadmins only: anyone else gets 403 and invites by email.' })),
    email: Type.Optional(Type.String({ minLength: 3, maxLength: 254, pattern: EMAIL_PATTERN, description: 'The user to add (superadmins) or to invite (everyone else); or give user_id.' })),
    role: RoleSchema,
  },
  { additionalProperties: false, description: 'Exactly one of user_id and email.' },
);

/** The answer to a non-superadmin's POST …/members: identical whether or not the address has an account. */
export const InvitationSentSchema = Type.Object({
  status: Type.Literal('invited'),
  id: Type.String({ format: 'uuid', description: 'The invitation.' }),
  email: Type.String({ description: 'The address invited, lower-cased.' }),
  role: RoleSchema,
  expires_at: Type.String({ format: 'date-time', description: 'The invitee can accept it until then (7 days).' }),
});

export const InvitationSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  org: Type.Object({ slug: Type.String(), name: Type.String() }),
  role: RoleSchema,
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Type.String({ format: 'date-time' }),
});

export const InvitationAcceptedSchema = Type.Object({
  org: Type.Object({ slug: Type.String(), name: Type.String() }),
  /** Your role in the org now (the one you already had, if you were a member already). */
  role: RoleSchema,
});

export const UpdateMemberBodySchema = Type.Object({ role: RoleSchema }, { additionalProperties: false });

// Requests and answers of the orgs feature, as their schemas say (DESIGN §2: no parallel interfaces).
export type Organization = Static<typeof OrganizationSchema>;
export type Member = Static<typeof MemberSchema>;
export type CreateOrgInput = Static<typeof CreateOrgBodySchema>;
export type UpdateOrgInput = Static<typeof UpdateOrgBodySchema>;
export type AddMemberInput = Static<typeof AddMemberBodySchema>;
export type UpdateMemberInput = Static<typeof UpdateMemberBodySchema>;
export type InvitationSent = Static<typeof InvitationSentSchema>;
export type Invitation = Static<typeof InvitationSchema>;
export type InvitationAccepted = Static<typeof InvitationAcceptedSchema>;
