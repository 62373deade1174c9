import type { Command } from 'commander';
import { withApp } from '../app/with-app.js';
import { SYSTEM_ACTOR } from '../core/actor.js';
import { DomainError } from '../core/errors.js';
import { usage, type CliContext } from './context.js';
import { printJson, printTable } from './io.js';

/** Without the password: the URL is printed in the restore plan. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

/** `sentinel backup …` (DESIGN §5). Failures exit non-zero: 1 failed or damaged, 3 no such backup, 4 refused target. */
export function registerBackupCommands(program: Command, ctx: CliContext): void {
  const backup = program.command('backup').description('consistent backups of the database, verified by restoring them');

  backup
    .command('create')
    .description('back up every table now into backups.dir (a manual run of the backup job, then its prune; exit 4 while a backup runs)')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }) => {
      const b = await withApp(ctx.appEnv(), (app) => app.services.backups.createNow(SYSTEM_ACTOR));
      if (o.json) printJson(ctx.io, b);
      else ctx.io.stdout(`backup ${b.id} complete: ${b.tables} tables, ${b.rows} rows, ${mb(b.bytes)}\n`);
    });

  backup
    .command('list')
    .description('the backups, newest first')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }) => {
      const items = await withApp(ctx.appEnv(), (app) => app.services.backups.list(SYSTEM_ACTOR));
      if (o.json) printJson(ctx.io, items);
      else
        printTable(
          ctx.io,
          ['ID', 'STATUS', 'FINISHED', 'SCHEMA', 'ROWS', 'SIZE'],
          items.map((b) => [b.id, b.status, b.finished_at ?? '-', b.schema_version ?? '-', String(b.rows), mb(b.bytes)]),
        );
    });

  backup
    .command('verify <id>')
    .description('check every checksum, then restore into a scratch database and compare every table')
    .option('--json', 'print as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await withApp(ctx.appEnv(), (app) => app.services.backups.verify(SYSTEM_ACTOR, id));
      if (o.json) printJson(ctx.io, r);
      else if (r.ok) ctx.io.stdout(`backup ${id} is good: ${r.tables} tables, ${r.rows} rows restored and compared in ${r.duration_ms} ms\n`);
      if (!r.ok) throw new DomainError('internal', `backup ${id} failed verification:\n  ${r.problems.join('\n  ')}`);
    });

  backup
    .command('restore <id>')
    .description('restore a backup into an empty database (the configured one, or --database-url)')
    .option('--yes', 'confirm the restore')
    .option('--database-url <url>', 'restore into this database instead of the configured one')
    .option('--json', 'print the report as JSON')
    .action(async (id: string, o: { yes?: boolean; databaseUrl?: string; json?: boolean }) => {
      const r = await withApp(ctx.appEnv(), async (app) => {
        const backups = app.services.backups;
        if (!o.yes) {
          const m = await backups.describe(SYSTEM_ACTOR, id);
          const rows = m.tables.reduce((n, t) => n + t.rows, 0);
          ctx.io.stdout(
            `would restore backup ${id} (taken ${m.finished_at} by Sentinel ${m.sentinel_version}, schema ${m.schema_version}: ${m.tables.length} tables, ${rows} rows)\n` +
              `into ${redacted(o.databaseUrl ?? app.db.url)}, which must be empty: migrate it to ${m.schema_version}, load every table, then apply later migrations\n`,
          );
          return null;
        }
        return backups.restore(SYSTEM_ACTOR, id, o.databaseUrl);
      });
      if (!r) throw usage('nothing restored; add --yes to confirm');
      for (const w of r.warnings) ctx.io.stderr(`warning: ${w}\n`);
      if (o.json) printJson(ctx.io, r);
      else
        ctx.io.stdout(
          `restored backup ${id}: ${r.tables} tables, ${r.rows} rows at schema ${r.migrated_to}` +
            (r.later_migrations.length ? `, then ${r.later_migrations.length} later migration(s): ${r.later_migrations.join(', ')}` : '') +
            ` in ${r.duration_ms} ms\n`,
        );
    });

  backup
    .command('prune')
    .description('keep the backups.keep newest complete backups, remove older and damaged ones and crashed writes')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await withApp(ctx.appEnv(), (app) => app.services.backups.prune(SYSTEM_ACTOR));
      if (o.json) printJson(ctx.io, r);
      else ctx.io.stdout(`kept ${r.kept.length}, removed ${r.removed.length}${r.removed.length ? `: ${r.removed.join(', ')}` : ''}; leftover temporary directories removed: ${r.temporaries_removed.length}; leftover scratch databases dropped: ${r.scratch_databases_dropped.length}\n`);
    });
}
