/**
 * Who is asking. Services take an actor as their first argument so that the HTTP API and the
 * CLI pass through the same authorization checks. The CLI runs as `system` (the operator on the
 * host already controls the database).
 */
export type Actor =
  | { kind: 'system' }
  | { kind: 'user'; userId: string; superadmin: boolean }
  | { kind: 'anonymous' };

export const SYSTEM_ACTOR: Actor = { kind: 'system' };
export const ANONYMOUS: Actor = { kind: 'anonymous' };

export const isPrivileged = (a: Actor): boolean =>
  a.kind === 'system' || (a.kind === 'user' && a.superadmin);
