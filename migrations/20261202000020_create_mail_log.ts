import type { Knex } from 'knex';

/**
 * Every message the mailer was asked to send (DESIGN §7: one mailer, every send recorded):
 * what kind, to whom, the subject, how many delivery attempts it took and how it ended. Bodies
 * are never stored here (a welcome or report body may carry links or figures an operator reading
 * the log has no business seeing); the queued task carries the body until it is delivered.
 * `org_id` is null for instance-level mail (`sentinel mail test`); an org's rows go with it.
 *
 * Keys (DESIGN §3 leads tenant tables' keys with org_id): like audit_log, mail_log is an
 * exception. A row may belong to no org, and the queued task and every delivery attempt reach it
 * by its own id, so the primary key is `id` alone; what is read per org (and the cascade when an
 * org is deleted) goes through `mail_log_org`, which leads with org_id.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('mail_log', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('org_id').references('organizations.id').onDelete('CASCADE');
    t.text('kind').notNullable();
    /** The recipients, as given. */
    t.specificType('to', 'text[]').notNullable();
    t.text('subject').notNullable();
    // queued: stored, no attempt yet; retrying: an attempt failed and another is scheduled.
    t.text('outcome').notNullable().checkIn(['queued', 'sent', 'retrying', 'failed']);
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('sent_at', { useTz: true });
  });
  await knex.raw('create index mail_log_created on mail_log (created_at desc)');
  await knex.raw('create index mail_log_org on mail_log (org_id, created_at desc) where org_id is not null');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('mail_log');
}
