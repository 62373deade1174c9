import { SYSTEM_ACTOR } from '../../core/actor.js';
import type { Mailer } from '../../core/mail.js';
import { collectAll, MAX_LIMIT } from '../../core/pagination.js';
import { renderReport } from './report-render.js';
import type { MemberDirectory, OrgList } from './report-sources.js';
import { yesterdayUtc, type ReportsService } from './reports-service.js';

export interface DailyReportResult {
  date: string;
  generated: string[];
  /** Orgs whose report existed already (made by hand, or by an earlier run). */
  existing: string[];
  /** Orgs whose report this run handed to the mailer (each report is mailed once, whoever made it). */
  emailed: string[];
}

export interface DailyReportDeps {
  reports: ReportsService;
  orgs: OrgList;
  members: MemberDirectory;
  mailer: Mailer;
  now?: () => number;
}

const RECIPIENT_ROLES = new Set(['owner', 'admin']);

/**
 * Yesterday's report for every org, stored once (a second run finds it), and mailed to the org's
 * owners and admins when SMTP is configured, once per report (reports.emailed_at, claimed before
 * the hand-over: a job run twice, or by two daemons, mails once; a report an admin made earlier
 * that day is still mailed). One org's failure does not stop the others;
 * the run fails afterwards, naming them, so the job history shows it.
 */
export async function runDailyReports(d: DailyReportDeps, signal?: AbortSignal): Promise<DailyReportResult> {
  const date = yesterdayUtc((d.now ?? Date.now)());
  const result: DailyReportResult = { date, generated: [], existing: [], emailed: [] };
  const failed: string[] = [];
  for (const org of await d.orgs.all()) {
    signal?.throwIfAborted();
    try {
      const { report, data, created } = await d.reports.generate(SYSTEM_ACTOR, org.slug, { kind: 'daily', date });
      (created ? result.generated : result.existing).push(org.slug);
      if (!d.mailer.configured) continue;
      const members = await collectAll((cursor) => d.members.members(SYSTEM_ACTOR, org.slug, { limit: MAX_LIMIT, cursor }));
      const to = members.filter((m) => RECIPIENT_ROLES.has(m.role)).map((m) => m.email);
      if (to.length === 0) continue;
      const html = renderReport(data, 'html');
      const i = data.ingested;
      const sent = await d.reports.sendOnce(org.id, report.id, () => d.mailer.send({
        kind: 'report',
        orgId: org.id,
        to,
        subject: `Sentinel daily report: ${org.slug}, ${date}`,
        text:
          `Daily report for ${org.slug}, ${date} (UTC).\n\n` +
          `Ingested: ${i.points} metric points, ${i.logs} log lines, ${i.events} events.\n` +
          `Refused ingest requests: ${data.rejections.reduce((n, r) => n + r.requests, 0)}.\n` +
          `Alerts: ${data.alerting.note ?? `${data.alerting.alerts.fired} fired, ${data.alerting.alerts.resolved} resolved`}.\n\n` +
          `The full report is attached (${html.filename}).\n`,
        html: html.body,
        attachments: [{ filename: html.filename, content: html.body, contentType: 'text/html' }],
      }));
      if (sent) result.emailed.push(org.slug);
    } catch (err) {
      if (signal?.aborted) throw err;
      failed.push(`${org.slug}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (failed.length) throw new Error(`daily reports failed for ${failed.length} organization(s): ${failed.join('; ')}`);
  return result;
}

export function printDailyReports(r: DailyReportResult): string {
  const list = (names: string[]) => (names.length ? `: ${names.join(', ')}` : '');
  return `daily reports for ${r.date}\ngenerated: ${r.generated.length}${list(r.generated)}\nalready there: ${r.existing.length}${list(r.existing)}\nemailed: ${r.emailed.length}${list(r.emailed)}\n`;
}
