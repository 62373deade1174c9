import type { Knex } from 'knex';
import { NO_CACHE, writing, type Cacher } from '../../db/read-cache.js';

export interface SessionRow {
  id: string;
  user_id: string;
  family_id: string;
  refresh_hash: string;
  expires_at: Date;
  rotated_at: Date | null;
  revoked_at: Date | null;
}

/** What every authenticated request needs to know about its session and user, in one indexed lookup. */
export interface SessionState {
  user_id: string;
  superadmin: boolean;
  disabled_at: Date | null;
  token_version: number;
  revoked_at: Date | null;
}

export class SessionsRepository {
  constructor(
    private readonly knex: Knex,
    private readonly cache: Cacher = NO_CACHE,
  ) {}

  /** Invalidates nothing: nothing is cached for a session before it exists (its id is new). */
  async insert(s: { user_id: string; family_id: string; refresh_hash: string; expires_at: Date; ip: string | null; user_agent: string | null }): Promise<SessionRow> {
    const [row] = await this.knex<SessionRow>('sessions').insert(s).returning('*');
    return row;
  }

  async findByRefreshHash(hash: string): Promise<SessionRow | undefined> {
    return this.knex<SessionRow>('sessions').where({ refresh_hash: hash }).first();
  }

  /** Mark a session's refresh token spent; false when another request spent it first. */
  async markRotated(id: string): Promise<boolean> {
    return writing(this.cache, async (touch) => {
      touch('sessions', id);
      const n = await this.knex('sessions').where({ id }).whereNull('rotated_at').update({ rotated_at: this.knex.fn.now() });
      return n === 1;
    });
  }

  async revokeFamily(familyId: string): Promise<void> {
    await writing(this.cache, async (touch) => {
      touch('sessions');
      await this.knex('sessions').where({ family_id: familyId }).whereNull('revoked_at').update({ revoked_at: this.knex.fn.now() });
    });
  }

  async revokeAllOfUser(userId: string): Promise<void> {
    await writing(this.cache, async (touch) => {
      touch('sessions');
      await this.knex('sessions').where({ user_id: userId }).whereNull('revoked_at').update({ revoked_at: this.knex.fn.now() });
    });
  }

  async familyOf(sessionId: string): Promise<string | undefined> {
    return (await this.knex('sessions').where({ id: sessionId }).first('family_id'))?.family_id as string | undefined;
  }

  /** Cached (see ReadCache): every authenticated request asks. Writes to `users` invalidate it there (UsersRepository). */
  async state(sessionId: string): Promise<SessionState | undefined> {
    return this.cache.get(['sessions', 'users'], sessionId, () =>
      this.knex('sessions as s')
        .join('users as u', 'u.id', 's.user_id')
        .where('s.id', sessionId)
        .first('u.id as user_id', 'u.superadmin', 'u.disabled_at', 'u.token_version', 's.revoked_at'),
    );
  }
}
