import type { Knex } from 'knex';

/**
 * `head` on point_chunks: the fixed part of the record a metric read sends for each chunk — first
 * and last time (timestamptz_send) and count, min, max, sum, first value, last value and increase
 * (float8send), 72 bytes (chunkHeadSql in src/features/telemetry/telemetry-tables.ts). A read of
 * many chunks packed these nine values per chunk on every read: on a month of 100 series (36,000
 * chunks) about half of the statement's time. The compaction job writes it with every chunk it
 * writes or merges, from the same expression, so it is always those columns' bytes.
 *
 * Nullable: chunks written before this column have none, and a read packs their head from the
 * columns as before (the same bytes). Adding a nullable column without a default rewrites nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table point_chunks add column head bytea');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table point_chunks drop column if exists head');
}
