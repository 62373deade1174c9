import type { Command } from 'commander';
import { declaredJobs } from '../app/build-app.js';
import { withApp } from '../app/with-app.js';
import { presentRun, presentStatus, type JobRun } from '../core/jobs.js';
import { usage, type CliContext } from './context.js';
import { printJson, printTable } from './io.js';

/*
 * The jobs the feature modules declare (their *-module.ts), by name, and their runs (job_runs).
 * `run` goes through the daemon's runner: the job's advisory lock (refused, exit 4, while it runs
 * anywhere on the database) and a job_runs row with trigger 'manual'.
 */

const when = (d: Date | null): string => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');
const lastRunCell = (r: JobRun | null): string => (r ? `${when(r.startedAt)} ${r.outcome ?? 'running'}` : '-');

export function registerJobsCommands(program: Command, ctx: CliContext): void {
  const jobs = program.command('jobs').description('scheduled maintenance jobs and their runs');
  const declared = declaredJobs();
  const names = declared.map((j) => j.name);
  const known = (name: string) => {
    // Checked before connecting: a typo should not start an embedded server.
    if (!names.includes(name)) throw usage(`unknown job '${name}'; use one of: ${names.join(', ')}`);
  };

  jobs
    .command('list')
    .description('the jobs: effective schedule (UTC), enabled, last run and next run')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }) => {
      const list = await withApp(ctx.appEnv(), (app) => app.jobsKit.control.list());
      if (o.json) return printJson(ctx.io, list.map(presentStatus));
      printTable(
        ctx.io,
        ['NAME', 'SCHEDULE', 'ENABLED', 'LAST RUN', 'NEXT RUN', 'DESCRIPTION'],
        list.map((j) => [j.name, j.schedule ?? '-', j.enabled ? 'yes' : 'no', j.running ? 'running now' : lastRunCell(j.lastRun), when(j.nextRun), j.description]),
      );
    });

  jobs
    .command('run <name>')
    .description(`run a job once, now: ${declared.map((j) => `${j.name} (${j.description})`).join('; ')}`)
    .option('--json', 'print the report as JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      known(name);
      const { run, print } = await withApp(ctx.appEnv(), async (app) => ({ run: await app.jobsKit.runNow(name), print: app.jobs.get(name)!.print }));
      // A run that did not succeed is a failed command: its error on stderr, exit 1.
      if (run.outcome !== 'ok') throw new Error(`job '${name}' ${run.outcome === 'timeout' ? 'timed out' : run.outcome} (run ${run.id}): ${run.error ?? ''}`);
      if (o.json || !print) printJson(ctx.io, run.result ?? null);
      else ctx.io.stdout(print(run.result));
    });

  jobs
    .command('history')
    .description('the latest runs, newest first (job_runs)')
    .option('--job <name>', 'only this job')
    .option('--limit <n>', 'how many runs (1-1000)', '50')
    .option('--json', 'print as JSON')
    .action(async (o: { job?: string; limit: string; json?: boolean }) => {
      if (o.job !== undefined) known(o.job);
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw usage(`--limit must be an integer from 1 to 1000, not '${o.limit}'`);
      const runs = await withApp(ctx.appEnv(), (app) => app.jobsKit.control.history({ job: o.job, limit }));
      if (o.json) return printJson(ctx.io, runs.map(presentRun));
      printTable(
        ctx.io,
        ['ID', 'JOB', 'TRIGGER', 'STARTED', 'DURATION', 'OUTCOME', 'ERROR'],
        runs.map((r) => [
          r.id,
          r.job,
          r.trigger,
          when(r.startedAt),
          r.finishedAt ? `${((r.finishedAt.getTime() - r.startedAt.getTime()) / 1000).toFixed(1)}s` : '-',
          r.outcome ?? 'running',
          r.error ?? '',
        ]),
      );
    });
}
