import type { Command } from 'commander';
import { withApp } from '../app/with-app.js';
import { printJson } from './io.js';
import type { CliContext } from './program.js';

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

  migrate
    .command('rollback')
    .description('undo the last batch of migrations')
    .option('--all', 'undo every migration')
    .action(async (o: { all?: boolean }) => {
      const undone = await withApp(ctx.appEnv(), (app) => app.migrations.rollback(o.all === true));
      io.stdout(undone.length ? `rolled back ${undone.length} migration(s):\n${undone.map((m) => `  ${m}\n`).join('')}` : 'nothing to roll back\n');
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
