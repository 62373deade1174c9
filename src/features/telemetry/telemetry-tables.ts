/** The day-partitioned tables ingest writes (see the telemetry migration); the writer creates a missing day on demand. */
export const TELEMETRY_TABLES = ['points', 'logs', 'events'] as const;
export type TelemetryTable = (typeof TELEMETRY_TABLES)[number];
