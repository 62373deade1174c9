import { hostname } from 'node:os';
import type { Actor } from '../../core/actor.js';
import { requireSuperadmin } from '../../core/authorize.js';
import { Cached } from '../../core/cached.js';
import type { JobControl, JobStatus } from '../../core/jobs.js';
import type {
  AdminStatus,
  AlertsStatusSource,
  BackupsStatusSource,
  DatabaseStatus,
  HeartbeatsStatusSource,
  IngestStatusSource,
  JobStatusLine,
} from '../../core/status.js';
import type { PoolStats } from '../../db/pool-stats.js';
import type { MigrationFacts, ServerFacts, StatusRepository } from './status-repository.js';

/** pg_database_size walks the database's files: read at most this often. */
const SERVER_FACTS_MS = 30_000;
/** The migrations table and folder change only with `sentinel migrate`. */
const MIGRATIONS_MS = 10_000;
/**
 * The sections read from the database (alerts, jobs, backups, heartbeats, the database's) are
 * assembled at most this often, whoever asks and however often: a dashboard per open terminal
 * polls every second, and the route has no request limit, so a request costs the statements of
 * one assembly a second at most. HTTP, ingest and pool figures stay live (memory only).
 */
export const DB_SECTIONS_MS = 1_000;

export interface StatusSources {
  ingest: IngestStatusSource;
  alerts: AlertsStatusSource;
  backups: BackupsStatusSource;
  heartbeats: HeartbeatsStatusSource;
  http: { httpStatus(): AdminStatus['http'] };
  jobs: Pick<JobControl, 'list'>;
  pools: { stats(): PoolStats[] };
}

export interface StatusOptions {
  version: string;
  embedded: boolean;
  /** Process facts; tests may pin them. */
  pid?: number;
  hostname?: string;
  /** When this process started (ms); default: from process.uptime(). */
  startedAtMs?: number;
  now?: () => number;
}

/** What the database-backed sections hold between two assemblies. */
interface DbSections {
  database: Omit<DatabaseStatus, 'pools'>;
  alerts: AdminStatus['alerts'];
  jobs: JobStatusLine[];
  backups: AdminStatus['backups'];
  heartbeats: AdminStatus['heartbeats'];
}

/** A job as the status line shows it: its last run's outcome and duration, its next run. */
export function jobLine(j: JobStatus): JobStatusLine {
  const r = j.lastRun;
  return {
    name: j.name,
    schedule: j.schedule,
    enabled: j.enabled,
    running: j.running,
    last_run: r
      ? {
          started_at: r.startedAt.toISOString(),
          finished_at: r.finishedAt?.toISOString() ?? null,
          outcome: r.outcome,
          duration_ms: r.finishedAt ? Math.max(0, r.finishedAt.getTime() - r.startedAt.getTime()) : null,
          error: r.error,
        }
      : null,
    next_run: j.nextRun?.toISOString() ?? null,
  };
}

/**
 * GET /admin/status: what `sentinel status` shows, gathered from the parts that own the figures.
 * Cheap enough to be asked every second by any number of callers: in-memory figures (HTTP, ingest,
 * pools) as they are; the database-backed sections (one or two small statements each, served by
 * indexes) assembled at most once per DB_SECTIONS_MS and shared; what is costlier still (the
 * database size, the migration state) cached longer.
 */
export class StatusService {
  readonly #server: Cached<ServerFacts>;
  readonly #migrations: Cached<MigrationFacts>;
  readonly #sections: Cached<DbSections>;
  readonly #now: () => number;
  readonly #startedAtMs: number;

  constructor(
    repo: StatusRepository,
    private readonly sources: StatusSources,
    private readonly opts: StatusOptions,
  ) {
    this.#now = opts.now ?? Date.now;
    this.#server = new Cached(SERVER_FACTS_MS, () => repo.serverFacts(), this.#now);
    this.#migrations = new Cached(MIGRATIONS_MS, () => repo.migrations(), this.#now);
    this.#sections = new Cached(DB_SECTIONS_MS, () => this.dbSections(), this.#now);
    this.#startedAtMs = opts.startedAtMs ?? this.#now() - process.uptime() * 1000;
  }

  async status(actor: Actor): Promise<AdminStatus> {
    requireSuperadmin(actor);
    const s = this.sources;
    const { database, alerts, jobs, backups, heartbeats } = await this.#sections.get();
    const now = this.#now();
    return {
      version: this.opts.version,
      generated_at: new Date(now).toISOString(),
      started_at: new Date(this.#startedAtMs).toISOString(),
      uptime_seconds: Math.max(0, Math.round(now - this.#startedAtMs) / 1000),
      pid: this.opts.pid ?? process.pid,
      hostname: this.opts.hostname ?? hostname(),
      database: { ...database, pools: s.pools.stats() },
      http: s.http.httpStatus(),
      ingest: s.ingest.ingestStatus(),
      alerts,
      jobs,
      backups,
      heartbeats,
    };
  }

  private async dbSections(): Promise<DbSections> {
    const s = this.sources;
    const [database, alerts, jobs, backups, heartbeats] = await Promise.all([
      this.database(),
      s.alerts.alertsStatus(),
      s.jobs.list(),
      s.backups.backupsStatus(),
      s.heartbeats.heartbeatsStatus(),
    ]);
    return { database, alerts, jobs: jobs.map(jobLine), backups, heartbeats };
  }

  private async database(): Promise<Omit<DatabaseStatus, 'pools'>> {
    const [server, migrations] = await Promise.all([this.#server.get(), this.#migrations.get()]);
    return {
      mode: this.opts.embedded ? 'embedded' : 'external',
      server_version: server.server_version,
      size_bytes: server.size_bytes,
      migrations,
    };
  }
}
