import type { Command } from 'commander';
import type { App } from '../app/build-app.js';
import { withApp } from '../app/with-app.js';
import { printJson, type CliIO } from './io.js';
import { usage, type CliContext } from './program.js';

/** What the jobs commands use of the app (the composition root builds both). */
export type JobServices = Pick<App['services'], 'retention' | 'partitions'>;
type RetentionReport = Awaited<ReturnType<JobServices['retention']['run']>>;

interface JobDefinition<R> {
  description: string;
  run(services: JobServices): Promise<R>;
  print(io: CliIO, result: R): void;
}

const list = (names: string[]) => (names.length ? `: ${names.join(', ')}` : '');

function printRetention(io: CliIO, r: RetentionReport): void {
  const rows = r.rows_deleted;
  io.stdout(`retention finished in ${r.duration_ms} ms (cutoffs from ${r.now})\n`);
  io.stdout(`partitions dropped: ${r.dropped_partitions.length}${list(r.dropped_partitions)}\n`);
  if (r.deferred_partitions.length) io.stdout(`partitions deferred (table busy, retried next run): ${r.deferred_partitions.length}${list(r.deferred_partitions)}\n`);
  io.stdout(`rows deleted: points ${rows.points}, logs ${rows.logs}, events ${rows.events}\n`);
  if (r.deleted_orgs_swept) io.stdout(`deleted organizations swept: ${r.deleted_orgs_swept}\n`);
  io.stdout(`series removed: ${r.series_removed}\n`);
  io.stdout(`idempotency keys removed: ${r.idempotency_keys_removed}\n`);
}

/**
 * The jobs `run` can start, by name. The scheduler (DESIGN §7) will run the same services; this
 * is the operator's way to run one now, e.g. after lowering an org's retention.
 */
const JOBS = {
  retention: {
    description: 'drop expired day-partitions, delete expired rows per org, stale series and idempotency keys',
    run: (s) => s.retention.run(),
    print: printRetention,
  } satisfies JobDefinition<RetentionReport>,
  partitions: {
    description: 'create the day-partitions of yesterday through the coming days (retention.partitions_ahead_days)',
    run: (s) => s.partitions.run(),
    print: (io, r) => io.stdout(r.created.length ? `created ${r.created.length} partitions${list(r.created)}\n` : 'no partitions created: all exist\n'),
  } satisfies JobDefinition<{ created: string[] }>,
};
type JobName = keyof typeof JOBS;
const JOB_NAMES = Object.keys(JOBS) as JobName[];
const isJob = (name: string): name is JobName => Object.hasOwn(JOBS, name);

export function registerJobsCommands(program: Command, ctx: CliContext): void {
  const jobs = program.command('jobs').description('maintenance jobs');

  jobs
    .command('run <name>')
    .description(`run a job once, now: ${JOB_NAMES.map((n) => `${n} (${JOBS[n].description})`).join('; ')}`)
    .option('--json', 'print the report as JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      // Checked before connecting: a typo should not start an embedded server.
      if (!isJob(name)) throw usage(`unknown job '${name}'; use one of: ${JOB_NAMES.join(', ')}`);
      const job = JOBS[name] as JobDefinition<unknown>;
      const result = await withApp(ctx.appEnv(), (app) => job.run(app.services));
      if (o.json) printJson(ctx.io, result);
      else job.print(ctx.io, result);
    });
}
