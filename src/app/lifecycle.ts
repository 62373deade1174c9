import type { Logger } from 'pino';
import { configKeys, type LoadedConfig } from '../config/loader.js';
import type { Config } from '../config/schema.js';
import type { App } from './build-app.js';

export type Signal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';
export interface Signals {
  on(signal: Signal, handler: () => void): void;
  off(signal: Signal, handler: () => void): void;
}

/** Keys whose new value takes effect without a restart. */
const LIVE_KEYS = new Set(['log.level']);

function valueAt(config: Config, path: string): unknown {
  return path.split('.').reduce<unknown>((node, k) => (node as Record<string, unknown> | undefined)?.[k], config);
}

/** Which keys differ between two configs (secret values are compared, never reported). */
export function changedKeys(before: Config, after: Config): string[] {
  return configKeys()
    .map((k) => k.path)
    .filter((p) => JSON.stringify(valueAt(before, p)) !== JSON.stringify(valueAt(after, p)));
}

function reload(app: App, logger: Logger, load: () => LoadedConfig, current: { config: Config }): void {
  let next: Config;
  try {
    next = load().config;
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'SIGHUP: configuration not reloaded (invalid); keeping the running one');
    return;
  }
  // Secrets filled from <data_dir>/secrets count as unchanged when the file leaves them empty.
  next = { ...next, auth: { ...next.auth, jwt_secret: next.auth.jwt_secret || app.config.auth.jwt_secret, encryption_key: next.auth.encryption_key || app.config.auth.encryption_key } };
  const changed = changedKeys(current.config, next);
  if (changed.length === 0) {
    logger.info('SIGHUP: configuration reloaded, nothing changed');
    return;
  }
  const applied = changed.filter((k) => LIVE_KEYS.has(k));
  const needRestart = changed.filter((k) => !LIVE_KEYS.has(k));
  if (applied.includes('log.level')) logger.level = next.log.level;
  current.config = { ...current.config, log: next.log };
  logger.info({ applied, restart_required: needRestart }, 'SIGHUP: configuration reloaded');
}

/**
 * Serve until SIGTERM or SIGINT: then stop accepting, let in-flight work finish (bounded by
 * shutdown.grace_ms), stop the embedded database, and resolve. SIGHUP reloads the config file.
 */
export function runUntilSignal(app: App, signals: Signals, load: () => LoadedConfig): Promise<void> {
  const logger = app.logger;
  const current = { config: app.config };
  return new Promise((resolve) => {
    let stopping = false;
    const onHup = () => reload(app, logger, load, current);
    const onStop = (signal: Signal) => () => {
      if (stopping) {
        logger.warn({ signal }, 'already shutting down');
        return;
      }
      stopping = true;
      logger.info({ signal, grace_ms: app.config.shutdown.grace_ms }, 'shutting down');
      void app.stop().finally(() => {
        signals.off('SIGHUP', onHup);
        signals.off('SIGTERM', onTerm);
        signals.off('SIGINT', onInt);
        logger.info('stopped');
        resolve();
      });
    };
    const onTerm = onStop('SIGTERM');
    const onInt = onStop('SIGINT');
    signals.on('SIGHUP', onHup);
    signals.on('SIGTERM', onTerm);
    signals.on('SIGINT', onInt);
  });
}
