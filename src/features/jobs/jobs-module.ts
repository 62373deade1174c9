import type { AuditSink } from '../../core/audit.js';
import { defineModule } from '../feature-module.js';
import { registerJobsRoutes } from './jobs-routes.js';
import { JobsService } from './jobs-service.js';

/**
 * The admin face of the jobs kit (src/jobs): GET /admin/jobs and POST /admin/jobs/{name}/run.
 * The jobs themselves are declared by the modules that own the work.
 */
export const jobsModule = defineModule({
  name: 'jobs',
  requires: ['auditSink'],
  provides: [],
  build(kits, needs: { auditSink: AuditSink }) {
    const jobsAdmin = new JobsService(kits.jobs, needs.auditSink);
    return { provides: {}, services: { jobsAdmin }, routes: (registry) => registerJobsRoutes(registry, jobsAdmin) };
  },
});
