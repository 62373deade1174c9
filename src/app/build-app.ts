import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { withSecrets } from '../config/secrets.js';
import { ConfigError } from '../config/loader.js';
import { createKnex, openDatabase, type Database, type Role } from '../db/database.js';
import { migrationStatus, migratorConfig, rollbackPlan, type MigrationStatus, type RollbackPlan } from '../db/migration-source.js';
import { ChangeFeed } from '../db/change-feed.js';
import { classifyDbError } from '../db/pg-errors.js';
import { registerPoolMetrics } from '../db/pool-stats.js';
import { NO_CACHE, ReadCache, type Cacher } from '../db/read-cache.js';
import { RateLimiter } from '../core/rate-limiter.js';
import type { Hook, Kits } from '../features/feature-module.js';
import { alertsModule } from '../features/alerts/alerts-module.js';
import { apiKeysModule } from '../features/api-keys/api-keys-module.js';
import { auditModule } from '../features/audit/audit-module.js';
import { backupsModule } from '../features/backups/backups-module.js';
import { authModule } from '../features/auth/auth-module.js';
import { healthModule } from '../features/health/health-module.js';
import { heartbeatsModule } from '../features/heartbeats/heartbeats-module.js';
import { jobsModule } from '../features/jobs/jobs-module.js';
import { mailModule } from '../features/mail/mail-module.js';
import { notificationsModule } from '../features/notifications/notifications-module.js';
import { orgsModule } from '../features/orgs/orgs-module.js';
import { reportsModule } from '../features/reports/reports-module.js';
import { retentionModule } from '../features/retention/retention-module.js';
import { statusModule } from '../features/status/status-module.js';
import { telemetryModule } from '../features/telemetry/telemetry-module.js';
import { totpModule } from '../features/totp/totp-module.js';
import { usersModule } from '../features/users/users-module.js';
import { createHttpMetrics } from '../http/metrics.js';
import { ApiRegistry } from '../http/registry.js';
import { createHttpServer, type HttpServer } from '../http/server.js';
import { TaskStore } from '../jobs/task-store.js';
import { PgWorkQueue } from '../jobs/work-queue.js';
import { createJobsKit, type JobsKit } from '../jobs/jobs-kit.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { JobControl } from '../core/jobs.js';
import { composeModules, jobCatalog, moduleList, taskAttempts, type JobInfo, type JobRegistry, type ServicesOf } from './compose.js';
import { stopApp } from './lifecycle.js';
import { registerProcessMetrics } from './process-metrics.js';
import { VERSION } from './version.js';

export type { User } from '../features/users/users-service.js';
export type { Organization } from '../features/orgs/orgs-service.js';
export type { RollbackPlan } from '../db/migration-source.js';

/**
 * The features, in construction order: a module may need what an earlier one provides (a later
 * one's too, used only when serving). Adding a feature is its folder and one line here.
 */
export const FEATURE_MODULES = moduleList([
  auditModule,
  orgsModule,
  usersModule,
  authModule,
  totpModule,
  apiKeysModule,
  telemetryModule,
  retentionModule,
  backupsModule,
  mailModule,
  notificationsModule,
  alertsModule,
  heartbeatsModule,
  reportsModule,
  jobsModule,
  statusModule,
  healthModule,
]);

/** What the CLI, seeds and tests call: every module's services, by name. */
export type Services = ServicesOf<typeof FEATURE_MODULES>;

/** The jobs the modules declare, known without a database (`sentinel jobs list`, name checks). */
export const declaredJobs = (): JobInfo[] => jobCatalog(FEATURE_MODULES);

/**
 * `jobs.<name>` keys must name a declared job (the config schema cannot know the names: the
 * modules declare them). Checked before anything is opened, and by `config check`.
 */
export function checkJobsConfig(config: Pick<Config, 'jobs'>, sources: Record<string, string> = {}): void {
  const names = declaredJobs().map((j) => j.name);
  const unknown = Object.keys(config.jobs).filter((n) => !names.includes(n));
  if (unknown.length === 0) return;
  const from = (n: string) => sources[`jobs.${n}`] ?? sources[`jobs.${n}.schedule`] ?? sources[`jobs.${n}.enabled`] ?? sources.jobs;
  throw new ConfigError(unknown.map((n) => ({ path: `jobs.${n}`, message: `unknown job${from(n) ? ` (from ${from(n)})` : ''}; the jobs are: ${names.join(', ')}` })));
}

export interface Migrations {
  status(): Promise<MigrationStatus>;
  latest(): Promise<string[]>;
  rollback(all?: boolean): Promise<string[]>;
  /** What rollback(all) would undo and drop, without dropping anything. */
  rollbackPlan(all?: boolean): Promise<RollbackPlan>;
}

export interface App {
  config: Config;
  logger: Logger;
  db: Database;
  services: Services;
  jobs: JobRegistry;
  /** Scheduler, queue workers and job runner (src/jobs); started by the lifecycle in the daemon. */
  jobsKit: JobsKit;
  migrations: Migrations;
  /** Present when built with `http: true` (the daemon). */
  http: HttpServer | null;
  registry: ApiRegistry | null;
  /** Kits' then modules' start hooks, in list order; run by the lifecycle (daemon only). */
  startHooks: Hook[];
  /** Kits' then modules' stop hooks, in list order; the lifecycle runs them in reverse. */
  stopHooks: Hook[];
  /** src/app/lifecycle.ts: the HTTP server, the stop hooks in reverse, the database. Once. */
  stop(): Promise<void>;
}

export interface BuildOptions {
  role: Role;
  http?: boolean;
  /** Default: the system clock. Tests pin time with their own. */
  clock?: Clock;
}

/** The daemon's read cache: per-request auth lookups, kept correct by the change feed. */
function readCacheKit(db: Database, logger: Logger): { cache: Cacher; start: Hook; stop: Hook } {
  const feed = new ChangeFeed(db.url, logger);
  const cache = new ReadCache(feed);
  return {
    cache,
    start: { name: 'read cache: change feed', timeoutMs: 10_000, run: () => feed.start() },
    stop: { name: 'read cache: change feed', timeoutMs: 5000, run: () => feed.stop() },
  };
}

/**
 * The composition root (DESIGN §2): opens the database (lifecycle phase 1), builds the kits and
 * then the feature modules in list order, and hands the modules' routes to the HTTP server.
 * Starting and stopping are the lifecycle's (src/app/lifecycle.ts).
 */
export async function buildApp(rawConfig: Config, logger: Logger, opts: BuildOptions): Promise<App> {
  checkJobsConfig(rawConfig);
  const config = withSecrets(rawConfig);
  const db = await openDatabase(config, logger, opts.role);
  const startHooks: Hook[] = [];
  const stopHooks: Hook[] = [];
  const knex = db.knex;
  const migrations: Migrations = {
    status: () => migrationStatus(knex),
    latest: async () => ((await knex.migrate.latest(migratorConfig())) as [number, string[]])[1],
    rollback: async (all = false) => ((await knex.migrate.rollback(migratorConfig(), all)) as [number, string[]])[1],
    rollbackPlan: (all = false) => rollbackPlan(knex, all),
  };
  const daemon = opts.http === true;
  let http: HttpServer | null = null;
  let registry: ApiRegistry | null = null;
  const app: App = {
    config,
    logger,
    db,
    services: {} as Services,
    jobs: undefined as unknown as JobRegistry,
    jobsKit: undefined as unknown as JobsKit,
    migrations,
    http,
    registry,
    startHooks,
    stopHooks,
    stop: () => stopApp(app),
  };

  try {
    // The daemon caches the per-request auth lookups, invalidated by the repositories after
    // their own writes and by PostgreSQL NOTIFY (through the feed) for everyone else's;
    // short-lived CLI commands read straight through.
    let cache: Cacher = NO_CACHE;
    if (daemon) {
      const kit = readCacheKit(db, logger);
      cache = kit.cache;
      startHooks.push(kit.start);
      stopHooks.push(kit.stop);
    }
    // One registry per app: the HTTP metrics and whatever the modules register (kits.metrics).
    const httpMetrics = createHttpMetrics({ defaultMetrics: daemon });
    if (daemon) registerPoolMetrics(httpMetrics.registry, db.pools);
    if (daemon) registerProcessMetrics(httpMetrics.registry, { version: VERSION, embedded: db.embedded });
    // Enqueueing works in every process (a CLI command's tasks wait in PostgreSQL for the daemon).
    // The jobs kit's own small pool (queue polls and claims, job records): it never waits behind
    // API requests for a connection, nor they behind it, and pg_stat_activity names it. Closed
    // after the modules have stopped (a stop hook may still enqueue).
    const jobsKnex = db.pools.add('sentinel jobs', createKnex(db.url, config, logger, { max: config.queue.concurrency + 2, applicationName: 'sentinel jobs' }));
    stopHooks.push({ name: 'jobs: database pool', timeoutMs: 5000, run: () => jobsKnex.destroy() });
    const taskStore = new TaskStore(jobsKnex);
    const queue = new PgWorkQueue(taskStore, taskAttempts(FEATURE_MODULES, config), logger);
    // The jobs kit is built from what the modules declare, so after them; the modules' view of
    // it (the admin routes') is only called when serving.
    let jobsKit: JobsKit | null = null;
    const kitOf = (): JobsKit => {
      if (!jobsKit) throw new Error('the jobs kit is used before it is built');
      return jobsKit;
    };
    const jobs: JobControl = { list: () => kitOf().control.list(), history: (q) => kitOf().control.history(q), trigger: (name) => kitOf().control.trigger(name), workersActive: () => kitOf().control.workersActive() };
    const clock = opts.clock ?? systemClock;
    const httpStatus = { httpStatus: () => httpMetrics.window.status(httpMetrics.inFlight.count) };
    const kits: Kits = { config, logger, db, cache, version: VERSION, daemon, metrics: httpMetrics.registry, queue, jobs, clock, httpStatus };
    const composed = composeModules(FEATURE_MODULES, kits, stopHooks);
    startHooks.push(...composed.startHooks);
    app.services = composed.services as unknown as Services;
    app.jobs = composed.jobs;
    jobsKit = createJobsKit({
      knex: jobsKnex,
      url: db.url,
      connectTimeoutMs: config.database.connect_timeout_ms,
      jobs: composed.jobs.list(),
      tasks: composed.tasks,
      overrides: config.jobs,
      store: taskStore,
      queue,
      concurrency: config.queue.concurrency,
      pollMs: config.queue.poll_interval_ms,
      graceMs: config.shutdown.grace_ms,
      metrics: daemon ? httpMetrics.registry : null,
      logger,
      clock,
    });
    app.jobsKit = jobsKit;
    // After the modules' start hooks (the jobs use what they start); its stop hook is the last
    // of the list, so it runs first: running work ends before the modules it uses stop.
    if (daemon) startHooks.push(...jobsKit.start);
    stopHooks.push(...jobsKit.stop);

    if (daemon) {
      registry = new ApiRegistry();
      for (const { built } of composed.modules) built.routes?.(registry);
      http = createHttpServer({
        config,
        logger,
        registry,
        metrics: httpMetrics,
        classifyError: classifyDbError,
        apiRateLimiter: new RateLimiter(config.rate_limits.api_per_minute, 60_000),
        openapiInfo: { title: 'Sentinel API', version: VERSION, license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } },
      });
      app.http = http;
      app.registry = registry;
    }
    return app;
  } catch (err) {
    await app.stop();
    throw err;
  }
}
