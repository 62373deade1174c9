import { hostname } from 'node:os';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { CronSchedule } from '../core/cron.js';
import { DomainError } from '../core/errors.js';
import type { JobControl, JobRun, JobStatus, JobTrigger } from '../core/jobs.js';
import { registerJobMetrics } from './job-metrics.js';
import { JobRunner, settledWithin, type RunResult, type RunnableJob } from './job-runner.js';
import { JobRunsRepository } from './job-runs-repository.js';
import { QueueWorkers, type QueueTaskDef } from './queue-workers.js';
import { ShutdownAbort } from './run-errors.js';
import { Scheduler } from './scheduler.js';
import type { TaskStore } from './task-store.js';
import type { PgWorkQueue } from './work-queue.js';

/** A job as the app hands it over: a module's JobSpec bound to the module's services. */
export interface KitJob extends RunnableJob {
  description: string;
  module: string;
  defaultSchedule?: string;
}

/** The queue entry of a scheduled or catch-up run (a name no module may declare). */
export const JOB_RUN_TASK = 'jobs.run';

/** Lifecycle steps, shaped like the feature modules' hooks. */
export interface KitHook {
  name: string;
  timeoutMs: number;
  run(): Promise<void>;
}

export interface JobsKitOptions {
  knex: Knex;
  /** For the locks' own connections. */
  url: string;
  connectTimeoutMs: number;
  jobs: readonly KitJob[];
  tasks: readonly QueueTaskDef[];
  /**
   * The config's `jobs` object: per-job schedule and enabled overrides. Names no job has are the
   * composition root's to refuse (checkJobsConfig in src/app/build-app.ts, before anything opens).
   */
  overrides: Readonly<Record<string, { schedule?: string; enabled?: boolean }>>;
  store: TaskStore;
  queue: PgWorkQueue;
  concurrency: number;
  pollMs: number;
  /** shutdown.grace_ms: how long running work may go on after a stop signal. */
  graceMs: number;
  /** /metrics gains the job series (daemon only). */
  metrics: Registry | null;
  logger: Logger;
  clock: Clock;
}

export interface JobsKit {
  control: JobControl;
  /** `sentinel jobs run`: a manual run in this process, to its end. */
  runNow(name: string): Promise<RunResult>;
  runner: JobRunner;
  scheduler: Scheduler;
  workers: QueueWorkers;
  /** Daemon: workers, catch-up, scheduler; after the modules' own start hooks. */
  start: KitHook[];
  /** Stop the scheduler, let running work finish within the grace, abort what is left. */
  stop: KitHook[];
}

/** How long a claimed task holds without renewal (renewed every third of it). */
const LEASE_MS = 60_000;
const KEEP_DONE_MS = 7 * 86_400_000;
const KEEP_FAILED_MS = 30 * 86_400_000;
/** After the grace, how long aborted work gets to record its end. */
const AFTER_ABORT_MS = 5000;
const HISTORY_MAX = 1000;

/** A queued job run's attempts: for the runner failing to start it (database away), not the job's failures. */
const JOB_RUN_ATTEMPTS = 3;

export function jobSlotKey(job: string, slot: Date): string {
  return `job:${job}@${slot.toISOString()}`;
}

/**
 * The jobs kit (DESIGN §7 "Jobs"): the scheduler (node-cron), the durable queue's workers
 * (better-queue over PostgreSQL) and the job runner, built from the jobs and tasks the feature
 * modules declare. Each process gets the runner (so `sentinel jobs run` goes through the same
 * lock and record) and the queue; only the daemon starts the scheduler and the workers.
 */
export function createJobsKit(o: JobsKitOptions): JobsKit {
  const { logger, store } = o;
  const instance = { name: `${hostname()}:${process.pid}`, pid: process.pid };
  const runs = new JobRunsRepository(o.knex, instance);
  const runner = new JobRunner(runs, { url: o.url, connectTimeoutMs: o.connectTimeoutMs }, logger);
  const byName = new Map(o.jobs.map((j) => [j.name, j]));
  const scheduleOf = (j: KitJob): CronSchedule | null => {
    const expr = o.overrides[j.name]?.schedule ?? j.defaultSchedule;
    return expr ? new CronSchedule(expr) : null;
  };
  const schedules = new Map(o.jobs.map((j) => [j.name, scheduleOf(j)]));
  const enabled = (name: string): boolean => o.overrides[name]?.enabled !== false;

  const enqueueSlot = async (job: string, slot: Date, trigger: JobTrigger): Promise<boolean> => {
    const id = await store.insert({ task: JOB_RUN_TASK, payload: { job, slot: slot.toISOString(), trigger }, dedupeKey: jobSlotKey(job, slot), maxAttempts: JOB_RUN_ATTEMPTS });
    if (id) o.queue.onEnqueued?.(id);
    return id !== null;
  };
  const scheduled = o.jobs.flatMap((j) => {
    const schedule = schedules.get(j.name);
    return schedule && enabled(j.name) ? [{ name: j.name, schedule }] : [];
  });
  const lastStarts = async () => new Map([...(await runs.latest())].map(([job, r]) => [job, r.startedAt]));
  const scheduler = new Scheduler(scheduled, enqueueSlot, lastStarts, o.clock, logger);

  const jobRunTask: QueueTaskDef = {
    name: JOB_RUN_TASK,
    // A job's failure is its run's outcome (recorded; the next slot tries again), not the
    // task's: the attempts are for the runner failing to start it (database away).
    maxAttempts: JOB_RUN_ATTEMPTS,
    backoffMs: 5000,
    run: async (payload, signal) => {
      const name = String(payload.job);
      const job = byName.get(name);
      if (!job) {
        logger.warn({ job: name }, 'a queued run names a job no module declares; dropped');
        return;
      }
      if (!enabled(name)) {
        logger.info({ job: name }, 'a queued run of a disabled job; dropped');
        return;
      }
      const trigger = (payload.trigger === 'catch-up' ? 'catch-up' : 'scheduled') satisfies JobTrigger;
      await runner.run(job, trigger, typeof payload.slot === 'string' ? new Date(payload.slot) : null);
      // Cut short by shutdown: pending again, so the next start runs the slot.
      if (signal.aborted && signal.reason instanceof ShutdownAbort) throw signal.reason;
    },
  };
  const workers = new QueueWorkers(
    store,
    new Map([...o.tasks, jobRunTask].map((t) => [t.name, t])),
    { concurrency: o.concurrency, pollMs: o.pollMs, leaseMs: LEASE_MS, keepDoneMs: KEEP_DONE_MS, keepFailedMs: KEEP_FAILED_MS },
    instance.name,
    logger,
  );

  const control: JobControl = {
    async list(): Promise<JobStatus[]> {
      const [latest, locked] = await Promise.all([runs.latest(), runs.lockedJobs(o.jobs.map((j) => j.name))]);
      const now = o.clock.now();
      return o.jobs.map((j) => {
        const schedule = schedules.get(j.name) ?? null;
        const on = enabled(j.name);
        return {
          name: j.name,
          description: j.description,
          module: j.module,
          schedule: schedule?.expression ?? null,
          enabled: on,
          timeoutMs: j.timeoutMs ?? null,
          lastRun: latest.get(j.name) ?? null,
          nextRun: on && schedule ? schedule.next(now) : null,
          running: locked.has(j.name),
        };
      });
    },
    async history(q = {}): Promise<JobRun[]> {
      if (q.job !== undefined && !byName.has(q.job)) throw new DomainError('not_found', `unknown job '${q.job}'`);
      return runs.history({ job: q.job, limit: Math.min(Math.max(q.limit ?? 50, 1), HISTORY_MAX) });
    },
    async trigger(name: string): Promise<{ id: string }> {
      const job = byName.get(name);
      if (!job) throw new DomainError('not_found', `unknown job '${name}'`);
      const started = await runner.begin(job, 'manual', null);
      if (!started) throw new DomainError('conflict', `job '${name}' is running; try again when it has finished`);
      return { id: started.id };
    },
    workersActive: () => workers.active,
  };

  if (o.metrics) registerJobMetrics(o.metrics, o.jobs.map((j) => j.name), runs, store, logger);

  let started = false;
  return {
    control,
    runNow: (name) => {
      const job = byName.get(name);
      if (!job) return Promise.reject(new DomainError('not_found', `unknown job '${name}'`));
      return runner.run(job, 'manual', null);
    },
    runner,
    scheduler,
    workers,
    start: [
      {
        name: 'jobs: queue workers, catch-up, scheduler',
        timeoutMs: 30_000,
        run: async () => {
          started = true;
          o.queue.onEnqueued = (id) => workers.wake(id);
          workers.start();
          await scheduler.catchUp();
          scheduler.start();
        },
      },
    ],
    stop: [
      {
        name: 'jobs: scheduler and queue',
        timeoutMs: o.graceMs + AFTER_ABORT_MS + 5000,
        run: async () => {
          if (!started) return;
          scheduler.stop();
          o.queue.onEnqueued = null;
          workers.pause();
          const settled = () => Promise.all([runner.idle(), workers.idle()]);
          if (!(await settledWithin(settled(), o.graceMs))) {
            const n = runner.abortAll() + workers.abortAll();
            logger.warn({ aborted: n, grace_ms: o.graceMs }, 'jobs and tasks still running at the end of the shutdown grace: aborted');
            await settledWithin(settled(), AFTER_ABORT_MS);
          }
          await workers.destroy();
        },
      },
    ],
  };
}
