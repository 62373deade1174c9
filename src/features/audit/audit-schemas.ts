import { Type, type Static } from '@sinclair/typebox';

export const AuditEntrySchema = Type.Object({
  id: Type.String({ description: 'Increasing; newer entries have larger ids.' }),
  org_id: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  actor: Type.Object({
    type: Type.String({ description: 'user, apikey, system (the CLI) or anonymous (e.g. a failed login).' }),
    id: Type.Union([Type.String(), Type.Null()], { description: 'User or API key id.' }),
  }),
  action: Type.String({ description: 'e.g. org.update, member.role_change, user.disable, auth.login_failed.' }),
  target: Type.Union([Type.Object({ type: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown(), { description: 'What changed; never a secret.' }),
  created_at: Type.String({ format: 'date-time' }),
});

export type AuditLogEntry = Static<typeof AuditEntrySchema>;
