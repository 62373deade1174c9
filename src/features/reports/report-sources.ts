import type { Actor } from '../../core/actor.js';
import type { AlertingSummary, AlertingSummarySource } from '../../core/alerting.js';
import type { AlertingSection } from './reports-schemas.js';

/*
 * What the reports feature reads from other features, as the small interfaces the composition
 * root hands over (it never imports their files).
 */

/** The telemetry feature's day figures (provided as `telemetryStats`): one definition, in core. */
export type { TelemetryStats as TelemetryDayStats } from '../../core/telemetry-stats.js';

/**
 * The alerting sections of a report: the alerts feature's day figures (provided as
 * `alertingSummary`), one definition in core. NO_ALERTING answers with empty sections (tests of
 * rendering use it).
 */
export type { AlertingSummarySource } from '../../core/alerting.js';

// The report schema's section and core's summary are the same shape (checked at compile time).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const ALERTING_SHAPE_MATCHES: Same<AlertingSection, AlertingSummary> = true;

export const NO_ALERTING: AlertingSummarySource = {
  daily: async () => ({
    configured: false,
    note: 'alerting not configured',
    alerts: { fired: 0, resolved: 0, items: [] },
    response: { acknowledged: 0, mean_time_to_acknowledge_seconds: null, mean_time_to_resolve_seconds: null },
    notifications: { deliveries: 0, failures: 0, by_channel: [] },
  }),
};

/** Every organization (the daily job reports on each); the orgs feature's `orgLimits` fits. */
export interface OrgList {
  all(): Promise<{ id: string; slug: string }[]>;
}

/** An org's members with their roles (the orgs feature's `orgMembership` fits): who gets the email. */
export interface MemberDirectory {
  members(
    actor: Actor,
    slug: string,
    page?: { limit?: number; cursor?: string },
  ): Promise<{ items: { email: string; role: string }[]; next_cursor: string | null }>;
}
