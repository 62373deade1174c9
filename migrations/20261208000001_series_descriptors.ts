import type { Knex } from 'knex';

/**
 * Stream descriptors (the OpenTelemetry metrics data model): a series records its kind,
 * temporality, monotonicity, unit and description. Kind, temporality and unit identify a stream
 * (they are part of the labels hash the unique key holds), so a delta sum, a cumulative sum and a
 * gauge of one name and labels are three series. Series written before are kind `unknown`.
 *
 * Logs keep the OTLP observed time and event name.
 *
 * Every new column has a constant default or none: PostgreSQL adds them without rewriting the
 * tables (or their daily partitions).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table series
      add column kind text not null default 'unknown'
        check (kind in ('gauge', 'counter', 'updowncounter', 'histogram', 'exponential_histogram', 'summary', 'unknown')),
      add column temporality text check (temporality in ('cumulative', 'delta')),
      add column monotonic boolean not null default false,
      add column unit text not null default '',
      add column description text not null default ''`);
  // A name's kind (checked when a new series is created) from one row, without walking the
  // name's series of kind unknown. Empty until series with kinds are written.
  await knex.raw(`create index series_name_kind on series (org_id, name, kind) where kind <> 'unknown'`);
  await knex.raw('alter table logs add column observed_ts timestamptz, add column event_name text');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists series_name_kind');
  await knex.raw('alter table logs drop column if exists observed_ts, drop column if exists event_name');
  await knex.raw(`
    alter table series drop column if exists kind, drop column if exists temporality, drop column if exists monotonic,
      drop column if exists unit, drop column if exists description`);
}
