import { Type } from '@sinclair/typebox';
import { actorOf, metaOf } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import type { TotpService } from './totp-service.js';

const CodeBody = Type.Object(
  { code: Type.String({ minLength: 6, maxLength: 32, description: 'A current 6-digit TOTP code, or (to disable) an unused recovery code.' }) },
  { additionalProperties: false },
);
const EnableBody = Type.Object(
  {
    code: Type.String({ minLength: 6, maxLength: 32, description: 'A current 6-digit TOTP code from the app.' }),
    password: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: "The account's current password: an access token alone cannot turn 2FA on. A wrong one counts as a failed login.",
    }),
  },
  { additionalProperties: false },
);
const SetupSchema = Type.Object({
  secret: Type.String({ description: 'Base32 TOTP seed: type it into an authenticator app, or use otpauth_url.' }),
  otpauth_url: Type.String({ description: 'otpauth://totp/… URI for a QR code.' }),
});
const RecoveryCodesSchema = Type.Object({
  recovery_codes: Type.Array(Type.String(), { description: 'Single-use codes, shown only now; each replaces a TOTP code once.' }),
});
const StatusSchema = Type.Object({
  enabled: Type.Boolean(),
  pending: Type.Boolean({ description: 'A secret was set up but not confirmed with a code yet.' }),
  enabled_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  recovery_codes_remaining: Type.Integer(),
});

const tooMany = { description: 'Too many code attempts for this account (Retry-After).' };

export function registerTotpRoutes(registry: ApiRegistry, deps: { totp: TotpService }): void {
  const { totp } = deps;

  registry.route({
    method: 'get',
    path: '/auth/totp',
    operationId: 'totpStatus',
    summary: "The caller's two-factor state and how many recovery codes are left",
    tags: ['auth'],
    auth: 'user',
    responses: { 200: { description: 'State.', schema: StatusSchema } },
    handler: async (ctx) => {
      const s = await totp.status(actorOf(ctx));
      ctx.body = { ...s, enabled_at: s.enabled_at?.toISOString() ?? null };
    },
  });

  registry.route({
    method: 'post',
    path: '/auth/totp/setup',
    operationId: 'totpSetup',
    summary: 'Create a TOTP secret for the caller (replaces an unconfirmed one); 2FA is on only after enable',
    tags: ['auth'],
    auth: 'user',
    responses: { 200: { description: 'The secret, shown once.', schema: SetupSchema }, 409: { description: '2FA is already enabled.' } },
    handler: async (ctx) => {
      ctx.body = await totp.setup(actorOf(ctx), metaOf(ctx));
    },
  });

  registry.route({
    method: 'post',
    path: '/auth/totp/enable',
    operationId: 'totpEnable',
    summary: 'Confirm the pending secret with a current code and the password; turns 2FA on and returns 10 recovery codes',
    tags: ['auth'],
    auth: 'user',
    body: EnableBody,
    responses: {
      200: { description: 'Recovery codes, shown once.', schema: RecoveryCodesSchema },
      400: { description: 'Wrong code (errors[].path body/code) or wrong password (body/password).' },
      409: { description: 'No pending setup, or already enabled.' },
      429: { description: 'Too many code attempts, or too many failed passwords (logins included) for this account (Retry-After).' },
    },
    handler: async (ctx, { body }) => {
      ctx.body = await totp.enable(actorOf(ctx), body, metaOf(ctx));
    },
  });

  registry.route({
    method: 'post',
    path: '/auth/totp/disable',
    operationId: 'totpDisable',
    summary: 'Turn 2FA off (needs a current code or a recovery code); deletes the recovery codes',
    tags: ['auth'],
    auth: 'user',
    body: CodeBody,
    responses: { 204: { description: 'Disabled.' }, 400: { description: 'Wrong code.' }, 409: { description: '2FA is not enabled.' }, 429: tooMany },
    handler: async (ctx, { body }) => {
      await totp.disable(actorOf(ctx), body, metaOf(ctx));
      ctx.status = 204;
    },
  });
}
