import type { Command } from 'commander';
import { SYSTEM_ACTOR } from '../core/actor.js';
import { parseDuration } from '../core/duration.js';
import { withApp } from '../app/with-app.js';
import { printJson } from './io.js';
import { usage, type CliContext } from './context.js';

/** A scripting token outliving a year is a credential nobody remembers; use a shorter one and re-issue. */
const MAX_TTL_SECONDS = 365 * 86_400;

function ttlSeconds(value: string): number {
  const ms = parseDuration(value);
  const s = ms === null ? NaN : Math.floor(ms / 1000);
  if (!(s >= 1 && s <= MAX_TTL_SECONDS)) throw usage(`--ttl: '${value}' must be a duration from 1s to 365d (e.g. 15m, 12h, 30d)`);
  return s;
}

export function registerTokenCommands(program: Command, ctx: CliContext): void {
  const token = program.command('token').description('access tokens for scripting');
  const io = ctx.io;

  token
    .command('create')
    .description("print an access token for a user, once (its own session: the user's logout, password change or disable ends it)")
    .requiredOption('--user <email>', 'the user the token acts as')
    .option('--ttl <duration>', 'lifetime (15m, 12h, 30d)', '15m')
    .option('--json', 'print JSON')
    .action(async (o: { user: string; ttl: string; json?: boolean }) => {
      const ttl = ttlSeconds(o.ttl);
      const issued = await withApp(ctx.appEnv(), async (app) => {
        const user = await app.services.users.authUserByEmail(SYSTEM_ACTOR, o.user);
        const t = await app.services.auth.scriptToken(SYSTEM_ACTOR, user, ttl);
        return { ...t, email: user.email };
      });
      const expiresAt = new Date(Date.now() + issued.expires_in * 1000).toISOString();
      if (o.json) printJson(io, { access_token: issued.access_token, token_type: 'Bearer', expires_in: issued.expires_in, expires_at: expiresAt });
      else {
        // stdout holds only the token, so TOKEN=$(sentinel token create …) works; the rest goes to stderr.
        io.stdout(`${issued.access_token}\n`);
        io.stderr(`access token for ${issued.email}, expires ${expiresAt}; shown once\n`);
      }
    });
}
