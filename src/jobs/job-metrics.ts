import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { JobRunsRepository, JobStats } from './job-runs-repository.js';
import { TASK_STATES, type TaskState, type TaskStore } from './task-store.js';

interface Snapshot {
  jobs: Map<string, JobStats>;
  tasks: Record<TaskState, number>;
}

/** One database read serves every metric of one scrape. */
const SNAPSHOT_TTL_MS = 1000;

/**
 * Job health on /metrics (issue 9, item 4), read from job_runs and queue_tasks at scrape time:
 * the same figures on every instance on the database (so with several, aggregate with max, not
 * sum), and right after a restart, so an external Prometheus can alert on a silent backup
 * (`time() - sentinel_job_last_success_timestamp_seconds{job="backup"} > 7 * 3600`).
 */
export function registerJobMetrics(registry: Registry, jobNames: readonly string[], runs: JobRunsRepository, store: TaskStore, logger: Logger): void {
  let cached: { at: number; snapshot: Promise<Snapshot | null> } | null = null;
  const snapshot = (): Promise<Snapshot | null> => {
    if (cached && Date.now() - cached.at < SNAPSHOT_TTL_MS) return cached.snapshot;
    const p = (async () => {
      try {
        const [stats, tasks] = await Promise.all([runs.stats(), store.countByState()]);
        return { jobs: new Map(stats.map((s) => [s.job, s])), tasks };
      } catch (err) {
        // A scrape must not fail because the database is away: the job series are left out.
        logger.warn({ err }, 'job metrics: could not read job_runs/queue_tasks');
        return null;
      }
    })();
    cached = { at: Date.now(), snapshot: p };
    return p;
  };

  // Every series is refilled from one snapshot at scrape time; without one (database away) it is left empty.
  const fill = <M extends { reset(): void }>(write: (metric: M, s: Snapshot) => void) =>
    async function collect(this: M): Promise<void> {
      const s = await snapshot();
      this.reset();
      if (s) write(this, s);
    };
  const byJob = { labelNames: ['job'] as const, registers: [registry] };

  new Gauge({
    name: 'sentinel_job_last_success_timestamp_seconds',
    help: 'Unix time of the end of the job\'s last successful run (0: never succeeded).',
    ...byJob,
    collect: fill<Gauge<'job'>>((m, s) => {
      for (const job of jobNames) m.set({ job }, (s.jobs.get(job)?.lastSuccess?.getTime() ?? 0) / 1000);
    }),
  });
  new Gauge({
    name: 'sentinel_job_duration_seconds',
    help: 'Duration of the job\'s last finished run (skipped runs aside).',
    ...byJob,
    collect: fill<Gauge<'job'>>((m, s) => {
      for (const job of jobNames) {
        const d = s.jobs.get(job)?.lastDurationSeconds;
        if (d !== null && d !== undefined) m.set({ job }, d);
      }
    }),
  });
  new Counter({
    name: 'sentinel_job_failures_total',
    help: 'Runs of the job that failed or timed out (job_runs, every instance on the database).',
    ...byJob,
    collect: fill<Counter<'job'>>((m, s) => {
      for (const job of jobNames) m.inc({ job }, s.jobs.get(job)?.failures ?? 0);
    }),
  });
  new Gauge({
    name: 'sentinel_queue_tasks',
    help: 'Tasks in the durable queue by state (done and failed ones are pruned after a while).',
    labelNames: ['state'] as const,
    registers: [registry],
    collect: fill<Gauge<'state'>>((m, s) => {
      for (const state of TASK_STATES) m.set({ state }, s.tasks[state]);
    }),
  });
}
