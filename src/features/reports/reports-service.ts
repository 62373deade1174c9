import type { Actor } from '../../core/actor.js';
import type { OrgAccess } from '../../core/authorize.js';
import { DomainError, notFound } from '../../core/errors.js';
import { decodeCursor, encodeCursor, invalidCursor, pageLimit, type Page, type PageRequest } from '../../core/pagination.js';
import { renderReport, type RenderedReport } from './report-render.js';
import type { AlertingSummarySource, TelemetryDayStats } from './report-sources.js';
import type { ReportRow, ReportsRepository } from './reports-repository.js';
import { REPORT_FORMATS, type GenerateReportInput, type Report, type ReportData, type ReportFormat } from './reports-schemas.js';

const DAY_MS = 86_400_000;
const TOP_SERIES = 10;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The UTC day before the one `now` falls in: what the daily job reports on. */
export const yesterdayUtc = (now: number): string => new Date(Math.floor(now / DAY_MS) * DAY_MS - DAY_MS).toISOString().slice(0, 10);

function toReport(row: ReportRow): Report {
  return {
    id: row.id,
    kind: row.kind as Report['kind'],
    date: row.date,
    created_at: row.created_at.toISOString(),
    formats: [...REPORT_FORMATS],
    ingested: row.data.ingested,
  };
}

export interface GeneratedReport {
  report: Report;
  data: ReportData;
  /** False when the org already had this report (the stored one is answered, not a new one). */
  created: boolean;
}

export interface ReportsDeps {
  repo: ReportsRepository;
  orgs: OrgAccess;
  telemetry: TelemetryDayStats;
  alerting: AlertingSummarySource;
  now?: () => number;
}

/**
 * Daily reports (issue 9): the figures of one org's UTC day, computed once and stored; a report
 * is never recomputed, so what was mailed and what is downloaded later are the same.
 */
export class ReportsService {
  private readonly now: () => number;

  constructor(private readonly d: ReportsDeps) {
    this.now = d.now ?? Date.now;
  }

  /** Generate (and store) the org's report for a day that has ended, or answer the one stored. */
  async generate(actor: Actor, slug: string, input: GenerateReportInput = {}): Promise<GeneratedReport> {
    const org = await this.d.orgs.require(actor, slug, 'report.generate');
    const kind = input.kind ?? 'daily';
    const date = input.date ?? yesterdayUtc(this.now());
    const start = Date.parse(`${date}T00:00:00Z`);
    if (!DATE.test(date) || Number.isNaN(start) || new Date(start).toISOString().slice(0, 10) !== date) {
      throw new DomainError('validation_failed', `invalid date '${date}'`, { errors: [{ path: 'body/date', message: 'must be a date, YYYY-MM-DD' }] });
    }
    // A day still under way would be stored with partial figures for good (a report is made once).
    if (start + DAY_MS > this.now()) {
      throw new DomainError('validation_failed', `the UTC day ${date} has not ended yet; a daily report covers a whole day`, {
        errors: [{ path: 'body/date', message: 'must be a UTC day that has ended' }],
      });
    }
    const existing = await this.d.repo.findByDate(org.id, kind, date);
    if (existing) return { report: toReport(existing), data: existing.data, created: false };

    const [telemetry, alerting] = await Promise.all([this.d.telemetry.daily(org.id, date, TOP_SERIES), this.d.alerting.daily(org.id, date)]);
    const data: ReportData = {
      org: { id: org.id, slug: org.slug },
      kind,
      date,
      period: { start: new Date(start).toISOString(), end: new Date(start + DAY_MS).toISOString() },
      generated_at: new Date(this.now()).toISOString(),
      ingested: telemetry.ingested,
      top_series: telemetry.top_series,
      rejections: telemetry.rejections,
      alerting,
    };
    // Two generators at once (a job run twice, two daemons): the unique key keeps the first.
    const { row, created } = await this.d.repo.insertOnce(org.id, kind, date, data);
    return { report: toReport(row), data: row.data, created };
  }

  /**
   * The latest day any org has a daily report for, read once before a run makes any: where the
   * job had got to, for an org that has no report yet (a new org gets no backlog of empty days).
   */
  async dailyProgress(): Promise<string | null> {
    return this.d.repo.latestDate(null, 'daily', yesterdayUtc(this.now()));
  }

  /**
   * The days the daily job should make for an org, oldest first, ending with yesterday (which is
   * always listed: it may exist, made by hand, and still need mailing): every day after the org's
   * latest report (or, for an org with none, after `progress`: see `dailyProgress`), at most
   * `maxDays`. A run delayed past midnight or an outage of a few days leaves no gap.
   */
  async daysToMake(orgId: string, maxDays: number, progress: string | null): Promise<string[]> {
    const yesterday = yesterdayUtc(this.now());
    const last = (await this.d.repo.latestDate(orgId, 'daily', yesterday)) ?? progress;
    const end = Date.parse(`${yesterday}T00:00:00Z`);
    let start = end - (maxDays - 1) * DAY_MS;
    if (last !== null) start = Math.max(start, Math.min(end, Date.parse(`${last}T00:00:00Z`) + DAY_MS));
    const days: string[] = [];
    for (let t = start; t <= end; t += DAY_MS) days.push(new Date(t).toISOString().slice(0, 10));
    return days;
  }

  /**
   * Runs `send` (the hand-over to the mailer) for a stored report unless it went before, from
   * this run or a concurrent one; false when it had. A failed hand-over is undone, so the next
   * run retries it. For the daily-report job (no actor: it acts for the instance).
   */
  async sendOnce(orgId: string, reportId: string, send: () => Promise<void>): Promise<boolean> {
    if (!(await this.d.repo.claimMailing(orgId, reportId))) return false;
    try {
      await send();
      return true;
    } catch (err) {
      await this.d.repo.releaseMailing(orgId, reportId);
      throw err;
    }
  }

  async list(actor: Actor, slug: string, page: PageRequest = {}): Promise<Page<Report>> {
    const org = await this.d.orgs.require(actor, slug, 'report.read');
    const limit = pageLimit(page.limit);
    const rows = await this.d.repo.list(org.id, limit + 1, afterOf(decodeCursor(page.cursor)));
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items: items.map(toReport), next_cursor: rows.length > limit ? encodeCursor(`${last.date}|${last.id}`) : null };
  }

  /** A stored report in one format; another org's report is not found. */
  async download(actor: Actor, slug: string, id: string, format: ReportFormat = 'json'): Promise<RenderedReport> {
    const org = await this.d.orgs.require(actor, slug, 'report.read');
    const row = await this.d.repo.find(org.id, id);
    if (!row) throw notFound('report');
    return renderReport(row.data, format);
  }
}

function afterOf(key: string | undefined): { date: string; id: string } | undefined {
  if (key === undefined) return undefined;
  const [date, id] = key.split('|');
  if (!DATE.test(date ?? '') || !/^[0-9a-f-]{36}$/.test(id ?? '')) {
    throw invalidCursor();
  }
  return { date, id };
}
