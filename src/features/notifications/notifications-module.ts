import type { ChannelDirectory, Notifier } from '../../core/alerting.js';
import { defineModule } from '../feature-module.js';

/** Notification channels (webhook, email, Slack), the notification outbox and its delivery log. */
export const notificationsModule = defineModule({
  name: 'notifications',
  requires: [],
  provides: ['notifier', 'channelDirectory'],
  build() {
    // Skeleton: filled in by the notifications feature.
    const notifier: Notifier = {
      dispatch: () => Promise.reject(new Error('notifications: not built yet')),
    };
    const channelDirectory: ChannelDirectory = { missing: async (_orgId, ids) => ids };
    return { provides: { notifier, channelDirectory }, services: {} };
  },
});
