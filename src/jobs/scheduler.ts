import { createTask, type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { CronSchedule } from '../core/cron.js';
import type { JobTrigger } from '../core/jobs.js';

export interface ScheduledJob {
  name: string;
  schedule: CronSchedule;
}

/** Queues one run of `job` for `slot`; false when that slot was already queued (by anyone). */
export type EnqueueSlot = (job: string, slot: Date, trigger: JobTrigger) => Promise<boolean>;

export interface SchedulerOptions {
  /** First retry of a slot whose enqueue failed (the database away); doubles, capped at retryMaxMs. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How often the catch-up check runs while the daemon is up (a slot lost to an outage longer than its retries). */
  catchUpEveryMs?: number;
}

const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 60_000;
const CATCH_UP_EVERY_MS = 5 * 60_000;

/**
 * node-cron only enqueues (DESIGN §7): at each slot of a job's schedule (UTC) it queues a run
 * keyed by (job, slot), and the queue's workers run it. Every daemon on the database ticks, and
 * the key makes the first enqueue of a slot the only one, so a slot runs once however many
 * daemons there are. node-cron hands the tick the slot it planned (to the second), not the time
 * the timer fired, so late timers still agree on the key.
 *
 * On start, a job whose last run started before its schedule's latest slot missed that slot
 * while no daemon was up: it is queued once, for that slot (trigger catch-up), however many
 * slots went by. A job that never ran has missed nothing: a fresh install does not start with a
 * backup, a restore drill and a report at once.
 *
 * A slot whose enqueue fails (the database briefly away) is retried with backoff until the job's
 * next slot comes; and the catch-up check runs every few minutes while the daemon is up, so a slot
 * lost to a longer outage is still queued once. Both are safe to repeat: the (job, slot) key
 * dedupes.
 */
export class Scheduler {
  #tasks: ScheduledTask[] = [];
  /** Cancels the pending retry waits. */
  readonly #retries = new Set<() => void>();
  #running = false;
  /** Per job, the latest missed slot reported in this turn of the event loop (see missed()). */
  readonly #missed = new Map<string, Date>();
  #catchUpTimer: NodeJS.Timeout | null = null;
  readonly #o: Required<SchedulerOptions>;

  constructor(
    private readonly jobs: readonly ScheduledJob[],
    private readonly enqueue: EnqueueSlot,
    /** The start time of each job's latest run, by job name. */
    private readonly lastStarts: () => Promise<Map<string, Date>>,
    private readonly clock: Clock,
    private readonly logger: Logger,
    o: SchedulerOptions = {},
  ) {
    this.#o = { retryBaseMs: o.retryBaseMs ?? RETRY_BASE_MS, retryMaxMs: o.retryMaxMs ?? RETRY_MAX_MS, catchUpEveryMs: o.catchUpEveryMs ?? CATCH_UP_EVERY_MS };
  }

  /** The seam a tick goes through (node-cron's callback; tests call it with a slot of their own). */
  async tick(job: string, slot: Date, trigger: JobTrigger = 'scheduled'): Promise<boolean> {
    const at = new Date(Math.floor(slot.getTime() / 1000) * 1000);
    try {
      const queued = await this.enqueue(job, at, trigger);
      this.logger.debug({ job, slot: at, trigger, queued }, queued ? 'job slot queued' : 'job slot already queued');
      return queued;
    } catch (err) {
      this.logger.error({ job, slot: at, err }, 'could not queue a job run');
      return false;
    }
  }

  /**
   * A slot's tick (node-cron's callback; tests call it with a slot of their own): an enqueue that
   * fails is retried with backoff until the job's next slot (whose own tick takes over) or stop().
   * Resolves true once queued, false when already queued or given up.
   */
  async tickWithRetry(job: string, slot: Date): Promise<boolean> {
    const schedule = this.jobs.find((j) => j.name === job)?.schedule;
    const until = schedule?.next(slot)?.getTime() ?? slot.getTime();
    const at = new Date(Math.floor(slot.getTime() / 1000) * 1000);
    for (let delayMs = this.#o.retryBaseMs; ; delayMs = Math.min(delayMs * 2, this.#o.retryMaxMs)) {
      try {
        const queued = await this.enqueue(job, at, 'scheduled');
        this.logger.debug({ job, slot: at, queued }, queued ? 'job slot queued' : 'job slot already queued');
        return queued;
      } catch (err) {
        if (!this.#running || this.clock.now().getTime() + delayMs >= until) {
          this.logger.error({ job, slot: at, err }, 'could not queue a job run; giving up on this slot (the periodic catch-up may still queue it)');
          return false;
        }
        this.logger.warn({ job, slot: at, err, retry_in_ms: delayMs }, 'could not queue a job run; retrying');
      }
      if (!(await this.#wait(delayMs))) return false;
    }
  }

  /** Resolves true after `ms`, or false at once when stop() comes first. */
  #wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#retries.delete(cancel);
        resolve(true);
      }, ms);
      timer.unref();
      const cancel = () => {
        clearTimeout(timer);
        resolve(false);
      };
      this.#retries.add(cancel);
    });
  }

  /**
   * node-cron's `execution:missed` (the timer fired late: a blocked event loop, a paused VM). It
   * comes once per missed slot, all in one go (a VM paused 10 h: ten of an hourly job); only the
   * latest of them is queued, like the catch-up at start.
   */
  missed(job: string, slot: Date): void {
    const seen = this.#missed.get(job);
    if (seen) {
      if (slot > seen) this.#missed.set(job, slot);
      return;
    }
    this.#missed.set(job, slot);
    setImmediate(() => {
      const latest = this.#missed.get(job);
      this.#missed.delete(job);
      if (!latest || !this.#running) return;
      this.logger.warn({ job, slot: latest }, 'job slot missed (the timer fired late); queueing the latest missed slot only');
      void this.tickWithRetry(job, latest);
    });
  }

  /** Queues, per job, the one latest slot missed since its last run; returns the jobs queued. */
  async catchUp(): Promise<string[]> {
    const now = this.clock.now();
    const last = await this.lastStarts();
    const queued: string[] = [];
    for (const j of this.jobs) {
      const started = last.get(j.name);
      const slot = j.schedule.previous(now);
      if (!started || !slot || started.getTime() >= slot.getTime()) continue;
      this.logger.info({ job: j.name, slot, last_started: started }, 'job missed its latest slot while no daemon ran; catching up once');
      if (await this.tick(j.name, slot, 'catch-up')) queued.push(j.name);
    }
    return queued;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const log = this.logger;
    const cronLogger = {
      info: (m: string) => log.debug({ cron: m }, 'node-cron'),
      warn: (m: string) => log.warn({ cron: m }, 'node-cron'),
      error: (m: string | Error) => log.error({ err: m }, 'node-cron'),
      debug: (m: string | Error) => log.debug({ cron: m instanceof Error ? m.message : m }, 'node-cron'),
    };
    for (const j of this.jobs) {
      const task = createTask(j.schedule.expression, (ctx) => void this.tickWithRetry(j.name, ctx.date), { timezone: 'UTC', name: `sentinel:${j.name}`, logger: cronLogger, unref: true });
      // A tick node-cron could not fire on time (a blocked event loop) is still a slot.
      task.on('execution:missed', (ctx) => this.missed(j.name, ctx.date));
      void task.start();
      this.#tasks.push(task);
    }
    if (this.jobs.length) {
      this.#catchUpTimer = setInterval(() => {
        this.catchUp().catch((err: unknown) => this.logger.warn({ err }, 'periodic catch-up check failed; the next one retries'));
      }, this.#o.catchUpEveryMs);
      this.#catchUpTimer.unref();
    }
  }

  stop(): void {
    for (const t of this.#tasks) void t.destroy();
    this.#tasks = [];
    this.#running = false;
    for (const cancel of this.#retries) cancel();
    this.#retries.clear();
    if (this.#catchUpTimer) clearInterval(this.#catchUpTimer);
    this.#catchUpTimer = null;
  }
}
