import { SYSTEM_ACTOR } from '../../core/actor.js';
import type { Mailer } from '../../core/mail.js';
import { collectAll, MAX_LIMIT } from '../../core/pagination.js';
import { renderReport } from './report-render.js';
import type { MemberDirectory, OrgList } from './report-sources.js';
import { yesterdayUtc, type ReportsService } from './reports-service.js';

export interface DailyReportResult {
  /** Yesterday: what `generated`, `existing` and `emailed` are about. */
  date: string;
  generated: string[];
  /** Orgs whose report existed already (made by hand, or by an earlier run). */
  existing: string[];
  /** Orgs whose report this run handed to the mailer (each report is mailed once, whoever made it). */
  emailed: string[];
  /** Earlier days a run had missed (delayed past midnight, an outage), made now. */
  caughtUp: { org: string; date: string; emailed: boolean }[];
}

/** How far back a run makes the days missed since an org's latest report (yesterday included). */
export const CATCH_UP_DAYS = 7;

export interface DailyReportDeps {
  reports: ReportsService;
  orgs: OrgList;
  members: MemberDirectory;
  mailer: Mailer;
  now?: () => number;
}

const RECIPIENT_ROLES = new Set(['owner', 'admin']);

/**
 * Yesterday's report for every org, and those of the days since the org's latest report that a
 * run missed (up to CATCH_UP_DAYS back), stored once (a second run finds them), and mailed to
 * the org's owners and admins when SMTP is configured, once per report (reports.emailed_at,
 * claimed before the hand-over: a job run twice, or by two daemons, mails once; a report an admin made earlier
 * that day is still mailed). One org's failure does not stop the others;
 * the run fails afterwards, naming them, so the job history shows it.
 */
export async function runDailyReports(d: DailyReportDeps, signal?: AbortSignal): Promise<DailyReportResult> {
  const yesterday = yesterdayUtc((d.now ?? Date.now)());
  const result: DailyReportResult = { date: yesterday, generated: [], existing: [], emailed: [], caughtUp: [] };
  const failed: string[] = [];
  const progress = await d.reports.dailyProgress();
  for (const org of await d.orgs.all()) {
    try {
      for (const date of await d.reports.daysToMake(org.id, CATCH_UP_DAYS, progress)) {
        signal?.throwIfAborted();
        const { created, emailed } = await makeOne(d, org, date);
        if (date !== yesterday) {
          if (created) result.caughtUp.push({ org: org.slug, date, emailed });
          continue;
        }
        (created ? result.generated : result.existing).push(org.slug);
        if (emailed) result.emailed.push(org.slug);
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      failed.push(`${org.slug}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (failed.length) throw new Error(`daily reports failed for ${failed.length} organization(s): ${failed.join('; ')}`);
  return result;
}

/** One org's report for one day: made once, mailed once. */
async function makeOne(d: DailyReportDeps, org: { id: string; slug: string }, date: string): Promise<{ created: boolean; emailed: boolean }> {
  const { report, data, created } = await d.reports.generate(SYSTEM_ACTOR, org.slug, { kind: 'daily', date });
  if (!d.mailer.configured) return { created, emailed: false };
  const members = await collectAll((cursor) => d.members.members(SYSTEM_ACTOR, org.slug, { limit: MAX_LIMIT, cursor }));
  const to = members.filter((m) => RECIPIENT_ROLES.has(m.role)).map((m) => m.email);
  if (to.length === 0) return { created, emailed: false };
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
  return { created, emailed: sent };
}

export function printDailyReports(r: DailyReportResult): string {
  const list = (names: string[]) => (names.length ? `: ${names.join(', ')}` : '');
  return `daily reports for ${r.date}\ngenerated: ${r.generated.length}${list(r.generated)}\nalready there: ${r.existing.length}${list(r.existing)}\nemailed: ${r.emailed.length}${list(r.emailed)}\n` +
    (r.caughtUp.length ? `earlier days made now: ${r.caughtUp.length}: ${r.caughtUp.map((c) => `${c.org} ${c.date}`).join(', ')}\n` : '');
}
