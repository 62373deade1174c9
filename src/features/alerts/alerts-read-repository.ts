import type { Knex } from 'knex';
import type { AlertRow, AlertState } from './alert-types.js';

/** An alerts row with its rule's name (null for heartbeats, instance checks and a deleted rule's alerts). */
export type ListedAlert = AlertRow & { rule_name: string | null };

export interface AlertFilter {
  /** undefined: every state but ok. */
  state?: AlertState;
  ruleId?: string;
}

export interface Acknowledgement {
  by: string | null;
  at: Date;
  comment: string;
  expiresAt: Date | null;
}

/**
 * What the alerts API reads and the acknowledgement it writes. Every method takes the org id and
 * puts it in the WHERE clause: Sentinel's own alerts (org null) are never listed for an org. The
 * evaluator's writes live in alerts-repository.ts.
 */
export class AlertsReadRepository {
  constructor(private readonly knex: Knex) {}

  private base(orgId: string) {
    return this.knex('alerts as a').leftJoin('alert_rules as r', 'r.id', 'a.rule_id').where('a.org_id', orgId).select('a.*', 'r.name as rule_name');
  }

  /** Newest first by creation (stable under the evaluator's updates); `afterId` is the keyset cursor. */
  async list(orgId: string, f: AlertFilter, limit: number, afterId?: string): Promise<ListedAlert[]> {
    const q = this.base(orgId)
      .orderBy([{ column: 'a.created_at', order: 'desc' }, { column: 'a.id', order: 'desc' }])
      .limit(limit);
    if (f.state) q.where('a.state', f.state);
    else q.whereNot('a.state', 'ok');
    if (f.ruleId) q.where('a.rule_id', f.ruleId);
    if (afterId !== undefined) q.whereRaw('(a.created_at, a.id) < (select c.created_at, c.id from alerts c where c.org_id = ? and c.id = ?)', [orgId, afterId]);
    return q as Promise<ListedAlert[]>;
  }

  async get(orgId: string, id: string): Promise<ListedAlert | undefined> {
    return this.base(orgId).where('a.id', id).first() as Promise<ListedAlert | undefined>;
  }

  /**
   * Records the acknowledgement if the alert is pending or firing, in one statement (a resolve
   * committed meanwhile wins). Returns the row, or undefined when it is not (or no longer) ackable.
   */
  async acknowledge(orgId: string, id: string, ack: Acknowledgement): Promise<ListedAlert | undefined> {
    const [row] = await this.knex('alerts')
      .where({ org_id: orgId, id })
      .whereIn('state', ['pending', 'firing'])
      .update({ ack_by: ack.by, ack_at: ack.at, ack_comment: ack.comment, ack_expires_at: ack.expiresAt, updated_at: ack.at })
      .returning('id');
    return row ? this.get(orgId, id) : undefined;
  }
}
