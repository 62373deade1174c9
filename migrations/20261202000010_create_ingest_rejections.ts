import type { Knex } from 'knex';

/**
 * Refused ingest per org, UTC day and reason (the daily report's "rejections" section). A table
 * of its own rather than columns of usage_daily: the reasons are an open set (the status plus
 * why: 429 rate_limited, 400 outside_time_window …) and a refused request writes no telemetry,
 * so there is no ingest transaction to ride on. `requests` counts refused requests, `items`
 * the metrics/logs/events they carried. Rows of a deleted org go with it (cascade).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table ingest_rejections (
      org_id uuid not null references organizations(id) on delete cascade,
      day date not null,
      reason text not null,
      status smallint not null,
      requests bigint not null default 0,
      items bigint not null default 0,
      primary key (org_id, day, reason)
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists ingest_rejections');
}
