import type { AlertQuerySource, AlertSink, ChannelDirectory, DeliveryStats, Notifier } from '../../core/alerting.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import type { AlertsStatusSource } from '../../core/status.js';
import { defineModule } from '../feature-module.js';
import { AlertEvaluator } from './alert-evaluator.js';
import { AlertSinkService } from './alert-sink.js';
import type { NotificationPolicy } from './alert-types.js';
import { AlertGroupsRepository } from './alert-groups-repository.js';
import { AlertingSummaryReader } from './alerting-summary.js';
import { AlertingSummaryRepository } from './alerting-summary-repository.js';
import { AlertsRepository } from './alerts-repository.js';
import { AlertRulesRepository } from './alert-rules-repository.js';
import { registerAlertRuleRoutes } from './alert-rules-routes.js';
import { AlertRulesService } from './alert-rules-service.js';
import { AlertsReadRepository } from './alerts-read-repository.js';
import { AlertsStatusRepository } from './alerts-status-repository.js';
import { registerAlertRoutes } from './alerts-routes.js';
import { AlertsService } from './alerts-service.js';
import { rulePreviewer } from './rule-preview.js';
import { MaintenanceWindowsRepository } from './maintenance-windows-repository.js';
import { registerMaintenanceWindowRoutes } from './maintenance-windows-routes.js';
import { MaintenanceWindowsService } from './maintenance-windows-service.js';
import { NotificationPolicyService, silenceCheck, suppressionSource } from './notification-policy.js';
import { SilencesRepository } from './silences-repository.js';
import { registerSilenceRoutes } from './silences-routes.js';
import { SilencesService } from './silences-service.js';

interface AlertsNeeds {
  orgAccess: OrgAccess;
  auditSink: AuditSink;
  alertQuery: AlertQuerySource;
  notifier: Notifier;
  channelDirectory: ChannelDirectory;
  deliveryStats: DeliveryStats;
}

/** Alert rules, their evaluation and state, silences, maintenance windows, acknowledgements and notification grouping. */
export const alertsModule = defineModule({
  name: 'alerts',
  requires: ['orgAccess', 'auditSink', 'alertQuery', 'notifier', 'channelDirectory', 'deliveryStats'],
  provides: ['alertSink', 'alertingSummary', 'alertsStatus'],
  build(kits, needs: AlertsNeeds) {
    const { config, logger, clock } = kits;
    const knex = kits.db.knex;
    const alertsRepo = new AlertsRepository(knex);

    // The notification policy: grouping, silences, maintenance windows, acks, repeat.
    const silencesRepo = new SilencesRepository(knex);
    const windowsRepo = new MaintenanceWindowsRepository(knex);
    const suppression = suppressionSource(silencesRepo, windowsRepo);
    const policy: NotificationPolicy = new NotificationPolicyService({
      groups: new AlertGroupsRepository(knex),
      suppression,
      notifier: needs.notifier,
      externalUrl: config.alerts.external_url || `http://${config.http.host}:${config.http.port}`,
      logger,
    });
    const silences = new SilencesService(silencesRepo, needs.orgAccess, needs.auditSink, clock, policy);
    const maintenanceWindows = new MaintenanceWindowsService(windowsRepo, needs.orgAccess, needs.auditSink, clock, policy);
    const summaryRepo = new AlertingSummaryRepository(knex);
    const alertingSummary = new AlertingSummaryReader(summaryRepo, needs.deliveryStats);

    const alertEngine = new AlertEvaluator(
      alertsRepo,
      needs.alertQuery,
      policy,
      clock,
      { tickMs: config.alerts.tick_ms, concurrency: config.alerts.concurrency, batchSize: config.alerts.batch_size },
      logger,
      kits.metrics,
    );
    const alertSink: AlertSink = new AlertSinkService(alertsRepo, policy, summaryRepo);
    // Rules CRUD and preview, the alerts list and acknowledgements (the API side).
    const alertRules = new AlertRulesService({
      repo: new AlertRulesRepository(knex),
      orgs: needs.orgAccess,
      audit: needs.auditSink,
      channels: needs.channelDirectory,
      maxRulesPerOrg: config.alerts.max_rules_per_org,
      previewMaxSteps: config.alerts.preview_max_steps,
      previewer: rulePreviewer(needs.alertQuery),
      policy,
      clock,
    });
    const alerts = new AlertsService({ repo: new AlertsReadRepository(knex), orgs: needs.orgAccess, audit: needs.auditSink, clock, silences: silenceCheck(suppression) });

    // Evaluation runs in the daemon only, and only where alerts.enabled (another instance may do it).
    const evaluating = kits.daemon && config.alerts.enabled;
    return {
      provides: { alertSink, alertingSummary, alertsStatus: new AlertsStatusRepository(knex) as AlertsStatusSource },
      services: { alertEngine, alertSink, alertRules, alerts, silences, maintenanceWindows, notificationPolicy: policy, alertingSummary },
      routes: (registry) => {
        registerAlertRuleRoutes(registry, alertRules);
        registerAlertRoutes(registry, alerts);
        registerSilenceRoutes(registry, silences);
        registerMaintenanceWindowRoutes(registry, maintenanceWindows);
      },
      start: evaluating ? [{ name: 'alert evaluation', timeoutMs: 1000, run: async () => alertEngine.start() }] : [],
      // Waits for a running tick, so no evaluation writes after the database closes.
      stop: evaluating ? [{ name: 'alert evaluation', timeoutMs: config.shutdown.grace_ms, run: () => alertEngine.stop() }] : [],
    };
  },
});
