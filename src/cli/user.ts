import type { Command } from 'commander';
import { SYSTEM_ACTOR } from '../core/actor.js';
import { randomToken } from '../core/ids.js';
import { collectAll, MAX_LIMIT } from '../core/pagination.js';
import type { OrgRole } from '../core/roles.js';
import type { User } from '../app/build-app.js';
import { withApp } from '../app/with-app.js';
import { printJson, printTable, type CliIO } from './io.js';
import { usage, type CliContext } from './context.js';

/** The password from stdin (first line), or a generated one that is printed once. */
async function passwordFrom(io: CliIO, fromStdin: boolean | undefined): Promise<{ password: string; generated: boolean }> {
  if (!fromStdin) return { password: randomToken(18), generated: true };
  const text = await io.readStdin();
  const password = text.split(/\r?\n/)[0] ?? '';
  if (!password) throw usage('--password-stdin: no password on standard input');
  return { password, generated: false };
}

const describe = (u: User) => [u.email, u.name ?? '', u.superadmin ? 'yes' : '', u.disabled ? 'disabled' : 'active', u.memberships.map((m) => `${m.org}:${m.role}`).join(',')];
const HEADERS = ['EMAIL', 'NAME', 'SUPERADMIN', 'STATUS', 'MEMBERSHIPS'];

export function registerUserCommands(program: Command, ctx: CliContext): void {
  const user = program.command('user').description('manage users');
  const io = ctx.io;

  user
    .command('create <email>')
    .description('create a user (password from stdin, or generated and printed once)')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option('--name <name>', 'display name')
    .option('--org <slug>', 'add the user to this organization (with --role)')
    .option('--role <role>', 'owner, admin, editor or viewer')
    .option('--superadmin', 'instance administrator')
    .option('--json', 'print JSON')
    .action(async (email: string, o: { passwordStdin?: boolean; name?: string; org?: string; role?: string; superadmin?: boolean; json?: boolean }) => {
      const { password, generated } = await passwordFrom(io, o.passwordStdin);
      const created = await withApp(ctx.appEnv(), (app) =>
        // As typed on the command line: the service validates it (errors name body/email, body/role …, as over HTTP).
        app.services.users.create(SYSTEM_ACTOR, { email, password, name: o.name, org: o.org, role: o.role as OrgRole | undefined, superadmin: o.superadmin }),
      );
      if (o.json) printJson(io, generated ? { ...created, password } : created);
      else {
        io.stdout(`created user ${created.email} (${created.id})\n`);
        if (generated) io.stdout(`password (shown once): ${password}\n`);
      }
    });

  user
    .command('list')
    .description('list users')
    .option('--org <slug>', 'only members of this organization')
    .option('--json', 'print JSON')
    .action(async (o: { org?: string; json?: boolean }) => {
      const items = await withApp(ctx.appEnv(), (app) =>
        collectAll((cursor) => app.services.users.list(SYSTEM_ACTOR, { org: o.org, limit: MAX_LIMIT, cursor })),
      );
      if (o.json) printJson(io, items);
      else printTable(io, HEADERS, items.map(describe));
    });

  user
    .command('passwd <email>')
    .description("set a user's password (signs out their sessions)")
    .option('--password-stdin', 'read the password from the first line of standard input')
    .action(async (email: string, o: { passwordStdin?: boolean }) => {
      const { password, generated } = await passwordFrom(io, o.passwordStdin);
      await withApp(ctx.appEnv(), (app) => app.services.users.setPassword(SYSTEM_ACTOR, email, password));
      io.stdout(`password changed for ${email}\n`);
      if (generated) io.stdout(`password (shown once): ${password}\n`);
    });

  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    user
      .command(`${name} <email>`)
      .description(disabled ? 'disable a user (effective on their next request)' : 'enable a disabled user')
      .action(async (email: string) => {
        await withApp(ctx.appEnv(), (app) => app.services.users.setDisabled(SYSTEM_ACTOR, email, disabled));
        io.stdout(`${name}d ${email}\n`);
      });
  }

  user
    .command('reset-2fa <email>')
    .description('turn off two-factor authentication for a user who lost their authenticator and recovery codes')
    .action(async (email: string) => {
      const had = await withApp(ctx.appEnv(), async (app) => {
        const u = await app.services.users.authUserByEmail(SYSTEM_ACTOR, email);
        return app.services.totp.reset(SYSTEM_ACTOR, u.id);
      });
      io.stdout(had ? `two-factor authentication turned off for ${email}\n` : `${email} had no two-factor authentication\n`);
    });

  user
    .command('grant <email>')
    .description("set a user's role in an organization")
    .requiredOption('--org <slug>', 'organization')
    .requiredOption('--role <role>', 'owner, admin, editor or viewer')
    .action(async (email: string, o: { org: string; role: string }) => {
      await withApp(ctx.appEnv(), (app) => app.services.users.grant(SYSTEM_ACTOR, email, o.org, o.role));
      io.stdout(`${email} is now ${o.role} of ${o.org}\n`);
    });
}
