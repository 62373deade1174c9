import { actorOf, metaOf } from '../../http/context.js';
import type { ApiRegistry } from '../../http/registry.js';
import { JobListSchema, JobNameParams, JobRunStartedSchema } from './jobs-schemas.js';
import type { JobsService } from './jobs-service.js';

export function registerJobsRoutes(registry: ApiRegistry, jobs: JobsService): void {
  registry.route({
    method: 'get',
    path: '/admin/jobs',
    operationId: 'listJobs',
    summary: 'The jobs: schedule (UTC), enabled, last run with its outcome, next run (superadmins)',
    tags: ['admin'],
    auth: 'user',
    responses: { 200: { description: 'Every job the modules declare.', schema: JobListSchema }, 403: { description: 'Not a superadmin.' } },
    handler: async (ctx) => {
      ctx.body = { items: await jobs.list(actorOf(ctx)) };
    },
  });

  registry.route({
    method: 'post',
    path: '/admin/jobs/{name}/run',
    operationId: 'runJob',
    summary: 'Run a job now, in this instance, through the same lock and record as the scheduler (superadmins)',
    tags: ['admin'],
    auth: 'user',
    params: JobNameParams,
    responses: {
      202: { description: 'Started: it holds the job\'s lock and its run is recorded; GET /admin/jobs shows how it ends.', schema: JobRunStartedSchema },
      403: { description: 'Not a superadmin.' },
      404: { description: 'No such job.' },
      409: { description: 'The job is running (here or on another instance).' },
    },
    handler: async (ctx, { params }) => {
      ctx.body = await jobs.run(actorOf(ctx), params.name, metaOf(ctx));
      ctx.status = 202;
    },
  });
}
