import type { Actor } from './actor.js';

/** What services hand to the audit log. Never put a secret in `details`. */
export interface AuditEntry {
  actor: Actor;
  action: string;
  orgId?: string | null;
  targetType?: string;
  targetId?: string;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, unknown>;
}

export interface AuditSink {
  record(entry: AuditEntry): Promise<void>;
}
