import type { Knex } from 'knex';

/**
 * The second metric tier (DESIGN §3): a chunk is one row per (org, series, 2-hour window) holding
 * the window's points compactly encoded (`data`, src/features/telemetry/chunk-codec.ts) beside the
 * aggregates a query uses without decoding (count, first/last time and value, min, max, sum, and
 * the counter-semantics increase from the first to the last point). The compaction job moves
 * points older than `storage.compact_after` from `points` into chunks, one transaction per batch.
 *
 * `ts` is the window's start (a UTC multiple of the window), so the table is day-partitioned like
 * `points` (partitions `point_chunks_pYYYYMMDD`, created ahead by the partitions job, dropped by
 * retention) and retention's and partitions' SQL, which use `ts`, treat it alike. The primary key
 * leads with org_id, as every tenant table's does (distributable by org_id), and is the read path:
 * a query reads a series' chunks of a time range by one index range scan.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table point_chunks (
      org_id uuid not null,
      series_id bigint not null,
      ts timestamptz not null,
      first_ts timestamptz not null,
      last_ts timestamptz not null,
      count integer not null check (count > 0),
      min double precision not null,
      max double precision not null,
      sum double precision not null,
      first_value double precision not null,
      last_value double precision not null,
      increase double precision not null,
      data bytea not null,
      primary key (org_id, series_id, ts)
    ) partition by range (ts)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists point_chunks cascade');
}
