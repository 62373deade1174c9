import { Command, CommanderError, Option } from 'commander';
import { LOG_LEVELS, type LogLevel } from '../config/schema.js';
import { EXIT_CODE, isDomainError } from '../core/errors.js';
import { VERSION } from '../app/version.js';
import { registerApiKeyCommands } from './apikey.js';
import { registerBackupCommands } from './backup.js';
import { registerConfigCommands } from './config.js';
import type { CliContext } from './context.js';
import type { CliIO } from './io.js';
import { registerJobsCommands } from './jobs.js';
import { registerMailCommands } from './mail.js';
import { registerMigrateCommands } from './migrate.js';
import { registerOrgCommands } from './org.js';
import { registerReportCommands } from './report.js';
import { registerServeCommand } from './serve.js';
import { registerSeedCommand } from './seed.js';
import { registerStatusCommand } from './status.js';
import { registerTokenCommands } from './token.js';
import { registerUserCommands } from './user.js';

export function buildProgram(io: CliIO): Command {
  const program = new Command('sentinel');
  program
    .description('Sentinel: self-hosted monitoring backend')
    .version(VERSION)
    .option('--config <file>', 'configuration file (default: $SENTINEL_CONFIG or /etc/sentinel/sentinel.json)')
    .addOption(new Option('--log-level <level>', 'log level').choices([...LOG_LEVELS]))
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) });

  const ctx: CliContext = {
    io,
    appEnv: (daemon = false) => {
      const g = program.opts<{ config?: string; logLevel?: LogLevel }>();
      return { env: io.env, configFile: g.config, logLevel: g.logLevel, logDestination: daemon ? io.logStdout : io.logStderr, journald: daemon ? io.journald?.stdout : io.journald?.stderr };
    },
  };
  registerServeCommand(program, ctx);
  registerMigrateCommands(program, ctx);
  registerSeedCommand(program, ctx);
  registerOrgCommands(program, ctx);
  registerUserCommands(program, ctx);
  registerApiKeyCommands(program, ctx);
  registerTokenCommands(program, ctx);
  registerConfigCommands(program, ctx);
  registerJobsCommands(program, ctx);
  registerBackupCommands(program, ctx);
  registerMailCommands(program, ctx);
  registerReportCommands(program, ctx);
  registerStatusCommand(program, ctx);
  // Every subcommand reports through the same output and exits through runCli.
  const inherit = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) }).showHelpAfterError();
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

/** Run the CLI and return its exit code (0 ok, 1 failure, 2 usage/invalid config, 3 not found, 4 conflict). */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      return 2;
    }
    if (isDomainError(err)) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT_CODE[err.code];
    }
    io.stderr(`error: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}
