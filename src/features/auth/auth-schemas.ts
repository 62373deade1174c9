import { Type, type Static } from '@sinclair/typebox';

/** The login request and the token pair answered by login and refresh: one contract for HTTP, the service and the document. */
export const LoginBodySchema = Type.Object(
  {
    email: Type.String({ minLength: 1, maxLength: 254 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    totp_code: Type.Optional(Type.String({ minLength: 6, maxLength: 32, description: 'TOTP code, or a recovery code' })),
  },
  { additionalProperties: false },
);
export type LoginInput = Static<typeof LoginBodySchema>;

const UserSummarySchema = Type.Object({ id: Type.String({ format: 'uuid' }), email: Type.String(), name: Type.Union([Type.String(), Type.Null()]), superadmin: Type.Boolean() });

export const TokenPairSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires.' }),
  refresh_token: Type.String({ description: 'Opaque, single use: every refresh returns a new one.' }),
  user: UserSummarySchema,
});
export type TokenPair = Static<typeof TokenPairSchema>;
