import type { DestinationStream, Logger } from 'pino';
import { loadConfig, type LoadedConfig } from '../config/loader.js';
import type { LogLevel } from '../config/schema.js';
import { buildApp, type App, type BuildOptions } from './build-app.js';
import { createLogger } from './logger.js';

export interface AppEnv {
  env: Record<string, string | undefined>;
  configFile?: string;
  logLevel?: LogLevel;
  /** Where logs go (stdout for the daemon, stderr for other commands). */
  logDestination: DestinationStream;
  /** logDestination is connected to the journal: prefix each line with its syslog priority. */
  journald?: boolean;
}

export function loadFor(appEnv: AppEnv): LoadedConfig {
  return loadConfig({ file: appEnv.configFile, env: appEnv.env });
}

export function loggerFor(appEnv: AppEnv, loaded: LoadedConfig, fallback: LogLevel): Logger {
  // When the log goes to the journal every line carries its syslog priority, so `journalctl -p err` works.
  return createLogger(appEnv.logLevel ?? (appEnv.env.SENTINEL_LOG_LEVEL ? loaded.config.log.level : fallback), appEnv.logDestination, {
    journald: appEnv.journald === true,
  });
}

/** Build the app for one CLI command, run it, and always stop it (and an embedded server it started). */
export async function withApp<T>(appEnv: AppEnv, fn: (app: App) => Promise<T>, opts: BuildOptions = { role: 'cli' }): Promise<T> {
  const loaded = loadFor(appEnv);
  const app = await buildApp(loaded.config, loggerFor(appEnv, loaded, 'warn'), opts);
  try {
    return await fn(app);
  } finally {
    await app.stop();
  }
}
