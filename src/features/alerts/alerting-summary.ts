import type { Knex } from 'knex';
import type { AlertingSummary, AlertingSummarySource } from '../../core/alerting.js';

/*
 * The alerting section of an org's daily report (provided as `alertingSummary`): read from the
 * alerts rows and the notification outbox's attempts, for one UTC day [00:00, 24:00). A
 * repository (only SQL here).
 *
 * An alerts row holds its latest episode only: an alert that fired twice in a day counts once
 * (its latest firing), and one that fired again since counts on its newer day. Delivery figures
 * count attempts (a notification retried twice and then sent is two failures and one delivery).
 */

/** Items listed at most (the counts cover them all). */
export const MAX_SUMMARY_ITEMS = 100;

const NOT_CONFIGURED = 'alerting not configured';

interface AlertFigures {
  fired: number;
  resolved: number;
  acknowledged: number;
  mtta: number | null;
  mttr: number | null;
}

export class AlertingSummaryReader implements AlertingSummarySource {
  constructor(private readonly knex: Knex) {}

  async daily(orgId: string, date: string): Promise<AlertingSummary> {
    const start = new Date(`${date}T00:00:00Z`);
    const end = new Date(start.getTime() + 86_400_000);
    const configured = await this.configured(orgId);
    const [figures, items, channels] = await Promise.all([this.figures(orgId, start, end), this.items(orgId, start, end), this.deliveries(orgId, start, end)]);
    return {
      configured,
      note: configured ? null : NOT_CONFIGURED,
      alerts: { fired: figures.fired, resolved: figures.resolved, items },
      response: { acknowledged: figures.acknowledged, mean_time_to_acknowledge_seconds: figures.mtta, mean_time_to_resolve_seconds: figures.mttr },
      notifications: {
        deliveries: channels.reduce((n, c) => n + c.deliveries, 0),
        failures: channels.reduce((n, c) => n + c.failures, 0),
        by_channel: channels,
      },
    };
  }

  /** An org with alert rules or notification channels has alerting set up. */
  private async configured(orgId: string): Promise<boolean> {
    const { rows } = await this.knex.raw<{ rows: { configured: boolean }[] }>(
      `select exists (select 1 from alert_rules where org_id = ?) or exists (select 1 from notification_channels where org_id = ?) as configured`,
      [orgId, orgId],
    );
    return rows[0].configured;
  }

  private async figures(orgId: string, start: Date, end: Date): Promise<AlertFigures> {
    const { rows } = await this.knex.raw<{ rows: AlertFigures[] }>(
      `select count(*) filter (where fired_at >= :start and fired_at < :end)::int as fired,
              count(*) filter (where resolved_at >= :start and resolved_at < :end)::int as resolved,
              count(*) filter (where ack_at >= :start and ack_at < :end)::int as acknowledged,
              avg(extract(epoch from ack_at - fired_at)) filter (where ack_at >= :start and ack_at < :end and ack_at >= fired_at)::float8 as mtta,
              avg(extract(epoch from resolved_at - fired_at)) filter (where resolved_at >= :start and resolved_at < :end and resolved_at >= fired_at)::float8 as mttr
         from alerts where org_id = :org`,
      { org: orgId, start, end },
    );
    return rows[0];
  }

  private async items(orgId: string, start: Date, end: Date): Promise<AlertingSummary['alerts']['items']> {
    const rows = await this.knex('alerts')
      .where({ org_id: orgId })
      .where('fired_at', '>=', start)
      .where('fired_at', '<', end)
      .orderBy([{ column: 'fired_at' }, { column: 'id' }])
      .limit(MAX_SUMMARY_ITEMS)
      .select<{ source_id: string; labels: Record<string, string>; fired_at: Date; resolved_at: Date | null }[]>('source_id', 'labels', 'fired_at', 'resolved_at');
    return rows.map((r) => {
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
  }

  private async deliveries(orgId: string, start: Date, end: Date): Promise<AlertingSummary['notifications']['by_channel']> {
    const { rows } = await this.knex.raw<{ rows: AlertingSummary['notifications']['by_channel'] }>(
      `select c.name as channel, c.type,
              count(*) filter (where t.outcome = 'sent')::int as deliveries,
              count(*) filter (where t.outcome <> 'sent')::int as failures
         from notification_attempts t
         join notifications n on n.org_id = t.org_id and n.id = t.notification_id
         join notification_channels c on c.org_id = n.org_id and c.id = n.channel_id
        where t.org_id = :org and t.at >= :start and t.at < :end
        group by c.name, c.type order by c.name`,
      { org: orgId, start, end },
    );
    return rows;
  }
}
