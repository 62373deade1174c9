import type { Command } from 'commander';
import { declaredJobs } from '../app/build-app.js';
import { withApp } from '../app/with-app.js';
import { usage, type CliContext } from './context.js';
import { printJson, printTable } from './io.js';

/*
 * The jobs the feature modules declare (their *-module.ts), by name. The scheduler (DESIGN §7)
 * will run the same definitions; `run` is the operator's way to run one now, e.g. after lowering
 * an org's retention.
 */
export function registerJobsCommands(program: Command, ctx: CliContext): void {
  const jobs = program.command('jobs').description('maintenance jobs');
  const declared = declaredJobs();
  const names = declared.map((j) => j.name);

  jobs
    .command('list')
    .description('the jobs, their default schedules and what they do')
    .option('--json', 'print as JSON')
    .action((o: { json?: boolean }) => {
      if (o.json) printJson(ctx.io, declared);
      else printTable(ctx.io, ['NAME', 'SCHEDULE', 'DESCRIPTION'], declared.map((j) => [j.name, j.defaultSchedule ?? '-', j.description]));
    });

  jobs
    .command('run <name>')
    .description(`run a job once, now: ${declared.map((j) => `${j.name} (${j.description})`).join('; ')}`)
    .option('--json', 'print the report as JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      // Checked before connecting: a typo should not start an embedded server.
      if (!names.includes(name)) throw usage(`unknown job '${name}'; use one of: ${names.join(', ')}`);
      const { result, print } = await withApp(ctx.appEnv(), async (app) => {
        const job = app.jobs.get(name)!;
        const timeout = job.timeoutMs ? AbortSignal.timeout(job.timeoutMs) : new AbortController().signal;
        return { result: await job.run(timeout), print: job.print };
      });
      if (o.json || !print) printJson(ctx.io, result);
      else ctx.io.stdout(print(result));
    });
}
