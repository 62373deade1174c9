import type { Knex } from 'knex';
import type { Matcher } from './matchers.js';

export interface SilenceRow {
  org_id: string;
  id: string;
  matchers: Matcher[];
  starts_at: Date;
  ends_at: Date;
  created_by: string | null;
  comment: string;
  created_at: Date;
  updated_at: Date;
}

export interface SilenceFields {
  matchers: Matcher[];
  starts_at: Date;
  ends_at: Date;
  comment: string;
}

export type SilenceState = 'active' | 'pending' | 'expired';

const TABLE = 'silences';

// jsonb: the pg driver would send a JS array as a PostgreSQL array.
const stored = (f: Partial<SilenceFields>) => (f.matchers ? { ...f, matchers: JSON.stringify(f.matchers) } : f);

/** Every method takes orgId and puts it in the WHERE clause: another org's silence id matches nothing. */
export class SilencesRepository {
  constructor(private readonly knex: Knex) {}

  async insert(orgId: string, f: SilenceFields, createdBy: string | null): Promise<SilenceRow> {
    const [row] = await this.knex<SilenceRow>(TABLE)
      .insert({ org_id: orgId, ...stored(f), created_by: createdBy } as never)
      .returning('*');
    return row;
  }

  /** Oldest first; `afterId` is the keyset cursor; `state` is judged at `now` (the clock's time, not the server's). */
  async list(orgId: string, opts: { limit: number; afterId?: string; state?: SilenceState; now: Date }): Promise<SilenceRow[]> {
    const q = this.knex<SilenceRow>(TABLE)
      .where({ org_id: orgId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .limit(opts.limit);
    if (opts.state === 'active') q.where('starts_at', '<=', opts.now).where('ends_at', '>', opts.now);
    if (opts.state === 'pending') q.where('starts_at', '>', opts.now).where('ends_at', '>', opts.now);
    if (opts.state === 'expired') q.where('ends_at', '<=', opts.now);
    if (opts.afterId !== undefined) {
      // Compared in SQL: a timestamp round-tripped through JavaScript loses its microseconds.
      q.whereRaw('(created_at, id) > (select c.created_at, c.id from silences c where c.org_id = ? and c.id = ?)', [orgId, opts.afterId]);
    }
    return q;
  }

  async get(orgId: string, id: string): Promise<SilenceRow | undefined> {
    return this.knex<SilenceRow>(TABLE).where({ org_id: orgId, id }).first();
  }

  async update(orgId: string, id: string, f: Partial<SilenceFields>, now: Date): Promise<SilenceRow | undefined> {
    const [row] = await this.knex<SilenceRow>(TABLE)
      .where({ org_id: orgId, id })
      .update({ ...stored(f), updated_at: now } as never)
      .returning('*');
    return row as SilenceRow | undefined;
  }

  /** Ends it at `now` (a pending one starts and ends then); an expired one keeps its times. */
  async expire(orgId: string, id: string, now: Date): Promise<SilenceRow | undefined> {
    const [row] = await this.knex<SilenceRow>(TABLE)
      .where({ org_id: orgId, id })
      .update({
        starts_at: this.knex.raw('least(starts_at, ?::timestamptz)', [now]),
        ends_at: this.knex.raw('least(ends_at, ?::timestamptz)', [now]),
        updated_at: now,
      } as never)
      .returning('*');
    return row as SilenceRow | undefined;
  }

  /** The silences in force at `now` (the notification policy's question). */
  async active(orgId: string, now: Date): Promise<SilenceRow[]> {
    return this.knex<SilenceRow>(TABLE).where({ org_id: orgId }).where('starts_at', '<=', now).where('ends_at', '>', now);
  }
}
