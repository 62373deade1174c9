/** The kinds of telemetry: what ingest counts, what retention keeps per org (orgs' limits and telemetry share it). */
export const SIGNALS = ['metrics', 'logs', 'events'] as const;
export type Signal = (typeof SIGNALS)[number];
