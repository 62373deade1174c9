import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import { requireSuperadmin } from '../../core/authorize.js';
import { presentStatus, type JobControl } from '../../core/jobs.js';
import type { JobRunStarted, JobStatusView } from './jobs-schemas.js';

/** The admin view of the jobs kit: superadmins only, and a manual run is audited. */
export class JobsService {
  constructor(
    private readonly jobs: JobControl,
    private readonly audit: AuditSink,
  ) {}

  async list(actor: Actor): Promise<JobStatusView[]> {
    requireSuperadmin(actor);
    return (await this.jobs.list()).map(presentStatus);
  }

  /** Starts the run and answers once it holds the job's lock (404 unknown job, 409 running). */
  async run(actor: Actor, name: string, meta: RequestMeta = {}): Promise<JobRunStarted> {
    requireSuperadmin(actor);
    const started = await this.jobs.trigger(name);
    await this.audit.record({ actor, action: 'job.run', targetType: 'job', targetId: name, details: { run_id: started.id }, ...meta });
    return started;
  }
}
