import type { AlertingSummary, AlertingSummarySource, DeliveryStats } from '../../core/alerting.js';
import type { AlertingSummaryRepository } from './alerting-summary-repository.js';

/*
 * The alerting section of an org's daily report (provided as `alertingSummary`): the alerts rows
 * (AlertingSummaryRepository) and the delivery attempts (notifications' DeliveryStats, channel
 * tests left out), for one UTC day [00:00, 24:00) named by the caller.
 *
 * An alerts row holds its latest episode only: an alert that fired twice in a day counts once
 * (its latest firing), and one that fired again since counts on its newer day. Delivery figures
 * count attempts (a notification retried twice and then sent is two failures and one delivery).
 */

/** Items listed at most (the counts cover them all). */
export const MAX_SUMMARY_ITEMS = 100;

const NOT_CONFIGURED = 'alerting not configured';
const DAY_MS = 86_400_000;

export class AlertingSummaryReader implements AlertingSummarySource {
  constructor(
    private readonly repo: AlertingSummaryRepository,
    private readonly deliveries: DeliveryStats,
  ) {}

  async daily(orgId: string, date: string): Promise<AlertingSummary> {
    // The same bounds for both sources: the UTC day the caller (the report, on its clock) names.
    const start = new Date(`${date}T00:00:00Z`);
    const end = new Date(start.getTime() + DAY_MS);
    const [configured, figures, fired, notifications] = await Promise.all([
      this.repo.configured(orgId),
      this.repo.figures(orgId, start, end),
      this.repo.fired(orgId, start, end, MAX_SUMMARY_ITEMS),
      this.deliveries.daily(orgId, start.getTime(), end.getTime()),
    ]);
    const items = fired.map((r) => {
      // Firing time within the day: until resolved, or until the day's end when it still fired then.
      const until = r.resolved_at && r.resolved_at < end ? r.resolved_at : end;
      return {
        rule: r.labels.alertname ?? r.source_id,
        severity: r.labels.severity ?? '',
        fired_at: r.fired_at.toISOString(),
        resolved_at: r.resolved_at ? r.resolved_at.toISOString() : null,
        duration_seconds: Math.max(0, (until.getTime() - r.fired_at.getTime()) / 1000),
      };
    });
    return {
      configured,
      note: configured ? null : NOT_CONFIGURED,
      alerts: { fired: figures.fired, resolved: figures.resolved, items },
      response: { acknowledged: figures.acknowledged, mean_time_to_acknowledge_seconds: figures.mtta, mean_time_to_resolve_seconds: figures.mttr },
      notifications,
    };
  }
}
