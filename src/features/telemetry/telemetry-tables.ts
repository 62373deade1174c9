/** The day-partitioned tables ingest writes (see the telemetry migration); the writer creates a missing day on demand. */
export const TELEMETRY_TABLES = ['points', 'point_chunks', 'logs', 'events'] as const;
export type TelemetryTable = (typeof TELEMETRY_TABLES)[number];

/** The window of one chunk (point_chunks.ts is its start, a UTC multiple of it): 2 hours. */
export const CHUNK_WINDOW_MS = 7_200_000;

/**
 * `points` is partitioned by chunk window (one partition per window, made ahead by the partitions
 * job and on demand by the writer): compaction drops a window's partition with the transaction
 * that writes its chunks, instead of deleting its rows one by one (PartitionsRepository's `windows`).
 */
export const POINT_WINDOWS: Partial<Record<TelemetryTable, number>> = { points: CHUNK_WINDOW_MS };

/**
 * A chunk's head as SQL over the point_chunks columns of `alias` (or a row with the same column
 * names): first and last time as timestamptz_send (big-endian int8 µs since 2000-01-01), then
 * count, min, max, sum, first value, last value and increase as float8send (big-endian IEEE 754,
 * bit for bit) — 72 bytes, the fixed part of every chunk record a metric read sends (tier-read.ts
 * reads it). The compaction job stores it (point_chunks.head); a read packs it from the columns for
 * a chunk without one. Stored heads are these bytes: changing the expression (or tier-read's
 * fixed 72-byte layout) needs a migration that sets point_chunks.head to null (or rewrites it).
 */
export const chunkHeadSql = (alias: string): string =>
  `timestamptz_send(${alias}.first_ts) || timestamptz_send(${alias}.last_ts) || float8send(${alias}.count::float8) || float8send(${alias}.min)
         || float8send(${alias}.max) || float8send(${alias}.sum) || float8send(${alias}.first_value) || float8send(${alias}.last_value) || float8send(${alias}.increase)`;
