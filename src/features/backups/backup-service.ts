import { createHash, randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Actor } from '../../core/actor.js';
import type { JobControl } from '../../core/jobs.js';
import { requireSuperadmin } from '../../core/authorize.js';
import { DomainError, notFound } from '../../core/errors.js';
import { FORMAT_VERSION, RowHasher, dataFile, keyFingerprint, type Manifest, type TableEntry } from './backup-format.js';
import { checkFiles, checkSchema, damaged, loadInto, readBack } from './backup-loader.js';
import type { BackupMetrics, NewestBackup } from './backup-metrics.js';
import { BackupSession, withDatabaseName } from './backup-repository.js';
import { newBackupId, type BackupStore, type StoredBackup } from './backup-store.js';
import type { BackupSummary, PruneReport, RestoreReport, VerifyReport } from './backups-schemas.js';

export interface BackupOptions {
  /** The app's database (a password inside: never logged). */
  databaseUrl: string;
  keep: number;
  encryptionKey: string;
  version: string;
  /** A knex (for the migrator) on another database; the caller destroys it. */
  knexFor(url: string): Knex;
  /** The jobs kit: a manual backup is a run of the `backup` job, under its lock. */
  jobs: Pick<JobControl, 'trigger' | 'history'>;
}

/** How often a manual backup looks whether its job run has finished. */
const RUN_POLL_MS = 200;

/** Scratch databases of verify: `sentinel_verify_<unix seconds>_<random>`. */
const SCRATCH_PREFIX = 'sentinel_verify_';
/** A temporary directory older than this is a crashed backup's, not one being written. */
const STALE_TEMP_MS = 6 * 3_600_000;
/** gzip's fastest level: a backup runs at close to COPY's own speed instead of gzip's (bench/backup.ts). */
const GZIP_LEVEL = 1;
/** Larger output chunks than zlib's 16 KiB: fewer callbacks through the pipeline per MB. */
const GZIP_CHUNK = 256 * 1024;

function summary(b: StoredBackup): BackupSummary {
  const m = b.manifest;
  return {
    id: b.id,
    status: m ? 'complete' : 'damaged',
    ...(b.problem ? { problem: b.problem } : {}),
    started_at: m?.started_at ?? null,
    finished_at: m?.finished_at ?? null,
    sentinel_version: m?.sentinel_version ?? null,
    schema_version: m?.schema_version ?? null,
    postgres_version: m?.postgres_version ?? null,
    tables: m?.tables.length ?? 0,
    rows: m?.tables.reduce((n, t) => n + t.rows, 0) ?? 0,
    bytes: b.bytes,
  };
}

const idTime = (id: string): number =>
  Date.parse(`${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.${id.slice(15, 18)}Z`);

export class BackupService {
  private readonly writing = new Set<string>();

  constructor(
    private readonly store: BackupStore,
    private readonly opts: BackupOptions,
    readonly metrics: BackupMetrics,
    private readonly logger: Logger,
  ) {}

  /** A consistent snapshot of every table into a new backup; failures are counted and leave no good-looking backup. */
  async create(actor: Actor, signal?: AbortSignal): Promise<BackupSummary> {
    requireSuperadmin(actor);
    try {
      const m = await this.write(signal);
      this.logger.info({ backup: m.id, tables: m.tables.length }, 'backup complete');
      return summary((await this.store.read(m.id))!);
    } catch (err) {
      this.metrics.failures.inc();
      this.logger.error({ err }, 'backup failed');
      // Aborted (shutdown, the job's timeout): the signal's reason, which the job runner recognizes.
      if (signal?.aborted) throw signal.reason;
      if (err instanceof DomainError) throw err;
      throw new DomainError('internal', `backup failed: ${(err as Error).message}`);
    }
  }

  /**
   * A backup now, by hand (POST /admin/backups, `sentinel backup create`): a manual run of the
   * `backup` job, so under the job's advisory lock — refused (conflict: 409, exit 4) while a backup
   * runs anywhere on the database, and recorded in job_runs; like every run of the job it prunes
   * after the backup. Answers once the run has finished.
   */
  async createNow(actor: Actor): Promise<BackupSummary> {
    requireSuperadmin(actor);
    const { id } = await this.opts.jobs.trigger('backup');
    for (;;) {
      const run = (await this.opts.jobs.history({ job: 'backup', limit: 100 })).find((r) => r.id === id);
      if (run?.outcome === 'ok') return run.details as BackupSummary;
      if (run?.outcome) throw new DomainError('internal', run.error ?? `backup failed (job run ${id}: ${run.outcome})`);
      await sleep(RUN_POLL_MS);
    }
  }

  /**
   * An abort (signal) destroys the COPY in progress, terminates the snapshot's session and
   * removes the temporary directory.
   */
  private async write(signal?: AbortSignal): Promise<Manifest> {
    signal?.throwIfAborted();
    const id = newBackupId(new Date());
    const tmp = await this.store.begin(id);
    this.writing.add(id);
    let session: BackupSession | null = null;
    const onAbort = () => void session?.terminate();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      session = await BackupSession.open(this.opts.databaseUrl);
      signal?.throwIfAborted();
      await session.beginSnapshot();
      const startedAt = new Date().toISOString();
      const schema = await session.schemaVersion();
      if (!schema) throw new DomainError('conflict', 'the database has no migrations applied: nothing to back up');
      const postgres = await session.serverVersion();
      const tables: TableEntry[] = [];
      for (const t of await session.tables()) {
        signal?.throwIfAborted();
        const file = dataFile(t.name);
        const rows = new RowHasher();
        const sha = createHash('sha256');
        let bytes = 0;
        const count = new Transform({
          transform(c: Buffer, _e, cb) {
            sha.update(c);
            bytes += c.length;
            cb(null, c);
          },
        });
        await pipeline(session.copyOut(t.name, t.columns), rows, createGzip({ level: GZIP_LEVEL, chunkSize: GZIP_CHUNK }), count, this.store.writer(tmp, file), { signal });
        tables.push({ name: t.name, file, columns: t.columns, rows: rows.rows, bytes, sha256: sha.digest('hex'), content: rows.digest(), partitions: t.partitions });
      }
      const sequences = await session.sequences();
      await session.query('commit');
      signal?.throwIfAborted();
      const manifest: Manifest = {
        format_version: FORMAT_VERSION,
        id,
        sentinel_version: this.opts.version,
        schema_version: schema,
        postgres_version: postgres,
        started_at: startedAt,
        finished_at: new Date().toISOString(),
        encryption_key_fingerprint: keyFingerprint(this.opts.encryptionKey),
        tables,
        sequences,
      };
      await this.store.commit(tmp, manifest);
      return manifest;
    } catch (err) {
      await this.store.discard(tmp).catch(() => undefined);
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.writing.delete(id);
      await session?.close();
    }
  }

  async list(actor: Actor): Promise<BackupSummary[]> {
    requireSuperadmin(actor);
    return (await this.store.list()).map(summary);
  }

  /** For the gauges: the newest complete backup. */
  async newest(): Promise<NewestBackup | null> {
    // A scrape must answer even when the directory cannot be read: the gauges are then absent
    // (and the age alert, written as absent-or-old, fires).
    const b = (await this.store.list().catch(() => [])).find((x) => x.manifest);
    return b ? { finishedAtMs: Date.parse(b.manifest!.finished_at), bytes: b.bytes } : null;
  }

  private async require(id: string): Promise<StoredBackup> {
    const b = await this.store.read(id);
    if (!b) throw notFound(`backup ${id}`);
    return b;
  }

  /**
   * Checksums of every file, then a trial restore into a scratch database on the same server,
   * comparing each table's row count and content checksum with the manifest. The scratch
   * database is dropped afterwards, whatever happened.
   */
  async verify(actor: Actor, id: string, signal?: AbortSignal): Promise<VerifyReport> {
    // A named resource: to anyone but a superadmin it does not exist (404, never 403), as for
    // another organization's resources.
    try {
      requireSuperadmin(actor);
    } catch (err) {
      if (err instanceof DomainError && err.code === 'forbidden') throw notFound(`backup ${id}`);
      throw err;
    }
    const started = Date.now();
    const b = await this.require(id);
    const report = (problems: string[]): VerifyReport => ({
      id,
      ok: problems.length === 0,
      problems,
      tables: b.manifest?.tables.length ?? 0,
      rows: b.manifest?.tables.reduce((n, t) => n + t.rows, 0) ?? 0,
      duration_ms: Date.now() - started,
    });
    const m = b.manifest;
    if (!m) return report([b.problem ?? 'manifest.json missing']);
    const fileProblems = await checkFiles(this.store, m);
    if (fileProblems.length) return report(fileProblems);
    try {
      await checkSchema(m);
    } catch (err) {
      return report([(err as Error).message]);
    }

    // Its creation time in the name: prune drops the ones a killed verify left behind.
    const scratch = `${SCRATCH_PREFIX}${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`;
    const scratchUrl = withDatabaseName(this.opts.databaseUrl, scratch);
    const admin = await BackupSession.open(this.opts.databaseUrl);
    const problems: string[] = [];
    try {
      await admin.createDatabase(scratch);
      const knex = this.opts.knexFor(scratchUrl);
      try {
        await loadInto(this.store, m, { knex, targetUrl: scratchUrl, applyLater: false, signal });
      } finally {
        await knex.destroy();
      }
      signal?.throwIfAborted();
      const back = await readBack(scratchUrl, m.tables, signal);
      for (const t of m.tables) if (back.get(t.name) !== t.content) problems.push(`${t.name}: restored content ${back.get(t.name)}, the manifest says ${t.content}`);
    } catch (err) {
      // Aborted: the run failed, it did not find the backup bad.
      if (signal?.aborted) throw signal.reason;
      problems.push((err as Error).message);
    } finally {
      // With (force): also ends a session an abort left in the scratch database.
      await admin.dropDatabase(scratch).catch((err: unknown) => this.logger.error({ err, database: scratch }, 'dropping the scratch database failed'));
      await admin.close();
    }
    return report(problems);
  }

  /** The restore-drill job: verify the newest backup; a failure throws (the run is recorded failed) and is counted. */
  async drill(actor: Actor, signal?: AbortSignal): Promise<VerifyReport> {
    try {
      const newest = (await this.store.list()).find((x) => x.manifest);
      if (!newest) throw new DomainError('not_found', 'restore drill: there is no complete backup to verify');
      const r = await this.verify(actor, newest.id, signal);
      if (!r.ok) throw new DomainError('internal', `restore drill: backup ${r.id} failed verification: ${r.problems.join('; ')}`);
      return r;
    } catch (err) {
      this.metrics.drillFailures.inc();
      throw err;
    }
  }

  /** What `restore` would do, for the unconfirmed command. */
  async describe(actor: Actor, id: string): Promise<Manifest> {
    requireSuperadmin(actor);
    const b = await this.require(id);
    if (!b.manifest) throw damaged(id, b.problem ?? 'manifest.json missing');
    return b.manifest;
  }

  /** Into an empty database (the app's own when no URL is given), refusing a non-empty one. */
  async restore(actor: Actor, id: string, databaseUrl?: string): Promise<RestoreReport> {
    requireSuperadmin(actor);
    const started = Date.now();
    const m = await this.describe(actor, id);
    await checkSchema(m);
    const problems = await checkFiles(this.store, m);
    if (problems.length) throw damaged(id, problems.join('; '));
    const warnings: string[] = [];
    if (m.encryption_key_fingerprint !== keyFingerprint(this.opts.encryptionKey))
      warnings.push(
        "this host's auth.encryption_key (<data_dir>/secrets/encryption_key) is not the one the backup was taken with: stored 2FA secrets will not decrypt; copy the original secrets directory here",
      );
    const url = databaseUrl ?? this.opts.databaseUrl;
    const knex = this.opts.knexFor(url);
    try {
      const r = await loadInto(this.store, m, { knex, targetUrl: url, applyLater: true, settleInFlight: true });
      return { id, ...r, warnings, duration_ms: Date.now() - started };
    } finally {
      await knex.destroy();
    }
  }

  /** Scratch databases a verify killed mid-way left behind (older than a verify can take, nobody connected). */
  private async dropStaleScratch(): Promise<string[]> {
    const admin = await BackupSession.open(this.opts.databaseUrl);
    try {
      const dropped: string[] = [];
      for (const name of await admin.databasesLike(SCRATCH_PREFIX)) {
        const created = Number(name.slice(SCRATCH_PREFIX.length).split('_')[0]) * 1000;
        if (Number.isFinite(created) && Date.now() - created > STALE_TEMP_MS && (await admin.dropIdleDatabase(name))) dropped.push(name);
      }
      return dropped;
    } finally {
      await admin.close();
    }
  }

  /** Keep the `keep` newest complete backups (never fewer than one), drop older and damaged ones and crashed writes. */
  async prune(actor: Actor): Promise<PruneReport> {
    requireSuperadmin(actor);
    const all = await this.store.list();
    const good = all.filter((b) => b.manifest);
    const kept = good.slice(0, Math.max(1, this.opts.keep)).map((b) => b.id);
    const newestGood = good[0]?.id;
    // A damaged backup newer than every good one is left for the operator to look at.
    const removed = all.filter((b) => !kept.includes(b.id) && (b.manifest || (newestGood !== undefined && b.id < newestGood))).map((b) => b.id);
    for (const id of removed) await this.store.remove(id);
    const temporaries: string[] = [];
    for (const name of await this.store.temporaries()) {
      const id = name.slice('.tmp-'.length);
      if (this.writing.has(id)) continue;
      const t = idTime(id);
      if (Number.isNaN(t) || Date.now() - t > STALE_TEMP_MS) {
        await this.store.remove(name);
        temporaries.push(name);
      }
    }
    return { kept, removed, temporaries_removed: temporaries, scratch_databases_dropped: await this.dropStaleScratch() };
  }
}
