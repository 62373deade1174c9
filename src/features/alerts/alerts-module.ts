import type { AlertSink } from '../../core/alerting.js';
import { defineModule } from '../feature-module.js';

/** Alert rules, their evaluation and state, silences, maintenance windows, acknowledgements and notification grouping. */
export const alertsModule = defineModule({
  name: 'alerts',
  requires: [],
  provides: ['alertSink'],
  build() {
    // Skeleton: filled in by the alerts feature.
    const alertSink: AlertSink = {
      raise: () => Promise.reject(new Error('alerts: not built yet')),
      resolve: () => Promise.reject(new Error('alerts: not built yet')),
    };
    return { provides: { alertSink }, services: {} };
  },
});
