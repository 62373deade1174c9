import type { Knex } from 'knex';

/**
 * `queue_tasks.max_attempts`: the task's attempt cap, stored with it when it is enqueued, so a
 * claim can fail a task whose lease ran out on its last attempt (its worker died or stalled every
 * time) instead of taking it up again without end. Null on rows queued before this column (no
 * cap known: reclaimed as before).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('queue_tasks', (t) => {
    t.integer('max_attempts');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('queue_tasks', (t) => {
    t.dropColumn('max_attempts');
  });
}
