import type { Command } from 'commander';
import { withApp } from '../app/with-app.js';
import type { RollbackPlan } from '../app/build-app.js';
import { printJson, type CliIO } from './io.js';
import { usage, type CliContext } from './context.js';

function printPlan(io: CliIO, plan: RollbackPlan, confirmed: boolean): void {
  io.stdout(`${confirmed ? 'rolling back' : 'would roll back'} ${plan.migrations.length} migration(s)${plan.firstBatch ? ' (including the first batch: the base schema)' : ''}:\n`);
  for (const m of plan.migrations) io.stdout(`  ${m}\n`);
  if (plan.tables === null) io.stdout(`the tables it drops could not be listed (${plan.dryRunError ?? 'unknown error'})\n`);
  else if (plan.tables.length === 0) io.stdout('it drops no table\n');
  else io.stdout(`${confirmed ? 'dropping' : 'it would drop'} ${plan.tables.length} table(s) and every row in them:\n${plan.tables.map((t) => `  ${t}\n`).join('')}`);
}

export function registerMigrateCommands(program: Command, ctx: CliContext): void {
  const migrate = program.command('migrate').description('database schema migrations');
  const io = ctx.io;

  migrate
    .command('latest')
    .description('apply all pending migrations')
    .action(async () => {
      const applied = await withApp(ctx.appEnv(), (app) => app.migrations.latest());
      io.stdout(applied.length ? `applied ${applied.length} migration(s):\n${applied.map((m) => `  ${m}\n`).join('')}` : 'already up to date\n');
    });

  // Rolling back drops tables with their data: it shows what it would drop and runs only when
  // confirmed, and undoing the base schema takes --all on top, so no slip of the keyboard empties an install.
  migrate
    .command('rollback')
    .description('undo the last batch of migrations (drops tables and their data: back up first)')
    .option('--all', 'undo every migration, the first batch included')
    .option('--yes', 'do it (without: print what would be dropped and exit 2)')
    .action(async (o: { all?: boolean; yes?: boolean }) => {
      const all = o.all === true;
      await withApp(ctx.appEnv(), async (app) => {
        const plan = await app.migrations.rollbackPlan(all);
        if (plan.migrations.length === 0) {
          io.stdout('nothing to roll back\n');
          return;
        }
        const confirmed = o.yes === true && (all || !plan.firstBatch);
        printPlan(io, plan, confirmed);
        if (plan.firstBatch && !all) {
          throw usage("not rolled back: the last batch is the first one, and undoing it empties the database; back up first, then run 'sentinel migrate rollback --all --yes'");
        }
        if (!confirmed) throw usage(`not rolled back: back up first, then run again with --yes ('sentinel migrate rollback${all ? ' --all' : ''} --yes')`);
        const undone = await app.migrations.rollback(all);
        io.stdout(`rolled back ${undone.length} migration(s):\n${undone.map((m) => `  ${m}\n`).join('')}`);
      });
    });

  migrate
    .command('status')
    .description('list applied and pending migrations')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const status = await withApp(ctx.appEnv(), (app) => app.migrations.status());
      if (o.json) return printJson(io, status);
      for (const m of status.applied) io.stdout(`applied  ${m}\n`);
      for (const m of status.pending) io.stdout(`pending  ${m}\n`);
      io.stdout(`${status.applied.length} applied, ${status.pending.length} pending\n`);
    });
}
