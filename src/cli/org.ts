import type { Command } from 'commander';
import { SYSTEM_ACTOR } from '../core/actor.js';
import { collectAll, MAX_LIMIT } from '../core/pagination.js';
import { withApp } from '../app/with-app.js';
import { printJson, printTable } from './io.js';
import { usage, type CliContext } from './program.js';

export function registerOrgCommands(program: Command, ctx: CliContext): void {
  const org = program.command('org').description('manage organizations (tenants)');

  org
    .command('create <slug>')
    .description('create an organization')
    .option('--name <name>', 'display name (default: the slug)')
    .option('--json', 'print JSON')
    .action(async (slug: string, o: { name?: string; json?: boolean }) => {
      const created = await withApp(ctx.appEnv(), (app) => app.services.orgs.create(SYSTEM_ACTOR, { slug, name: o.name }));
      if (o.json) printJson(ctx.io, created);
      else ctx.io.stdout(`created organization ${created.slug} (${created.id})\n`);
    });

  org
    .command('list')
    .description('list organizations')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const items = await withApp(ctx.appEnv(), (app) =>
        collectAll((cursor) => app.services.orgs.list(SYSTEM_ACTOR, { limit: MAX_LIMIT, cursor })),
      );
      if (o.json) printJson(ctx.io, items);
      else printTable(ctx.io, ['SLUG', 'NAME', 'ID', 'CREATED'], items.map((i) => [i.slug, i.name, i.id, i.created_at]));
    });

  org
    .command('show <slug>')
    .description('show one organization')
    .option('--json', 'print JSON')
    .action(async (slug: string, o: { json?: boolean }) => {
      const found = await withApp(ctx.appEnv(), (app) => app.services.orgs.get(SYSTEM_ACTOR, slug));
      if (o.json) printJson(ctx.io, found);
      else printTable(ctx.io, ['FIELD', 'VALUE'], Object.entries(found).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    });

  org
    .command('delete <slug>')
    .description('delete an organization and everything it owns')
    .option('--yes', 'confirm the deletion')
    .action(async (slug: string, o: { yes?: boolean }) => {
      if (!o.yes) throw usage(`deleting '${slug}' removes all of its data; add --yes to confirm`);
      await withApp(ctx.appEnv(), (app) => app.services.orgs.delete(SYSTEM_ACTOR, slug));
      ctx.io.stdout(`deleted organization ${slug}\n`);
    });
}
