import type { Knex } from 'knex';
import { SEVERITIES, type AlertsStatus, type AlertsStatusSource } from '../../core/status.js';

/** What an alert of Sentinel's own (an instance check, no organization) shows as its org. */
export const INSTANCE_ORG = '(instance)';
const NEWEST = 10;

interface CountRow {
  state: 'pending' | 'firing';
  severity: string | null;
  n: number;
}

interface NewestRow {
  id: string;
  org: string | null;
  rule: string;
  severity: string | null;
  state: string;
  since: Date;
  summary: string | null;
}

const zero = () => ({ critical: 0, error: 0, warning: 0, info: 0 });

/**
 * The alerts section of the admin status: pending and firing alerts of every organization (and
 * Sentinel's own) by severity, and the ten that most recently entered their state. Instance-wide
 * on purpose: only superadmins (and the local admin token) read it. Two statements, both served by
 * the partial index alerts_active_since (pending and firing alerts only, by `since`): the alerts
 * table holds one row per alert instance, resolved ones included, and grows with every org.
 */
export class AlertsStatusRepository implements AlertsStatusSource {
  constructor(private readonly knex: Knex) {}

  async alertsStatus(): Promise<AlertsStatus> {
    const [counts, newest] = await Promise.all([
      this.knex.raw<{ rows: CountRow[] }>(
        `select state, labels->>'severity' as severity, count(*)::int as n
           from alerts where state in ('pending', 'firing') group by 1, 2`,
      ),
      this.knex.raw<{ rows: NewestRow[] }>(
        `select a.id, o.slug as org,
                coalesce(a.labels->>'alertname', r.name, a.source_id) as rule,
                a.labels->>'severity' as severity, a.state,
                coalesce(case when a.state = 'firing' then a.fired_at end, a.active_at, a.updated_at) as since,
                a.annotations->>'summary' as summary
           from alerts a
           left join organizations o on o.id = a.org_id
           left join alert_rules r on r.id = a.rule_id
          where a.state in ('pending', 'firing')
          order by since desc, a.id desc
          limit ${NEWEST}`,
      ),
    ]);
    const firing = zero();
    const pending = zero();
    for (const row of counts.rows) {
      // A severity outside the closed set (an instance check's, a label set by hand) counts as the nearest below: info.
      const severity = (SEVERITIES as readonly string[]).includes(row.severity ?? '') ? (row.severity as keyof typeof firing) : 'info';
      (row.state === 'firing' ? firing : pending)[severity] += row.n;
    }
    return {
      firing,
      pending,
      newest: newest.rows.map((r) => ({
        id: r.id,
        org: r.org ?? INSTANCE_ORG,
        rule: r.rule,
        severity: r.severity ?? '',
        state: r.state,
        since: r.since.toISOString(),
        summary: r.summary,
      })),
    };
  }
}
