import type { Knex } from 'knex';
import type { AuditEntry, AuditSink } from '../../core/audit.js';

function actorLabel(entry: AuditEntry): { actor: string; actor_user_id: string | null } {
  const a = entry.actor;
  if (a.kind === 'user') return { actor: `user:${a.userId}`, actor_user_id: a.userId };
  if (a.kind === 'apikey') return { actor: `apikey:${a.keyId}`, actor_user_id: null };
  return { actor: a.kind, actor_user_id: null };
}

export interface AuditRow {
  /** bigint: pg hands it over as a string. */
  id: string;
  org_id: string | null;
  actor: string;
  actor_user_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
  created_at: Date;
}

export class AuditRepository implements AuditSink {
  constructor(private readonly knex: Knex) {}

  async record(entry: AuditEntry): Promise<void> {
    await this.knex('audit_log').insert({
      ...actorLabel(entry),
      org_id: entry.orgId ?? null,
      action: entry.action,
      target_type: entry.targetType ?? null,
      target_id: entry.targetId ?? null,
      ip: entry.ip ?? null,
      user_agent: entry.userAgent ?? null,
      details: JSON.stringify(entry.details ?? {}),
    });
  }

  /** Newest first; `beforeId` is the keyset cursor; orgId null lists every entry (the admin log). */
  async list(orgId: string | null, limit: number, beforeId?: string): Promise<AuditRow[]> {
    const q = this.knex<AuditRow>('audit_log').orderBy('id', 'desc').limit(limit);
    if (orgId !== null) q.where({ org_id: orgId });
    if (beforeId !== undefined) q.where('id', '<', beforeId);
    return q;
  }
}
