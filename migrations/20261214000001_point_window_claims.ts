import type { Knex } from 'knex';

/**
 * `point_window_claims`: the windows of `points` a compaction run is about to compact and drop
 * (one row per window, by its start). A group commit that writes points into a claimed window
 * counts itself there (`late`) in the transaction that inserts them, and the run, which reads its claim FOR
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

/**
 * Besides the claims, the windows of `points` (`points_p20261201_w04`, which the daemon makes
 * from this release on) are merged back into day partitions, the only kind a release before this
 * one knows: each day's windows copied into a new day partition, detached and dropped, and the
 * day attached in their place. Run with the daemon stopped (the upgrade guide's rollback). It
 * copies the uncompacted points, so the rollback's dry run (its 2-second statement timeout) gives up
 * on a store with many of them.
 */
export async function down(knex: Knex): Promise<void> {
  const { rows } = await knex.raw<{ rows: { name: string }[] }>(
    `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'points'::regclass and c.relname ~ '^points_p[0-9]{8}_w[0-9]{2}$' order by 1`,
  );
  const days = new Map<string, string[]>();
  for (const { name } of rows) {
    const day = name.slice(0, 'points_p20261201'.length);
    days.set(day, [...(days.get(day) ?? []), name]);
  }
  for (const [day, windows] of days) {
    const from = `${day.slice(8, 12)}-${day.slice(12, 14)}-${day.slice(14, 16)}T00:00:00Z`;
    const to = new Date(Date.parse(from) + 86_400_000).toISOString();
    await knex.raw(`create table ${day} (like points including defaults including constraints)`);
    for (const w of windows) {
      await knex.raw(`insert into ${day} select * from ${w}`);
      await knex.raw(`alter table points detach partition ${w}`);
      await knex.raw(`drop table ${w}`);
    }
    await knex.raw(`alter table points attach partition ${day} for values from ('${from}') to ('${to}')`);
  }
  await knex.raw('drop table if exists point_window_claims');
}
