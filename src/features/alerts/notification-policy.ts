import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { NotificationRequest, NotifiedAlert, Notifier } from '../../core/alerting.js';
import { SQLSTATE, sqlState } from '../../db/pg-errors.js';
import type { AlertGroupRow, AlertGroupsRepository, FlushOutcome } from './alert-groups-repository.js';
import { groupKeyOf, type AlertRow, type GroupSettings, type NotificationPolicy } from './alert-types.js';
import { matches, type Matcher } from './matchers.js';
import { scheduleOf, type MaintenanceWindowsRepository } from './maintenance-windows-repository.js';
import { activeUntil, type WindowSchedule } from './maintenance-windows-schedule.js';
import type { SilencesRepository } from './silences-repository.js';

/*
 * The notification policy (issue 10 points 3, 4, 6): which alerts of a group are sent when.
 *
 * - A group's first notification waits group_wait after the group appears, or reappears after
 *   a time with nothing firing (so alerts firing together go out together); later changes wait
 *   group_interval after the last notification; while anything fires, the group is re-sent
 *   every repeat_interval.
 * - A firing alert is suppressed while an active silence or an open maintenance window of its
 *   org matches its labels, or while it is acknowledged (until the ack expires or the alert fires
 *   anew: the state machine clears the ack on a new episode). Suppressed alerts still change
 *   state; they are left out of notifications. When the suppression ends while the alert still
 *   fires, the group wakes (next_flush_at) and the alert goes out if it was never sent.
 * - A resolved alert whose firing was notified is sent once as resolved (suppressed or not: who
 *   was paged learns it is over).
 * - The notification is dispatched first (the outbox stores it under `<group_key>#<seq>.<hash of
 *   its alerts>`), then the notified-at times, seq and the next wake-up are committed: a crash in
 *   between dispatches the same key again, which the outbox stores once (changed content: a new key).
 */

/** Why an alert is not to be sent now, and until when (null: until something else changes). */
export interface Suppression {
  until: Date | null;
}

/** Judges suppression of one alert at `now`: silences and windows of its org, its ack. */
export type SuppressionCheck = (a: AlertRow) => Suppression | null;

export interface FlushPlan {
  /** The notification's alerts: every unsuppressed firing one and the newly resolved ones; null: send nothing. */
  send: { firing: AlertRow[]; resolved: AlertRow[] } | null;
  nextFlushAt: Date | null;
}

const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
const earliest = (dates: (Date | null)[]): Date | null =>
  dates.reduce<Date | null>((min, d) => (d && (!min || d < min) ? d : min), null);

/** The firing episode of `a` has been notified. */
const firingNotified = (a: AlertRow) => a.firing_notified_at !== null && (a.fired_at === null || a.firing_notified_at >= a.fired_at);

/** What to do with a group at `now`, pure (unit-tested; flushDue runs it per claimed group). */
export function planFlush(g: Pick<AlertGroupRow, 'first_seen_at' | 'last_notified_at' | 'group_wait_ms' | 'group_interval_ms' | 'repeat_interval_ms'>, alerts: AlertRow[], suppressed: SuppressionCheck, now: Date): FlushPlan {
  const firing: AlertRow[] = [];
  const wakes: (Date | null)[] = [];
  for (const a of alerts.filter((x) => x.state === 'firing')) {
    const s = suppressed(a);
    if (s) wakes.push(s.until);
    else firing.push(a);
  }
  const resolved = alerts.filter((a) => a.state !== 'firing' && a.resolved_at !== null && firingNotified(a) && (a.resolved_notified_at === null || a.resolved_notified_at < a.resolved_at));
  const news = firing.filter((a) => !firingNotified(a)).length + resolved.length;
  // Notified in this episode (since the group last started from nothing)?
  const last = g.last_notified_at && (!g.first_seen_at || g.last_notified_at >= g.first_seen_at) ? g.last_notified_at : null;
  const timer = last ? plus(last, g.group_interval_ms) : plus(g.first_seen_at ?? now, g.group_wait_ms);
  const repeatDue = last !== null && firing.length > 0 && now >= plus(last, g.repeat_interval_ms);
  const send = (news > 0 && now >= timer) || repeatDue;
  if (send) wakes.push(firing.length > 0 ? plus(now, g.repeat_interval_ms) : null);
  else {
    if (news > 0) wakes.push(timer);
    if (firing.length > 0 && last) wakes.push(plus(last, g.repeat_interval_ms));
  }
  // A wake-up at or before now (a suppression that ends this instant) would spin: a moment later.
  const next = earliest(wakes);
  return { send: send ? { firing, resolved } : null, nextFlushAt: next && next <= now ? plus(now, 1000) : next };
}

/** The silences and maintenance windows of one org, as the policy reads them. */
export interface SuppressionSource {
  activeSilences(orgId: string, now: Date): Promise<{ matchers: Matcher[]; ends_at: Date }[]>;
  windows(orgId: string): Promise<(WindowSchedule & { matchers: Matcher[] })[]>;
}

/** The suppression check of one org's alerts at `now` (null org: Sentinel's own alerts, never silenced; acks still count). */
export async function suppressionAt(source: SuppressionSource, orgId: string | null, now: Date): Promise<SuppressionCheck> {
  const silences = orgId ? await source.activeSilences(orgId, now) : [];
  const open = orgId ? (await source.windows(orgId)).map((w) => ({ w, until: activeUntil(w, now) })).filter((x) => x.until !== null) : [];
  return (a) => {
    const ends: (Date | null)[] = [
      ...silences.filter((s) => matches(s.matchers, a.labels)).map((s) => s.ends_at),
      ...open.filter(({ w }) => matches(w.matchers, a.labels)).map((x) => x.until),
    ];
    if (a.ack_at && (!a.ack_expires_at || a.ack_expires_at > now)) ends.push(a.ack_expires_at);
    if (ends.length === 0) return null;
    // Woken at the first end: if another still holds, the flush then finds the next.
    return { until: earliest(ends) };
  };
}

/** The source over the feature's own repositories. */
export function suppressionSource(silences: SilencesRepository, windows: MaintenanceWindowsRepository): SuppressionSource {
  return {
    activeSilences: (orgId, now) => silences.active(orgId, now),
    windows: async (orgId) => (await windows.all(orgId)).map((w) => ({ ...scheduleOf(w), matchers: w.matchers })),
  };
}

/** The alerts list's `silenced` flag: an active silence or an open maintenance window matches the labels now (acks aside). */
export function silenceCheck(source: SuppressionSource): { silenced(orgId: string, labelSets: Record<string, string>[], now: Date): Promise<boolean[]> } {
  return {
    silenced: async (orgId, labelSets, now) => {
      const silences = await source.activeSilences(orgId, now);
      const open = (await source.windows(orgId)).filter((w) => activeUntil(w, now) !== null);
      return labelSets.map((labels) => silences.some((s) => matches(s.matchers, labels)) || open.some((w) => matches(w.matchers, labels)));
    },
  };
}

const NEVER = '0001-01-01T00:00:00Z';

/**
 * The dedup key's content part: which alerts (and episodes) a notification carries, as which
 * status. A flush whose commit failed after its dispatch retries with the same seq; the same
 * content gets the same key (the outbox stores it once), changed content a new one (so the
 * outbox does not drop it while the commit marks its alerts as notified).
 */
function contentHash(alerts: NotifiedAlert[]): string {
  const parts = alerts.map((a) => `${a.id ?? a.fingerprint}|${a.status}|${a.startsAt}|${a.endsAt}`).sort();
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}

/** Labels (or annotations) every alert shares with the same value. */
function common(maps: Record<string, string>[]): Record<string, string> {
  if (maps.length === 0) return {};
  const out: Record<string, string> = { ...maps[0] };
  for (const m of maps.slice(1)) for (const k of Object.keys(out)) if (m[k] !== out[k]) delete out[k];
  return out;
}

export interface PolicyOptions {
  groups: AlertGroupsRepository;
  suppression: SuppressionSource;
  notifier: Notifier;
  /** alerts.external_url (or the daemon's own address): links in notifications. */
  externalUrl: string;
  logger: Logger;
  /** Groups flushed per flushDue call at most (the rest at the next). */
  batch?: number;
}

export class NotificationPolicyService implements NotificationPolicy {
  private readonly batch: number;

  constructor(private readonly o: PolicyOptions) {
    this.batch = o.batch ?? 1000;
  }

  async touch(settings: GroupSettings, now: Date, db?: Knex): Promise<string> {
    const key = groupKeyOf(settings.source, settings.sourceId, settings.groupLabels);
    await this.o.groups.touch(key, settings, now, db);
    return key;
  }

  async wakeOrg(orgId: string, now: Date): Promise<void> {
    await this.o.groups.wakeOrg(orgId, now);
  }

  async reconfigure(settings: Omit<GroupSettings, 'groupLabels'>): Promise<void> {
    await this.o.groups.reconfigure(settings);
  }

  /** Flushes due groups one transaction each; a group that fails is logged and retried at the next call. Returns notifications dispatched. */
  async flushDue(now: Date, signal?: AbortSignal): Promise<number> {
    const done: string[] = [];
    const checks = new Map<string, SuppressionCheck>();
    let sent = 0;
    // Stopping: the group under way is finished, the rest stay due (next start, or another instance).
    while (done.length < this.batch && !signal?.aborted) {
      let claimed: AlertGroupRow | undefined;
      try {
        const r = await this.o.groups.withDueGroup(now, done, async (g, tx) => {
          claimed = g;
          const orgKey = g.org_id ?? '';
          let check = checks.get(orgKey);
          if (!check) checks.set(orgKey, (check = await suppressionAt(this.o.suppression, g.org_id, now)));
          const plan = planFlush(g, await tx.alerts(), check, now);
          const outcome: FlushOutcome = { sent: null, nextFlushAt: plan.nextFlushAt };
          if (plan.send) {
            if (g.channels.length > 0) await this.o.notifier.dispatch(this.request(g, plan.send.firing, plan.send.resolved));
            outcome.sent = plan.send;
          }
          await tx.finish(outcome);
          return plan.send !== null;
        });
        if (!r) break;
        if (r.value) sent++;
      } catch (err) {
        if (!claimed) throw err;
        // The group's alerts are locked (NOWAIT) by an evaluation: GroupTx.alerts.
        if (sqlState(err) === SQLSTATE.lockNotAvailable) this.o.logger.debug({ group_key: claimed.group_key }, 'alerts: a group is being written by an evaluation; flushed at the next tick');
        else this.o.logger.error({ err, group_key: claimed.group_key }, 'alerts: flushing a notification group failed; retried at the next tick');
      }
      if (claimed) done.push(claimed.id);
    }
    return sent;
  }

  private request(g: AlertGroupRow, firing: AlertRow[], resolved: AlertRow[]): NotificationRequest {
    const alerts = [...firing, ...resolved].map((a) => this.notified(g, a, firing.includes(a) ? 'firing' : 'resolved'));
    return {
      orgId: g.org_id,
      channelIds: g.channels,
      groupKey: g.group_key,
      dedupKey: `${g.group_key}#${g.seq}.${contentHash(alerts)}`,
      ruleId: g.source === 'rule' ? g.source_id : null,
      status: firing.length > 0 ? 'firing' : 'resolved',
      receiver: g.receiver,
      groupLabels: g.group_labels,
      commonLabels: common(alerts.map((a) => a.labels)),
      commonAnnotations: common(alerts.map((a) => a.annotations)),
      alerts,
    };
  }

  private notified(g: AlertGroupRow, a: AlertRow, status: 'firing' | 'resolved'): NotifiedAlert {
    const base = this.o.externalUrl.replace(/\/+$/, '');
    return {
      status,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: (a.fired_at ?? a.active_at ?? a.created_at).toISOString(),
      endsAt: status === 'resolved' && a.resolved_at ? a.resolved_at.toISOString() : NEVER,
      generatorURL: g.org_slug ? `${base}/api/v1/organizations/${encodeURIComponent(g.org_slug)}/alerts/${a.id}` : `${base}/api/v1/admin/status`,
      fingerprint: a.fingerprint,
      id: a.id,
      value: a.value,
    };
  }
}
