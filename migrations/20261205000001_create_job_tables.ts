import type { Knex } from 'knex';

/**
 * The jobs kit's two tables (DESIGN §7 "Jobs"); instance-level, so no org_id.
 *
 * `queue_tasks`: the durable queue behind better-queue (src/jobs/pg-task-store.ts). A task is
 * committed here before `enqueue` resolves, so queued work survives a crash or a restart; a worker
 * claims one by setting `state = 'running'` with a lease it renews while the task runs, so a
 * task whose worker died (lease expired) is claimed again by any process on the database. Every
 * attempt is counted; a failed attempt waits `next_attempt_at` (exponential backoff) and the
 * last one leaves the task `failed` with its error. `dedupe_key` makes an enqueue idempotent:
 * the scheduler enqueues each job's slot as `job:<name>@<slot>`, so with several daemons on one
 * database a slot is queued, and run, once.
 *
 * `job_runs`: one row per run of a job, whoever started it (scheduler, catch-up, operator).
 * `outcome` is null while the run is under way; a row left unfinished by a process that died is
 * closed as failed by the next run of that job (which holds the job's advisory lock, so nobody
 * else can be running it). Kept: a run is a few hundred bytes, a handful of jobs run hourly.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('queue_tasks', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('task').notNullable();
    t.jsonb('payload').notNullable().defaultTo('{}');
    t.text('state').notNullable().defaultTo('pending').checkIn(['pending', 'running', 'done', 'failed']);
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error');
    t.text('dedupe_key').unique();
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    /** While running: the worker's claim (instance id) and how long it holds without renewal. */
    t.text('locked_by');
    t.timestamp('lease_until', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true });
  });
  // The workers' claim: the oldest due pending task, or a running one whose lease ran out.
  await knex.raw("create index queue_tasks_due on queue_tasks (next_attempt_at) where state = 'pending'");
  await knex.raw("create index queue_tasks_leased on queue_tasks (lease_until) where state = 'running'");
  // Pruning finished tasks by age.
  await knex.raw("create index queue_tasks_finished on queue_tasks (finished_at) where state in ('done', 'failed')");

  await knex.schema.createTable('job_runs', (t) => {
    t.bigIncrements('id').primary();
    t.text('job').notNullable();
    t.text('trigger').notNullable().checkIn(['scheduled', 'manual', 'catch-up']);
    /** The schedule slot a scheduled or catch-up run stands for (null for manual runs). */
    t.timestamp('slot', { useTz: true });
    t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('finished_at', { useTz: true });
    t.text('outcome').checkIn(['ok', 'failed', 'skipped', 'timeout']);
    t.text('error');
    t.jsonb('details');
    /** host:pid of the process that ran it. */
    t.text('instance').notNullable();
    t.integer('pid').notNullable();
  });
  await knex.raw('create index job_runs_job_started on job_runs (job, started_at desc)');
  await knex.raw('create index job_runs_started on job_runs (started_at desc)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('job_runs');
  await knex.schema.dropTable('queue_tasks');
}
