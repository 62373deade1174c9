import { defineModule } from '../feature-module.js';

/** Heartbeats (dead-man's switches) and Sentinel's own: a missed ping raises an alert. */
export const heartbeatsModule = defineModule({
  name: 'heartbeats',
  requires: [],
  provides: [],
  build() {
    // Skeleton: filled in by the heartbeats feature.
    return { provides: {}, services: {} };
  },
});
