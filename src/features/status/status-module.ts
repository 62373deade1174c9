import type { AlertsStatusSource, BackupsStatusSource, HeartbeatsStatusSource, IngestStatusSource } from '../../core/status.js';
import { defineModule } from '../feature-module.js';
import { StatusRepository } from './status-repository.js';
import { registerStatusRoutes } from './status-routes.js';
import { StatusService } from './status-service.js';

interface StatusNeeds {
  ingestStatus: IngestStatusSource;
  alertsStatus: AlertsStatusSource;
  backupsStatus: BackupsStatusSource;
  heartbeatsStatus: HeartbeatsStatusSource;
}

/** GET /admin/status: every section from the module or kit that owns its figures. */
export const statusModule = defineModule({
  name: 'status',
  requires: ['ingestStatus', 'alertsStatus', 'backupsStatus', 'heartbeatsStatus'],
  provides: [],
  build(kits, needs: StatusNeeds) {
    const { db } = kits;
    const adminStatus = new StatusService(
      new StatusRepository(db.knex),
      {
        ingest: needs.ingestStatus,
        alerts: needs.alertsStatus,
        backups: needs.backupsStatus,
        heartbeats: needs.heartbeatsStatus,
        http: kits.httpStatus,
        jobs: kits.jobs,
        pools: db.pools,
      },
      { version: kits.version, embedded: db.embedded !== null },
    );
    return { provides: {}, services: { adminStatus }, routes: (registry) => registerStatusRoutes(registry, adminStatus) };
  },
});
