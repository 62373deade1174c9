import type { Knex } from 'knex';
import type { Clock } from '../../core/clock.js';
import type { HeartbeatsStatus, HeartbeatsStatusSource } from '../../core/status.js';

const LISTED = 10;

interface LateRow {
  org: string;
  name: string;
  last_ping_at: Date | null;
  due_at: Date;
}

/**
 * The heartbeats section of the admin status: heartbeats of every organization whose due time
 * has passed (missed, whether or not the missed check has turned them down yet), the longest
 * overdue first. Instance-wide on purpose: only superadmins (and the local admin token) read it.
 * "Now" is the clock's (tests pin it), as for the missed check.
 */
export class HeartbeatsStatusRepository implements HeartbeatsStatusSource {
  constructor(
    private readonly knex: Knex,
    private readonly clock: Clock,
  ) {}

  async heartbeatsStatus(): Promise<HeartbeatsStatus> {
    const now = this.clock.now();
    // Both served by heartbeats_late (due_at, id): the first ten of a range scan, and the count
    // read from the index alone (the join to organizations only for the ten listed).
    const [listed, counted] = await Promise.all([
      this.knex.raw<{ rows: LateRow[] }>(
        `select o.slug as org, h.name, h.last_ping_at, h.due_at
           from (select org_id, name, last_ping_at, due_at, id from heartbeats
                  where due_at <= ? order by due_at, id limit ${LISTED}) h
           join organizations o on o.id = h.org_id
          order by h.due_at, h.id`,
        [now],
      ),
      this.knex.raw<{ rows: { late: number }[] }>('select count(*)::int as late from heartbeats where due_at <= ?', [now]),
    ]);
    return {
      late: counted.rows[0]?.late ?? 0,
      items: listed.rows.map((r) => ({ org: r.org, name: r.name, last_ping_at: r.last_ping_at?.toISOString() ?? null, due_at: r.due_at.toISOString() })),
    };
  }
}
