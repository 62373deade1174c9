import type { Command } from 'commander';
import { withApp } from '../app/with-app.js';
import type { CliContext } from './context.js';
import { printJson } from './io.js';

/*
 * `sentinel mail test --to ADDRESS`: one message through the mailer's own recording and sending
 * (a mail_log row of kind 'test'), but one attempt made now rather than queued: the operator is
 * checking the SMTP settings and wants the server's answer, not a retry in the background.
 * Exit 1 with the SMTP error when it is not delivered; 2 when mail is not configured.
 */
export function registerMailCommands(program: Command, ctx: CliContext): void {
  const mail = program.command('mail').description('outgoing mail (notifications.smtp)');
  mail
    .command('test')
    .description('send a test message now and report the SMTP server’s answer')
    .requiredOption('--to <address>', 'recipient')
    .option('--json', 'print the mail_log record as JSON')
    .action(async (o: { to: string; json?: boolean }) => {
      const row = await withApp(ctx.appEnv(), (app) => app.services.mail.sendTest(o.to));
      if (o.json) printJson(ctx.io, row);
      else ctx.io.stdout(`sent a test message to ${row.to.join(', ')} (mail_log ${row.id})\n`);
    });
}
