import type { Knex } from 'knex';

/** One org's alert figures of a day (the summary's counts and means). */
export interface AlertFigures {
  fired: number;
  resolved: number;
  acknowledged: number;
  /** Seconds; null: none in the day. */
  mtta: number | null;
  mttr: number | null;
}

export interface FiredAlert {
  source_id: string;
  labels: Record<string, string>;
  fired_at: Date;
  resolved_at: Date | null;
}

/**
 * The alerts table read for summaries: an org's day (the daily report's alerting section) and
 * the instance checks firing now (the sentinel_alerts gauge, through AlertSink). Day bounds are
 * parameters (the caller's clock and date), never the database's now().
 */
export class AlertingSummaryRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * An org with alert rules or notification channels has alerting set up. The channels' table
   * belongs to notifications: this existence check is the one read of it left (no core
   * interface answers "has any channel" yet).
   */
  async configured(orgId: string): Promise<boolean> {
    const { rows } = await this.knex.raw<{ rows: { configured: boolean }[] }>(
      `select exists (select 1 from alert_rules where org_id = ?) or exists (select 1 from notification_channels where org_id = ?) as configured`,
      [orgId, orgId],
    );
    return rows[0].configured;
  }

  async figures(orgId: string, start: Date, end: Date): Promise<AlertFigures> {
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

  /** Alerts that fired in [start, end), oldest first, at most `limit`. */
  async fired(orgId: string, start: Date, end: Date, limit: number): Promise<FiredAlert[]> {
    return this.knex('alerts')
      .where({ org_id: orgId })
      .where('fired_at', '>=', start)
      .where('fired_at', '<', end)
      .orderBy([{ column: 'fired_at' }, { column: 'id' }])
      .limit(limit)
      .select<FiredAlert[]>('source_id', 'labels', 'fired_at', 'resolved_at');
  }

  /** Instance level (no org): which of Sentinel's own checks fire now, so every instance answers the same. */
  async firingInstanceChecks(): Promise<string[]> {
    const rows = await this.knex('alerts').whereNull('org_id').where({ source: 'instance', state: 'firing' }).distinct('source_id');
    return rows.map((r: { source_id: string }) => r.source_id);
  }
}
