import { join } from 'node:path';
import { SYSTEM_ACTOR } from '../../core/actor.js';
import type { BackupsStatusSource } from '../../core/status.js';
import { createKnex } from '../../db/database.js';
import { defineModule, type JobSpec } from '../feature-module.js';
import { BackupMetrics } from './backup-metrics.js';
import { BackupService } from './backup-service.js';
import { BackupStore } from './backup-store.js';
import { BackupsStatusReader } from './backups-status.js';
import { registerBackupRoutes } from './backups-routes.js';
import type { BackupSummary, VerifyReport } from './backups-schemas.js';

interface BackupServices {
  backups: BackupService;
}

const backupJob: JobSpec<BackupServices, BackupSummary> = {
  name: 'backup',
  description: 'a consistent backup of every table into backups.dir, then prune to backups.keep',
  defaultSchedule: '0 */6 * * *',
  // Far beyond a backup's normal time (bench/backup.ts); the signal aborts the COPY and removes the temporary directory.
  timeoutMs: 2 * 3_600_000,
  run: async (s, signal) => {
    const b = await s.backups.create(SYSTEM_ACTOR, signal);
    await s.backups.prune(SYSTEM_ACTOR);
    return b;
  },
  print: (b) => `backup ${b.id} complete: ${b.tables} tables, ${b.rows} rows, ${b.bytes} bytes\n`,
};

const drillJob: JobSpec<BackupServices, VerifyReport> = {
  name: 'restore-drill',
  description: 'verify the newest backup: checksums, then a trial restore into a scratch database',
  defaultSchedule: '0 4 * * 0',
  // The signal aborts the trial restore; the scratch database is dropped either way.
  timeoutMs: 2 * 3_600_000,
  run: (s, signal) => s.backups.drill(SYSTEM_ACTOR, signal),
  print: (r) => `backup ${r.id} verified: ${r.tables} tables, ${r.rows} rows restored and compared in ${r.duration_ms} ms\n`,
};

/** Backups: create, list, verify (trial restore), restore, prune; the backup and restore-drill jobs. */
export const backupsModule = defineModule({
  name: 'backups',
  requires: [],
  provides: ['backupsStatus'],
  jobs: [backupJob, drillJob],
  build(kits) {
    const { config, logger } = kits;
    const store = new BackupStore(config.backups.dir || join(config.data_dir, 'backups'));
    let service: BackupService | null = null;
    const metrics = new BackupMetrics(kits.metrics, () => service!.newest());
    service = new BackupService(
      store,
      {
        databaseUrl: kits.db.url,
        keep: config.backups.keep,
        encryptionKey: config.auth.encryption_key,
        version: kits.version,
        knexFor: (url) => createKnex(url, config, logger, { max: 2, applicationName: 'sentinel-restore' }),
        jobs: kits.jobs,
      },
      metrics,
      logger,
    );
    const backups = service;
    const backupsStatus: BackupsStatusSource = new BackupsStatusReader(store, kits.jobs);
    return { provides: { backupsStatus }, services: { backups }, routes: (registry) => registerBackupRoutes(registry, backups) };
  },
});
