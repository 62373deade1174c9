import type { Knex } from 'knex';

/**
 * Statement-level triggers that NOTIFY `sentinel_changes` with the table name whenever rows that
 * authentication and authorization read are changed, by any process (the daemon, a CLI command,
 * another instance). Daemons cache those reads and drop them on the notification, which
 * PostgreSQL delivers at commit.
 */
const TABLES: [string, string][] = [
  ['users', 'insert or update or delete or truncate'],
  ['memberships', 'insert or update or delete or truncate'],
  ['organizations', 'insert or update or delete or truncate'],
  ['api_keys', 'insert or update or delete or truncate'],
  // New sessions need no invalidation: nothing is cached for a session before it exists.
  ['sessions', 'update or delete or truncate'],
];

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function sentinel_notify_change() returns trigger language plpgsql as $$
    begin
      perform pg_notify('sentinel_changes', tg_table_name);
      return null;
    end $$;
  `);
  for (const [table, events] of TABLES) {
    await knex.raw(`create trigger ${table}_notify_change after ${events} on ${table} for each statement execute function sentinel_notify_change()`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [table] of TABLES) await knex.raw(`drop trigger ${table}_notify_change on ${table}`);
  await knex.raw('drop function sentinel_notify_change()');
}
