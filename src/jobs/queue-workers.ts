import { randomUUID } from 'node:crypto';
import BetterQueue from 'better-queue';
import type { Logger } from 'pino';
import { errorText, ShutdownAbort } from './run-errors.js';
import type { TaskRow, TaskStore } from './task-store.js';

/** A task as the workers run it (the app binds the modules' TaskSpecs to their services). */
export interface QueueTaskDef {
  name: string;
  maxAttempts: number;
  /** Delay before the first retry; doubles after each failed attempt. */
  backoffMs: number;
  /** No retry waits longer (the doubling stops there); default: no cap. */
  maxBackoffMs?: number;
  timeoutMs?: number;
  run(payload: Record<string, unknown>, signal: AbortSignal, attempt: { attempt: number; maxAttempts: number }): Promise<void>;
}

export interface QueueWorkersOptions {
  /** Tasks run at once by this process. */
  concurrency: number;
  /** How often the store is asked for due work (tasks from other processes, retries coming due). */
  pollMs: number;
  /** How long a claim holds without renewal; renewed every third of it while the task runs. */
  leaseMs: number;
  /** Finished tasks are kept this long (done) … */
  keepDoneMs: number;
  /** … and this long (failed: the operator may want to look). */
  keepFailedMs: number;
}

/** The delay before retrying after failed attempt number `attempt` (1 for the first). */
export function retryDelayMs(def: Pick<QueueTaskDef, 'backoffMs' | 'maxBackoffMs'>, attempt: number): number {
  return Math.min(def.backoffMs * 2 ** (attempt - 1), def.maxBackoffMs ?? Infinity);
}

interface Claimed {
  id: string;
  task: string;
  payload: Record<string, unknown>;
  attempts: number;
  lockId: string;
}

const PRUNE_EVERY_MS = 3_600_000;

/**
 * better-queue's custom store interface over queue_tasks. better-queue keeps a count of queued
 * tasks in memory and fetches only while it believes the count is above zero; here the truth is
 * PostgreSQL, written by any process. So `putTask` stores nothing (`enqueue` committed the row
 * before better-queue heard of it) and `getTask` finds nothing (a push is never merged into a
 * stored task): a push of a task id is only a wake-up that makes better-queue count one more and
 * fetch. `takeFirstN` claims whatever is due, oldest first, which need not be the task pushed:
 * another process may have taken that one. Claims live in the database (with a lease), so
 * `getRunningTasks` has nothing to resume: an expired lease makes the task claimable again.
 */
class PgStoreAdapter implements BetterQueue.Store<Claimed> {
  readonly #locks = new Map<string, Record<string, Claimed>>();

  constructor(
    private readonly store: TaskStore,
    private readonly instance: string,
    private readonly leaseMs: number,
    private readonly logger: Logger,
  ) {}

  connect(cb: (error: unknown, length: number) => void): void {
    this.store.countDue().then(
      (n) => cb(null, n),
      (err: unknown) => cb(err, 0),
    );
  }

  getTask(_taskId: unknown, cb: (error: unknown, task: Claimed) => void): void {
    cb(null, undefined as unknown as Claimed);
  }

  putTask(_taskId: unknown, _task: Claimed, _priority: number, cb: (error: unknown) => void): void {
    cb(null);
  }

  deleteTask(taskId: unknown, cb: () => void): void {
    this.store.delete(String(taskId)).then(cb, cb);
  }

  takeFirstN(n: number, cb: (error: unknown, lockId: string) => void): void {
    const lockId = `${this.instance}/${randomUUID()}`;
    this.store.claim(n, lockId, this.leaseMs).then(
      (rows: TaskRow[]) => {
        if (!rows.length) return cb(null, undefined as unknown as string);
        this.#locks.set(lockId, Object.fromEntries(rows.map((r) => [r.id, { id: r.id, task: r.task, payload: r.payload, attempts: r.attempts, lockId }])));
        cb(null, lockId);
      },
      (err: unknown) => {
        this.logger.error({ err }, 'queue: claiming tasks failed; retried at the next poll');
        cb(err, undefined as unknown as string);
      },
    );
  }

  takeLastN(n: number, cb: (error: unknown, lockId: string) => void): void {
    this.takeFirstN(n, cb);
  }

  getLock(lockId: string, cb: (error: unknown, tasks: Record<string, Claimed>) => void): void {
    cb(null, this.#locks.get(lockId) ?? {});
  }

  getRunningTasks(cb: (error: unknown, running: Record<string, Record<string, Claimed>>) => void): void {
    cb(null, {});
  }

  releaseLock(lockId: string, cb: (error: unknown) => void): void {
    // The task's state was recorded by the process function; only the in-memory batch goes.
    this.#locks.delete(lockId);
    cb(null);
  }
}

/**
 * The daemon's queue workers: better-queue runs up to `concurrency` tasks at once from the
 * PostgreSQL store. Each claim counts an attempt; a failed attempt is retried after
 * `backoffMs · 2^(attempt-1)` until `maxAttempts`, then the task is `failed` with its last error.
 * A task interrupted by shutdown goes back to pending without spending an attempt; one whose
 * worker died is claimed again when its lease runs out.
 */
export class QueueWorkers {
  readonly #inflight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  #queue: BetterQueue<Claimed> | null = null;
  #poll: NodeJS.Timeout | undefined;
  #stopping = false;
  #lastPrune = 0;

  constructor(
    private readonly store: TaskStore,
    private readonly defs: ReadonlyMap<string, QueueTaskDef>,
    private readonly o: QueueWorkersOptions,
    private readonly instance: string,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.#queue || this.#stopping) return;
    const adapter = new PgStoreAdapter(this.store, this.instance, this.o.leaseMs, this.logger);
    this.#queue = new BetterQueue<Claimed>((task: Claimed, cb: (err?: unknown) => void) => void this.execute(task).then(() => cb(), cb), {
      store: adapter,
      concurrent: this.o.concurrency,
      // Retries are the store's (durable, with backoff), not better-queue's in-memory ones.
      maxRetries: 0,
      id: 'id',
    });
    this.#queue.on('error', (err: unknown) => this.logger.error({ err }, 'queue error'));
    this.#poll = setInterval(() => void this.poll(), this.o.pollMs);
    this.#poll.unref();
  }

  /** A task was just stored by this process: fetch now rather than at the next poll. */
  wake(id: string): void {
    if (!this.#queue || this.#stopping || this.#inflight.has(id)) return;
    this.#queue.push({ id } as Claimed);
  }

  /** One poll (the timer's; tests call it to skip the wait). */
  async poll(): Promise<void> {
    if (!this.#queue || this.#stopping) return;
    try {
      const free = this.o.concurrency - this.#inflight.size;
      if (free > 0) for (const id of await this.store.due(free)) this.wake(id);
      if (Date.now() - this.#lastPrune > PRUNE_EVERY_MS) {
        this.#lastPrune = Date.now();
        const pruned = await this.store.prune(new Date(Date.now() - this.o.keepDoneMs), new Date(Date.now() - this.o.keepFailedMs));
        if (pruned) this.logger.info({ pruned }, 'queue: finished tasks pruned');
      }
    } catch (err) {
      this.logger.warn({ err }, 'queue: poll failed');
    }
  }

  get running(): number {
    return this.#inflight.size;
  }

  /** Started and not stopping: taking work. */
  get active(): boolean {
    return this.#queue !== null && !this.#stopping;
  }

  /** Stops fetching; tasks under way go on (see idle, abortAll). */
  pause(): void {
    this.#stopping = true;
    clearInterval(this.#poll);
    this.#queue?.pause();
  }

  async idle(): Promise<void> {
    await Promise.allSettled([...this.#inflight.values()].map((r) => r.done));
  }

  abortAll(): number {
    for (const r of this.#inflight.values()) r.controller.abort(new ShutdownAbort('shutdown'));
    return this.#inflight.size;
  }

  async destroy(): Promise<void> {
    this.pause();
    const q = this.#queue;
    this.#queue = null;
    if (q) await new Promise<void>((resolve) => q.destroy(() => resolve()));
  }

  private execute(t: Claimed): Promise<void> {
    // Claimed by a fetch that was under way when pause() came: give it back untouched (the
    // attempt does not count) rather than start work during shutdown.
    if (this.#stopping) {
      const released = this.store.release(t.id, t.lockId).then(
        () => this.logger.info({ task: t.task, task_id: t.id }, 'queue: task claimed while stopping; released, pending again'),
        (err: unknown) => this.logger.warn({ task: t.task, task_id: t.id, err }, 'queue: could not release a task claimed while stopping; its lease will run out'),
      );
      // idle() waits for the release too.
      this.#inflight.set(t.id, { controller: new AbortController(), done: released });
      return released.finally(() => this.#inflight.delete(t.id));
    }
    const done = this.attempt(t).finally(() => this.#inflight.delete(t.id));
    return done;
  }

  private async attempt(t: Claimed): Promise<void> {
    const { store, logger } = this;
    const log = { task: t.task, task_id: t.id, attempt: t.attempts };
    const def = this.defs.get(t.task);
    if (!def) {
      logger.error(log, 'queue: no module declares this task; marked failed');
      await store.markFailed(t.id, t.lockId, `unknown task '${t.task}'`).catch((err: unknown) => logger.error({ ...log, err }, 'queue: could not record a task'));
      return;
    }
    const controller = new AbortController();
    const timer = def.timeoutMs !== undefined ? setTimeout(() => controller.abort(new Error(`timed out after ${def.timeoutMs} ms`)), def.timeoutMs) : undefined;
    const renew = setInterval(() => {
      store.renew(t.id, t.lockId, this.o.leaseMs).then(
        (held) => (held ? undefined : controller.abort(new Error('lost its claim on the task (lease expired and another worker took it)'))),
        (err: unknown) => logger.warn({ ...log, err }, 'queue: could not renew a lease'),
      );
    }, Math.max(10, Math.floor(this.o.leaseMs / 3)));
    const running = (async () => {
      logger.debug(log, 'queue: task started');
      // The task's outcome first, then its recording: a recording that fails (the database away)
      // must not turn a task that succeeded into a failed attempt run again.
      let failure: { err: unknown } | null = null;
      try {
        await def.run(t.payload, controller.signal, { attempt: t.attempts, maxAttempts: def.maxAttempts });
      } catch (err) {
        failure = { err };
      } finally {
        clearTimeout(timer);
        clearInterval(renew);
      }
      if (!failure) {
        await store.markDone(t.id, t.lockId);
        logger.info(log, 'queue: task done');
        return;
      }
      const { err } = failure;
      const reason: unknown = controller.signal.reason;
      if (reason instanceof ShutdownAbort || err instanceof ShutdownAbort) {
        await store.release(t.id, t.lockId);
        logger.warn(log, 'queue: task interrupted by shutdown; pending again');
      } else if (t.attempts >= def.maxAttempts) {
        await store.markFailed(t.id, t.lockId, errorText(err));
        logger.error({ ...log, err: errorText(err) }, 'queue: task failed on its last attempt');
      } else {
        const delay = retryDelayMs(def, t.attempts);
        await store.markRetry(t.id, t.lockId, errorText(err), delay);
        logger.warn({ ...log, err: errorText(err), retry_in_ms: delay }, 'queue: task attempt failed; retried later');
      }
    })().catch((err: unknown) => logger.error({ ...log, err }, 'queue: could not record a task; its lease will run out and it is tried again'));
    this.#inflight.set(t.id, { controller, done: running });
    await running;
  }
}
