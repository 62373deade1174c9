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
 * `serve` handles SIGTERM/SIGINT from its first step (watchSignals): one during startup lets the
 * phase under way finish (no migration is cut in half), then startup ends there, what started
 * is stopped in reverse, and the daemon exits 0.
 */

/** What the phases touch of the app (tests drive them with stand-ins). */
export type LifecycleApp = Pick<App, 'config' | 'logger' | 'db' | 'migrations' | 'http' | 'startHooks' | 'stopHooks'>;

/** The database's own stop: an embedded PostgreSQL may take a while to shut down cleanly. */
const DATABASE_STOP_TIMEOUT_MS = 30_000;
/** The HTTP server's close is bounded by shutdown.grace_ms; this much more to cut what is left. */
const HTTP_STOP_SLACK_MS = 2000;

class HookTimeout extends Error {}

/** Startup ended at a phase boundary because a stop signal came during it (not a failure: exit 0). */
export class StartInterrupted extends Error {
  constructor(readonly signal: Signal) {
    super(`startup interrupted by ${signal}`);
    this.name = 'StartInterrupted';
  }
}

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
export async function startApp(app: LifecycleApp, o: { migrate: boolean; interrupted?: () => Signal | null }): Promise<{ host: string; port: number }> {
  const { logger } = app;
  // Between phases: a stop signal received during the one that just ended ends startup here.
  const boundary = () => {
    const signal = o.interrupted?.();
    if (signal) throw new StartInterrupted(signal);
  };
  try {
    if (!app.http) throw new Error('startApp needs an app built with http: true');
    boundary();
    await ensureMigrated(app, o.migrate);
    for (const hook of app.startHooks) {
      boundary();
      logger.debug({ hook: hook.name }, 'start hook');
      await runHook(hook);
    }
    boundary();
    const addr = await app.http.listen();
    // Not "ready" when a signal came during listen: the supervisor asked us to stop.
    boundary();
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

function reload(app: LifecycleApp, logger: Logger, load: () => LoadedConfig, current: { config: Config }): void {
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
 * The daemon's signal handlers, installed as `serve`'s first step and removed (dispose) as its
 * last, whatever happens between: without a handler, a SIGTERM during startup (opening or
 * initializing the database, migrations, start hooks) would take the kernel's default and kill
 * the process mid-phase, leaving an embedded PostgreSQL behind; and handlers left on `process`
 * after a failed start would leak.
 */
export interface SignalWatch {
  /** The stop signal (SIGTERM/SIGINT) received so far, if any. */
  requested(): Signal | null;
  /** Resolves with the first stop signal (at once if one has come). */
  readonly stopRequested: Promise<Signal>;
  /** From now on the app serves: SIGHUP runs `reload` (until then it is logged and ignored). */
  serving(reload: () => void): void;
  dispose(): void;
}

export function watchSignals(signals: Signals, logger: Logger): SignalWatch {
  let requested: Signal | null = null;
  let reloadFn: (() => void) | null = null;
  let resolveStop!: (signal: Signal) => void;
  const stopRequested = new Promise<Signal>((resolve) => (resolveStop = resolve));
  const onStop = (signal: Signal) => () => {
    if (requested) {
      logger.warn({ signal }, 'already shutting down');
      return;
    }
    requested = signal;
    if (!reloadFn) logger.info({ signal }, 'shutdown requested during startup; stopping once the phase under way has finished');
    resolveStop(signal);
  };
  const onHup = () => {
    if (reloadFn) reloadFn();
    else logger.warn({ signal: 'SIGHUP' }, 'SIGHUP during startup: ignored (send it again once ready)');
  };
  const onTerm = onStop('SIGTERM');
  const onInt = onStop('SIGINT');
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  signals.on('SIGHUP', onHup);
  return {
    requested: () => requested,
    stopRequested,
    serving: (reload) => (reloadFn = reload),
    dispose: () => {
      signals.off('SIGTERM', onTerm);
      signals.off('SIGINT', onInt);
      signals.off('SIGHUP', onHup);
    },
  };
}

/**
 * `sentinel serve` after the database is open: phases 2–5, then serve until SIGTERM or SIGINT
 * (`watch`, installed before the database was opened) and stop: stop accepting, let in-flight
 * work finish (bounded by shutdown.grace_ms), stop the embedded database. SIGHUP reloads the
 * config file. A stop signal during startup ends it at the next phase boundary, stops what had
 * started, and returns normally (exit 0).
 */
export async function serveUntilSignal(
  app: LifecycleApp,
  o: { migrate: boolean; watch: SignalWatch; load: () => LoadedConfig; /** After the ready line (systemd readiness); not awaited. */ onReady?: () => unknown },
): Promise<void> {
  const { logger } = app;
  const { watch } = o;
  try {
    await startApp(app, { migrate: o.migrate, interrupted: watch.requested });
  } catch (err) {
    if (!(err instanceof StartInterrupted)) throw err;
    // startApp stopped what had started.
    logger.info({ signal: err.signal }, 'stopped before ready');
    return;
  }
  o.onReady?.();
  const current = { config: app.config };
  watch.serving(() => reload(app, logger, o.load, current));
  const signal = await watch.stopRequested;
  logger.info({ signal, grace_ms: app.config.shutdown.grace_ms }, 'shutting down');
  await stopApp(app);
  logger.info('stopped');
}
