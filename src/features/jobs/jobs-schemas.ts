import { Type, type Static } from '@sinclair/typebox';
import { JOB_NAME_PATTERN, JOB_OUTCOMES, JOB_TRIGGERS, type presentRun, type presentStatus } from '../../core/jobs.js';

const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339, UTC.' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const JobRunSchema = Type.Object(
  {
    id: Type.String({ description: 'The run id (job_runs).' }),
    job: Type.String(),
    trigger: Type.Union(JOB_TRIGGERS.map((t) => Type.Literal(t))),
    slot: Nullable(Timestamp),
    started_at: Timestamp,
    finished_at: Nullable(Timestamp),
    outcome: Type.Union([...JOB_OUTCOMES.map((o) => Type.Literal(o)), Type.Null()], { description: 'Null while the run is under way.' }),
    error: Nullable(Type.String()),
    details: Type.Unknown({ description: "The job's report (JSON) when it succeeded." }),
    instance: Type.String({ description: 'host:pid of the process that ran it.' }),
  },
  { additionalProperties: false },
);

export const JobStatusSchema = Type.Object(
  {
    name: Type.String(),
    description: Type.String(),
    module: Type.String(),
    schedule: Nullable(Type.String({ description: 'Cron expression, UTC: jobs.<name>.schedule or the default.' })),
    enabled: Type.Boolean(),
    timeout_ms: Nullable(Type.Integer()),
    running: Type.Boolean({ description: 'A run holds the job\'s lock now (any instance on the database).' }),
    last_run: Nullable(JobRunSchema),
    next_run: Nullable(Timestamp),
  },
  { additionalProperties: false },
);

export const JobListSchema = Type.Object({ items: Type.Array(JobStatusSchema) }, { additionalProperties: false });
export const JobNameParams = Type.Object({ name: Type.String({ pattern: JOB_NAME_PATTERN, maxLength: 100 }) });
export const JobRunStartedSchema = Type.Object({ id: Type.String({ description: 'The run id; GET /admin/jobs shows it as the last run.' }) }, { additionalProperties: false });

export type JobStatusView = Static<typeof JobStatusSchema>;
export type JobRunStarted = Static<typeof JobRunStartedSchema>;

/*
 * The core's JobRun and JobStatus (src/core/jobs.ts: the kit's and the CLI's types, which may not
 * import a feature) are presented by presentRun/presentStatus; these schemas are that form's
 * TypeBox twin for the API. A field added to or changed on one side only fails to compile here.
 */
/** Each assignable to the other (TypeBox's Static is an evaluated type, not identical to a declared one). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const runSchemaMatchesCore: Same<Static<typeof JobRunSchema>, ReturnType<typeof presentRun>> = true;
const statusSchemaMatchesCore: Same<Static<typeof JobStatusSchema>, ReturnType<typeof presentStatus>> = true;
void runSchemaMatchesCore;
void statusSchemaMatchesCore;
