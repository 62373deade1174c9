import type { Knex } from 'knex';
import { INITIAL_RECORD, type StateRecord } from './alert-state.js';
import type { AlertRow, AlertState, GroupSettings, RuleRow } from './alert-types.js';

/** An alerts row to insert or update: identity, labels and annotations, and its state record (`id` set: update that row; absent: insert). */
export type AlertWrite = StateRecord &
  Pick<AlertRow, 'org_id' | 'source' | 'source_id' | 'rule_id' | 'fingerprint' | 'group_key' | 'labels' | 'annotations' | 'error' | 'last_eval_at'> & { id?: string };

/** The state record's columns, as alert-state.ts defines the record. */
const STATE_COLUMNS = Object.keys(INITIAL_RECORD) as (keyof StateRecord)[];

// The column types of an alerts row as jsonb_to_recordset reads them (writeRows).
const RECORD_TYPES = `group_key text, labels jsonb, annotations jsonb, error text, last_eval_at timestamptz, state text, value float8,
  active_at timestamptz, fired_at timestamptz, resolved_at timestamptz, last_breach_at timestamptz, firing_notified_at timestamptz,
  resolved_notified_at timestamptz, ack_by uuid, ack_at timestamptz, ack_comment text, ack_expires_at timestamptz`;

/** A rule's transaction: what evaluateRule reads and writes while it holds the rule's row lock. */
export interface RuleTx {
  /** The transaction itself (the policy's group touch joins it, so state and wake-up commit together). */
  db: Knex.Transaction;
  /** The rule's alerts rows (rule-level record included). */
  instances(): Promise<AlertRow[]>;
  write(rows: AlertWrite[]): Promise<void>;
  remove(ids: string[]): Promise<void>;
  /** last_eval_at and last_error of the rule. */
  finish(at: Date, error: string | null): Promise<void>;
}

/** A batch's transaction: the claimed rules still to be written (locked), their alerts rows (locked), and one statement per kind of write for all of them. */
export interface BatchTx {
  db: Knex.Transaction;
  /** Ids of the rules locked: enabled and not evaluated at `at` or later (the others are skipped). */
  locked: Set<string>;
  /** The locked rules' alerts rows (rule-level records included), by rule id. */
  instances: Map<string, AlertRow[]>;
  write(rows: AlertWrite[]): Promise<void>;
  /** Deletes these alerts rows (of the locked rules only). */
  remove(rows: Pick<AlertRow, 'id' | 'org_id'>[]): Promise<void>;
  /** last_eval_at = at and last_error of each rule. */
  finish(results: { orgId: string; ruleId: string; error: string | null }[]): Promise<void>;
}

/**
 * The alerts feature's evaluation SQL: claiming due rules and the alerts rows (instances of
 * rules, heartbeats and Sentinel's own checks). Org-scoped reads name the org; the claim reads
 * every org's due rules (it is the scheduler) and each rule is then read by its own org id.
 */
export class AlertsRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Takes up to `limit` enabled rules due at `now` and moves each one's next_eval_at on by its
   * interval, in one statement: SKIP LOCKED lets several instances claim side by side, and a
   * rule claimed by one is no longer due for the others (a rule is evaluated once per tick).
   * `now` is a parameter (the app's clock), never the database's now().
   */
  async claimDue(now: Date, limit: number): Promise<RuleRow[]> {
    const { rows } = await this.knex.raw<{ rows: RuleRow[] }>(
      `update alert_rules r set next_eval_at = ?::timestamptz + r.interval_ms * interval '1 millisecond'
        where r.id in (select id from alert_rules where enabled and next_eval_at <= ?::timestamptz
                        order by next_eval_at limit ? for update skip locked)
        returning r.*`,
      [now, now, limit],
    );
    return rows;
  }

  /**
   * Runs `fn` in one transaction holding the rule's row lock (evaluations of one rule never
   * interleave their writes); `fn(null)` when the rule is gone or disabled, or already evaluated
   * at `at` or later (a slow evaluation must not overwrite a newer one's state).
   */
  async inRuleTx<T>(orgId: string, ruleId: string, at: Date, fn: (tx: RuleTx | null) => Promise<T>): Promise<T> {
    return this.knex.transaction(async (trx) => {
      // Deleted or disabled since it was claimed: disabling resolved its alerts, which must stay so.
      const locked = await trx('alert_rules')
        .where({ org_id: orgId, id: ruleId, enabled: true })
        .where((w) => w.whereNull('last_eval_at').orWhere('last_eval_at', '<', at))
        .forUpdate()
        .first('id');
      if (!locked) return fn(null);
      return fn({
        db: trx,
        // Locked: an ack or the policy's notified-at written meanwhile is read, not overwritten.
        instances: () => trx('alerts').where({ org_id: orgId, source: 'rule', source_id: ruleId }).forUpdate().select<AlertRow[]>('*'),
        write: (rows) => this.writeRows(trx, orgId, rows),
        remove: async (ids) => {
          if (ids.length) await trx('alerts').where({ org_id: orgId, source: 'rule', source_id: ruleId }).whereIn('id', ids).delete();
        },
        finish: async (at, error) => {
          await trx('alert_rules').where({ org_id: orgId, id: ruleId }).update({ last_eval_at: at, last_error: error });
        },
      });
    });
  }

  /**
   * A batch of claimed rules in one transaction (the tick's path: a handful of statements per
   * batch instead of several per rule). Locks the rules as inRuleTx does, in id order, and their
   * alerts rows; `fn` writes every rule's rows at once. A failure rolls the whole batch back (the
   * evaluator then writes rule by rule, so one rule's failure stays its own).
   */
  async inRulesTx<T>(rules: Pick<RuleRow, 'org_id' | 'id'>[], at: Date, fn: (tx: BatchTx) => Promise<T>): Promise<T> {
    return this.knex.transaction(async (trx) => {
      const orgs = rules.map((r) => r.org_id);
      const ids = rules.map((r) => r.id);
      const { rows: locked } = await trx.raw<{ rows: { id: string }[] }>(
        `select r.id from alert_rules r join unnest(?::uuid[], ?::uuid[]) as k(org_id, id) on r.org_id = k.org_id and r.id = k.id
          where r.enabled and (r.last_eval_at is null or r.last_eval_at < ?::timestamptz)
          order by r.id for update of r`,
        [orgs, ids, at],
      );
      const lockedIds = new Set(locked.map((r) => r.id));
      const keep = rules.filter((r) => lockedIds.has(r.id));
      const instances = new Map<string, AlertRow[]>();
      if (keep.length) {
        const { rows } = await trx.raw<{ rows: AlertRow[] }>(
          `select a.* from alerts a join unnest(?::uuid[], ?::text[]) as k(org_id, source_id) on a.org_id = k.org_id and a.source_id = k.source_id
            where a.source = 'rule' order by a.id for update of a`,
          [keep.map((r) => r.org_id), keep.map((r) => r.id)],
        );
        for (const a of rows) {
          const list = instances.get(a.source_id);
          if (list) list.push(a);
          else instances.set(a.source_id, [a]);
        }
      }
      return fn({
        db: trx,
        locked: lockedIds,
        instances,
        write: (rows) => this.writeRows(trx, null, rows, true),
        remove: async (rows) => {
          if (rows.length === 0) return;
          await trx.raw(
            `delete from alerts a using unnest(?::uuid[], ?::uuid[]) as k(id, org_id) where a.id = k.id and a.org_id = k.org_id and a.source = 'rule'`,
            [rows.map((r) => r.id), rows.map((r) => r.org_id as string)],
          );
        },
        finish: async (results) => {
          if (results.length === 0) return;
          await trx.raw(
            `update alert_rules r set last_eval_at = ?::timestamptz, last_error = k.error
               from jsonb_to_recordset(?::jsonb) as k(org_id uuid, id uuid, error text) where r.org_id = k.org_id and r.id = k.id`,
            [at, JSON.stringify(results.map((x) => ({ org_id: x.orgId, id: x.ruleId, error: x.error })))],
          );
        },
      });
    });
  }

  /**
   * New rows in one insert, changed ones in one UPDATE, both FROM jsonb_to_recordset (one
   * parameter however many rows: a batch of rules may have thousands of instances). `perRowOrg`:
   * each row's own org_id is matched (a batch spans orgs); otherwise `orgId`.
   */
  private async writeRows(trx: Knex.Transaction, orgId: string | null, rows: AlertWrite[], perRowOrg = false): Promise<void> {
    const values = (r: AlertWrite) => {
      const v: Record<string, unknown> = { group_key: r.group_key, labels: r.labels, annotations: r.annotations, error: r.error, last_eval_at: r.last_eval_at };
      for (const c of STATE_COLUMNS) v[c] = r[c];
      return v;
    };
    const cols = ['group_key', 'labels', 'annotations', 'error', 'last_eval_at', ...STATE_COLUMNS];
    const inserts = rows.filter((r) => !r.id);
    if (inserts.length) {
      const identity = ['org_id', 'source', 'source_id', 'rule_id', 'fingerprint'];
      await trx.raw(
        `insert into alerts (${[...identity, ...cols].join(', ')})
         select ${[...identity, ...cols].map((c) => `v.${c}`).join(', ')}
           from jsonb_to_recordset(?::jsonb) as v(org_id uuid, source text, source_id text, rule_id uuid, fingerprint text, ${RECORD_TYPES})`,
        [JSON.stringify(inserts.map((r) => ({ org_id: r.org_id, source: r.source, source_id: r.source_id, rule_id: r.rule_id, fingerprint: r.fingerprint, ...values(r) })))],
      );
    }
    const updates = rows.filter((r) => r.id);
    if (updates.length) {
      await trx.raw(
        `update alerts a set ${cols.map((c) => `${c} = v.${c}`).join(', ')}, updated_at = now()
           from jsonb_to_recordset(?::jsonb) as v(id uuid, row_org uuid, ${RECORD_TYPES})
          where a.id = v.id and a.org_id is not distinct from ${perRowOrg ? 'v.row_org' : '?::uuid'}`,
        [JSON.stringify(updates.map((r) => ({ id: r.id, row_org: r.org_id, ...values(r) }))), ...(perRowOrg ? [] : [orgId])],
      );
    }
  }

  /** The alerts rows of one heartbeat or instance check (org null: instance-level). */
  async ofSource(orgId: string | null, source: AlertRow['source'], sourceId: string, trx: Knex = this.knex): Promise<AlertRow[]> {
    const q = trx('alerts').where({ source, source_id: sourceId });
    if (orgId === null) q.whereNull('org_id');
    else q.andWhere({ org_id: orgId });
    return q.forUpdate().select<AlertRow[]>('*');
  }

  /** Writes rows of a heartbeat or instance check in one transaction; `fn` reads them locked. */
  async inSourceTx<T>(
    orgId: string | null,
    source: AlertRow['source'],
    sourceId: string,
    fn: (rows: AlertRow[], write: (rows: AlertWrite[]) => Promise<void>, trx: Knex.Transaction) => Promise<T>,
  ): Promise<T> {
    return this.knex.transaction(async (trx) => fn(await this.ofSource(orgId, source, sourceId, trx), (rows) => this.writeRows(trx, orgId, rows), trx));
  }

  /** The notification settings last snapshotted onto a group (for a resolve that carries none); null: no such group. */
  async groupSettings(orgId: string | null, groupKey: string, db: Knex = this.knex): Promise<GroupSettings | null> {
    const q = db('alert_groups').where({ group_key: groupKey });
    if (orgId === null) q.whereNull('org_id');
    else q.andWhere({ org_id: orgId });
    const g = await q.first();
    if (!g) return null;
    return {
      orgId: g.org_id,
      source: g.source,
      sourceId: g.source_id,
      receiver: g.receiver,
      channels: g.channels,
      groupLabels: g.group_labels,
      groupWaitMs: g.group_wait_ms,
      groupIntervalMs: g.group_interval_ms,
      repeatIntervalMs: g.repeat_interval_ms,
    };
  }

  /** Alerts per state, every org (the sentinel_alerts gauge at scrape time). */
  async countByState(): Promise<{ state: AlertState; n: number }[]> {
    const { rows } = await this.knex.raw<{ rows: { state: AlertState; n: number }[] }>('select state, count(*)::int as n from alerts group by state');
    return rows;
  }
}
