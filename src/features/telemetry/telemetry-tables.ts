/** The day-partitioned tables ingest writes (see the telemetry migration); the writer creates a missing day on demand. */
export const TELEMETRY_TABLES = ['points', 'point_chunks', 'logs', 'events'] as const;
export type TelemetryTable = (typeof TELEMETRY_TABLES)[number];

/** The window of one chunk (point_chunks.ts is its start, a UTC multiple of it): 2 hours. */
export const CHUNK_WINDOW_MS = 7_200_000;
