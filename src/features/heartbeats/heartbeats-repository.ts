import type { Knex } from 'knex';

export interface HeartbeatRow {
  org_id: string;
  id: string;
  name: string;
  token_hash: string;
  token_sealed: string;
  period_ms: number;
  grace_ms: number;
  channels: string[];
  labels: Record<string, string>;
  severity: string;
  state: 'new' | 'up' | 'down';
  last_ping_at: Date | null;
  due_at: Date;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

export type NewHeartbeat = Pick<HeartbeatRow, 'name' | 'token_hash' | 'token_sealed' | 'period_ms' | 'grace_ms' | 'channels' | 'labels' | 'severity' | 'due_at' | 'created_by'>;
export type HeartbeatPatch = Partial<Pick<HeartbeatRow, 'name' | 'period_ms' | 'grace_ms' | 'channels' | 'labels' | 'severity'>>;

const TABLE = 'heartbeats';

/**
 * Heartbeats. Every method on one org's heartbeats takes `orgId` and puts it in the WHERE
 * clause; the exceptions (the ping's lookup by token hash, the missed check over every org, the
 * instance-level reads) say why. Times compared are the clock's, passed as parameters (tests pin
 * the clock), never the database's now().
 */
export class HeartbeatsRepository {
  constructor(private readonly knex: Knex) {}

  async insert(orgId: string, h: NewHeartbeat, at: Date): Promise<HeartbeatRow> {
    const [row] = await this.knex<HeartbeatRow>(TABLE)
      .insert({ org_id: orgId, ...h, labels: JSON.stringify(h.labels) as never, created_at: at, updated_at: at })
      .returning('*');
    return row;
  }

  /** Oldest first; `afterId` is the keyset cursor. */
  async list(orgId: string, limit: number, afterId?: string): Promise<HeartbeatRow[]> {
    const q = this.knex<HeartbeatRow>(TABLE)
      .where({ org_id: orgId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .limit(limit);
    // Compared in SQL: a timestamp round-tripped through JavaScript loses its microseconds.
    if (afterId !== undefined) q.whereRaw('(created_at, id) > (select c.created_at, c.id from heartbeats c where c.org_id = ? and c.id = ?)', [orgId, afterId]);
    return q;
  }

  async find(orgId: string, id: string): Promise<HeartbeatRow | undefined> {
    return this.knex<HeartbeatRow>(TABLE).where({ org_id: orgId, id }).first();
  }

  /** A changed period or grace moves due_at: counted from the last ping (or the creation). */
  async update(orgId: string, id: string, patch: HeartbeatPatch, at: Date): Promise<HeartbeatRow | undefined> {
    const set: Record<string, unknown> = { ...patch, updated_at: at };
    if (patch.labels) set.labels = JSON.stringify(patch.labels);
    if (patch.period_ms !== undefined || patch.grace_ms !== undefined) {
      set.due_at = this.knex.raw("coalesce(last_ping_at, created_at) + (?::bigint + ?::bigint) * interval '1 millisecond'", [
        patch.period_ms ?? this.knex.ref('period_ms'),
        patch.grace_ms ?? this.knex.ref('grace_ms'),
      ]);
    }
    const [row] = await this.knex<HeartbeatRow>(TABLE).where({ org_id: orgId, id }).update(set).returning('*');
    return row as HeartbeatRow | undefined;
  }

  async delete(orgId: string, id: string): Promise<HeartbeatRow | undefined> {
    const [row] = await this.knex<HeartbeatRow>(TABLE).where({ org_id: orgId, id }).delete().returning('*');
    return row as HeartbeatRow | undefined;
  }

  /** A new token: the old one stops working at once (its hash no longer matches a row). */
  async setToken(orgId: string, id: string, token: { token_hash: string; token_sealed: string }, at: Date): Promise<HeartbeatRow | undefined> {
    const [row] = await this.knex<HeartbeatRow>(TABLE)
      .where({ org_id: orgId, id })
      .update({ ...token, updated_at: at })
      .returning('*');
    return row as HeartbeatRow | undefined;
  }

  /** The ping: the token decides the org, so this lookup is by its hash across orgs (unique). */
  async findByTokenHash(hash: string): Promise<HeartbeatRow | undefined> {
    return this.knex<HeartbeatRow>(TABLE).where({ token_hash: hash }).first();
  }

  /**
   * Records a ping and answers the state it had before, read under the row lock: a missed check
   * that is marking it down at the same moment commits first, and the ping then sees 'down' (and
   * its caller resolves the alert the check raised) instead of hiding a firing alert behind 'up'.
   */
  async ping(orgId: string, id: string, at: Date): Promise<{ row: HeartbeatRow; previous: HeartbeatRow['state'] } | undefined> {
    const { rows } = await this.knex.raw<{ rows: (HeartbeatRow & { previous_state: HeartbeatRow['state'] })[] }>(
      `with prev as (select org_id, id, state from heartbeats where org_id = ? and id = ? for update)
       update heartbeats h
          set last_ping_at = ?, due_at = ?::timestamptz + (h.period_ms + h.grace_ms) * interval '1 millisecond', state = 'up', updated_at = ?
         from prev where h.org_id = prev.org_id and h.id = prev.id
       returning h.*, prev.state as previous_state`,
      [orgId, id, at, at, at],
    );
    if (rows.length === 0) return undefined;
    const { previous_state: previous, ...row } = rows[0];
    return { row, previous };
  }

  /** Undoes a ping's 'up' when resolving the alert failed, so the client's retry resolves it (only if no later ping came). */
  async markDownAgain(orgId: string, id: string, pingAt: Date): Promise<void> {
    await this.knex(TABLE).where({ org_id: orgId, id, state: 'up', last_ping_at: pingAt }).update({ state: 'down' });
  }

  /**
   * The missed check, across every org (it acts for the instance): claims up to `limit`
   * heartbeats due by `now` and not yet down, with SKIP LOCKED so several instances share the
   * work and none raises the same one twice. `raise` runs while the rows are locked and a row is
   * marked down only when its raise succeeded, in the same transaction: a crash or a failed raise
   * leaves it due for the next tick, never down without its alert.
   */
  async claimMissed(now: Date, limit: number, raise: (row: HeartbeatRow) => Promise<boolean>): Promise<number> {
    return this.knex.transaction(async (trx) => {
      const rows = await trx<HeartbeatRow>(TABLE)
        .where('due_at', '<=', now)
        .whereNot({ state: 'down' })
        .orderBy('due_at')
        .limit(limit)
        .forUpdate()
        .skipLocked();
      let marked = 0;
      for (const row of rows) {
        if (!(await raise(row))) continue;
        await trx(TABLE).where({ org_id: row.org_id, id: row.id }).update({ state: 'down', updated_at: now });
        marked++;
      }
      return marked;
    });
  }

  /** Instance level: when this database was first migrated (Sentinel installed); null before any migration. */
  async installedAt(): Promise<Date | null> {
    const row = await this.knex('knex_migrations').min({ at: 'migration_time' }).first();
    return (row?.at as Date | null | undefined) ?? null;
  }
}
