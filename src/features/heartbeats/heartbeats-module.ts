import type { AlertSink, ChannelDirectory } from '../../core/alerting.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { SecretBox } from '../../core/secrets.js';
import type { HeartbeatsStatusSource } from '../../core/status.js';
import { SerialLoop } from '../../core/serial-loop.js';
import { defineModule, type JobSpec } from '../feature-module.js';
import { HeartbeatsRepository } from './heartbeats-repository.js';
import { HeartbeatsStatusRepository } from './heartbeats-status-repository.js';
import { registerHeartbeatRoutes } from './heartbeats-routes.js';
import { HeartbeatsService } from './heartbeats-service.js';
import { INSTANCE_CHECKS, InstanceChecks, registerInstanceCheckMetrics, type InstanceCheckResult } from './instance-checks.js';

interface HeartbeatsServices {
  heartbeats: HeartbeatsService;
  instanceChecks: InstanceChecks;
}

const instanceChecksJob: JobSpec<HeartbeatsServices, InstanceCheckResult> = {
  name: 'instance-checks',
  description: "Sentinel's own heartbeats: alert when no backup succeeded within twice the backup job's period, or the newest restore drill failed",
  // Every 5 minutes: the thresholds are hours (twice the backup period) and each run is a job_runs row.
  defaultSchedule: '*/5 * * * *',
  timeoutMs: 60_000,
  run: (s) => s.instanceChecks.run(),
  print: (r) => INSTANCE_CHECKS.map((c) => `${c}: ${r[c].firing ? 'FIRING' : 'ok'} (${r[c].summary})\n`).join(''),
};

/** Where pings go: alerts.external_url, else the address the daemon listens on. */
function pingBase(external: string, host: string, port: number): string {
  if (external) return external.replace(/\/+$/, '');
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Heartbeats (dead-man's switches) and Sentinel's own: a missed ping raises an alert. */
export const heartbeatsModule = defineModule({
  name: 'heartbeats',
  requires: ['auditSink', 'orgAccess', 'alertSink', 'channelDirectory'],
  provides: ['heartbeatsStatus'],
  jobs: [instanceChecksJob],
  build(kits, needs: { auditSink: AuditSink; orgAccess: OrgAccess; alertSink: AlertSink; channelDirectory: ChannelDirectory }) {
    const { config, logger, clock } = kits;
    const repo = new HeartbeatsRepository(kits.db.knex);
    const heartbeats = new HeartbeatsService({
      repo,
      orgs: needs.orgAccess,
      audit: needs.auditSink,
      channels: needs.channelDirectory,
      alerts: needs.alertSink,
      box: new SecretBox(config.auth.encryption_key),
      baseUrl: pingBase(config.alerts.external_url, config.http.host, config.http.port),
      batchSize: config.alerts.batch_size,
      clock,
      log: logger,
    });
    const instanceChecks = new InstanceChecks({ jobs: kits.jobs, alerts: needs.alertSink, repo, channels: config.alerts.instance_channels, clock });
    registerInstanceCheckMetrics(kits.metrics, needs.alertSink, logger);
    // One run at a time, every alerts.tick_ms; stop() aborts the signal, which check() reads between batches.
    const loop = new SerialLoop((signal) => heartbeats.check(clock.now(), signal), { name: 'heartbeats: missed check', intervalMs: config.alerts.tick_ms, firstDelayMs: config.alerts.tick_ms, logger });
    const looping = kits.daemon && config.alerts.enabled;
    return {
      provides: { heartbeatsStatus: new HeartbeatsStatusRepository(kits.db.knex, clock) as HeartbeatsStatusSource },
      services: { heartbeats, instanceChecks },
      routes: (registry) => registerHeartbeatRoutes(registry, heartbeats),
      start: looping ? [{ name: 'heartbeats: missed check loop', timeoutMs: 1000, run: async () => loop.start() }] : [],
      stop: looping ? [{ name: 'heartbeats: missed check loop', timeoutMs: 10_000, run: () => loop.stop() }] : [],
    };
  },
});
