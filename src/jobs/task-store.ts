import type { Knex } from 'knex';

/*
 * The durable queue's rows (migrations/20261205000001_create_job_tables.ts) and the only SQL on
 * them. Every state change of a claimed task is guarded by `locked_by = <this claim>` and
 * `state = 'running'`: a worker that lost its lease (it stalled past it and another process took
 * the task over) cannot overwrite what the new owner records.
 */

export type TaskState = 'pending' | 'running' | 'done' | 'failed';
export const TASK_STATES: readonly TaskState[] = ['pending', 'running', 'done', 'failed'];

export interface TaskRow {
  id: string;
  task: string;
  payload: Record<string, unknown>;
  state: TaskState;
  attempts: number;
  /** The task's attempt cap (null: queued before the column existed; no cap on reclaims). */
  max_attempts: number | null;
  last_error: string | null;
  dedupe_key: string | null;
  next_attempt_at: Date;
  locked_by: string | null;
  lease_until: Date | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

export interface NewTask {
  task: string;
  payload: Record<string, unknown>;
  /** Enqueueing the same key again does nothing (the scheduler's `job:<name>@<slot>`). */
  dedupeKey?: string;
  /** Not before (default now). */
  notBefore?: Date;
  /** The task's maxAttempts: a claim fails a task whose lease ran out on its last attempt. */
  maxAttempts?: number;
}

/**
 * Due for a claim: pending and its time has come, or running with a lease that ran out (its
 * worker died or stalled). The one definition of "due", for `claim`, `due` and `countDue`.
 */
const DUE = "((state = 'pending' and next_attempt_at <= now()) or (state = 'running' and lease_until < now()))";
/** A running task whose lease ran out on its last attempt: failed by the claim, not taken up again. */
const SPENT = "(state = 'running' and lease_until < now() and max_attempts is not null and attempts >= max_attempts)";

export class TaskStore {
  constructor(private readonly knex: Knex) {}

  /** Committed when it resolves; the id, or null when a task with the same dedupe key exists. */
  async insert(t: NewTask): Promise<string | null> {
    const row = { task: t.task, payload: JSON.stringify(t.payload), dedupe_key: t.dedupeKey ?? null, next_attempt_at: t.notBefore ?? this.knex.fn.now(), max_attempts: t.maxAttempts ?? null };
    const q = this.knex('queue_tasks').insert(row).returning<{ id: string }[]>('id');
    const rows = t.dedupeKey ? await q.onConflict('dedupe_key').ignore() : await q;
    return rows[0]?.id ?? null;
  }

  /**
   * Claims up to `n` due tasks for `lockId`: pending ones whose time has come, and running ones
   * whose lease ran out (their worker died or stalled). Each claim counts as an attempt. A task
   * whose lease ran out on its last attempt (`max_attempts`) is marked failed instead. SKIP
   * LOCKED: concurrent claimers (other processes) take different tasks instead of waiting.
   */
  async claim(n: number, lockId: string, leaseMs: number): Promise<TaskRow[]> {
    await this.knex.raw(
      `update queue_tasks t
          set state = 'failed', locked_by = null, lease_until = null, finished_at = now(), updated_at = now(),
              last_error = 'lease expired on its last attempt (its worker died or stalled)' || coalesce('; before: ' || t.last_error, '')
        where t.id in (select id from queue_tasks where ${SPENT} for update skip locked)`,
    );
    const { rows } = await this.knex.raw<{ rows: TaskRow[] }>(
      `update queue_tasks t
          set state = 'running', attempts = t.attempts + 1, locked_by = ?, lease_until = now() + (? * interval '1 millisecond'), updated_at = now()
        where t.id in (
          select id from queue_tasks
           where ${DUE} and not ${SPENT}
           order by next_attempt_at, created_at
           limit ?
           for update skip locked)
        returning t.*`,
      [lockId, leaseMs, n],
    );
    return rows;
  }

  /** The ids of due tasks (see DUE), oldest first. */
  async due(limit: number): Promise<string[]> {
    const rows = await this.knex('queue_tasks').whereRaw(DUE).orderBy('next_attempt_at').limit(limit).select<{ id: string }[]>('id');
    return rows.map((r) => r.id);
  }

  async countDue(): Promise<number> {
    const [row] = await this.knex('queue_tasks').whereRaw(DUE).count<{ count: number }[]>('* as count');
    return Number(row.count);
  }

  /** Extends the lease of a task this claim still holds; false when it no longer does. */
  async renew(id: string, lockId: string, leaseMs: number): Promise<boolean> {
    const n = await this.knex('queue_tasks')
      .where({ id, locked_by: lockId, state: 'running' })
      .update({ lease_until: this.knex.raw("now() + (? * interval '1 millisecond')", [leaseMs]), updated_at: this.knex.fn.now() });
    return n === 1;
  }

  async markDone(id: string, lockId: string): Promise<void> {
    await this.held(id, lockId).update({ state: 'done', locked_by: null, lease_until: null, last_error: null, finished_at: this.knex.fn.now(), updated_at: this.knex.fn.now() });
  }

  async markFailed(id: string, lockId: string, error: string): Promise<void> {
    await this.held(id, lockId).update({ state: 'failed', locked_by: null, lease_until: null, last_error: error, finished_at: this.knex.fn.now(), updated_at: this.knex.fn.now() });
  }

  /** A failed attempt with attempts left: pending again after `delayMs`. */
  async markRetry(id: string, lockId: string, error: string, delayMs: number): Promise<void> {
    await this.held(id, lockId).update({
      state: 'pending',
      locked_by: null,
      lease_until: null,
      last_error: error,
      next_attempt_at: this.knex.raw("now() + (? * interval '1 millisecond')", [delayMs]),
      updated_at: this.knex.fn.now(),
    });
  }

  /** Interrupted by shutdown: pending again at once, and the attempt does not count. */
  async release(id: string, lockId: string): Promise<void> {
    await this.held(id, lockId).update({ state: 'pending', locked_by: null, lease_until: null, attempts: this.knex.raw('greatest(attempts - 1, 0)'), updated_at: this.knex.fn.now() });
  }

  async delete(id: string): Promise<void> {
    await this.knex('queue_tasks').where({ id }).delete();
  }

  async countByState(): Promise<Record<TaskState, number>> {
    const rows = await this.knex('queue_tasks').select('state').count<{ state: TaskState; count: number }[]>('* as count').groupBy('state');
    const out = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
    for (const r of rows) out[r.state] = Number(r.count);
    return out;
  }

  /** Removes finished tasks older than the cutoffs; returns how many went. */
  async prune(doneBefore: Date, failedBefore: Date): Promise<number> {
    return this.knex('queue_tasks')
      .where((w) => w.where('state', 'done').andWhere('finished_at', '<', doneBefore))
      .orWhere((w) => w.where('state', 'failed').andWhere('finished_at', '<', failedBefore))
      .delete();
  }

  private held(id: string, lockId: string) {
    return this.knex('queue_tasks').where({ id, locked_by: lockId, state: 'running' });
  }
}
