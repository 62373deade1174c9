import type { OrgRole } from './roles.js';

/** API key scopes: `ingest` writes telemetry only; `read`, `write`, `admin` mirror viewer, editor, admin. */
export const API_KEY_SCOPES = ['ingest', 'read', 'write', 'admin'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/**
 * The one permission table. `role` is the least org role that may do it (roles are ordered
 * viewer < editor < admin < owner; superadmins and the CLI may do everything); `scope` is the API
 * key scope that grants it, or null when API keys may never do it. The README shows this table.
 */
export const PERMISSIONS = {
  'org.read': { role: 'viewer', scope: 'read' },
  'org.update': { role: 'admin', scope: 'admin' },
  'org.delete': { role: 'owner', scope: null },
  'member.read': { role: 'viewer', scope: 'read' },
  'member.manage': { role: 'admin', scope: null },
  /** Granting or taking away the owner role. */
  'member.manage_owners': { role: 'owner', scope: null },
  'apikey.read': { role: 'admin', scope: 'admin' },
  'apikey.manage': { role: 'admin', scope: null },
  'audit.read': { role: 'admin', scope: 'admin' },
  'telemetry.ingest': { role: 'editor', scope: 'ingest' },
  'telemetry.read': { role: 'viewer', scope: 'read' },
  'config.write': { role: 'editor', scope: 'write' },
  'report.read': { role: 'viewer', scope: 'read' },
  /** Generating stores a report for the org (and may take a while): admins, like the audit log. */
  'report.generate': { role: 'admin', scope: 'admin' },
  /** Alert rules, alerts, silences, maintenance windows, heartbeats and the delivery log: read. */
  'alert.read': { role: 'viewer', scope: 'read' },
  /** Alert rules, silences, maintenance windows, heartbeats: create, change, delete; acknowledge alerts. */
  'alert.write': { role: 'editor', scope: 'write' },
  /** Notification channels (they hold secrets and send traffic out): create, change, delete, test; resend. */
  'channel.manage': { role: 'admin', scope: 'admin' },
} as const satisfies Record<string, { role: OrgRole; scope: ApiKeyScope | null }>;

export type Permission = keyof typeof PERMISSIONS;

/** Scopes imply the narrower ones: admin ⊇ write ⊇ read; ingest stands alone. */
const SCOPE_IMPLIES: Record<ApiKeyScope, ApiKeyScope[]> = {
  ingest: ['ingest'],
  read: ['read'],
  write: ['write', 'read'],
  admin: ['admin', 'write', 'read'],
};

export function scopeGrants(scopes: readonly ApiKeyScope[], permission: Permission): boolean {
  const need = PERMISSIONS[permission].scope;
  return need !== null && scopes.some((s) => SCOPE_IMPLIES[s].includes(need));
}
