import type { Knex } from 'knex';

/**
 * Telemetry storage (DESIGN §3). Metrics are series (org, name, labels → id) plus narrow points
 * (org, series id, ts, value); logs and events are rows of their own. Points, logs and events are
 * range-partitioned by day (partitions `<table>_pYYYYMMDD`, created ahead by the partitions job
 * and on demand by the writer), so retention drops whole days instead of deleting rows.
 *
 * Indexes follow the query shapes, and there is one per partitioned table because every index
 * is paid for on every ingested row:
 * - points (org_id, series_id, ts) INCLUDE (value): a metric query selects series first, then
 *   reads each series' points in a time range; with value included that is an index-only range
 *   scan per series. No primary key: a unique (series, ts) would make a client's retried batch
 *   abort the whole group commit it shares with other requests (Idempotency-Key is the way to
 *   retry safely), and the partition key would have to lead it anyway.
 * - logs (org_id, ts, id): newest-first listing in a time range with a (ts, id) cursor; level,
 *   substring and attribute filters are applied to the rows of that range (no trigram or GIN
 *   index: each would cost more on ingest than it saves on the bounded range scans).
 * - events (org_id, ts, id): the same listing shape.
 * - series: (org_id, name, labels_hash) unique is the insert-or-get key and also serves lookups
 *   by name (the query's first step) and the list of metric names; a GIN index on labels
 *   (jsonb_path_ops) answers `label=value` filters (`labels @> {"label": "value"}`) without
 *   reading every series of a metric. Series are written once, so both cost little on ingest.
 * There are no foreign keys from points to series: a check per ingested row would cost more than
 * the whole insert; series and points of a deleted org are removed by its deletion (cascade on
 * series, the org's rows by the retention job's org sweep).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table series (
      org_id uuid not null references organizations(id) on delete cascade,
      id bigint generated always as identity,
      name text not null,
      labels jsonb not null,
      labels_hash bytea not null,
      created_at timestamptz not null default now(),
      last_seen_at timestamptz not null default now(),
      primary key (org_id, id),
      unique (org_id, name, labels_hash)
    )`);
  await knex.raw('create index series_labels on series using gin (labels jsonb_path_ops)');

  await knex.raw(`
    create table points (
      org_id uuid not null,
      series_id bigint not null,
      ts timestamptz not null,
      value double precision not null
    ) partition by range (ts)`);
  await knex.raw('create index points_series_ts on points (org_id, series_id, ts) include (value)');

  await knex.raw('create sequence logs_id_seq as bigint');
  await knex.raw(`
    create table logs (
      org_id uuid not null,
      ts timestamptz not null,
      id bigint not null default nextval('logs_id_seq'),
      severity_number smallint not null,
      severity_text text not null,
      body text not null,
      attributes jsonb not null default '{}',
      resource jsonb not null default '{}',
      trace_id text,
      span_id text
    ) partition by range (ts)`);
  await knex.raw('create index logs_org_ts on logs (org_id, ts, id)');

  await knex.raw('create sequence events_id_seq as bigint');
  await knex.raw(`
    create table events (
      org_id uuid not null,
      ts timestamptz not null,
      id bigint not null default nextval('events_id_seq'),
      type text not null,
      title text not null,
      text text,
      tags jsonb not null default '[]'
    ) partition by range (ts)`);
  await knex.raw('create index events_org_ts on events (org_id, ts, id)');

  // Ingested counts per org and UTC day, upserted in the same transaction as the data. One row
  // per writer slot: concurrent commits of one org would otherwise queue on a single row's lock
  // until each other's COMMIT (readers sum the slots).
  await knex.raw(`
    create table usage_daily (
      org_id uuid not null references organizations(id) on delete cascade,
      day date not null,
      slot smallint not null default 0,
      points bigint not null default 0,
      logs bigint not null default 0,
      events bigint not null default 0,
      primary key (org_id, day, slot)
    )`);

  // Idempotency-Key answers, written in the transaction that stores the batch.
  await knex.raw(`
    create table ingest_idempotency (
      org_id uuid not null references organizations(id) on delete cascade,
      key text not null,
      request_hash bytea not null,
      response jsonb not null,
      created_at timestamptz not null default now(),
      primary key (org_id, key)
    )`);
  await knex.raw('create index ingest_idempotency_created on ingest_idempotency (created_at)');
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['ingest_idempotency', 'usage_daily', 'events', 'logs', 'points', 'series']) await knex.raw(`drop table if exists ${t} cascade`);
  await knex.raw('drop sequence if exists logs_id_seq');
  await knex.raw('drop sequence if exists events_id_seq');
}
