/**
 * Who is asking. Services take an actor as their first argument so that the HTTP API and the
 * CLI pass through the same authorization checks. The CLI runs as `system` (the operator on the
 * host already controls the database).
 */
import type { ApiKeyScope } from './permissions.js';

export type Actor =
  | { kind: 'system' }
  | { kind: 'user'; userId: string; superadmin: boolean; sessionId?: string }
  | { kind: 'apikey'; keyId: string; orgId: string; scopes: ApiKeyScope[] }
  | { kind: 'anonymous' };

export const SYSTEM_ACTOR: Actor = { kind: 'system' };
export const ANONYMOUS: Actor = { kind: 'anonymous' };

export const isPrivileged = (a: Actor): boolean =>
  a.kind === 'system' || (a.kind === 'user' && a.superadmin);

/** Request facts recorded in the audit log. */
export interface RequestMeta {
  ip?: string | null;
  userAgent?: string | null;
}
