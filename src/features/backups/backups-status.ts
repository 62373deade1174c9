import { Cached } from '../../core/cached.js';
import type { JobControl } from '../../core/jobs.js';
import type { BackupsStatus, BackupsStatusSource } from '../../core/status.js';
import type { BackupStore } from './backup-store.js';

/** The directory scan reads every backup's manifest: at most this often, however often the status is asked. */
const CACHE_MS = 5000;
/** Restore-drill runs looked through for the newest backup's verification. */
const DRILL_RUNS = 20;

/**
 * The backups section of the admin status: how many backups the directory holds and the newest
 * complete one, with when a restore drill last verified it (from the `restore-drill` job's runs:
 * a run that succeeded names the backup in its report, a failed one in its error).
 */
export class BackupsStatusReader implements BackupsStatusSource {
  readonly #cached: Cached<BackupsStatus>;

  constructor(
    private readonly store: BackupStore,
    private readonly jobs: Pick<JobControl, 'history'>,
    now: () => number = Date.now,
  ) {
    this.#cached = new Cached(CACHE_MS, () => this.read(), now);
  }

  backupsStatus(): Promise<BackupsStatus> {
    return this.#cached.get();
  }

  private async read(): Promise<BackupsStatus> {
    const all = await this.store.list();
    const newest = all.find((b) => b.manifest);
    if (!newest?.manifest) return { count: all.length, newest: null };
    const drills = await this.jobs.history({ job: 'restore-drill', limit: DRILL_RUNS });
    const drill = drills.find((r) => r.finishedAt && ((r.details as { id?: unknown } | null)?.id === newest.id || (r.outcome !== 'ok' && (r.error ?? '').includes(newest.id))));
    return {
      count: all.length,
      newest: {
        id: newest.id,
        // The manifest's own time, as the backups list shows it (a damaged one was left out above).
        created_at: iso(newest.manifest.finished_at) ?? iso(newest.manifest.started_at) ?? new Date(0).toISOString(),
        size_bytes: newest.bytes,
        verified_at: drill?.finishedAt?.toISOString() ?? null,
        verify_ok: drill ? drill.outcome === 'ok' : null,
      },
    };
  }
}

function iso(s: string): string | null {
  const t = Date.parse(s);
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}
