import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { withSecrets } from '../config/secrets.js';
import { DomainError } from '../core/errors.js';
import { createKnex, openDatabase, type Database, type Role } from '../db/database.js';
import { migrationStatus, migratorConfig, rollbackPlan, type MigrationStatus, type RollbackPlan } from '../db/migration-source.js';
import { ChangeFeed } from '../db/change-feed.js';
import { classifyDbError } from '../db/pg-errors.js';
import { NO_CACHE, ReadCache, type Cacher } from '../db/read-cache.js';
import { parseDuration } from '../core/duration.js';
import { RateLimiter } from '../core/rate-limiter.js';
import { SecretBox } from '../core/secrets.js';
import { registerApiKeyRoutes } from '../features/api-keys/api-keys-routes.js';
import { ApiKeysRepository } from '../features/api-keys/api-keys-repository.js';
import { ApiKeysService } from '../features/api-keys/api-keys-service.js';
import { AuditRepository } from '../features/audit/audit-repository.js';
import { registerAuditRoutes } from '../features/audit/audit-routes.js';
import { AuditService } from '../features/audit/audit-service.js';
import { createAuthenticator, registerAuthRoutes } from '../features/auth/auth-routes.js';
import { AuthService } from '../features/auth/auth-service.js';
import { SessionsRepository } from '../features/auth/sessions-repository.js';
import { PasswordConfirmation } from '../features/auth/password-confirmation.js';
import { AccessTokens } from '../features/auth/tokens.js';
import { registerTotpRoutes } from '../features/totp/totp-routes.js';
import { TotpRepository } from '../features/totp/totp-repository.js';
import { TOTP_ATTEMPT_LIMIT, TOTP_ATTEMPT_WINDOW_MS, TotpService } from '../features/totp/totp-service.js';
import { OrgGuard } from '../features/orgs/org-guard.js';
import { registerHealthRoutes } from '../features/health/health-routes.js';
import { OrgsRepository } from '../features/orgs/orgs-repository.js';
import { OrgsService } from '../features/orgs/orgs-service.js';
import { InvitationsRepository } from '../features/orgs/invitations-repository.js';
import { registerInvitationRoutes } from '../features/orgs/invitations-routes.js';
import { InvitationsService } from '../features/orgs/invitations-service.js';
import { registerOrgRoutes } from '../features/orgs/orgs-routes.js';
import { registerUserRoutes } from '../features/users/users-routes.js';
import { PasswordHasher } from '../features/users/passwords.js';
import { UsersRepository } from '../features/users/users-repository.js';
import { UsersService } from '../features/users/users-service.js';
import { UserSchema } from '../features/users/users-schemas.js';
import { GroupCommitWriter } from '../features/telemetry/group-commit-writer.js';
import { IngestRepository } from '../features/telemetry/ingest-repository.js';
import { SeriesRepository } from '../features/telemetry/series-repository.js';
import { SeriesStore } from '../features/telemetry/series-store.js';
import { effectiveLimits, type LimitDefaults, type OrgDirectory, type OrgLimitOverrides } from '../features/telemetry/telemetry-limits-source.js';
import { registerTelemetryRoutes } from '../features/telemetry/telemetry-routes.js';
import { TelemetryService } from '../features/telemetry/telemetry-service.js';
import { QueryRepository } from '../features/telemetry/query-repository.js';
import { registerQueryRoutes } from '../features/telemetry/query-routes.js';
import { QueryService } from '../features/telemetry/query-service.js';
import { documentOtlpRoutes, registerOtlpRoutes } from '../features/telemetry/otlp-routes.js';
import { PartitionMaintenance } from '../features/retention/partition-maintenance.js';
import { RetentionRepository } from '../features/retention/retention-repository.js';
import { RetentionService, type RetentionPolicySource } from '../features/retention/retention-service.js';
import { PartitionsRepository } from '../db/partitions.js';
import { TokenBuckets } from '../core/token-bucket.js';
import { createHttpMetrics } from '../http/metrics.js';
import { ApiRegistry } from '../http/registry.js';
import { createHttpServer, type HttpServer } from '../http/server.js';
import { VERSION } from './version.js';

export type { User } from '../features/users/users-service.js';
export type { Organization } from '../features/orgs/orgs-service.js';
export type { RollbackPlan } from '../db/migration-source.js';

export interface Services {
  orgs: OrgsService;
  users: UsersService;
  audit: AuditRepository;
  auth: AuthService;
  totp: TotpService;
  orgGuard: OrgGuard;
  apiKeys: ApiKeysService;
  telemetry: TelemetryService;
  query: QueryService;
  retention: RetentionService;
  partitions: PartitionMaintenance;
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
  migrations: Migrations;
  /** Present when built with `http: true` (the daemon). */
  http: HttpServer | null;
  registry: ApiRegistry | null;
  /**
   * Run the start hooks: work that needs the current schema (partitions ahead), so the daemon
   * calls it after ensureMigrated and before listening. Once; stop() undoes what it started.
   */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface BuildOptions {
  role: Role;
  http?: boolean;
}

/**
 * The composition root: the only place that constructs the pool, repositories, services and the
 * HTTP server, hands feature routes to the server, and knows the order things stop in.
 */
export async function buildApp(rawConfig: Config, logger: Logger, opts: BuildOptions): Promise<App> {
  const config = withSecrets(rawConfig);
  const stopHooks: (() => Promise<void>)[] = [];
  const startHooks: (() => Promise<void>)[] = [];
  const db = await openDatabase(config, logger, opts.role);
  stopHooks.push(() => db.close());

  try {
    const knex = db.knex;
    // The daemon caches the per-request auth lookups, invalidated by its own writes and by
    // PostgreSQL NOTIFY for everyone else's; short-lived CLI commands read straight through.
    let cache: Cacher = NO_CACHE;
    if (opts.http) {
      const feed = new ChangeFeed(db.url, logger);
      const readCache = new ReadCache(feed);
      readCache.watch(knex);
      feed.onChange((table) => (table ? readCache.invalidate(table) : readCache.clear()));
      await feed.start();
      stopHooks.push(() => feed.stop());
      cache = readCache;
    }
    const ms = (d: string) => parseDuration(d) ?? 0;
    const audit = new AuditRepository(knex);
    const orgsRepo = new OrgsRepository(knex, cache);
    const orgGuard = new OrgGuard(orgsRepo);
    const usersRepo = new UsersRepository(knex);
    const invitations = new InvitationsService(new InvitationsRepository(knex), orgsRepo, usersRepo, audit);
    const orgs = new OrgsService(orgsRepo, audit, orgGuard, usersRepo, invitations);
    const passwords = new PasswordHasher(config.auth.bcrypt_rounds);
    const sessions = new SessionsRepository(knex, cache);
    const loginWindowMs = ms(config.rate_limits.login_window);
    // One per-account failure count for login and for re-entering the password while signed in
    // (password change, enabling 2FA): a stolen access token is no way around the login limit.
    const failuresPerAccount = new RateLimiter(config.rate_limits.login_failures_per_account, loginWindowMs);
    const passwordConfirmation = new PasswordConfirmation(usersRepo, passwords, failuresPerAccount);
    // Password change and disable end every session of the user (sessions are the SessionRevoker).
    const users = new UsersService(usersRepo, orgs, passwords, audit, sessions, passwordConfirmation);
    const auditLog = new AuditService(audit, orgGuard);
    const secretBox = new SecretBox(config.auth.encryption_key);

    const apiKeys = new ApiKeysService(new ApiKeysRepository(knex, cache), orgGuard, audit, { rotationGraceMs: ms(config.auth.api_key_rotation_grace) });
    const totp = new TotpService({ repo: new TotpRepository(knex), password: passwordConfirmation, box: secretBox, users: usersRepo, audit, attempts: new RateLimiter(TOTP_ATTEMPT_LIMIT, TOTP_ATTEMPT_WINDOW_MS) });

    const auth = new AuthService({
      users: usersRepo,
      sessions,
      tokens: new AccessTokens(config.auth.jwt_secret, ms(config.auth.access_ttl) / 1000),
      passwords,
      audit,
      secondFactor: totp,
      apiKeys,
      loginPerIp: new RateLimiter(config.rate_limits.login_per_minute_per_ip, 60_000),
      failuresPerAccount,
      refreshTtlMs: ms(config.auth.refresh_ttl),
    });
    // Telemetry: the orgs feature owns the limits; telemetry sees them through OrgDirectory.
    const directory: OrgDirectory = {
      overrides: async (orgId) => (await orgsRepo.findById(orgId))?.limits as OrgLimitOverrides | undefined,
      all: async () => {
        const out: { id: string; slug: string; limits: OrgLimitOverrides }[] = [];
        for (let page = await orgsRepo.list(1000); page.length > 0; page = await orgsRepo.list(1000, page[page.length - 1].slug)) {
          for (const o of page) out.push({ id: o.id, slug: o.slug, limits: o.limits as OrgLimitOverrides });
        }
        return out;
      },
    };
    const limitDefaults: LimitDefaults = {
      pointsPerSecond: config.ingest.points_per_second,
      maxSeries: config.ingest.max_series,
      retentionDays: { metrics: config.retention.metrics_days, logs: config.retention.logs_days, events: config.retention.events_days },
    };
    const ingestRepo = new IngestRepository(knex);
    const partitions = new PartitionsRepository(knex);
    const writer = new GroupCommitWriter(
      ingestRepo,
      partitions,
      { flushIntervalMs: config.ingest.flush_interval_ms, maxFlushItems: config.ingest.max_flush_items, connections: config.ingest.writer_connections },
      logger,
    );
    // Runs after the HTTP server has drained (hooks run in reverse): requests still waiting on a commit finish first.
    stopHooks.push(() => writer.stop());
    const telemetry = new TelemetryService({
      orgs: orgGuard,
      directory,
      series: new SeriesStore(new SeriesRepository(knex), { cacheSize: config.ingest.series_cache_size }),
      writer,
      repo: ingestRepo,
      buckets: new TokenBuckets(),
      limitDefaults,
      maxAgeMs: ms(config.ingest.max_age),
      maxFutureMs: ms(config.ingest.max_future),
    });

    // Telemetry queries get a pool of their own: their sessions carry query.statement_timeout_ms.
    const queryKnex = createKnex(db.url, config, logger, { max: Math.max(2, Math.ceil(config.database.pool_max / 2)), applicationName: 'sentinel-query' });
    stopHooks.push(() => queryKnex.destroy());
    const query = new QueryService(new QueryRepository(knex, queryKnex), orgGuard, directory, {
      maxSeries: config.query.max_series,
      maxBuckets: config.query.max_buckets,
      maxPoints: config.query.max_points,
      statementTimeoutMs: config.query.statement_timeout_ms,
      limitDefaults,
    });
    const policies: RetentionPolicySource = {
      retentionDays: async () => (await directory.all()).map((o) => ({ orgId: o.id, days: effectiveLimits(o.limits, limitDefaults).retention_days })),
    };
    const retention = new RetentionService(
      new RetentionRepository(knex),
      partitions,
      policies,
      { defaults: limitDefaults.retentionDays, deleteBatchSize: config.retention.delete_batch_size, idempotencyTtlMs: ms(config.ingest.idempotency_ttl) },
      logger,
    );
    const partitionMaintenance = new PartitionMaintenance(partitions, { aheadDays: config.retention.partitions_ahead_days }, logger);

    const migrations: Migrations = {
      status: () => migrationStatus(knex),
      latest: async () => ((await knex.migrate.latest(migratorConfig())) as [number, string[]])[1],
      rollback: async (all = false) => ((await knex.migrate.rollback(migratorConfig(), all)) as [number, string[]])[1],
      rollbackPlan: (all = false) => rollbackPlan(knex, all),
    };

    let http: HttpServer | null = null;
    let registry: ApiRegistry | null = null;
    if (opts.http) {
      registry = new ApiRegistry();
      registry.setAuthenticator(createAuthenticator(auth));
      registerAuthRoutes(registry, { auth, profile: (actor) => users.profile(actor), profileSchema: UserSchema });
      registerOrgRoutes(registry, orgs);
      registerUserRoutes(registry, users);
      registerAuditRoutes(registry, auditLog);
      registerApiKeyRoutes(registry, apiKeys);
      registerTotpRoutes(registry, { totp });
      registerInvitationRoutes(registry, invitations);
      registerTelemetryRoutes(registry, telemetry);
      registerQueryRoutes(registry, query);
      // OTLP is mounted below (extraRoutes), outside the registry; the registry documents it.
      documentOtlpRoutes(registry);
      registerHealthRoutes(registry, {
        version: VERSION,
        checks: [
          { name: 'database', check: () => db.ping() },
          {
            name: 'migrations',
            check: async () => {
              const { pending } = await migrations.status();
              if (pending.length) throw new Error(`${pending.length} pending migration(s): ${pending.join(', ')}`);
            },
          },
        ],
      });
      const authenticate = createAuthenticator(auth);
      http = createHttpServer({
        config,
        logger,
        registry,
        metrics: createHttpMetrics(),
        classifyError: classifyDbError,
        apiRateLimiter: new RateLimiter(config.rate_limits.api_per_minute, 60_000),
        // Ingest has per-organization token buckets instead of the per-IP request limit.
        rateLimitExempt: /^\/api\/v1\/(?:organizations\/[^/]+\/)?telemetry$/,
        // OTLP/HTTP lives at the spec's paths, outside /api/v1.
        extraRoutes: (router) =>
          registerOtlpRoutes(router, {
            ingest: telemetry,
            authenticate: async (ctx) => authenticate(ctx, { method: 'post', path: ctx.path, operationId: 'otlp', auth: 'any' }),
            bodyLimitBytes: config.http.body_limit_bytes,
          }),
        openapiInfo: { title: 'Sentinel API', version: VERSION, license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } },
      });
      // Until the jobs scheduler exists: partitions ahead at start and hourly (the writer still
      // creates a missing one on demand). A start hook: on a fresh database the tables exist
      // only once migrations have run.
      const ensurePartitions = () => partitionMaintenance.run().catch((err: unknown) => logger.warn({ err }, 'creating telemetry partitions ahead failed'));
      let partitionTimer: NodeJS.Timeout | undefined;
      startHooks.push(async () => {
        await ensurePartitions();
        partitionTimer = setInterval(() => void ensurePartitions(), 3_600_000);
        partitionTimer.unref();
      });
      stopHooks.push(async () => clearInterval(partitionTimer));
      const server = http;
      // The server stops first so in-flight requests can still use the pool.
      stopHooks.push(() => server.close(config.shutdown.grace_ms));
    }

    let stopped = false;
    let started = false;
    return {
      config,
      logger,
      db,
      services: { orgs, users, audit, auth, totp, orgGuard, apiKeys, telemetry, query, retention, partitions: partitionMaintenance },
      migrations,
      http,
      registry,
      async start() {
        if (started) return;
        started = true;
        for (const hook of startHooks) await hook();
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const hook of stopHooks.reverse()) {
          try {
            await hook();
          } catch (err) {
            logger.error({ err }, 'error while stopping');
          }
        }
      },
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** Refuse to serve a database whose schema is behind the code (unless told to migrate). */
export async function ensureMigrated(app: App, migrate: boolean): Promise<void> {
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
