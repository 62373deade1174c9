import type { Knex } from 'knex';

/**
 * `point_window_claims`: the windows of `points` a compaction run is about to compact and drop
 * (one row per window, by its start). A writer that commits points into a claimed window counts
 * them there (`late`) in the transaction that inserts them, and the run, which reads its claim FOR
 * UPDATE after its snapshot, sees that count change (a serialization failure) and deletes the rows
 * it read instead of dropping the window, so a late point is never dropped unread. Instance-wide
 * bookkeeping of the storage engine: no organization's data (a reference table on Citus).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table point_window_claims (
      window_start timestamptz primary key,
      claimed_at timestamptz not null default now(),
      late bigint not null default 0
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists point_window_claims');
}
