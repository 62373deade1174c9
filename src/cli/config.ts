import type { Command } from 'commander';
import { checkJobsConfig } from '../app/build-app.js';
import { loadConfig, maskSecrets } from '../config/loader.js';
import { printJson } from './io.js';
import type { CliContext } from './context.js';

export function registerConfigCommands(program: Command, ctx: CliContext): void {
  const config = program.command('config').description('inspect the configuration');

  config
    .command('check [file]')
    .description('validate a configuration file (and the SENTINEL_* environment) offline')
    .action((file: string | undefined) => {
      const appEnv = ctx.appEnv();
      const loaded = loadConfig({ file: file ?? appEnv.configFile, env: appEnv.env });
      checkJobsConfig(loaded.config, loaded.sources);
      ctx.io.stdout(`configuration is valid${loaded.file ? ` (${loaded.file})` : ' (defaults and environment)'}\n`);
    });

  config
    .command('print')
    .description('print the effective configuration, secrets masked')
    .action(() => {
      const appEnv = ctx.appEnv();
      printJson(ctx.io, maskSecrets(loadConfig({ file: appEnv.configFile, env: appEnv.env }).config));
    });
}
