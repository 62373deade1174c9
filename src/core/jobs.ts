/*
 * What the jobs kit (src/jobs) tells the rest of the app about jobs and their runs: the CLI, and
 * the jobs feature's admin routes, which may not import the kit (DESIGN §2). Like core/mail.ts,
 * the interface lives here and the composition root hands over the kit's implementation.
 */
import { isoOrNull } from './timestamp.js';

/** Job names as modules declare them (the `jobs.<name>` config keys, `/admin/jobs/{name}`). */
export const JOB_NAME_PATTERN = '^[a-z][a-z0-9-]*$';

export type JobTrigger = 'scheduled' | 'manual' | 'catch-up';
export type JobOutcome = 'ok' | 'failed' | 'skipped' | 'timeout';
export const JOB_TRIGGERS: readonly JobTrigger[] = ['scheduled', 'manual', 'catch-up'];
export const JOB_OUTCOMES: readonly JobOutcome[] = ['ok', 'failed', 'skipped', 'timeout'];

/** One row of job_runs. */
export interface JobRun {
  id: string;
  job: string;
  trigger: JobTrigger;
  /** The schedule slot a scheduled or catch-up run stands for. */
  slot: Date | null;
  startedAt: Date;
  /** Null while it runs. */
  finishedAt: Date | null;
  /** Null while it runs. */
  outcome: JobOutcome | null;
  error: string | null;
  /** What the job returned (its report), as JSON. */
  details: unknown;
  /** host:pid of the process that ran it. */
  instance: string;
}

export interface JobStatus {
  name: string;
  description: string;
  /** The module that declares it. */
  module: string;
  /** Effective cron expression (UTC): `jobs.<name>.schedule`, else the module's default; null: manual only. */
  schedule: string | null;
  /** `jobs.<name>.enabled` (default true); a disabled job is not scheduled but can be run by hand. */
  enabled: boolean;
  timeoutMs: number | null;
  lastRun: JobRun | null;
  /** Null when not scheduled (no schedule, or disabled). */
  nextRun: Date | null;
  /** Some process on the database holds the job's lock right now. */
  running: boolean;
}

export interface JobControl {
  list(): Promise<JobStatus[]>;
  history(o?: { job?: string; limit?: number }): Promise<JobRun[]>;
  /**
   * Starts a run of `name` now in this process (trigger manual) and resolves once it holds the
   * job's lock and its run is recorded, before the job finishes. Throws not_found for an unknown
   * job and conflict when the job is running (anywhere on the database).
   */
  trigger(name: string): Promise<{ id: string }>;
  /** The daemon's queue workers are taking work (readiness). */
  workersActive(): boolean;
}


/** A run as the API and `--json` show it (snake_case, RFC 3339 UTC). */
export function presentRun(r: JobRun) {
  const details: unknown = r.details ?? null;
  return {
    id: r.id,
    job: r.job,
    trigger: r.trigger,
    slot: isoOrNull(r.slot),
    started_at: r.startedAt.toISOString(),
    finished_at: isoOrNull(r.finishedAt),
    outcome: r.outcome,
    error: r.error,
    details,
    instance: r.instance,
  };
}

/** A job as the API and `--json` show it. */
export function presentStatus(s: JobStatus) {
  return {
    name: s.name,
    description: s.description,
    module: s.module,
    schedule: s.schedule,
    enabled: s.enabled,
    timeout_ms: s.timeoutMs,
    running: s.running,
    last_run: s.lastRun ? presentRun(s.lastRun) : null,
    next_run: isoOrNull(s.nextRun),
  };
}
