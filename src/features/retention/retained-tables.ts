/**
 * The day-partitioned telemetry tables retention works on (created by the telemetry migrations).
 * Retention and telemetry both know these names: each writes its own SQL against them.
 */
export const RETAINED_TABLES = ['points', 'point_chunks', 'logs', 'events'] as const;
export type RetainedTable = (typeof RETAINED_TABLES)[number];

/**
 * How long after its `ts` a row still holds data: a point_chunks row's `ts` is the start of its
 * window, which holds points up to 2 hours later (telemetry's CHUNK_WINDOW_MS; a test checks they
 * agree), so a chunk expires once its whole window has. The other tables' rows are single
 * instants.
 */
export const ROW_SPAN_MS: Record<RetainedTable, number> = { points: 0, point_chunks: 7_200_000, logs: 0, events: 0 };

/**
 * The tables whose days are split into windows (telemetry's POINT_WINDOWS; a test checks they
 * agree): days created ahead are created split, as the writer creates them.
 */
export const SPLIT_TABLES: Partial<Record<RetainedTable, number>> = { points: 7_200_000 };
