import type { Knex } from 'knex';
import type { DailyTelemetryStats, TelemetryStats } from '../../core/telemetry-stats.js';

export interface RejectionRow {
  orgId: string;
  /** YYYY-MM-DD, UTC. */
  day: string;
  reason: string;
  status: number;
  requests: number;
  items: number;
}

// The UTC day [date, date + 1) as timestamptz bounds, whatever the session's time zone.
const DAY_START = `(?::date)::timestamp at time zone 'UTC'`;
const DAY_END = `(?::date + 1)::timestamp at time zone 'UTC'`;

/** Per-day figures over telemetry's tables, and the refused-ingest counters. */
export class StatsRepository implements TelemetryStats {
  constructor(private readonly knex: Knex) {}

  /** Adds to each (org, day, reason) counter; concurrent adds sum (one statement, upsert). */
  async addRejections(rows: RejectionRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.knex('ingest_rejections')
      .insert(rows.map((r) => ({ org_id: r.orgId, day: r.day, reason: r.reason, status: r.status, requests: r.requests, items: r.items })))
      .onConflict(['org_id', 'day', 'reason'])
      .merge({
        requests: this.knex.raw('ingest_rejections.requests + excluded.requests'),
        items: this.knex.raw('ingest_rejections.items + excluded.items'),
        status: this.knex.raw('excluded.status'),
      });
  }

  async daily(orgId: string, date: string, top: number): Promise<DailyTelemetryStats> {
    // By the data's own timestamps, not usage_daily (which counts by arrival): the day's figures
    // then agree with the top series and with what a query of that day shows, and a backfill
    // lands on the day it describes. Each count reads one day-partition.
    const counted = async (table: 'logs' | 'events') => {
      const { rows } = await this.knex.raw<{ rows: { n: string }[] }>(`select count(*) as n from ${table} where org_id = ? and ts >= ${DAY_START} and ts < ${DAY_END}`, [orgId, date, date]);
      return Number(rows[0].n);
    };
    // Points are in either tier: fresh rows, and compacted chunks (a chunk's window lies within one
    // UTC day, its count is its points'). Both tiers are counted in one statement, so under one
    // snapshot: a compaction batch committing meanwhile (moving points from one tier to the other)
    // is seen either wholly before or wholly after, never counted twice or not at all.
    const bothTiers = async () => {
      const { rows } = await this.knex.raw<{ rows: { n: string }[] }>(
        `select (select count(*) from points where org_id = ? and ts >= ${DAY_START} and ts < ${DAY_END})
              + (select coalesce(sum(count), 0) from point_chunks where org_id = ? and ts >= ${DAY_START} and ts < ${DAY_END}) as n`,
        [orgId, date, date, orgId, date, date],
      );
      return Number(rows[0].n);
    };
    const [points, logs, events] = await Promise.all([bothTiers(), counted('logs'), counted('events')]);
    // Count per series over the day's range of each tier's (org_id, series_id, ts) index, then name the top ones.
    const { rows: series } = await this.knex.raw<{ rows: { name: string; labels: Record<string, string>; n: string }[] }>(
      `select s.name, s.labels, c.n
         from (select series_id, sum(n) as n from (
                 select series_id, count(*) as n from points
                  where org_id = ? and ts >= ${DAY_START} and ts < ${DAY_END} group by series_id
                 union all
                 select series_id, sum(count) as n from point_chunks
                  where org_id = ? and ts >= ${DAY_START} and ts < ${DAY_END} group by series_id) t
                group by series_id order by n desc, series_id limit ?) c
         join series s on s.org_id = ? and s.id = c.series_id
        order by c.n desc, s.name, s.id`,
      [orgId, date, date, orgId, date, date, top, orgId],
    );
    const rejections = await this.knex('ingest_rejections')
      .where({ org_id: orgId, day: date })
      .orderBy([{ column: 'requests', order: 'desc' }, 'reason'])
      .select<{ reason: string; status: number; requests: string; items: string }[]>('reason', 'status', 'requests', 'items');
    return {
      ingested: { points, logs, events },
      top_series: series.map((s) => ({ name: s.name, labels: s.labels, points: Number(s.n) })),
      rejections: rejections.map((r) => ({ reason: r.reason, status: r.status, requests: Number(r.requests), items: Number(r.items) })),
    };
  }
}
