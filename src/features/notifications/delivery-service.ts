import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { Actor, RequestMeta } from '../../core/actor.js';
import type { Notifier, NotificationRequest } from '../../core/alerting.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { notFound } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { pageLimit, toPage, type Page, uuidCursor } from '../../core/pagination.js';
import type { TaskAttempt, WorkQueue } from '../feature-module.js';
import { sendThrough, type SenderOptions, type SendResult } from './channel-sender.js';
import type { ChannelRow, ChannelsRepository } from './channels-repository.js';
import { storedPayload, testPayload, v4Payload } from './notification-render.js';
import type { AttemptRow, NotificationRow, NotificationsRepository } from './notifications-repository.js';
import type { ChannelTestResult, ChannelType, Notification, NotificationsQueryInput } from './notifications-schemas.js';
import { isoOrNull } from '../../core/timestamp.js';

/** The queue task that delivers one notification (one attempt per run; the queue retries). */
export const DELIVER_TASK = 'notify.deliver';

export interface DeliverPayload {
  org_id: string;
  id: string;
}

/** Queued rows at least this old are re-enqueued by the sweep (younger ones are being enqueued). */
export const SWEEP_MIN_AGE_MS = 5000;
const SWEEP_BATCH = 500;
/** What an attempt a dead worker left is recorded with (the sweep's). */
export const ABANDONED_ERROR = 'attempt interrupted (process died)';

export interface DeliveryDeps {
  channels: ChannelsRepository;
  repo: NotificationsRepository;
  orgs: OrgAccess;
  audit: AuditSink;
  queue: WorkQueue;
  sender: SenderOptions;
  /** alerts.external_url, or http://<http.host>:<http.port>. */
  externalUrl: string;
  sent: Counter<'channel_type' | 'outcome'>;
  logger: Logger;
  /** notifications.max_attempts: the row's count caps the attempts (a task the sweep enqueued again counts from 1). */
  maxAttempts: number;
  /**
   * A row idle this long with no live task is the sweep's (the per-attempt task timeout plus
   * the queue's lease: a live attempt has renewed its lease or recorded by then).
   */
  stuckAfterMs: number;
}

const dedupeKeyOf = (id: string) => `notify:${id}`;

/**
 * The notification outbox and its delivery (issue 10 point 6; DESIGN §7). `dispatch` stores one
 * row per channel before it resolves (idempotent by dedup key) and enqueues `notify.deliver`;
 * each run of the task is one attempt, recorded in notification_attempts and on the row; the
 * queue retries with backoff. A start hook and a sweep re-enqueue rows a crash left unqueued.
 */
export class DeliveryService implements Notifier {
  constructor(private readonly d: DeliveryDeps) {}

  async dispatch(n: NotificationRequest): Promise<string[]> {
    const wanted = [...new Set(n.channelIds)];
    const valid = wanted.filter(isUuid);
    // An org's alerts reach that org's channels only; Sentinel's own (orgId null) go to the
    // channels the operator configured, whatever their org.
    const found = n.orgId === null ? await this.d.channels.findAnyOrg(valid) : await this.d.channels.findMany(n.orgId, valid);
    // In the request's order, so the answer's ids line up with the channels asked for.
    const channels = wanted.flatMap((id) => found.filter((c) => c.id === id));
    const skipped = wanted.filter((id) => !found.some((c) => c.id === id));
    if (skipped.length > 0) {
      this.d.logger.warn({ org: n.orgId, group_key: n.groupKey, channels: skipped }, n.orgId ? 'notification: channels skipped (no such channel in the organization)' : 'notification: channels skipped (no such channel)');
    }
    const payload = v4Payload(n, this.d.externalUrl) as unknown as Record<string, unknown>;
    const ids: string[] = [];
    for (const c of channels) {
      const row = await this.d.repo.insertOnce(c.org_id, { channel_id: c.id, dedup_key: n.dedupKey, group_key: n.groupKey, rule_id: n.ruleId, status: n.status, payload });
      ids.push(row.id);
      if (row.state === 'queued') await this.enqueue(row);
    }
    return ids;
  }

  /** One attempt of the `notify.deliver` task. Throws to have the queue retry it. */
  async deliver(p: DeliverPayload, attempt: TaskAttempt, signal?: AbortSignal): Promise<void> {
    if (!isUuid(p.org_id) || !isUuid(p.id)) return;
    const interrupted = await this.d.repo.recordInterrupted(p.org_id, p.id, ABANDONED_ERROR);
    if (interrupted !== null) this.d.logger.warn({ notification: p.id, org: p.org_id, attempt: interrupted }, 'notification attempt interrupted (process died); trying again');
    const row = await this.d.repo.beginAttempt(p.org_id, p.id);
    if (!row) {
      this.d.logger.info({ notification: p.id }, 'notification already delivered, failed, or gone; not sent');
      return;
    }
    const channel = await this.d.channels.find(row.org_id, row.channel_id);
    if (!channel) return; // deleted meanwhile (its notifications go with it)
    const final = attempt.attempt >= attempt.maxAttempts || row.attempts >= this.d.maxAttempts;
    const result = await this.attempt(row, channel, final, signal);
    if (result.outcome === 'retry' && !final) throw new Error(`notification not delivered (attempt ${row.attempts}): ${result.error}`);
  }

  /** The channel test: one attempt now, recorded as a notification with status 'test'. */
  async sendTest(orgId: string, channel: ChannelRow): Promise<ChannelTestResult> {
    const payload = testPayload(channel.name, this.d.externalUrl, this.d.sender.clock.now()) as unknown as Record<string, unknown>;
    const stored = await this.d.repo.insertOnce(orgId, { channel_id: channel.id, dedup_key: `test:${randomUUID()}`, group_key: 'test', rule_id: null, status: 'test', payload });
    const row = (await this.d.repo.beginAttempt(orgId, stored.id))!;
    const started = performance.now();
    const result = await this.attempt(row, channel, true);
    return { ok: result.outcome === 'sent', status_code: result.statusCode, error: result.error, latency_ms: Math.round(performance.now() - started), notification_id: row.id };
  }

  async list(actor: Actor, slug: string, q: NotificationsQueryInput = {}): Promise<Page<Notification>> {
    const org = await this.d.orgs.require(actor, slug, 'alert.read');
    const limit = pageLimit(q.limit);
    const after = uuidCursor(q.cursor);
    const rows = await this.d.repo.list(org.id, { state: q.state, ruleId: q.rule_id, channelId: q.channel_id }, limit + 1, after);
    const page = toPage(rows, limit, (r) => r.id);
    const attempts = await this.d.repo.attemptsOf(org.id, page.items.map((r) => r.id));
    return { items: page.items.map((r) => present(r, r.channel_type, attempts)), next_cursor: page.next_cursor };
  }

  /** A new notification with the same payload to the same channel, queued now. */
  async resend(actor: Actor, slug: string, id: string, meta: RequestMeta = {}): Promise<Notification> {
    const org = await this.d.orgs.require(actor, slug, 'channel.manage');
    const orig = isUuid(id) ? await this.d.repo.find(org.id, id) : undefined;
    const channel = orig ? await this.d.channels.find(org.id, orig.channel_id) : undefined;
    if (!orig || !channel) throw notFound('notification');
    const row = await this.d.repo.insertOnce(org.id, {
      channel_id: orig.channel_id,
      dedup_key: `${orig.dedup_key}#resend:${randomUUID()}`,
      group_key: orig.group_key,
      rule_id: orig.rule_id,
      status: orig.status,
      payload: orig.payload,
      resend_of: orig.id,
    });
    await this.enqueue(row);
    await this.d.audit.record({ actor, action: 'notification.resend', orgId: org.id, targetType: 'notification', targetId: row.id, details: { resend_of: orig.id, channel_id: channel.id }, ...meta });
    return present(row, channel.type, []);
  }

  /**
   * Re-enqueues queued notifications that have no task (a crash between storing and enqueueing):
   * idempotent, the task's dedupe key is the notification's. `minAgeMs` 0 at start. Then settles
   * the rows whose task is gone mid-delivery (a worker died during an attempt, and that was the
   * task's last: the queue failed the task): the interrupted attempt is recorded, and the row is
   * enqueued again under a new dedupe key while notifications.max_attempts allows, else failed.
   * Stops between rows once `signal` aborts.
   */
  async sweep(minAgeMs = SWEEP_MIN_AGE_MS, signal?: AbortSignal): Promise<number> {
    let n = 0;
    const rows = await this.d.repo.queuedWithoutAttempt(minAgeMs, SWEEP_BATCH);
    for (const r of rows) {
      if (signal?.aborted) return n;
      await this.enqueue(r);
      n++;
    }
    for (const r of await this.d.repo.withoutLiveTask(this.d.stuckAfterMs, SWEEP_BATCH)) {
      if (signal?.aborted) return n;
      const final = r.attempts >= this.d.maxAttempts;
      const state = r.attempts === 0 ? 'queued' : final ? 'failed' : 'retrying';
      const record = r.attempts > 0 && !r.recorded;
      if (!(await this.d.repo.abandonAttempt(r.org_id, r.id, { attempts: r.attempts, idleMs: this.d.stuckAfterMs, state, error: ABANDONED_ERROR, record }))) continue;
      const log = { notification: r.id, org: r.org_id, attempt: r.attempts };
      if (final) this.d.logger.warn(log, 'notification failed: its last attempt was interrupted (process died)');
      else {
        this.d.logger.warn(log, record ? 'notification attempt interrupted (process died); queued again' : 'notification without a live delivery task; queued again');
        await this.enqueue(r, `${dedupeKeyOf(r.id)}#${r.attempts}`);
      }
      n++;
    }
    return n;
  }

  private async enqueue(row: Pick<NotificationRow, 'org_id' | 'id'>, dedupeKey = dedupeKeyOf(row.id)): Promise<void> {
    await this.d.queue.enqueue(DELIVER_TASK, { org_id: row.org_id, id: row.id } satisfies DeliverPayload, { dedupeKey });
  }

  /** Sends once and records the attempt (row, attempt row, metric, log). */
  private async attempt(row: NotificationRow, channel: ChannelRow, final: boolean, signal?: AbortSignal): Promise<SendResult> {
    const started = performance.now();
    let result: SendResult;
    try {
      result = await sendThrough(channel, storedPayload(row.payload), row.org_id, this.d.sender, signal);
    } catch (err) {
      // A defect or a broken sealed secret: recorded like a failed attempt, retried.
      result = { outcome: 'retry', statusCode: null, error: err instanceof Error ? err.message : String(err) };
    }
    const latencyMs = Math.round(performance.now() - started);
    const outcome = result.outcome === 'sent' ? 'sent' : result.outcome === 'retry' && !final ? 'retrying' : 'failed';
    await this.d.repo.recordAttempt(row.org_id, row.id, { attempt: row.attempts, outcome, statusCode: result.statusCode, error: result.error, latencyMs });
    this.d.sent.inc({ channel_type: channel.type, outcome });
    const log = { notification: row.id, org: row.org_id, channel: channel.id, channel_type: channel.type, attempt: row.attempts, status_code: result.statusCode, latency_ms: latencyMs };
    if (outcome === 'sent') this.d.logger.info(log, 'notification sent');
    else this.d.logger.warn({ ...log, error: result.error }, outcome === 'retrying' ? 'notification not delivered; will retry' : 'notification failed');
    return result;
  }
}

function present(r: NotificationRow, channelType: ChannelType, attempts: AttemptRow[]): Notification {
  return {
    id: r.id,
    channel_id: r.channel_id,
    channel_type: channelType,
    rule_id: r.rule_id,
    group_key: r.group_key,
    dedup_key: r.dedup_key,
    status: r.status,
    state: r.state,
    attempts: attempts
      .filter((a) => a.notification_id === r.id)
      .map((a) => ({ attempt: a.attempt, at: a.at.toISOString(), outcome: a.outcome, status_code: a.status_code, error: a.error, latency_ms: a.latency_ms })),
    last_error: r.last_error,
    created_at: r.created_at.toISOString(),
    sent_at: isoOrNull(r.sent_at),
    resend_of: r.resend_of,
  };
}
