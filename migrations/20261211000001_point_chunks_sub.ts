import type { Knex } from 'knex';

/**
 * `sub` on point_chunks: the aggregates of each 1-hour half of a chunk's 2-hour window (count,
 * first/last time and value, min, max, sum, increase), compactly encoded (encodeChunkSub in
 * src/features/telemetry/chunk-codec.ts: ~20–50 bytes a chunk, most fields derived from the
 * chunk's own aggregates and checked bit for bit by the encoder). A query bucket that covers a
 * whole half (steps of 1 h, 2 h, …) reads the half's aggregates instead of decoding `data`.
 *
 * Nullable: chunks written before this column (and any whose points the encoder cannot describe)
 * have none, and a read decodes their data as before. The compaction job fills it for every chunk
 * it writes or merges. Adding a nullable column without a default rewrites nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table point_chunks add column sub bytea');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table point_chunks drop column if exists sub');
}
