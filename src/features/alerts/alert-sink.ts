import type { AlertSink, ExternalAlert } from '../../core/alerting.js';
import { groupKeyOf, type AlertRow, type GroupSettings, type NotificationPolicy } from './alert-types.js';
import { INITIAL_RECORD } from './alert-state.js';
import type { AlertingSummaryRepository } from './alerting-summary-repository.js';
import type { AlertsRepository, AlertWrite } from './alerts-repository.js';
import { fingerprintOf } from './rule-condition.js';

/** How a heartbeat's or instance check's alerts are grouped: one group per source, paged at once. */
export const EXTERNAL_GROUP_TIMING = { groupWaitMs: 0, groupIntervalMs: 60_000, repeatIntervalMs: 4 * 3_600_000 } as const;

/**
 * Alerts raised by heartbeats and Sentinel's own checks (core/alerting.ts AlertSink): an alerts
 * row per source (fingerprint of its labels), firing or resolved, then the source's group is
 * touched so the notification policy groups, silences, acknowledges and delivers it like a
 * rule's alert.
 */
export class AlertSinkService implements AlertSink {
  constructor(
    private readonly repo: AlertsRepository,
    private readonly policy: NotificationPolicy,
    private readonly summaries?: Pick<AlertingSummaryRepository, 'firingInstanceChecks'>,
  ) {}

  async firingInstanceChecks(): Promise<string[]> {
    return this.summaries ? this.summaries.firingInstanceChecks() : [];
  }

  async raise(a: ExternalAlert): Promise<void> {
    const labels = { ...a.labels, alertname: a.name, severity: a.severity };
    const fingerprint = fingerprintOf(labels);
    await this.repo.inSourceTx(a.orgId, a.source, a.sourceId, async (rows, write, trx) => {
      const prev = rows.find((r) => r.fingerprint === fingerprint);
      if (prev?.state === 'firing') return; // idempotent while firing
      const row: AlertWrite = {
        // A new firing episode: notified afresh, an earlier acknowledgement no longer applies.
        ...INITIAL_RECORD,
        id: prev?.id,
        org_id: a.orgId,
        source: a.source,
        source_id: a.sourceId,
        rule_id: null,
        fingerprint,
        group_key: groupKeyOf(a.source, a.sourceId, {}),
        labels,
        annotations: a.annotations,
        error: null,
        last_eval_at: a.at,
        state: 'firing',
        active_at: a.at,
        fired_at: a.at,
        last_breach_at: a.at,
      };
      await write([row]);
      // In the same transaction: the alert never fires without its group being due.
      await this.policy.touch(this.settings(a.orgId, a.source, a.sourceId, a.name, a.channelIds), a.at, trx);
    });
  }

  async resolve(a: Pick<ExternalAlert, 'orgId' | 'source' | 'sourceId' | 'at'>): Promise<void> {
    await this.repo.inSourceTx(a.orgId, a.source, a.sourceId, async (rows, write, trx) => {
      const firing = rows.filter((r) => r.state === 'firing' || r.state === 'pending');
      if (firing.length === 0) return;
      await write(firing.map((r) => ({ ...r, state: 'resolved', resolved_at: a.at, active_at: null, last_eval_at: a.at })));
      // The group's settings as the raise snapshotted them (the resolve carries no channels); touched in the same transaction.
      const settings = await this.repo.groupSettings(a.orgId, groupKeyOf(a.source, a.sourceId, {}), trx);
      if (settings) await this.policy.touch(settings, a.at, trx);
    });
  }

  async reconfigure(a: Pick<ExternalAlert, 'orgId' | 'source' | 'sourceId' | 'name' | 'channelIds'>): Promise<void> {
    const { groupLabels: _labels, ...settings } = this.settings(a.orgId, a.source, a.sourceId, a.name, a.channelIds);
    await this.policy.reconfigure(settings);
  }

  private settings(orgId: string | null, source: AlertRow['source'], sourceId: string, receiver: string, channels: string[]): GroupSettings {
    return { orgId, source, sourceId, receiver, channels, groupLabels: {}, ...EXTERNAL_GROUP_TIMING };
  }
}
