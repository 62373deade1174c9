import type { Knex } from 'knex';
import type { AlertRow, AlertState, RuleRow } from './alert-types.js';

const TABLE = 'alert_rules';

/** The columns a create or an update writes (the rest are the evaluator's or the database's). */
export type RuleColumns = Pick<
  RuleRow,
  | 'name'
  | 'kind'
  | 'query'
  | 'op'
  | 'threshold'
  | 'recovery_threshold'
  | 'interval_ms'
  | 'for_ms'
  | 'keep_firing_for_ms'
  | 'severity'
  | 'labels'
  | 'annotations'
  | 'channels'
  | 'group_by'
  | 'group_wait_ms'
  | 'group_interval_ms'
  | 'repeat_interval_ms'
  | 'enabled'
>;

/** Worst first: a rule's state is the first of these any of its alerts is in (resolved counts as ok). */
export const STATE_ORDER = ['firing', 'pending', 'error', 'no_data'] as const;
export type RuleState = (typeof STATE_ORDER)[number] | 'ok';

/** jsonb values go to pg as JSON text: knex would turn a JS array into a PostgreSQL array literal. */
function toDb(c: Partial<RuleColumns>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  for (const k of ['query', 'labels', 'annotations'] as const) if (k in c) out[k] = JSON.stringify(c[k]);
  return out;
}

/**
 * Alert rules of one org at a time: every method takes orgId and puts it in the WHERE clause.
 * The evaluator's claim of due rules (across orgs) is not here: it belongs to the evaluator.
 */
export class AlertRulesRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Inserts unless the org already has `max` rules. The count and the insert run under a
   * per-org transaction lock, so concurrent creates cannot both pass the last free slot.
   * Returns null when the org is full; a duplicate name throws 23505 (the service says 409).
   */
  async insertBounded(orgId: string, cols: RuleColumns & { next_eval_at: Date; created_by: string | null }, max: number): Promise<RuleRow | null> {
    return this.knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`alert_rules:${orgId}`]);
      const [{ n }] = await trx(TABLE).where({ org_id: orgId }).count<{ n: string }[]>({ n: '*' });
      if (Number(n) >= max) return null;
      const [row] = await trx(TABLE)
        .insert({ org_id: orgId, ...toDb(cols) })
        .returning('*');
      return row as RuleRow;
    });
  }

  /** Oldest first; `afterId` is the keyset cursor (compared in SQL: microseconds survive). */
  async list(orgId: string, limit: number, afterId?: string): Promise<RuleRow[]> {
    const q = this.knex<RuleRow>(TABLE)
      .where({ org_id: orgId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .limit(limit);
    if (afterId !== undefined) q.whereRaw('(created_at, id) > (select c.created_at, c.id from alert_rules c where c.org_id = ? and c.id = ?)', [orgId, afterId]);
    return q as Promise<RuleRow[]>;
  }

  async get(orgId: string, id: string): Promise<RuleRow | undefined> {
    return this.knex<RuleRow>(TABLE).where({ org_id: orgId, id }).first() as Promise<RuleRow | undefined>;
  }

  /** Names of rules among `ids`, for the alerts list (one query per page). */
  async names(orgId: string, ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.knex<RuleRow>(TABLE).where({ org_id: orgId }).whereIn('id', ids).select('id', 'name');
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  /** Only the given columns; `next_eval_at` when the schedule changes. Duplicate names throw 23505. */
  async update(orgId: string, id: string, cols: Partial<RuleColumns> & { next_eval_at?: Date; last_error?: null }, now: Date): Promise<RuleRow | undefined> {
    const [row] = await this.knex(TABLE)
      .where({ org_id: orgId, id })
      .update({ ...toDb(cols), updated_at: now })
      .returning('*');
    return row as RuleRow | undefined;
  }

  /**
   * Deletes the rule as disabling settles it, in one transaction: its firing alerts resolve and
   * `then` touches their groups (the resolved notification goes out at the group's next flush),
   * the others return to ok. The alerts that will never be notified (ok, or resolved without a
   * notified firing) go now, and so do the groups not touched; the resolved ones stay (rule_id
   * set null by the foreign key, source_id the rule's id) until their group's flush has sent them
   * (alert-groups-repository.ts finish). Undefined when there is no such rule.
   */
  async delete(orgId: string, id: string, now: Date, then: (resolved: AlertRow[], db: Knex) => Promise<string[]>): Promise<RuleRow | undefined> {
    return this.knex.transaction(async (trx) => {
      const locked = await trx(TABLE).where({ org_id: orgId, id }).forUpdate().first('id');
      if (!locked) return undefined;
      const resolved = (await this.settleIn(trx, orgId, id, now)).filter((a) => a.fired_at !== null && a.firing_notified_at !== null && a.firing_notified_at >= a.fired_at);
      const keys = await then(resolved, trx);
      await trx('alerts')
        .where({ org_id: orgId, rule_id: id })
        .whereNotIn('id', resolved.map((a) => a.id))
        .delete();
      await trx('alert_groups').where({ org_id: orgId, source: 'rule', source_id: id }).whereNotIn('group_key', keys).delete();
      const [row] = await trx(TABLE).where({ org_id: orgId, id }).delete().returning('*');
      return row as RuleRow | undefined;
    });
  }

  /** The worst state of each rule's alerts (rules without alerts are absent: ok). */
  async states(orgId: string, ruleIds: string[]): Promise<Map<string, RuleState>> {
    if (ruleIds.length === 0) return new Map();
    const rows = await this.knex('alerts')
      .where({ org_id: orgId })
      .whereIn('rule_id', ruleIds)
      .whereIn('state', [...STATE_ORDER])
      .groupBy('rule_id')
      .select('rule_id')
      .select(this.knex.raw('array_agg(distinct state) as states'));
    const out = new Map<string, RuleState>();
    for (const r of rows as { rule_id: string; states: string[] | string }[]) {
      const states = Array.isArray(r.states) ? r.states : String(r.states).replace(/[{}]/g, '').split(',');
      out.set(r.rule_id, STATE_ORDER.find((s) => states.includes(s)) ?? 'ok');
    }
    return out;
  }

  /**
   * A rule was disabled: its firing alerts resolve now, the others (pending, no_data, error)
   * return to ok, in one statement. Returns the alerts that resolved (their groups must be
   * touched so the resolved notification goes out once).
   */
  /**
   * Resolves the rule's firing alerts and returns them; `then` runs in the same transaction (the
   * groups' touch: a resolve is never committed without its group being due for a flush).
   */
  async settleAlerts(orgId: string, ruleId: string, now: Date, then: (resolved: AlertRow[], db: Knex) => Promise<void>): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const resolved = await this.settleIn(trx, orgId, ruleId, now);
      await then(resolved, trx);
    });
  }

  private async settleIn(db: Knex, orgId: string, ruleId: string, now: Date): Promise<AlertRow[]> {
    const firing = await db('alerts')
      .where({ org_id: orgId, rule_id: ruleId, state: 'firing' })
      .update({ state: 'resolved' satisfies AlertState, resolved_at: now, updated_at: now })
      .returning('*');
    await db('alerts')
      .where({ org_id: orgId, rule_id: ruleId })
      .whereIn('state', ['pending', 'no_data', 'error'])
      .update({ state: 'ok' satisfies AlertState, active_at: null, error: null, updated_at: now });
    return firing as AlertRow[];
  }
}
