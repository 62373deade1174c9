import type { AlertingSummarySource } from '../../core/alerting.js';
import type { OrgAccess } from '../../core/authorize.js';
import type { Mailer } from '../../core/mail.js';
import { defineModule, type JobSpec } from '../feature-module.js';
import { printDailyReports, runDailyReports, type DailyReportResult } from './daily-report-job.js';
import type { MemberDirectory, OrgList, TelemetryDayStats } from './report-sources.js';
import { ReportsRepository } from './reports-repository.js';
import { registerReportRoutes } from './reports-routes.js';
import { ReportsService } from './reports-service.js';

interface ReportsServices {
  reports: ReportsService;
  dailyReports: { run(signal?: AbortSignal): Promise<DailyReportResult> };
}

const dailyReportJob: JobSpec<ReportsServices, DailyReportResult> = {
  name: 'daily-report',
  description: "generate yesterday's report for every organization (once) and email it to its owners and admins when SMTP is configured",
  defaultSchedule: '10 0 * * *',
  timeoutMs: 30 * 60_000,
  run: (s, signal) => s.dailyReports.run(signal),
  print: printDailyReports,
};

/** Daily reports per organization: stored once, downloadable as JSON, CSV and HTML, mailed by the daily-report job. */
export const reportsModule = defineModule({
  name: 'reports',
  requires: ['orgAccess', 'orgLimits', 'orgMembership', 'telemetryStats', 'mailer', 'alertingSummary'],
  provides: [],
  jobs: [dailyReportJob],
  build(
    kits,
    needs: { orgAccess: OrgAccess; orgLimits: OrgList; orgMembership: MemberDirectory; telemetryStats: TelemetryDayStats; mailer: Mailer; alertingSummary: AlertingSummarySource },
  ) {
    const reports = new ReportsService({ repo: new ReportsRepository(kits.db.knex), orgs: needs.orgAccess, telemetry: needs.telemetryStats, alerting: needs.alertingSummary });
    const dailyReports = {
      run: (signal?: AbortSignal) => runDailyReports({ reports, orgs: needs.orgLimits, members: needs.orgMembership, mailer: needs.mailer }, signal),
    };
    return {
      provides: {},
      services: { reports, dailyReports },
      routes: (registry) => registerReportRoutes(registry, reports),
    };
  },
});
