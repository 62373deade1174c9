import type { Knex } from 'knex';

/**
 * Generated reports (DESIGN §6 Reports, issue 9). The figures are stored as data (`data`, the
 * report's JSON document) and each format (json, csv, html) is rendered from it on download, so
 * a format added later serves old reports too. One report per org, kind and UTC date: the
 * daily-report job and `report generate` insert with on conflict do nothing, so a job run twice
 * (or by two daemons) leaves one row.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('reports', (t) => {
    t.uuid('org_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.uuid('id').notNullable().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('kind').notNullable().checkIn(['daily']);
    t.date('date').notNullable();
    t.jsonb('data').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    /** Set when the daily-report job handed it to the mailer: each report is mailed once. */
    t.timestamp('emailed_at', { useTz: true });
    t.primary(['org_id', 'id']);
    t.unique(['org_id', 'kind', 'date']);
  });
  // The listing: an org's reports, newest date first.
  await knex.raw('create index reports_org_date on reports (org_id, date desc, id desc)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('reports');
}
