import pg from 'pg';
import type { Logger } from 'pino';
import { DomainError } from '../core/errors.js';
import type { JobOutcome, JobTrigger } from '../core/jobs.js';
import { jobLock, type JobRunsRepository } from './job-runs-repository.js';
import { errorText, ShutdownAbort } from './run-errors.js';

export { JOB_LOCK_SQL } from './job-runs-repository.js';

/** A job as the runner needs it (the app binds the modules' JobSpecs to their services). */
export interface RunnableJob {
  name: string;
  timeoutMs?: number;
  run(signal: AbortSignal): Promise<unknown>;
}

export interface RunResult {
  id: string;
  outcome: JobOutcome;
  error: string | null;
  /** What the job returned (undefined unless ok). */
  result: unknown;
}

export interface StartedRun {
  id: string;
  done: Promise<RunResult>;
}

/** The job's report as JSON for job_runs.details (null when it is not JSON). */
function asDetails(result: unknown): unknown {
  if (result === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(result)) as unknown;
  } catch {
    return null;
  }
}

export interface JobRunnerOptions {
  /** The database to take the locks on (db.url): one connection of its own per run. */
  url: string;
  connectTimeoutMs: number;
}

/**
 * Runs a job the one way every trigger shares (scheduler, catch-up, `jobs run`, the admin API):
 * on a dedicated connection it opens a transaction and takes the job's transaction-scoped
 * advisory lock (`pg_try_advisory_xact_lock`), records the run in job_runs, runs the job with a
 * signal that aborts at its timeout, records the outcome, and commits, which releases the lock.
 * So one run per job at a time across every process on the database, and a crashed process's
 * lock goes with its connection. The lock's connection is not the pool's: a busy pool cannot
 * delay the release, and the job's own queries cannot take the lock's slot. It sits idle in its
 * transaction while the job runs; in READ COMMITTED an idle transaction holds no snapshot, so
 * it does not hold back vacuum, and its session has `idle_in_transaction_session_timeout` off
 * so a server that sets one does not kill long runs.
 *
 * A run that finds the lock taken does not run the job: a scheduled or catch-up run is recorded
 * as `skipped` (so the slot's fate shows in the history), a manual one is refused (conflict)
 * and not recorded: the operator is told at once.
 */
export class JobRunner {
  readonly #inflight = new Map<string, { controller: AbortController; done: Promise<RunResult> }>();

  constructor(
    private readonly repo: JobRunsRepository,
    private readonly o: JobRunnerOptions,
    private readonly logger: Logger,
  ) {}

  /** Takes the lock and starts the run; null when the job is running elsewhere (lock taken). */
  async begin(job: RunnableJob, trigger: JobTrigger, slot: Date | null): Promise<StartedRun | null> {
    const client = new pg.Client({ connectionString: this.o.url, connectionTimeoutMillis: this.o.connectTimeoutMs, application_name: 'sentinel job lock' });
    // An error on an idle client (server gone) is also an 'error' event: without a listener it
    // would crash the process. The run is aborted below when it happens mid-run.
    let lost: ((err: Error) => void) | null = null;
    client.on('error', (err) => (lost ? lost(err) : undefined));
    let id: string;
    try {
      await client.connect();
      if (!(await jobLock.take(client, job.name))) {
        await client.end();
        return null;
      }
      // The lock is ours: any unfinished run of this job was left by a process that died.
      const abandoned = await this.repo.closeAbandoned(job.name);
      if (abandoned) this.logger.warn({ job: job.name, runs: abandoned }, 'closed runs left unfinished by a stopped process');
      id = await this.repo.start(job.name, trigger, slot);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }

    const controller = new AbortController();
    let timedOut = false;
    const timer =
      job.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            this.logger.warn({ job: job.name, run: id, timeout_ms: job.timeoutMs }, 'job run reached its timeout; aborting it');
            controller.abort(new Error(`timed out after ${job.timeoutMs} ms`));
          }, job.timeoutMs)
        : undefined;
    lost = (err) => {
      this.logger.error({ job: job.name, run: id, err }, 'job run lost the connection holding its lock; aborting it');
      controller.abort(new Error(`lost the connection holding the job's lock: ${err.message}`));
    };
    this.logger.info({ job: job.name, run: id, trigger, slot }, 'job run started');
    const started = Date.now();

    const done = (async (): Promise<RunResult> => {
      let outcome: JobOutcome = 'ok';
      let error: string | null = null;
      let result: unknown;
      try {
        result = await job.run(controller.signal);
      } catch (err) {
        outcome = 'failed';
        error = errorText(err);
      } finally {
        clearTimeout(timer);
      }
      if (timedOut) {
        // Past its limit, however it ended: an overrun is what an operator must hear about.
        outcome = 'timeout';
        error = `did not finish within ${job.timeoutMs} ms${error ? `: ${error}` : ''}`;
      } else if (controller.signal.reason instanceof ShutdownAbort) {
        outcome = 'failed';
        error = `interrupted by shutdown${error ? `: ${error}` : ''}`;
      } else if (controller.signal.aborted && outcome === 'ok') {
        // Aborted for a lost lock connection but finished anyway: the exclusivity was not held.
        outcome = 'failed';
        error = errorText(controller.signal.reason);
      }
      try {
        await this.repo.finish(id, outcome, error, outcome === 'ok' ? asDetails(result) : null);
      } catch (err) {
        this.logger.error({ job: job.name, run: id, err }, 'could not record the end of a job run');
      } finally {
        // The commit releases the lock; closing the connection would too.
        await jobLock.release(client).catch(() => undefined);
        await client.end().catch(() => undefined);
        this.#inflight.delete(id);
      }
      const log = { job: job.name, run: id, outcome, duration_ms: Date.now() - started, error: error ?? undefined };
      if (outcome === 'ok') this.logger.info(log, 'job run finished');
      else this.logger.error(log, 'job run did not succeed');
      return { id, outcome, error, result: outcome === 'ok' ? result : undefined };
    })();
    this.#inflight.set(id, { controller, done });
    return { id, done };
  }

  /** Runs the job to its end; a taken lock is a `skipped` run (scheduled, catch-up) or a conflict (manual). */
  async run(job: RunnableJob, trigger: JobTrigger, slot: Date | null): Promise<RunResult> {
    const started = await this.begin(job, trigger, slot);
    if (started) return started.done;
    if (trigger === 'manual') throw new DomainError('conflict', `job '${job.name}' is running; try again when it has finished`);
    const reason = 'already running (another run holds its lock)';
    const id = await this.repo.skipped(job.name, trigger, slot, reason);
    this.logger.info({ job: job.name, run: id, trigger, slot }, 'job run skipped: already running');
    return { id, outcome: 'skipped', error: reason, result: undefined };
  }

  /** Runs under way in this process. */
  get running(): number {
    return this.#inflight.size;
  }

  /** Resolves when the runs under way now have ended. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#inflight.values()].map((r) => r.done));
  }

  /** Shutdown's end of grace: aborts the runs under way (recorded failed, "interrupted by shutdown"). */
  abortAll(): number {
    for (const r of this.#inflight.values()) r.controller.abort(new ShutdownAbort('shutdown'));
    return this.#inflight.size;
  }
}

/** True when `p` settled within `ms`. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
