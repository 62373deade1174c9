import type { Knex } from 'knex';

/*
 * Indexes for the admin status answer (GET /admin/status, `sentinel status`), whose alerts and
 * heartbeats sections read across every organization.
 *
 * Tenant tables' indexes lead with org_id (distributable by org_id, and every tenant query names
 * its org). These two do not, on purpose: the status answer is an instance-wide view read by
 * superadmins (and the local admin token) only, and an index leading with org_id cannot serve a
 * query that names no org (it would read every org's part of it, or the table). They are small:
 * the alerts one holds only the alerts that are pending or firing, the heartbeats one a
 * timestamp and an id per heartbeat.
 *
 * - alerts_active_since: the pending and firing alerts by the time they entered their state, the
 *   newest first (the expression is the one the status query orders by): the counts by state and
 *   severity read the index's rows only, the ten newest the index's first ten.
 * - heartbeats_late: heartbeats by due time, down ones included (heartbeats_due leaves those out
 *   for the missed check): the ten longest overdue are the index's first ten, and the count of
 *   late ones an index-only range scan.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    `create index alerts_active_since on alerts
       ((coalesce(case when state = 'firing' then fired_at end, active_at, updated_at)) desc, id desc)
       where state in ('pending', 'firing')`,
  );
  await knex.raw('create index heartbeats_late on heartbeats (due_at, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists heartbeats_late');
  await knex.raw('drop index if exists alerts_active_since');
}
