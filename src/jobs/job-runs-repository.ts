import type { Knex } from 'knex';
import type pg from 'pg';
import type { JobOutcome, JobRun, JobTrigger } from '../core/jobs.js';

interface JobRunRow {
  id: number;
  job: string;
  trigger: JobTrigger;
  slot: Date | null;
  started_at: Date;
  finished_at: Date | null;
  outcome: JobOutcome | null;
  error: string | null;
  details: unknown;
  instance: string;
  pid: number;
}

const toRun = (r: JobRunRow): JobRun => ({
  id: String(r.id),
  job: r.job,
  trigger: r.trigger,
  slot: r.slot,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  outcome: r.outcome,
  error: r.error,
  details: r.details,
  instance: r.instance,
});

export interface JobStats {
  job: string;
  lastSuccess: Date | null;
  /** Of the last finished run that was not skipped. */
  lastDurationSeconds: number | null;
  failures: number;
}

/** The lock's key: one 64-bit advisory lock per job name, in a namespace of Sentinel's own ($1: the job's name). */
export const JOB_LOCK_SQL = "hashtextextended('sentinel:job:' || $1, 0)";

/**
 * The job's lock on a connection of its own (see JobRunner), opened by `takeLock` and released by
 * `releaseLock`. The session sits idle in its transaction while the job runs, so a server-wide
 * `idle_in_transaction_session_timeout` would kill it (and abort every long run): it is switched
 * off for this session only, before the transaction begins.
 */
export const jobLock = {
  /** Begins the lock's transaction and tries the job's lock; false when another session holds it. */
  async take(client: pg.ClientBase, job: string): Promise<boolean> {
    await client.query('set idle_in_transaction_session_timeout = 0');
    await client.query('begin');
    const { rows } = await client.query<{ got: boolean }>(`select pg_try_advisory_xact_lock(${JOB_LOCK_SQL}) as got`, [job]);
    return rows[0].got;
  },
  /** Ends the lock's transaction, which releases the lock. */
  async release(client: pg.ClientBase): Promise<void> {
    await client.query('commit');
  },
};

/** `job_runs`, the record of every run (migrations/20261205000001_create_job_tables.ts). */
export class JobRunsRepository {
  constructor(
    private readonly knex: Knex,
    private readonly instance: { name: string; pid: number },
  ) {}

  async start(job: string, trigger: JobTrigger, slot: Date | null): Promise<string> {
    const [row] = await this.knex('job_runs')
      .insert({ job, trigger, slot, instance: this.instance.name, pid: this.instance.pid })
      .returning<{ id: number }[]>('id');
    return String(row.id);
  }

  async finish(id: string, outcome: JobOutcome, error: string | null, details: unknown): Promise<void> {
    await this.knex('job_runs')
      .where({ id })
      .update({ outcome, error, details: details === undefined ? null : JSON.stringify(details), finished_at: this.knex.fn.now() });
  }

  /** A run that never started its job: the lock was taken. Recorded so the slot's fate shows. */
  async skipped(job: string, trigger: JobTrigger, slot: Date | null, reason: string): Promise<string> {
    const [row] = await this.knex('job_runs')
      .insert({ job, trigger, slot, instance: this.instance.name, pid: this.instance.pid, outcome: 'skipped', error: reason, finished_at: this.knex.fn.now() })
      .returning<{ id: number }[]>('id');
    return String(row.id);
  }

  /**
   * Closes the job's runs left unfinished by a process that stopped mid-run. Called only by the
   * holder of the job's lock, so none of them can still be running.
   */
  async closeAbandoned(job: string): Promise<number> {
    return this.knex('job_runs')
      .where({ job })
      .whereNull('finished_at')
      .update({ outcome: 'failed', error: 'abandoned: the process running it stopped before it finished', finished_at: this.knex.fn.now() });
  }

  /** The latest run of each job (any outcome), by job name. */
  async latest(): Promise<Map<string, JobRun>> {
    const { rows } = await this.knex.raw<{ rows: JobRunRow[] }>('select distinct on (job) * from job_runs order by job, started_at desc, id desc');
    return new Map(rows.map((r) => [r.job, toRun(r)]));
  }

  async history(o: { job?: string; limit: number }): Promise<JobRun[]> {
    const q = this.knex<JobRunRow>('job_runs').orderBy([{ column: 'started_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(o.limit);
    if (o.job) q.where({ job: o.job });
    return (await q).map(toRun);
  }

  /**
   * The jobs whose advisory lock (src/jobs/job-runner.ts) some session holds: running somewhere
   * on the database. Read from pg_locks, which takes no lock itself (trying the lock would make
   * a real run that comes at that instant find it taken).
   */
  async lockedJobs(names: readonly string[]): Promise<Set<string>> {
    const { rows } = await this.knex.raw<{ rows: { job: string }[] }>(
      `select n as job from unnest(?::text[]) n
        where exists (select 1 from pg_locks l
                       where l.locktype = 'advisory' and l.objsubid = 1 and l.granted
                         and l.database = (select oid from pg_database where datname = current_database())
                         and ((l.classid::int8 << 32) | l.objid::int8) = ${JOB_LOCK_SQL.replace('$1', 'n')})`,
      [[...names]],
    );
    return new Set(rows.map((r) => r.job));
  }

  /** Per job, for /metrics: the same answer on every instance on the database. */
  async stats(): Promise<JobStats[]> {
    const { rows } = await this.knex.raw<{ rows: { job: string; last_success: Date | null; failures: number; last_duration: number | null }[] }>(
      `select s.job, s.last_success, s.failures, l.last_duration
         from (select job,
                      max(finished_at) filter (where outcome = 'ok') as last_success,
                      count(*) filter (where outcome in ('failed', 'timeout')) as failures
                 from job_runs group by job) s
         left join lateral (
               select extract(epoch from finished_at - started_at)::float8 as last_duration
                 from job_runs r
                where r.job = s.job and r.finished_at is not null and r.outcome <> 'skipped'
                order by r.started_at desc limit 1) l on true`,
    );
    return rows.map((r) => ({ job: r.job, lastSuccess: r.last_success, failures: Number(r.failures), lastDurationSeconds: r.last_duration }));
  }
}
