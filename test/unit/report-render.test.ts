import { expect } from 'chai';
import { renderReport } from '../../src/features/reports/report-render.js';
import type { ReportData } from '../../src/features/reports/reports-schemas.js';
import { NO_ALERTING } from '../../src/features/reports/report-sources.js';

/** The report formats from one set of data: what clients sent (series names, labels) cannot become markup or a formula. */
describe('report rendering', () => {
  const data = async (name: string, labels: Record<string, string>): Promise<ReportData> => ({
    org: { id: '00000000-0000-4000-8000-000000000001', slug: 'acme' },
    kind: 'daily',
    date: '2026-11-29',
    period: { start: '2026-11-29T00:00:00.000Z', end: '2026-11-30T00:00:00.000Z' },
    generated_at: '2026-11-30T00:10:00.000Z',
    ingested: { points: 1234567, logs: 2, events: 3 },
    top_series: [{ name, labels, points: 5 }],
    rejections: [{ reason: 'rate_limited', status: 429, requests: 2, items: 40 }],
    alerting: await NO_ALERTING.daily('x', '2026-11-29'),
  });

  it('CSV: RFC 4180 quoting, CRLF lines, and a cell a spreadsheet would run as a formula is prefixed with an apostrophe', async () => {
    const csv = renderReport(await data('=HYPERLINK("http://evil")', { a: '+1', b: 'x,"y"' }), 'csv');
    expect(csv.contentType).to.equal('text/csv; charset=utf-8');
    expect(csv.filename).to.equal('sentinel-acme-daily-2026-11-29.csv');
    const lines = csv.body.split('\r\n');
    expect(lines).to.include(`top_series,"'=HYPERLINK(""http://evil"")","a=+1,b=x,""y""",5`);
    expect(lines).to.include.members(['ingested,points,,1234567', 'rejections,rate_limited (429),requests,2', 'rejections,rate_limited (429),items,40', 'alerting,note,,alerting not configured']);
    expect(csv.body.endsWith('\r\n')).to.equal(true);
  });

  it('HTML: client text escaped, figures formatted, no script, link or external reference', async () => {
    const html = renderReport(await data('<script>alert(1)</script>', { '"k"': "<img src=x onerror='1'>" }), 'html');
    expect(html.contentType).to.equal('text/html; charset=utf-8');
    expect(html.body).to.not.match(/<script|<img|<link|url\(/i);
    expect(html.body).to.contain('&lt;script&gt;alert(1)&lt;/script&gt;').and.contain('1,234,567').and.contain('rate limited');
  });

  it('JSON: the data as stored', async () => {
    const d = await data('m', {});
    expect(JSON.parse(renderReport(d, 'json').body)).to.deep.equal(d);
  });
});
