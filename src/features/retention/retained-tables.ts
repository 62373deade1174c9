/**
 * The day-partitioned telemetry tables retention works on (created by the telemetry migration).
 * Retention and telemetry both know these names: each writes its own SQL against them.
 */
export const RETAINED_TABLES = ['points', 'logs', 'events'] as const;
export type RetainedTable = (typeof RETAINED_TABLES)[number];
