import { Type, type Static } from '@sinclair/typebox';
import { API_KEY_SCOPES, type ApiKeyScope } from '../../core/permissions.js';
import { NOT_BLANK_PATTERN } from '../../core/validation.js';

export const ScopeSchema = Type.Unsafe<ApiKeyScope>({
  type: 'string',
  enum: [...API_KEY_SCOPES],
  description: 'ingest: send telemetry only; read, write, admin: like the viewer, editor and admin roles (admin ⊇ write ⊇ read).',
});

const Timestamp = (description: string) => Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description });

/** An API key as listed: never the secret or its hash. */
export const ApiKeySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key (snt_ + 8), for recognising it.' }),
  scopes: Type.Array(ScopeSchema),
  expires_at: Timestamp('When the key stops working; null: never.'),
  last_used_at: Timestamp('Last authenticated use, recorded at most once a minute.'),
  last_ip: Type.Union([Type.String(), Type.Null()], { description: 'Client address of that use.' }),
  previous_valid_until: Timestamp('After a rotation: until when the previous secret still works.'),
  created_by: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], { description: 'User who created it; null when created with the CLI.' }),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

/** Create and rotate answers: the only time the secret is shown. */
export const ApiKeyWithSecretSchema = Type.Composite([
  ApiKeySchema,
  Type.Object({ secret: Type.String({ description: 'The key (snt_…). Shown once; only its sha256 is stored.' }) }),
]);

export const CreateApiKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, pattern: NOT_BLANK_PATTERN, description: 'Stored without surrounding blanks.' }),
    scopes: Type.Optional(Type.Array(ScopeSchema, { minItems: 1, maxItems: API_KEY_SCOPES.length, uniqueItems: true, description: 'Default ["ingest"].' })),
    expires_at: Type.Optional(Type.String({ format: 'date-time', description: 'RFC 3339, in the future. Omit for a key that does not expire.' })),
  },
  { additionalProperties: false },
);

export type ApiKey = Static<typeof ApiKeySchema>;
export type ApiKeyWithSecret = Static<typeof ApiKeyWithSecretSchema>;
export type CreateApiKeyInput = Static<typeof CreateApiKeyBody>;

