import { Counter, Gauge, type Registry } from 'prom-client';

/** The newest good backup, as the gauges need it. */
export interface NewestBackup {
  finishedAtMs: number;
  bytes: number;
}

/*
 * What an external Prometheus alerts on before Sentinel's own alerting exists: a backup that
 * fails (the counter), and one that silently stopped happening (the age, computed at scrape
 * from the backups directory, so it also counts backups the CLI took and survives restarts).
 */
export class BackupMetrics {
  readonly failures: Counter;
  readonly drillFailures: Counter;

  constructor(registry: Registry, newest: () => Promise<NewestBackup | null>, now: () => number = Date.now) {
    this.failures = new Counter({ name: 'sentinel_backup_failures_total', help: 'Backups that failed in this process.', registers: [registry] });
    this.drillFailures = new Counter({
      name: 'sentinel_restore_drill_failures_total',
      help: 'Restore drills (verify of the newest backup) that failed in this process.',
      registers: [registry],
    });
    // One directory scan per scrape serves the three gauges.
    let pending: Promise<NewestBackup | null> | null = null;
    const read = () => {
      pending ??= newest().finally(() => setTimeout(() => (pending = null), 0));
      return pending;
    };
    new Gauge({
      name: 'sentinel_backup_last_success_timestamp_seconds',
      help: 'When the newest complete backup finished (Unix seconds); 0 when there is none.',
      registers: [registry],
      async collect() {
        this.set(((await read())?.finishedAtMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: 'sentinel_backup_size_bytes',
      help: 'Size on disk of the newest complete backup; 0 when there is none.',
      registers: [registry],
      async collect() {
        this.set((await read())?.bytes ?? 0);
      },
    });
    new Gauge({
      name: 'sentinel_backup_age_seconds',
      help: 'Seconds since the newest complete backup finished; +Inf when there is none (so an age alert fires).',
      registers: [registry],
      async collect() {
        const b = await read();
        this.set(b ? (now() - b.finishedAtMs) / 1000 : Infinity);
      },
    });
  }
}
