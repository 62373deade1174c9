import { Counter } from 'prom-client';
import type { ChannelDirectory, DeliveryStats, Notifier } from '../../core/alerting.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import type { Mailer } from '../../core/mail.js';
import { SecretBox } from '../../core/secrets.js';
import { SerialLoop } from '../../core/serial-loop.js';
import { defineModule, type Hook, type TaskSpec } from '../feature-module.js';
import { ChannelsRepository } from './channels-repository.js';
import { ChannelsService } from './channels-service.js';
import { DELIVER_TASK, DeliveryService, SWEEP_MIN_AGE_MS, type DeliverPayload } from './delivery-service.js';
import { NotificationsRepository } from './notifications-repository.js';
import { registerNotificationRoutes } from './notifications-routes.js';

interface NotificationServices {
  channels: ChannelsService;
  notifications: DeliveryService;
  deliveryStats: DeliveryStats;
}

/** How often the daemon looks for queued notifications that have no task (a crash in between). */
export const SWEEP_EVERY_MS = 60_000;
/** The queue's lease (src/jobs/jobs-kit.ts LEASE_MS; a feature may not import the kit). */
const QUEUE_LEASE_MS = 60_000;
/** A run of notify.deliver: the per-attempt timeout plus time to record it. */
const deliverTaskTimeoutMs = (attemptTimeoutMs: number) => attemptTimeoutMs + 5000;

/**
 * One attempt per run; retried by the queue: notifications.backoff_ms doubling, at most 10 min
 * apart, notifications.max_attempts in all. A run is bounded by the per-attempt timeout (plus
 * time to record it).
 */
export const deliverTask: TaskSpec<NotificationServices, DeliverPayload> = {
  name: DELIVER_TASK,
  maxBackoffMs: 10 * 60_000,
  configured: (config) => ({
    maxAttempts: config.notifications.max_attempts,
    backoffMs: config.notifications.backoff_ms,
    timeoutMs: deliverTaskTimeoutMs(config.notifications.timeout_ms),
  }),
  run: (s, payload, signal, attempt) => s.notifications.deliver(payload, attempt, signal),
};

/** Notification channels (webhook, email, Slack), the notification outbox and its delivery log. */
export const notificationsModule = defineModule({
  name: 'notifications',
  requires: ['auditSink', 'orgAccess', 'mailer'],
  provides: ['notifier', 'channelDirectory', 'deliveryStats'],
  tasks: [deliverTask],
  build(kits, needs: { auditSink: AuditSink; orgAccess: OrgAccess; mailer: Mailer }) {
    const { config } = kits;
    const box = new SecretBox(config.auth.encryption_key);
    const channelsRepo = new ChannelsRepository(kits.db.knex);
    const notificationsRepo = new NotificationsRepository(kits.db.knex);
    const sent = new Counter({
      name: 'sentinel_notification_deliveries_total',
      help: 'Notification delivery attempts by channel type and outcome (sent, retrying, failed).',
      labelNames: ['channel_type', 'outcome'] as const,
      registers: [kits.metrics],
    });
    const notifications = new DeliveryService({
      channels: channelsRepo,
      repo: notificationsRepo,
      orgs: needs.orgAccess,
      audit: needs.auditSink,
      queue: kits.queue,
      sender: {
        allowPrivate: config.notifications.allow_private_networks,
        timeoutMs: config.notifications.timeout_ms,
        userAgent: `Sentinel/${kits.version}`,
        mailer: needs.mailer,
        box,
        clock: kits.clock,
      },
      externalUrl: config.alerts.external_url || `http://${config.http.host}:${config.http.port}`,
      sent,
      logger: kits.logger,
      maxAttempts: config.notifications.max_attempts,
      stuckAfterMs: deliverTaskTimeoutMs(config.notifications.timeout_ms) + QUEUE_LEASE_MS,
    });
    const channels = new ChannelsService({
      repo: channelsRepo,
      orgs: needs.orgAccess,
      audit: needs.auditSink,
      box,
      allowPrivate: config.notifications.allow_private_networks,
      test: (orgId, channel) => notifications.sendTest(orgId, channel),
    });

    // Daemon only: at start every queued notification without a task is enqueued (idempotent),
    // then once a minute those older than a few seconds, and those a dead worker left (sweep).
    // One sweep at a time; stop waits for one under way (it must not outlive the database pool).
    const sweeps = new SerialLoop(
      async (signal) => {
        const n = await notifications.sweep(SWEEP_MIN_AGE_MS, signal);
        if (n > 0) kits.logger.info({ notifications: n }, 'notifications: notifications without a live task enqueued or settled');
      },
      { name: 'notifications: sweep', intervalMs: SWEEP_EVERY_MS, firstDelayMs: SWEEP_EVERY_MS, logger: kits.logger },
    );
    const start: Hook[] = kits.daemon
      ? [
          {
            name: 'outbox sweep',
            timeoutMs: 30_000,
            run: async () => {
              await notifications.sweep(0);
              sweeps.start();
            },
          },
        ]
      : [];
    const stop: Hook[] = [{ name: 'outbox sweep', timeoutMs: 5000, run: () => sweeps.stop() }];
    const deliveryStats: DeliveryStats = {
      async daily(orgId, startMs, endMs) {
        const byChannel = await notificationsRepo.deliveriesByChannel(orgId, new Date(startMs), new Date(endMs));
        return {
          deliveries: byChannel.reduce((n, c) => n + c.deliveries, 0),
          failures: byChannel.reduce((n, c) => n + c.failures, 0),
          by_channel: byChannel,
        };
      },
    };
    return {
      provides: { notifier: notifications as Notifier, channelDirectory: channels as ChannelDirectory, deliveryStats },
      services: { channels, notifications, deliveryStats },
      routes: (registry) => registerNotificationRoutes(registry, { channels, delivery: notifications }),
      start,
      stop,
    };
  },
});
