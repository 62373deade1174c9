import { migrationStatus } from '../../db/migration-source.js';
import { defineModule } from '../feature-module.js';
import { registerHealthRoutes } from './health-routes.js';

/** Liveness and readiness (database reachable, schema current, queue running) for supervisors and load balancers. */
export const healthModule = defineModule({
  name: 'health',
  requires: [],
  provides: [],
  build(kits) {
    const { db } = kits;
    return {
      provides: {},
      services: {},
      routes: (registry) =>
        registerHealthRoutes(registry, {
          version: kits.version,
          checks: [
            { name: 'database', check: () => db.ping() },
            {
              name: 'migrations',
              check: async () => {
                const { pending } = await migrationStatus(db.knex);
                if (pending.length) throw new Error(`${pending.length} pending migration(s): ${pending.join(', ')}`);
              },
            },
            {
              // DESIGN §6: ready means the queue runs too (scheduled jobs and queued tasks).
              name: 'queue',
              check: async () => {
                if (!kits.jobs.workersActive()) throw new Error('the queue workers are not running');
              },
            },
          ],
        }),
    };
  },
});
