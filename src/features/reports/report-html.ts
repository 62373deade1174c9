import type { ReportData } from './reports-schemas.js';

/*
 * The report as one self-contained page: inline CSS, no scripts, no external assets, so it reads
 * the same as an email body, an attachment or a download. Everything that came from a client
 * (series names, labels) is escaped; the download also carries a CSP that forbids scripts.
 */

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ESC[c]);
const num = (n: number) => n.toLocaleString('en-US');
const longDate = (iso: string) => new Date(iso).toLocaleDateString('en-GB', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });

function duration(seconds: number | null): string {
  if (seconds === null) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const labels = (l: Record<string, string>) =>
  Object.keys(l).length === 0
    ? '<span class="muted">no labels</span>'
    : Object.keys(l)
        .sort()
        .map((k) => `<code>${esc(k)}=${esc(l[k])}</code>`)
        .join(' ');

const table = (head: string[], rows: string[][], empty: string) =>
  rows.length === 0
    ? `<p class="empty">${esc(empty)}</p>`
    : `<table><thead><tr>${head.map((h, i) => `<th${i > 0 && i === head.length - 1 ? ' class="n"' : ''}>${h}</th>`).join('')}</tr></thead><tbody>${rows
        .map((r) => `<tr>${r.map((c, i) => `<td${i > 0 && i === r.length - 1 ? ' class="n"' : ''}>${c}</td>`).join('')}</tr>`)
        .join('')}</tbody></table>`;

const CSS = `
body{margin:0;background:#f4f5f7;color:#1f2328;font:15px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:860px;margin:0 auto;padding:32px 20px 48px}
header{border-bottom:1px solid #d0d7de;margin-bottom:24px;padding-bottom:12px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 12px}
.muted,.sub{color:#57606a}.sub{margin:0}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 160px;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:14px 16px}
.card .v{font-size:28px;font-weight:600;font-variant-numeric:tabular-nums}
.card .k{color:#57606a;font-size:13px;text-transform:uppercase;letter-spacing:.04em}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #d0d7de;border-radius:8px;overflow:hidden}
th,td{padding:8px 12px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-size:13px;color:#57606a}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{background:#eff1f3;border-radius:4px;padding:1px 5px;font-size:13px;margin-right:4px;word-break:break-all}
.empty{background:#fff;border:1px dashed #d0d7de;border-radius:8px;padding:12px 16px;color:#57606a;margin:0}
.note{background:#fff8c5;border:1px solid #d4a72c66;border-radius:8px;padding:10px 16px;margin:0 0 12px}
footer{margin-top:40px;color:#57606a;font-size:13px}
`;

export function reportHtml(d: ReportData): string {
  const a = d.alerting;
  const title = `${d.org.slug} — daily report for ${d.date}`;
  const cards = (items: [string, string][]) =>
    `<div class="cards">${items.map(([k, v]) => `<div class="card"><div class="v">${v}</div><div class="k">${esc(k)}</div></div>`).join('')}</div>`;
  const refused = d.rejections.reduce((n, r) => n + r.requests, 0);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body><main>
<header><h1>${esc(d.org.slug)} · daily report</h1>
<p class="sub">${esc(longDate(d.period.start))} · ${esc(d.date)}, 00:00 to 24:00 UTC</p></header>
<section id="ingested"><h2>Ingested</h2>
${cards([
  ['metric points', num(d.ingested.points)],
  ['log lines', num(d.ingested.logs)],
  ['events', num(d.ingested.events)],
  ['refused requests', num(refused)],
])}</section>
<section id="top-series"><h2>Top series by points</h2>
${table(
  ['#', 'series', 'labels', 'points'],
  d.top_series.map((s, i) => [String(i + 1), `<strong>${esc(s.name)}</strong>`, labels(s.labels), num(s.points)]),
  'No metric points that day.',
)}</section>
<section id="rejections"><h2>Refused ingest</h2>
${table(
  ['reason', 'status', 'items', 'requests'],
  d.rejections.map((r) => [esc(r.reason.replace(/_/g, ' ')), String(r.status), num(r.items), num(r.requests)]),
  'Nothing refused that day.',
)}</section>
<section id="alerting"><h2>Alerts</h2>
${a.note ? `<p class="note">${esc(a.note)}</p>` : ''}
${cards([
  ['alerts fired', num(a.alerts.fired)],
  ['alerts resolved', num(a.alerts.resolved)],
  ['mean time to acknowledge', duration(a.response.mean_time_to_acknowledge_seconds)],
  ['mean time to resolve', duration(a.response.mean_time_to_resolve_seconds)],
])}
<h2>Alert timeline</h2>
${table(
  ['rule', 'severity', 'fired', 'resolved', 'duration'],
  a.alerts.items.map((i) => [esc(i.rule), esc(i.severity), esc(i.fired_at), i.resolved_at ? esc(i.resolved_at) : 'still firing', duration(i.duration_seconds)]),
  'No alerts that day.',
)}
<h2>Notifications</h2>
${cards([
  ['delivered', num(a.notifications.deliveries)],
  ['failed', num(a.notifications.failures)],
])}
${a.notifications.by_channel.length ? table(['channel', 'type', 'failed', 'delivered'], a.notifications.by_channel.map((c) => [esc(c.channel), esc(c.type), num(c.failures), num(c.deliveries)]), '') : ''}
</section>
<footer>Generated by Sentinel at ${esc(d.generated_at)}.</footer>
</main></body></html>
`;
}
