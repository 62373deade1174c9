import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Knex } from 'knex';
import { DomainError, conflict } from '../../core/errors.js';
import { FolderMigrationSource, migratorConfig } from '../../db/migration-source.js';
import { RowHasher, type Manifest } from './backup-format.js';
import { BackupSession } from './backup-repository.js';
import type { BackupStore } from './backup-store.js';

/*
 * Reading a backup back: checking its files, and loading it into an empty database (restore,
 * and verify's trial restore). Loading never trusts a file it has not hashed first.
 */

export const damaged = (id: string, problem: string): DomainError => new DomainError('internal', `backup ${id} is damaged: ${problem}`, { damaged: true });

/** Problems with the backup's files (missing, wrong size or sha256); empty when all match. */
export async function checkFiles(store: BackupStore, m: Manifest): Promise<string[]> {
  const problems: string[] = [];
  for (const t of m.tables) {
    const size = await store.fileSize(m.id, t.file);
    if (size === null) {
      problems.push(`${t.file} is missing`);
      continue;
    }
    if (size !== t.bytes) problems.push(`${t.file} has ${size} bytes, the manifest says ${t.bytes} (truncated or changed)`);
    const hash = createHash('sha256');
    await pipeline(store.reader(m.id, t.file), new Writable({ write: (c: Buffer, _e, cb) => (hash.update(c), cb()) }));
    const sha = hash.digest('hex');
    if (sha !== t.sha256) problems.push(`${t.file} checksum mismatch (sha256 ${sha}, the manifest says ${t.sha256})`);
  }
  return problems;
}

/** pg_get_expr of a range partition's bound over one column: FOR VALUES FROM ('…') TO ('…'), or MINVALUE/MAXVALUE. */
const PARTITION_BOUND = /^FOR VALUES FROM \((?:'[^'\\]*'|MINVALUE)\) TO \((?:'[^'\\]*'|MAXVALUE)\)$|^DEFAULT$/;

/** A migration source that stops at `last`: the schema the backup was taken at. */
class UpToSource extends FolderMigrationSource {
  constructor(private readonly last: string) {
    super();
  }

  override async getMigrations() {
    return (await super.getMigrations()).filter((m) => m.name <= this.last);
  }
}

/** The migrations this Sentinel knows, oldest first. */
export async function knownMigrations(): Promise<string[]> {
  return (await new FolderMigrationSource().getMigrations()).map((m) => m.name);
}

/** Refuses a backup whose schema this Sentinel does not have (a newer one, typically). */
export async function checkSchema(m: Manifest): Promise<void> {
  const known = await knownMigrations();
  if (known.includes(m.schema_version)) return;
  const latest = known.at(-1) ?? '(none)';
  if (m.schema_version > latest)
    throw conflict(`backup ${m.id} is from a newer schema (${m.schema_version}) than this Sentinel knows (${latest}): restore it with Sentinel ${m.sentinel_version} or later`);
  throw conflict(`backup ${m.id} is at schema ${m.schema_version}, a migration this Sentinel does not have`);
}

/** Dependencies first, so every foreign key finds its row already loaded. */
export function fkOrder(tables: string[], deps: Map<string, string[]>): string[] {
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (t: string) => {
    if (state.get(t) === 'done') return;
    if (state.get(t) === 'visiting') throw new Error(`foreign keys form a cycle through ${t}`);
    state.set(t, 'visiting');
    for (const d of deps.get(t) ?? []) if (tables.includes(d)) visit(d);
    state.set(t, 'done');
    out.push(t);
  };
  for (const t of [...tables].sort()) visit(t);
  return out;
}

export interface LoadOptions {
  /** A knex on the target (for the migrator); the caller destroys it. */
  knex: Knex;
  targetUrl: string;
  /** Apply the migrations after the backup's schema (restore) or stop at it (verify). */
  applyLater: boolean;
  /**
   * Restore only: settle the backup's own in-flight work (see settleInFlight). Verify leaves the
   * rows as they are, since it compares them with the manifest.
   */
  settleInFlight?: boolean;
  /** Aborts the load: the COPY in progress is destroyed and the transaction rolled back. */
  signal?: AbortSignal;
}

/** job_runs.error of a run the backup caught under way (restore closes it as `skipped`). */
export const IN_FLIGHT_ERROR = 'in flight when the backup was taken';

/**
 * A backup is taken while the jobs kit is working: a scheduled backup is itself a claimed
 * `jobs.run` task (running) with an unfinished job_runs row, and mail may be queued or sending.
 * Brought back as they are, the restored instance would reclaim the job task (a backup at once),
 * close the run as failed (counted in sentinel_job_failures_total) and so on. So, in the load's
 * transaction: pending and running `jobs.run` tasks are deleted (scheduled work belongs to the new
 * instance's schedule and catch-up); other running tasks (mail.send …) go back to pending, to be
 * sent again — at-least-once, as for a worker that died: a message in flight at snapshot time may
 * have been delivered, but one not sent at all would be lost silently; unfinished job_runs rows
 * are closed as `skipped` (not counted as a failure) with IN_FLIGHT_ERROR.
 */
async function settleInFlight(target: BackupSession, tables: string[]): Promise<void> {
  if (tables.includes('queue_tasks')) {
    await target.query("delete from queue_tasks where task = 'jobs.run' and state in ('pending', 'running')");
    await target.query("update queue_tasks set state = 'pending', locked_by = null, lease_until = null, next_attempt_at = now(), updated_at = now() where state = 'running'");
  }
  if (tables.includes('job_runs'))
    await target.query("update job_runs set outcome = 'skipped', finished_at = now(), error = $1 where outcome is null", [IN_FLIGHT_ERROR]);
}

export interface LoadReport {
  tables: number;
  rows: number;
  migrated_to: string;
  later_migrations: string[];
}

/**
 * Into an empty database: migrate it to the backup's schema, load every table with COPY FROM in
 * foreign-key order and the sequences in one transaction (a failure rolls it back: the target is
 * left migrated to the backup's schema, with no rows), then the
 * later migrations. Each table's rows are counted and hashed as they go in and compared with the
 * manifest before the commit.
 */
export async function loadInto(store: BackupStore, m: Manifest, opts: LoadOptions): Promise<LoadReport> {
  await checkSchema(m);
  // A partition's bound goes into SQL as text: only the shape PostgreSQL itself writes for a
  // range partition, so that a doctored manifest cannot smuggle a statement in. Checked before
  // the target is touched.
  for (const t of m.tables)
    for (const p of t.partitions) if (!PARTITION_BOUND.test(p.bound)) throw damaged(m.id, `${p.name}: unexpected partition bound ${JSON.stringify(p.bound)}`);
  const target = await BackupSession.open(opts.targetUrl);
  try {
    const applied = await target.appliedMigrations();
    const newer = applied.filter((n) => n > m.schema_version);
    if (newer.length) throw conflict(`the target database's schema (${newer.at(-1)}) is newer than the backup's (${m.schema_version}); restore into an empty database`);
    const busy = await target.nonEmptyTables();
    if (busy.length) throw conflict(`the target database is not empty (rows in ${busy.slice(0, 5).join(', ')}${busy.length > 5 ? ', …' : ''}); restore into an empty database`);

    await opts.knex.migrate.latest({ ...migratorConfig(), migrationSource: new UpToSource(m.schema_version) });
    const order = fkOrder(
      m.tables.map((t) => t.name),
      await target.foreignKeys(),
    );
    const existing = new Set((await target.tables()).map((t) => t.name));
    const missing = m.tables.filter((t) => !existing.has(t.name)).map((t) => t.name);
    if (missing.length) throw damaged(m.id, `tables not in schema ${m.schema_version}: ${missing.join(', ')}`);

    let rows = 0;
    await target.query('begin');
    try {
      for (const t of m.tables) for (const p of t.partitions) await target.createPartition(t.name, p.name, p.bound);
      for (const name of order) {
        opts.signal?.throwIfAborted();
        const t = m.tables.find((x) => x.name === name)!;
        const hasher = new RowHasher();
        const sink = target.copyIn(t.name, t.columns);
        await pipeline(store.reader(m.id, t.file), createGunzip(), hasher, sink, { signal: opts.signal });
        if (sink.rowCount !== t.rows) throw damaged(m.id, `${t.name}: loaded ${sink.rowCount} rows, the manifest says ${t.rows}`);
        if (hasher.digest() !== t.content) throw damaged(m.id, `${t.name}: content checksum ${hasher.digest()}, the manifest says ${t.content}`);
        rows += t.rows;
      }
      for (const s of m.sequences) await target.setSequence(s);
      if (opts.settleInFlight)
        await settleInFlight(
          target,
          m.tables.map((t) => t.name),
        );
      await target.query('commit');
    } catch (err) {
      await target.query('rollback').catch(() => undefined);
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (err instanceof DomainError) throw err;
      throw new DomainError('internal', `loading backup ${m.id} failed: ${(err as Error).message}`);
    }
    const later = opts.applyLater ? ((await opts.knex.migrate.latest(migratorConfig())) as [number, string[]])[1] : [];
    return { tables: m.tables.length, rows, migrated_to: m.schema_version, later_migrations: later };
  } finally {
    await target.close();
  }
}

/** Each table's row count and content checksum, read back from a database as the backup does. */
export async function readBack(url: string, tables: { name: string; columns: string[] }[], signal?: AbortSignal): Promise<Map<string, string>> {
  const s = await BackupSession.open(url);
  try {
    await s.beginSnapshot();
    const out = new Map<string, string>();
    for (const t of tables) {
      const hasher = new RowHasher();
      await pipeline(s.copyOut(t.name, t.columns), hasher, new Writable({ write: (_c, _e, cb) => cb() }), { signal });
      out.set(t.name, hasher.digest());
    }
    await s.query('commit');
    return out;
  } finally {
    await s.close();
  }
}
