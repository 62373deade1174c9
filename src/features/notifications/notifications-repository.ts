import type { Knex } from 'knex';
import type { ChannelType } from './notifications-schemas.js';

export type NotificationState = 'queued' | 'sent' | 'retrying' | 'failed';
export type NotificationStatus = 'firing' | 'resolved' | 'test';
export type AttemptOutcome = 'sent' | 'retrying' | 'failed';

export interface NotificationRow {
  org_id: string;
  id: string;
  channel_id: string;
  dedup_key: string;
  group_key: string;
  rule_id: string | null;
  status: NotificationStatus;
  /** The v4 payload (webhook body without signature); email and Slack render from it. */
  payload: Record<string, unknown>;
  state: NotificationState;
  attempts: number;
  last_error: string | null;
  last_status_code: number | null;
  resend_of: string | null;
  created_at: Date;
  updated_at: Date;
  sent_at: Date | null;
}

export interface AttemptRow {
  org_id: string;
  notification_id: string;
  attempt: number;
  at: Date;
  outcome: AttemptOutcome;
  status_code: number | null;
  error: string | null;
  latency_ms: number;
}

export type NewNotification = Pick<NotificationRow, 'channel_id' | 'dedup_key' | 'group_key' | 'rule_id' | 'status' | 'payload'> & { resend_of?: string | null };

export interface NotificationFilter {
  state?: NotificationState;
  ruleId?: string;
  channelId?: string;
}

/** An attempt's result as the delivery records it. */
export interface AttemptResult {
  attempt: number;
  outcome: AttemptOutcome;
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
}

const TABLE = 'notifications';

/**
 * The outbox (notifications) and its delivery record (notification_attempts). Tenant-scoped
 * methods take orgId; `queuedWithoutAttempt` says why it is not.
 */
export class NotificationsRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Stores the notification unless this channel already has one with its dedup key (the outbox
   * is idempotent: a dispatch repeated after a crash stores nothing new); answers the stored row.
   */
  async insertOnce(orgId: string, n: NewNotification): Promise<NotificationRow> {
    const row = { org_id: orgId, ...n, payload: JSON.stringify(n.payload), state: 'queued', resend_of: n.resend_of ?? null };
    const [inserted] = await this.knex(TABLE).insert(row).onConflict(['org_id', 'channel_id', 'dedup_key']).ignore().returning('*');
    if (inserted) return inserted as NotificationRow;
    const found = await this.knex<NotificationRow>(TABLE).where({ org_id: orgId, channel_id: n.channel_id, dedup_key: n.dedup_key }).first();
    if (!found) throw new Error(`notification ${n.dedup_key} neither inserted nor found`);
    return found;
  }

  async find(orgId: string, id: string): Promise<NotificationRow | undefined> {
    return this.knex<NotificationRow>(TABLE).where({ org_id: orgId, id }).first();
  }

  /**
   * Queued notifications (not tests, which are sent in the request) created at least `minAgeMs`
   * ago, oldest first: the sweep re-enqueues them (a crash between storing and enqueueing).
   * Across orgs, deliberately: the sweep is the instance's, and each row keeps its org_id.
   */
  async queuedWithoutAttempt(minAgeMs: number, limit: number): Promise<Pick<NotificationRow, 'org_id' | 'id'>[]> {
    return this.knex<NotificationRow>(TABLE)
      .whereIn('state', ['queued'])
      .whereNot({ status: 'test' })
      .where('attempts', 0)
      .whereRaw('created_at <= now() - make_interval(secs => ?)', [minAgeMs / 1000])
      .orderBy('created_at')
      .limit(limit)
      .select('org_id', 'id');
  }

  /**
   * Undelivered notifications (queued or retrying, not tests) idle for `idleMs` whose delivery
   * task is gone: no pending or running task (one whose lease ran out on its last attempt counts
   * as gone: the queue fails it) under its dedupe keys, `notify:<id>` and the sweep's
   * `notify:<id>#<n>`. A worker that died mid-attempt on the task's last attempt leaves such a
   * row (attempts counted, the attempt unrecorded). `recorded`: the row's last attempt has its
   * notification_attempts row. Across orgs like queuedWithoutAttempt. Reads the queue's table
   * (the WorkQueue interface has no lookup; read only, by its unique dedupe_key).
   */
  async withoutLiveTask(idleMs: number, limit: number): Promise<{ org_id: string; id: string; attempts: number; recorded: boolean }[]> {
    const { rows } = await this.knex.raw<{ rows: { org_id: string; id: string; attempts: number; recorded: boolean }[] }>(
      `select n.org_id, n.id, n.attempts,
              exists (select 1 from notification_attempts a where a.org_id = n.org_id and a.notification_id = n.id and a.attempt = n.attempts) as recorded
         from notifications n
        where n.state in ('queued', 'retrying') and n.status <> 'test'
          and n.updated_at <= now() - make_interval(secs => :idle)
          and not exists (
                select 1 from queue_tasks q
                 where q.dedupe_key = any (array['notify:' || n.id] || array(select 'notify:' || n.id || '#' || g from generate_series(0, n.attempts) g))
                   and (q.state = 'pending'
                        or (q.state = 'running' and not (q.lease_until < now() and q.max_attempts is not null and q.attempts >= q.max_attempts))))
        order by n.updated_at
        limit :limit`,
      { idle: idleMs / 1000, limit },
    );
    return rows;
  }

  /**
   * Settles an attempt no one will finish (withoutLiveTask): records it (when `record`) with
   * `error`, at the time it began, and sets the row's state (`retrying`: the sweep enqueues it
   * again; `failed`: no attempts left). Guarded by the attempt count and the idle time, so of two
   * sweeps at once one does it; false when this one did not.
   */
  async abandonAttempt(orgId: string, id: string, o: { attempts: number; idleMs: number; state: NotificationState; error: string; record: boolean }): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const [before] = await trx<NotificationRow>(TABLE)
        .where({ org_id: orgId, id, attempts: o.attempts })
        .whereIn('state', ['queued', 'retrying'])
        .whereRaw('updated_at <= now() - make_interval(secs => ?)', [o.idleMs / 1000])
        .forUpdate()
        .select('updated_at');
      if (!before) return false;
      if (o.record) {
        await trx('notification_attempts')
          .insert({ org_id: orgId, notification_id: id, attempt: o.attempts, at: before.updated_at, outcome: o.state, status_code: null, error: o.error, latency_ms: 0 })
          .onConflict(['org_id', 'notification_id', 'attempt'])
          .ignore();
      }
      await trx(TABLE)
        .where({ org_id: orgId, id })
        .update({ state: o.state, updated_at: trx.fn.now(), ...(o.record || o.state === 'failed' ? { last_error: o.error, last_status_code: null } : {}) });
      return true;
    });
  }

  /**
   * Before an attempt begins: when the row's last counted attempt has no record (its worker died
   * during it, and the queue claimed the task again once the lease ran out), records it as
   * interrupted, at the time it began. Answers the attempt number recorded, or null.
   */
  async recordInterrupted(orgId: string, id: string, error: string): Promise<number | null> {
    const { rows } = await this.knex.raw<{ rows: { attempt: number }[] }>(
      `insert into notification_attempts (org_id, notification_id, attempt, at, outcome, status_code, error, latency_ms)
       select n.org_id, n.id, n.attempts, n.updated_at, 'retrying', null, :error, 0
         from notifications n
        where n.org_id = :org and n.id = :id and n.state in ('queued', 'retrying') and n.attempts > 0
          and not exists (select 1 from notification_attempts a where a.org_id = n.org_id and a.notification_id = n.id and a.attempt = n.attempts)
       on conflict (org_id, notification_id, attempt) do nothing
       returning attempt`,
      { org: orgId, id, error },
    );
    return rows[0]?.attempt ?? null;
  }

  /** Counts an attempt as begun; undefined when the row is gone or no longer due (sent or failed). */
  async beginAttempt(orgId: string, id: string): Promise<NotificationRow | undefined> {
    const [row] = await this.knex<NotificationRow>(TABLE)
      .where({ org_id: orgId, id })
      .whereIn('state', ['queued', 'retrying'])
      .update({ attempts: this.knex.raw('attempts + 1') as never, updated_at: this.knex.fn.now() as never })
      .returning('*');
    return row as NotificationRow | undefined;
  }

  /** The attempt's row and the notification's state, in one transaction. */
  async recordAttempt(orgId: string, id: string, r: AttemptResult): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx('notification_attempts')
        .insert({ org_id: orgId, notification_id: id, attempt: r.attempt, outcome: r.outcome, status_code: r.statusCode, error: r.error, latency_ms: r.latencyMs })
        .onConflict(['org_id', 'notification_id', 'attempt'])
        .merge();
      await trx(TABLE)
        .where({ org_id: orgId, id })
        .update({
          state: r.outcome,
          last_error: r.error,
          last_status_code: r.statusCode,
          updated_at: trx.fn.now(),
          ...(r.outcome === 'sent' ? { sent_at: trx.fn.now() } : {}),
        });
    });
  }

  /** Newest first, with the channel's type; `afterId` is the keyset cursor. */
  async list(orgId: string, f: NotificationFilter, limit: number, afterId?: string): Promise<(NotificationRow & { channel_type: ChannelType })[]> {
    const q = this.knex(`${TABLE} as n`)
      .join('notification_channels as c', (j) => j.on('c.org_id', 'n.org_id').andOn('c.id', 'n.channel_id'))
      .where('n.org_id', orgId)
      .orderBy([
        { column: 'n.created_at', order: 'desc' },
        { column: 'n.id', order: 'desc' },
      ])
      .limit(limit)
      .select('n.*', 'c.type as channel_type');
    if (f.state) q.where('n.state', f.state);
    if (f.ruleId) q.where('n.rule_id', f.ruleId);
    if (f.channelId) q.where('n.channel_id', f.channelId);
    if (afterId !== undefined) q.whereRaw('(n.created_at, n.id) < (select x.created_at, x.id from notifications x where x.org_id = ? and x.id = ?)', [orgId, afterId]);
    return q;
  }

  /**
   * An org's delivery attempts in [start, end) per channel (channel tests left out): sent ones
   * are deliveries, the others (retrying, failed) failures. Ordered by channel name.
   */
  async deliveriesByChannel(orgId: string, start: Date, end: Date): Promise<{ channel: string; type: string; deliveries: number; failures: number }[]> {
    const { rows } = await this.knex.raw<{ rows: { channel: string; type: string; deliveries: number; failures: number }[] }>(
      `select c.name as channel, c.type,
              count(*) filter (where t.outcome = 'sent')::int as deliveries,
              count(*) filter (where t.outcome <> 'sent')::int as failures
         from notification_attempts t
         join notifications n on n.org_id = t.org_id and n.id = t.notification_id
         join notification_channels c on c.org_id = n.org_id and c.id = n.channel_id
        where t.org_id = :org and n.status <> 'test' and t.at >= :start and t.at < :end
        group by c.id, c.name, c.type
        order by c.name, c.id`,
      { org: orgId, start, end },
    );
    return rows;
  }

  async attemptsOf(orgId: string, ids: string[]): Promise<AttemptRow[]> {
    if (ids.length === 0) return [];
    return this.knex<AttemptRow>('notification_attempts').where({ org_id: orgId }).whereIn('notification_id', ids).orderBy([{ column: 'notification_id' }, { column: 'attempt' }]);
  }
}
