import type { Command } from 'commander';
import { SYSTEM_ACTOR } from '../core/actor.js';
import { parseDuration } from '../core/duration.js';
import type { ApiKeyScope } from '../core/permissions.js';
import { collectAll, MAX_LIMIT } from '../core/pagination.js';
import { withApp } from '../app/with-app.js';
import { printJson, printTable } from './io.js';
import { usage, type CliContext } from './context.js';

/** `--expires 90d` (from now) or an RFC 3339 time → RFC 3339. */
function expiresAt(value: string, now = Date.now()): string {
  const ms = parseDuration(value);
  if (ms !== null && ms > 0) return new Date(now + ms).toISOString();
  if (/^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value))) return new Date(value).toISOString();
  throw usage(`--expires: '${value}' is neither a duration (90d, 12h, 30m) nor an RFC 3339 time`);
}

/** Scope names as given, once each; the service checks them against the API's schema (errors name body/scopes/…). */
const scopesOf = (value: string): ApiKeyScope[] => [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))] as ApiKeyScope[];

export function registerApiKeyCommands(program: Command, ctx: CliContext): void {
  const apikey = program.command('apikey').description("manage organizations' API keys");
  const io = ctx.io;

  apikey
    .command('create')
    .description('create an API key (the secret is printed once and stored only as a hash)')
    .requiredOption('--org <slug>', 'organization the key belongs to')
    .requiredOption('--name <name>', 'what the key is for')
    .option('--scopes <list>', 'comma-separated: ingest, read, write, admin', 'ingest')
    .option('--expires <when>', 'lifetime (90d, 12h) or an RFC 3339 time; default: never')
    .option('--json', 'print JSON')
    .action(async (o: { org: string; name: string; scopes: string; expires?: string; json?: boolean }) => {
      const input = { name: o.name, scopes: scopesOf(o.scopes), expires_at: o.expires === undefined ? undefined : expiresAt(o.expires) };
      const created = await withApp(ctx.appEnv(), (app) => app.services.apiKeys.create(SYSTEM_ACTOR, o.org, input));
      if (o.json) printJson(io, created);
      else {
        io.stdout(`created API key ${created.id} '${created.name}' in ${o.org} (scopes ${created.scopes.join(',')}${created.expires_at ? `, expires ${created.expires_at}` : ''})\n`);
        io.stdout(`secret (shown once): ${created.secret}\n`);
      }
    });

  apikey
    .command('list')
    .description("list an organization's live API keys (never their secrets)")
    .requiredOption('--org <slug>', 'organization')
    .option('--json', 'print JSON')
    .action(async (o: { org: string; json?: boolean }) => {
      const items = await withApp(ctx.appEnv(), (app) =>
        collectAll((cursor) => app.services.apiKeys.list(SYSTEM_ACTOR, o.org, { limit: MAX_LIMIT, cursor })),
      );
      if (o.json) printJson(io, items);
      else {
        printTable(
          io,
          ['ID', 'NAME', 'PREFIX', 'SCOPES', 'EXPIRES', 'LAST USED', 'LAST IP'],
          items.map((k) => [k.id, k.name, `${k.prefix}…`, k.scopes.join(','), k.expires_at ?? 'never', k.last_used_at ?? 'never', k.last_ip ?? '']),
        );
      }
    });

  apikey
    .command('revoke <id>')
    .description('revoke an API key by id, whatever its organization (effective on its next request)')
    .action(async (id: string) => {
      const revoked = await withApp(ctx.appEnv(), (app) => app.services.apiKeys.revokeById(SYSTEM_ACTOR, id));
      io.stdout(`revoked API key ${revoked.id} '${revoked.name}' (${revoked.prefix}…)\n`);
    });
}
