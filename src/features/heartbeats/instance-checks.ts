import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { AlertSink } from '../../core/alerting.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { CronSchedule } from '../../core/cron.js';
import type { JobControl, JobRun } from '../../core/jobs.js';
import type { HeartbeatsRepository } from './heartbeats-repository.js';

/** Sentinel's own checks, by the name their alerts carry as source_id and the gauge as `check`. */
export const INSTANCE_CHECKS = ['backup', 'restore-drill'] as const;
export type InstanceCheck = (typeof INSTANCE_CHECKS)[number];

const BACKUP_JOB = 'backup';
const DRILL_JOB = 'restore-drill';
/** Runs read to find the last successful backup (far more than two periods of any sane schedule). */
const HISTORY = 1000;
/** Slot gaps looked at for a schedule's period: the longest counts (a weekday-only schedule has a 3-day gap). */
const GAPS = 8;

export interface CheckOutcome {
  firing: boolean;
  summary: string;
}
export type InstanceCheckResult = Record<InstanceCheck, CheckOutcome>;

export interface InstanceChecksDeps {
  jobs: JobControl;
  alerts: AlertSink;
  repo: HeartbeatsRepository;
  /** alerts.instance_channels. */
  channels: string[];
  clock?: Clock;
}

/** The period of a schedule: the longest gap between consecutive slots around `now`. */
export function schedulePeriodMs(expression: string, now: Date): number | null {
  const s = new CronSchedule(expression);
  let slot = s.previous(now) ?? s.next(now);
  let longest = 0;
  for (let i = 0; slot && i < GAPS; i++) {
    const next = s.next(slot);
    if (!next) break;
    longest = Math.max(longest, next.getTime() - slot.getTime());
    slot = next;
  }
  return longest > 0 ? longest : null;
}

/**
 * Sentinel's built-in heartbeats (issue 10 point 7), run by the instance-checks job every 5 minutes:
 * - backup: no successful backup within twice the backup job's period (the longest gap between
 *   slots of its effective schedule). Counted from the start of the newest successful run (the
 *   snapshot's time); with none ever, from when the database was first migrated (Sentinel
 *   installed). A disabled job keeps its schedule's period, so disabling backups fires too. A job
 *   without a schedule (manual only) has no period: not checked.
 * - restore-drill: the newest finished (not skipped) drill failed or timed out.
 * Each raises or resolves an instance-level alert (no org) to alerts.instance_channels through the
 * alerts pipeline; raising is idempotent while it fires, resolving does nothing when it does not.
 */
export class InstanceChecks {
  private readonly clock: Clock;

  constructor(private readonly d: InstanceChecksDeps) {
    this.clock = d.clock ?? systemClock;
  }

  async run(now: Date = this.clock.now()): Promise<InstanceCheckResult> {
    const result: InstanceCheckResult = { backup: await this.backup(now), 'restore-drill': await this.drill() };
    for (const check of INSTANCE_CHECKS) {
      const o = result[check];
      if (o.firing) {
        await this.d.alerts.raise({
          orgId: null,
          source: 'instance',
          sourceId: check,
          name: check === 'backup' ? 'SentinelBackupOverdue' : 'SentinelRestoreDrillFailed',
          severity: 'critical',
          labels: { check },
          annotations: { summary: o.summary },
          channelIds: this.d.channels,
          at: now,
        });
      } else {
        await this.d.alerts.resolve({ orgId: null, source: 'instance', sourceId: check, at: now });
      }
    }
    return result;
  }

  private async backup(now: Date): Promise<CheckOutcome> {
    const job = (await this.d.jobs.list()).find((j) => j.name === BACKUP_JOB);
    const period = job?.schedule ? schedulePeriodMs(job.schedule, now) : null;
    if (!period) return { firing: false, summary: 'the backup job has no schedule: not checked' };
    const runs = await this.d.jobs.history({ job: BACKUP_JOB, limit: HISTORY });
    const ok = runs.find((r) => r.outcome === 'ok');
    let since: Date;
    let what: string;
    if (ok) {
      since = ok.startedAt;
      what = `the last successful backup started ${since.toISOString()}`;
    } else if (runs.length >= HISTORY) {
      // None among the newest runs: the last success (if any) is older than the oldest of them.
      since = runs[runs.length - 1].startedAt;
      what = `no successful backup since before ${since.toISOString()}`;
    } else {
      since = (await this.d.repo.installedAt()) ?? now;
      what = `no successful backup ever (installed ${since.toISOString()})`;
    }
    const firing = now.getTime() - since.getTime() > 2 * period;
    const enabled = job!.enabled ? '' : '; the backup job is disabled';
    return { firing, summary: `${what}; the backup period is ${period / 1000} s, alert after twice that${enabled}` };
  }

  private async drill(): Promise<CheckOutcome> {
    const runs = await this.d.jobs.history({ job: DRILL_JOB, limit: 50 });
    const last: JobRun | undefined = runs.find((r) => r.outcome !== null && r.outcome !== 'skipped');
    if (!last) return { firing: false, summary: 'no restore drill has finished yet' };
    const firing = last.outcome === 'failed' || last.outcome === 'timeout';
    const summary = firing
      ? `the newest restore drill (started ${last.startedAt.toISOString()}) ended ${last.outcome}: ${last.error ?? 'no error recorded'}`
      : `the newest restore drill (started ${last.startedAt.toISOString()}) passed`;
    return { firing, summary };
  }
}

/** `sentinel_instance_alert_firing{check}`: read at scrape through the alert sink (the alerts table), so every instance on the database shows the same. */
export function registerInstanceCheckMetrics(registry: Registry, alerts: Pick<AlertSink, 'firingInstanceChecks'>, logger: Pick<Logger, 'warn'>): void {
  new Gauge({
    name: 'sentinel_instance_alert_firing',
    help: "1 while Sentinel's own alert fires: check=backup (no successful backup within twice its period), check=restore-drill (the newest drill failed).",
    labelNames: ['check'],
    registers: [registry],
    async collect() {
      this.reset();
      let firing: Set<string>;
      try {
        firing = new Set(await alerts.firingInstanceChecks());
      } catch (err) {
        // A scrape must not fail because the database is away: the series are left out.
        logger.warn({ err }, 'instance check metrics: could not read the firing alerts');
        return;
      }
      for (const check of INSTANCE_CHECKS) this.set({ check }, firing.has(check) ? 1 : 0);
    },
  });
}
