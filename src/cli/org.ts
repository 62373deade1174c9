import type { Command } from 'commander';
import { SYSTEM_ACTOR } from '../core/actor.js';
import { collectAll, MAX_LIMIT } from '../core/pagination.js';
import { withApp } from '../app/with-app.js';
import { printJson, printTable } from './io.js';
import { usage, type CliContext } from './context.js';

/** The keys of `org limits --set`, as paths into the org's `limits`. */
const LIMIT_KEYS = ['retention_days.metrics', 'retention_days.logs', 'retention_days.events', 'ingest_points_per_second', 'max_series'] as const;

const collect = (value: string, previous: string[]) => [...previous, value];

/** `--set k=v` → a limits patch (v: an integer, or `default` to remove the override). Bounds are the service's. */
export function parseLimitSettings(settings: string[]): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const s of settings) {
    const eq = s.indexOf('=');
    const key = eq < 0 ? s : s.slice(0, eq);
    const raw = eq < 0 ? '' : s.slice(eq + 1).trim();
    if (!(LIMIT_KEYS as readonly string[]).includes(key)) throw usage(`--set ${s}: unknown limit '${key}'; use one of ${LIMIT_KEYS.join(', ')}`);
    if (eq < 0 || !/^(\d+|default)$/.test(raw)) throw usage(`--set ${s}: the value must be a whole number, or 'default' to remove the override`);
    const value = raw === 'default' ? null : Number(raw);
    const [head, tail] = key.split('.');
    if (tail === undefined) patch[head] = value;
    else patch[head] = { ...((patch[head] as Record<string, unknown> | undefined) ?? {}), [tail]: value };
  }
  return patch;
}

function limitRows(limits: Record<string, unknown>): string[][] {
  return LIMIT_KEYS.map((key) => {
    const [head, tail] = key.split('.');
    const v = tail === undefined ? limits[head] : (limits[head] as Record<string, unknown> | undefined)?.[tail];
    return [key, v === undefined ? 'default' : String(v)];
  });
}

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

  org
    .command('limits <slug>')
    .description("show an organization's limits, or change them with --set (stored now, enforced by ingest and retention)")
    .option('--set <key=value>', `change a limit (repeatable): ${LIMIT_KEYS.join(', ')}; value a whole number or 'default'`, collect, [] as string[])
    .option('--json', 'print JSON')
    .action(async (slug: string, o: { set: string[]; json?: boolean }) => {
      const patch = o.set.length ? parseLimitSettings(o.set) : null;
      const found = await withApp(ctx.appEnv(), (app) =>
        patch ? app.services.orgs.update(SYSTEM_ACTOR, slug, { limits: patch }) : app.services.orgs.get(SYSTEM_ACTOR, slug),
      );
      const limits = found.limits as Record<string, unknown>;
      if (o.json) printJson(ctx.io, limits);
      else printTable(ctx.io, ['LIMIT', 'VALUE'], limitRows(limits));
    });
}
