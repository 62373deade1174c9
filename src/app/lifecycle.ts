import type { Logger } from 'pino';
import { configKeys, type LoadedConfig } from '../config/loader.js';
import type { Config } from '../config/schema.js';
import { DomainError } from '../core/errors.js';
import type { Hook } from '../features/feature-module.js';
import type { App } from './build-app.js';

/*
 * The daemon's phases, in order (DESIGN §2):
 *   1. open the database                — buildApp, before it builds anything else
 *   2. migrate (--migrate) or check     — startApp: refuses a schema behind the code
 *   3. start hooks                      — startApp: kits then modules, in list order
 *                                         (change feed, partitions ahead…)
 *   4. HTTP listen                      — startApp
 *   5. ready                            — startApp: the line supervisors wait for
 * Stop runs the same list in reverse: the HTTP server drains (shutdown.grace_ms), the stop hooks
 * run in reverse list order, the database closes. Every hook has its own timeout: a stop hook
 * that overruns is logged and left behind, and the rest still stop.
 */

/** What the phases touch of the app (tests drive them with stand-ins). */
export type LifecycleApp = Pick<App, 'config' | 'logger' | 'db' | 'migrations' | 'http' | 'startHooks' | 'stopHooks'>;

/** The database's own stop: an embedded PostgreSQL may take a while to shut down cleanly. */
const DATABASE_STOP_TIMEOUT_MS = 30_000;
/** The HTTP server's close is bounded by shutdown.grace_ms; this much more to cut what is left. */
const HTTP_STOP_SLACK_MS = 2000;

class HookTimeout extends Error {}

async function runHook(hook: Hook): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HookTimeout(`'${hook.name}' did not finish within ${hook.timeoutMs} ms`)), hook.timeoutMs);
  });
  try {
    // Called inside the race so a hook that throws synchronously is a failure like any other.
    await Promise.race([Promise.resolve().then(() => hook.run()), overrun]);
  } finally {
    clearTimeout(timer);
  }
}

/** Phase 2: refuse to serve a database whose schema is behind the code (unless told to migrate). */
export async function ensureMigrated(app: Pick<App, 'migrations' | 'logger'>, migrate: boolean): Promise<void> {
  const { pending } = await app.migrations.status();
  if (pending.length === 0) return;
  if (!migrate) {
    throw new DomainError(
      'unavailable',
      `the database has ${pending.length} pending migration(s) (${pending.join(', ')}); run 'sentinel migrate latest' or start with 'sentinel serve --migrate'`,
    );
  }
  const applied = await app.migrations.latest();
  app.logger.info({ applied }, 'migrations applied');
}

/**
 * Phases 2 to 5 on a built app (phase 1 is buildApp). When a phase fails, whatever was started
 * is stopped (stopApp) and the error is thrown: the daemon exits instead of half-serving.
 */
export async function startApp(app: LifecycleApp, o: { migrate: boolean; beforeListen?: () => void }): Promise<{ host: string; port: number }> {
  const { logger } = app;
  try {
    if (!app.http) throw new Error('startApp needs an app built with http: true');
    await ensureMigrated(app, o.migrate);
    for (const hook of app.startHooks) {
      logger.debug({ hook: hook.name }, 'start hook');
      await runHook(hook);
    }
    o.beforeListen?.();
    const addr = await app.http.listen();
    logger.info({ host: addr.host, port: addr.port, embedded_db: app.db.embedded !== null }, 'ready');
    // Daemon logs are buffered; the ready line is what supervisors and operators wait for.
    logger.flush();
    return addr;
  } catch (err) {
    await stopApp(app);
    throw err;
  }
}

const stopping = new WeakMap<object, Promise<void>>();

/** The reverse of start; once per app (a second call waits for the first). Never throws. */
export function stopApp(app: LifecycleApp): Promise<void> {
  let done = stopping.get(app);
  if (!done) {
    done = stopInReverse(app);
    stopping.set(app, done);
  }
  return done;
}

async function stopInReverse(app: LifecycleApp): Promise<void> {
  const { logger, config } = app;
  const http = app.http;
  const hooks: Hook[] = [
    // First, so in-flight requests can still use the pools and the writer.
    ...(http ? [{ name: 'http server', timeoutMs: config.shutdown.grace_ms + HTTP_STOP_SLACK_MS, run: () => http.close(config.shutdown.grace_ms) }] : []),
    ...[...app.stopHooks].reverse(),
    { name: 'database', timeoutMs: DATABASE_STOP_TIMEOUT_MS, run: () => app.db.close() },
  ];
  for (const hook of hooks) {
    try {
      await runHook(hook);
    } catch (err) {
      if (err instanceof HookTimeout) logger.error({ hook: hook.name, timeout_ms: hook.timeoutMs }, 'stop hook overran its timeout; left behind, stopping the rest');
      else logger.error({ err, hook: hook.name }, 'error while stopping');
    }
  }
}

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

/**
 * `sentinel serve` after the database is open: phases 2–5, then serve until SIGTERM or SIGINT and
 * stop. The signal handlers go in before the server listens: once "ready" is out, a supervisor
 * may signal at once, and without a handler the kernel's default would kill the process
 * (leaving an embedded PostgreSQL behind).
 */
export async function serveUntilSignal(app: App, o: { migrate: boolean; signals: Signals; load: () => LoadedConfig }): Promise<void> {
  let stopped: Promise<void> | undefined;
  await startApp(app, { migrate: o.migrate, beforeListen: () => (stopped = runUntilSignal(app, o.signals, o.load)) });
  await stopped;
}
