import type { Signal } from '../../core/signals.js';

/** An org's limits after instance defaults are applied (org overrides win). */
export interface EffectiveLimits {
  ingest_points_per_second: number;
  max_series: number;
  retention_days: Record<Signal, number>;
}

export interface LimitDefaults {
  pointsPerSecond: number;
  maxSeries: number;
  retentionDays: Record<Signal, number>;
}

/** The raw overrides stored on an org (`organizations.limits`), as the orgs feature keeps them. */
export interface OrgLimitOverrides {
  retention_days?: Partial<Record<Signal, number>>;
  ingest_points_per_second?: number;
  max_series?: number;
}

/** Supplied by the composition root (the orgs feature owns the rows). */
export interface OrgDirectory {
  /** The org's stored limit overrides, or undefined when the org no longer exists. */
  overrides(orgId: string): Promise<OrgLimitOverrides | undefined>;
  /** Every org with its overrides (the retention job). */
  all(): Promise<{ id: string; slug: string; limits: OrgLimitOverrides }[]>;
}

export function effectiveLimits(overrides: OrgLimitOverrides, d: LimitDefaults): EffectiveLimits {
  const rd = overrides.retention_days ?? {};
  return {
    ingest_points_per_second: overrides.ingest_points_per_second ?? d.pointsPerSecond,
    max_series: overrides.max_series ?? d.maxSeries,
    retention_days: { metrics: rd.metrics ?? d.retentionDays.metrics, logs: rd.logs ?? d.retentionDays.logs, events: rd.events ?? d.retentionDays.events },
  };
}
