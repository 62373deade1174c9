import type { Command } from 'commander';
import { seedDemo } from '../../seeds/demo.js';
import { withApp } from '../app/with-app.js';
import type { CliContext } from './context.js';

export function registerSeedCommand(program: Command, ctx: CliContext): void {
  program
    .command('seed')
    .description("create the demo organization 'demo' with an admin user (password printed once)")
    .action(async () => {
      const seed = await withApp(ctx.appEnv(), (app) => seedDemo(app.services));
      ctx.io.stdout(
        `created organization ${seed.org}\n` +
          `admin:  ${seed.admin.email}  password (shown once): ${seed.admin.password}\n` +
          `viewer: ${seed.viewer.email}  password (shown once): ${seed.viewer.password}\n`,
      );
    });
}
