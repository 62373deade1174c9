import { reportHtml } from './report-html.js';
import type { ReportData, ReportFormat } from './reports-schemas.js';

export interface RenderedReport {
  contentType: string;
  /** A download name: sentinel-<org>-<kind>-<date>.<ext>. */
  filename: string;
  body: string;
}

const CONTENT_TYPES: Record<ReportFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

/** One format of a stored report; every format comes from the same data. */
export function renderReport(data: ReportData, format: ReportFormat): RenderedReport {
  const body = format === 'json' ? `${JSON.stringify(data, null, 2)}\n` : format === 'csv' ? reportCsv(data) : reportHtml(data);
  return { contentType: CONTENT_TYPES[format], filename: `sentinel-${data.org.slug}-${data.kind}-${data.date}.${format}`, body };
}

/**
 * RFC 4180 field. Series names and labels come from clients: a field a spreadsheet would run as
 * a formula (=, +, -, @, tab, CR first) is prefixed with an apostrophe (OWASP "CSV injection").
 */
function field(v: string | number | null): string {
  if (v === null) return '';
  if (typeof v === 'number') return String(v);
  const s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const labelText = (labels: Record<string, string>) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');

/** One long table (section, name, detail, value): it opens in any spreadsheet as it is. */
export function reportCsv(d: ReportData): string {
  const rows: (string | number | null)[][] = [['section', 'name', 'detail', 'value']];
  rows.push(['report', 'organization', null, d.org.slug], ['report', 'kind', null, d.kind], ['report', 'date', null, d.date], ['report', 'generated_at', null, d.generated_at]);
  rows.push(['ingested', 'points', null, d.ingested.points], ['ingested', 'logs', null, d.ingested.logs], ['ingested', 'events', null, d.ingested.events]);
  for (const s of d.top_series) rows.push(['top_series', s.name, labelText(s.labels), s.points]);
  for (const r of d.rejections) rows.push(['rejections', `${r.reason} (${r.status})`, 'requests', r.requests], ['rejections', `${r.reason} (${r.status})`, 'items', r.items]);
  const a = d.alerting;
  if (a.note) rows.push(['alerting', 'note', null, a.note]);
  rows.push(['alerting', 'alerts_fired', null, a.alerts.fired], ['alerting', 'alerts_resolved', null, a.alerts.resolved]);
  for (const i of a.alerts.items) rows.push(['alerts', i.rule, `${i.severity} ${i.fired_at} – ${i.resolved_at ?? 'firing'}`, i.duration_seconds]);
  rows.push(
    ['alerting', 'acknowledged', null, a.response.acknowledged],
    ['alerting', 'mean_time_to_acknowledge_seconds', null, a.response.mean_time_to_acknowledge_seconds],
    ['alerting', 'mean_time_to_resolve_seconds', null, a.response.mean_time_to_resolve_seconds],
    ['notifications', 'deliveries', null, a.notifications.deliveries],
    ['notifications', 'failures', null, a.notifications.failures],
  );
  for (const c of a.notifications.by_channel) rows.push(['notifications', `${c.channel} (${c.type})`, 'deliveries', c.deliveries], ['notifications', `${c.channel} (${c.type})`, 'failures', c.failures]);
  return rows.map((r) => r.map(field).join(',')).join('\r\n') + '\r\n';
}
