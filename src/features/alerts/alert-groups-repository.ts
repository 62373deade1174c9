import type { Knex } from 'knex';
import type { AlertRow, GroupSettings } from './alert-types.js';

/** An alert_groups row, with its org's slug (for links in notifications). */
export interface AlertGroupRow {
  id: string;
  org_id: string | null;
  org_slug: string | null;
  group_key: string;
  source: AlertRow['source'];
  source_id: string;
  group_labels: Record<string, string>;
  receiver: string;
  channels: string[];
  group_wait_ms: number;
  group_interval_ms: number;
  repeat_interval_ms: number;
  seq: number;
  first_seen_at: Date | null;
  last_notified_at: Date | null;
  next_flush_at: Date | null;
}

/** What a flush writes once its notification is stored (or when nothing was sent: only next_flush_at). */
export interface FlushOutcome {
  /** Set when a notification was dispatched: seq moves on, last_notified_at and the alerts' notified-at are `now`. */
  sent: { firing: Pick<AlertRow, 'id' | 'fired_at'>[]; resolved: Pick<AlertRow, 'id' | 'resolved_at'>[] } | null;
  nextFlushAt: Date | null;
}

/** The group's transaction while its row is locked (one instance flushes a group at a time). */
export interface GroupTx {
  /** Its firing alerts, and resolved ones whose firing was notified and whose resolve is not yet; locked (NOWAIT: rejects with code 55P03 while an evaluation holds them). */
  alerts(): Promise<AlertRow[]>;
  finish(outcome: FlushOutcome): Promise<void>;
}

const ms = "* interval '1 millisecond'";

/**
 * The notification groups (alert_groups) and the notified-at columns of their alerts. Times are
 * parameters (the app's clock, which tests pin), never the database's now(). A group belongs to
 * one org (or none: Sentinel's own alerts) and its alerts are read by group key within that org.
 */
export class AlertGroupsRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Upserts the group with its source's settings and makes it due when its timers say. A new
   * group, or one with nothing pending (next_flush_at null: nothing fired at its last flush),
   * starts an episode (first_seen_at = now) and waits group_wait, as Alertmanager's new groups
   * do; a pending one keeps its time unless group_interval after its last notification of this
   * episode (or, none yet, the end of group_wait) comes sooner. Blocks while a flush holds the
   * row, so it builds on that flush's outcome. `db`: the transaction that wrote the alerts'
   * state, so the state and the group's wake-up commit together (or neither does).
   */
  async touch(groupKey: string, s: GroupSettings, now: Date, db: Knex = this.knex): Promise<void> {
    await db.raw(
      `insert into alert_groups as g (org_id, group_key, source, source_id, group_labels, receiver, channels,
                                      group_wait_ms, group_interval_ms, repeat_interval_ms, first_seen_at, next_flush_at, updated_at)
       values (?, ?, ?, ?, ?::jsonb, ?, ?::uuid[], ?, ?, ?, ?::timestamptz, ?::timestamptz + ? ${ms}, ?::timestamptz)
       on conflict (group_key) do update set
         group_labels = excluded.group_labels, receiver = excluded.receiver, channels = excluded.channels,
         group_wait_ms = excluded.group_wait_ms, group_interval_ms = excluded.group_interval_ms,
         repeat_interval_ms = excluded.repeat_interval_ms, updated_at = excluded.updated_at,
         first_seen_at = case when g.next_flush_at is null or g.first_seen_at is null then excluded.first_seen_at else g.first_seen_at end,
         next_flush_at = case
           when g.next_flush_at is null or g.first_seen_at is null then excluded.next_flush_at
           when g.last_notified_at >= g.first_seen_at then least(g.next_flush_at, g.last_notified_at + excluded.group_interval_ms ${ms})
           else least(g.next_flush_at, g.first_seen_at + excluded.group_wait_ms ${ms})
         end`,
      [
        s.orgId,
        groupKey,
        s.source,
        s.sourceId,
        JSON.stringify(s.groupLabels),
        s.receiver,
        s.channels,
        s.groupWaitMs,
        s.groupIntervalMs,
        s.repeatIntervalMs,
        now,
        now,
        s.groupWaitMs,
        now,
      ],
    );
  }

  /**
   * Makes the org's groups due at `now` when they have a flush pending or a firing alert (one
   * held by a suppression that just ended may have none: planFlush left it asleep until the end
   * it saw). Never later than a time already set.
   */
  async wakeOrg(orgId: string, now: Date): Promise<void> {
    await this.knex.raw(
      `update alert_groups g set next_flush_at = least(coalesce(g.next_flush_at, ?::timestamptz), ?::timestamptz)
        where g.org_id = ?::uuid
          and (g.next_flush_at is not null
               or exists (select 1 from alerts a where a.org_id = g.org_id and a.group_key = g.group_key and a.state = 'firing'))`,
      [now, now, orgId],
    );
  }

  /** The source's settings onto all its groups (their group labels stay: they are part of the key). */
  async reconfigure(s: Omit<GroupSettings, 'groupLabels'>): Promise<void> {
    const q = this.knex('alert_groups').where({ source: s.source, source_id: s.sourceId });
    if (s.orgId === null) q.whereNull('org_id');
    else q.andWhere({ org_id: s.orgId });
    await q.update({
      receiver: s.receiver,
      channels: s.channels,
      group_wait_ms: s.groupWaitMs,
      group_interval_ms: s.groupIntervalMs,
      repeat_interval_ms: s.repeatIntervalMs,
      updated_at: this.knex.fn.now(),
    });
  }

  /**
   * Claims one group due at `now` (FOR UPDATE SKIP LOCKED: another instance takes another group)
   * other than `skip`, and runs `fn` in its transaction; undefined when none is due.
   */
  async withDueGroup<T>(now: Date, skip: string[], fn: (g: AlertGroupRow, tx: GroupTx) => Promise<T>): Promise<{ value: T } | undefined> {
    return this.knex.transaction(async (trx) => {
      const { rows } = await trx.raw<{ rows: AlertGroupRow[] }>(
        `select g.*, o.slug as org_slug from alert_groups g left join organizations o on o.id = g.org_id
          where g.next_flush_at <= ?::timestamptz and not (g.id = any(?::uuid[]))
          order by g.next_flush_at limit 1 for update of g skip locked`,
        [now, skip],
      );
      const g = rows[0];
      if (!g) return undefined;
      const tx: GroupTx = {
        alerts: () =>
          trx('alerts')
            .where({ group_key: g.group_key })
            .where((w) => (g.org_id === null ? w.whereNull('org_id') : w.where({ org_id: g.org_id })))
            .where((w) =>
              w.where({ state: 'firing' }).orWhereRaw(
                `resolved_at is not null and fired_at is not null and firing_notified_at >= fired_at
                 and (resolved_notified_at is null or resolved_notified_at < resolved_at)`,
              ),
            )
            .orderBy([{ column: 'fired_at' }, { column: 'id' }])
            // Locked without waiting: an evaluation (or the alert sink) holds its alerts' rows and
            // then touches this group, so waiting here would deadlock; busy, the flush gives way
            // (lock_not_available) and the group is flushed at the next tick.
            .forUpdate()
            .noWait()
            .select<AlertRow[]>('*'),
        finish: (o) => this.finish(trx, g, now, o),
      };
      return { value: await fn(g, tx) };
    });
  }

  private async finish(trx: Knex.Transaction, g: AlertGroupRow, now: Date, o: FlushOutcome): Promise<void> {
    if (o.sent) {
      // Only the episode that was sent: an alert that resolved and fired again meanwhile (new
      // fired_at) is notified afresh, not marked by this notification. One statement per kind,
      // however many alerts the group has. Compared to the millisecond, as JavaScript read it.
      const mark = async (column: 'firing_notified_at' | 'resolved_notified_at', episode: 'fired_at' | 'resolved_at', rows: { id: string; at: Date | null }[]) => {
        rows = rows.filter((r) => r.at !== null);
        if (rows.length === 0) return;
        // Never before the episode it marks: a flush whose now is earlier than fired_at (a tick's
        // now taken at its start, another daemon's clock) still counts as having sent it.
        await trx.raw(
          `update alerts a set ${column} = greatest(?::timestamptz, a.${episode}) from unnest(?::uuid[], ?::timestamptz[]) as v(id, at)
            where a.id = v.id and date_trunc('milliseconds', a.${episode}) = v.at and a.org_id is not distinct from ?::uuid`,
          [now, rows.map((r) => r.id), rows.map((r) => r.at!.toISOString()), g.org_id],
        );
      };
      await mark('firing_notified_at', 'fired_at', o.sent.firing.map((a) => ({ id: a.id, at: a.fired_at })));
      await mark('resolved_notified_at', 'resolved_at', o.sent.resolved.map((a) => ({ id: a.id, at: a.resolved_at })));
      // A deleted rule's alerts stayed only for this resolved notification: sent, they go, and
      // the group with its last one (nothing would ever flush it again).
      if (g.source === 'rule' && o.sent.resolved.length > 0) {
        const gone = await trx('alerts')
          .where({ group_key: g.group_key, org_id: g.org_id, source: 'rule', state: 'resolved' })
          .whereNull('rule_id')
          .whereRaw('resolved_notified_at >= resolved_at')
          .delete();
        if (gone > 0) {
          const left = await trx('alerts').where({ group_key: g.group_key, org_id: g.org_id }).first('id');
          if (!left) {
            await trx('alert_groups').where({ id: g.id }).delete();
            return;
          }
        }
      }
    }
    await trx('alert_groups')
      .where({ id: g.id })
      .update({
        ...(o.sent ? { seq: trx.raw('seq + 1'), last_notified_at: now } : {}),
        next_flush_at: o.nextFlushAt,
        updated_at: now,
      });
  }
}
