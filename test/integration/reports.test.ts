import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import { cli } from '../support/cli.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { expectProblem } from '../support/http.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { scratchDir } from '../support/scratch.js';

/**
 * Daily reports against a real PostgreSQL, fed through the real ingest API: the figures equal
 * what was sent (per org, per UTC day, the top 10 series in order), refused ingest is counted by
 * reason, a report is made once per org and day however often it is asked for (the daily-report
 * job run twice, at once), and the three formats carry the same figures.
 */

const DAY = 86_400_000;
const dayStart = (daysAgo: number) => Math.floor(Date.now() / DAY) * DAY - daysAgo * DAY;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
// Noon of yesterday (D1) and of the day before (D2), UTC: inside ingest.max_age, in days that have ended.
const D1 = dayStart(1);
const D2 = dayStart(2);

interface ReportJson {
  org: { id: string; slug: string };
  date: string;
  ingested: { points: number; logs: number; events: number };
  top_series: { name: string; labels: Record<string, string>; points: number }[];
  rejections: { reason: string; status: number; requests: number; items: number }[];
  alerting: { configured: boolean; note: string | null; alerts: { fired: number; resolved: number }; notifications: { deliveries: number; failures: number } };
}
interface ReportItem {
  id: string;
  date: string;
  kind: string;
}

describe('reports', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let orgA: { id: string; slug: string };
  let orgB: { id: string; slug: string };
  let keyA: string;
  let keyB: string;
  let adminA: string;
  let viewerA: string;
  let adminB: string;

  const ingest = async (key: string, body: unknown, status = 202) => {
    const res = await t.api.post('/telemetry', key, body);
    expect(res.status, res.text).to.equal(status);
    return res;
  };
  const points = (name: string, labels: Record<string, string>, n: number, base: number) => Array.from({ length: n }, (_, i) => ({ name, labels, value: i, ts: base + 43_200_000 + i * 1000 }));

  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
    orgA = await createOrg(t.app.services);
    orgB = await createOrg(t.app.services);
    keyA = (await createApiKey(t.app.services, orgA.slug, ['ingest'])).secret;
    keyB = (await createApiKey(t.app.services, orgB.slug, ['ingest'])).secret;
    const a = await createUser(t.app.services, { org: orgA.slug, role: 'admin' });
    const v = await createUser(t.app.services, { org: orgA.slug, role: 'viewer' });
    const b = await createUser(t.app.services, { org: orgB.slug, role: 'admin' });
    adminA = (await t.api.login(a.email, a.password)).access_token;
    viewerA = (await t.api.login(v.email, v.password)).access_token;
    adminB = (await t.api.login(b.email, b.password)).access_token;

    // Org A, D1: 12 series of 1…12 points (the top 10 are 12…3), one with markup in a label;
    // 4 logs, 3 events. D2: 6 points, 2 logs, 1 event. Several requests, as agents send them.
    for (let n = 1; n <= 12; n++) await ingest(keyA, { metrics: points(`m${String(n).padStart(2, '0')}`, n === 12 ? { host: '<b>web-1</b>' } : { host: 'h' }, n, D1) });
    await ingest(keyA, {
      logs: Array.from({ length: 4 }, (_, i) => ({ ts: D1 + i * 60_000, level: 'info', message: `l${i}` })),
      events: Array.from({ length: 3 }, (_, i) => ({ ts: D1 + i * 60_000, type: 'deploy', title: `e${i}` })),
    });
    await ingest(keyA, {
      metrics: points('cpu', { host: 'a' }, 6, D2),
      logs: [{ ts: D2 + 1, level: 'warn', message: 'x' }, { ts: D2 + 2, level: 'warn', message: 'y' }],
      events: [{ ts: D2 + 3, type: 'deploy', title: 'v1' }],
    });
    // Org B, D1: 2 points of one series and 1 log.
    await ingest(keyB, { metrics: points('b.up', {}, 2, D1), logs: [{ ts: D1 + 5, level: 'error', message: 'b' }] });
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  const generate = (token: string, org: string, body: unknown) => t.api.post<ReportItem>(`/organizations/${org}/reports`, token, body);
  const download = (token: string, org: string, id: string, format?: string) => t.api.get<ReportJson>(`/organizations/${org}/reports/${id}${format ? `?format=${format}` : ''}`, token);

  it('refused ingest is counted per org, day and reason: a 400 (outside the time window) and a 429 (over the rate)', async () => {
    await ingest(keyB, { metrics: [{ name: 'old', value: 1, ts: Date.now() - 8 * DAY }] }, 400);
    await t.app.services.orgs.update(SYSTEM_ACTOR, orgB.slug, { limits: { ingest_points_per_second: 10 } });
    // The first batch may take the whole burst (and leave the bucket in debt); the next is refused.
    await ingest(keyB, { metrics: points('b.up', {}, 20, D1) });
    const refused = await t.api.post('/telemetry', keyB, { metrics: points('b.up', {}, 15, D1) });
    expectProblem(refused, 429, 'over the rate');
    await t.app.services.orgs.update(SYSTEM_ACTOR, orgB.slug, { limits: { ingest_points_per_second: null } });
    await t.app.services.rejections.flush(); // counted in memory, written by the next flush

    const rows = await query<{ org_id: string; day: string; reason: string; status: number; requests: number; items: number }>(
      url,
      `select org_id, to_char(day, 'YYYY-MM-DD') as day, reason, status, requests, items from ingest_rejections order by reason`,
    );
    expect(rows).to.deep.equal([
      { org_id: orgB.id, day: iso(Date.now()), reason: 'outside_time_window', status: 400, requests: 1, items: 1 },
      { org_id: orgB.id, day: iso(Date.now()), reason: 'rate_limited', status: 429, requests: 1, items: 15 },
    ]);
    // Refusals happen today, and today has no report yet: move them to D1 for the report below.
    await query(url, 'update ingest_rejections set day = $1 where org_id = $2', [iso(D1), orgB.id]);
  });

  it("the figures equal what was ingested: per org and UTC day, the top 10 series in order, the rejections, empty alerting sections", async () => {
    const created = await generate(adminA, orgA.slug, { date: iso(D1) });
    expect(created.status, created.text).to.equal(201);
    expect(created.body).to.include({ kind: 'daily', date: iso(D1) });
    const a1 = (await download(viewerA, orgA.slug, created.body.id)).body;
    expect(a1.org).to.deep.equal({ id: orgA.id, slug: orgA.slug });
    expect(a1.ingested).to.deep.equal({ points: 78, logs: 4, events: 3 }); // 1 + 2 + … + 12 = 78
    expect(a1.top_series.map((s) => [s.name, s.points])).to.deep.equal(Array.from({ length: 10 }, (_, i) => [`m${String(12 - i).padStart(2, '0')}`, 12 - i]));
    expect(a1.top_series[0].labels).to.deep.equal({ host: '<b>web-1</b>' });
    expect(a1.rejections).to.deep.equal([]);
    expect(a1.alerting).to.deep.include({ configured: false, note: 'alerting not configured' });
    expect(a1.alerting.alerts).to.include({ fired: 0, resolved: 0 });
    expect(a1.alerting.notifications).to.deep.include({ deliveries: 0, failures: 0 });

    const a2 = await generate(adminA, orgA.slug, { date: iso(D2) });
    expect(a2.status).to.equal(201);
    const d2 = (await download(adminA, orgA.slug, a2.body.id, 'json')).body;
    expect(d2.ingested).to.deep.equal({ points: 6, logs: 2, events: 1 });
    expect(d2.top_series).to.deep.equal([{ name: 'cpu', labels: { host: 'a' }, points: 6 }]);

    const b1 = await generate(adminB, orgB.slug, {});
    expect(b1.status).to.equal(201);
    expect(b1.body.date, 'default: yesterday').to.equal(iso(D1));
    const b = (await download(adminB, orgB.slug, b1.body.id)).body;
    expect(b.ingested).to.deep.equal({ points: 22, logs: 1, events: 0 });
    expect(b.top_series).to.deep.equal([{ name: 'b.up', labels: {}, points: 22 }]);
    expect(b.rejections).to.deep.equal([
      { reason: 'outside_time_window', status: 400, requests: 1, items: 1 },
      { reason: 'rate_limited', status: 429, requests: 1, items: 15 },
    ]);
  });

  it('one report per org and day: asking again answers the stored one (200); the daily-report job run twice at once makes one per org', async () => {
    const again = await generate(adminA, orgA.slug, { date: iso(D1) });
    expect(again.status).to.equal(200);
    const orgC = await createOrg(t.app.services);
    const [r1, r2] = await Promise.all([t.app.services.dailyReports.run(), t.app.services.dailyReports.run()]);
    expect(r1.date).to.equal(iso(D1));
    expect([...r1.generated, ...r2.generated].sort(), 'C generated by exactly one run').to.deep.equal([orgC.slug]);
    const r3 = await t.app.services.dailyReports.run();
    expect(r3.generated).to.deep.equal([]);
    expect(r3.existing.sort()).to.deep.equal([orgA.slug, orgB.slug, orgC.slug].sort());
    const rows = await query<{ org_id: string; date: string; n: number }>(url, "select org_id, to_char(date, 'YYYY-MM-DD') as date, count(*) as n from reports group by 1, 2 order by 1, 2");
    expect(rows.filter((r) => r.n !== 1), 'duplicates').to.deep.equal([]);
    expect(rows.filter((r) => r.date === iso(D1)).map((r) => r.org_id).sort()).to.deep.equal([orgA.id, orgB.id, orgC.id].sort());
  });

  it('downloads as JSON, CSV and HTML with the right content types and the same figures', async () => {
    const [report] = (await t.api.get<{ items: ReportItem[] }>(`/organizations/${orgA.slug}/reports?limit=1`, viewerA)).body.items;
    expect(report.date).to.equal(iso(D1));
    const csv = await download(viewerA, orgA.slug, report.id, 'csv');
    expect(csv.status).to.equal(200);
    expect(csv.contentType).to.match(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).to.equal(`attachment; filename="sentinel-${orgA.slug}-daily-${iso(D1)}.csv"`);
    const lines = csv.text.split('\r\n');
    expect(lines[0]).to.equal('section,name,detail,value');
    expect(lines).to.include.members(['ingested,points,,78', 'ingested,logs,,4', 'ingested,events,,3', 'top_series,m12,host=<b>web-1</b>,12', 'top_series,m03,host=h,3', 'alerting,note,,alerting not configured']);
    expect(lines.filter((l) => l.startsWith('top_series,'))).to.have.length(10);

    const html = await download(viewerA, orgA.slug, report.id, 'html');
    expect(html.status).to.equal(200);
    expect(html.contentType).to.match(/^text\/html/);
    expect(html.headers.get('content-security-policy')).to.contain("style-src 'unsafe-inline'").and.not.contain('script-src');
    expect(html.text).to.contain(`<title>${orgA.slug} — daily report for ${iso(D1)}</title>`);
    expect(html.text).to.contain('&lt;b&gt;web-1&lt;/b&gt;').and.not.contain('<b>web-1');
    expect(html.text).to.contain('alerting not configured');
    expect(html.text).to.not.match(/<script|<link|src=|url\(/i);
  });

  it('lists newest day first, a page at a time', async () => {
    const first = await t.api.get<{ items: ReportItem[]; next_cursor: string | null }>(`/organizations/${orgA.slug}/reports?limit=1`, viewerA);
    expect(first.status).to.equal(200);
    expect(first.body.items.map((r) => r.date)).to.deep.equal([iso(D1)]);
    const second = await t.api.get<{ items: ReportItem[]; next_cursor: string | null }>(`/organizations/${orgA.slug}/reports?limit=1&cursor=${first.body.next_cursor}`, viewerA);
    expect(second.body.items.map((r) => r.date)).to.deep.equal([iso(D2)]);
    expect(second.body.next_cursor).to.equal(null);
  });

  it("another org's report is 404, a viewer may not generate (403), and only days that have ended are reported (400)", async () => {
    const [reportA] = (await t.api.get<{ items: ReportItem[] }>(`/organizations/${orgA.slug}/reports`, adminA)).body.items;
    expectProblem(await download(adminB, orgB.slug, reportA.id), 404, "A's report under B");
    expectProblem(await download(adminB, orgA.slug, reportA.id), 404, "B's admin in A");
    expectProblem(await generate(viewerA, orgA.slug, { date: iso(D2) }), 403, 'viewer generating');
    expectProblem(await generate(adminA, orgA.slug, { date: iso(Date.now()) }), 400, 'today');
    expectProblem(await generate(adminA, orgA.slug, { date: iso(Date.now() + DAY) }), 400, 'tomorrow');
    expectProblem(await generate(adminA, orgA.slug, { date: '2026-02-30' }), 400, 'no such day');
  });

  it('sentinel report generate: stdout by default, --output FILE, the stored report (not a second one)', async () => {
    const env = testEnv(url);
    const json = await cli(['report', 'generate', '--org', orgA.slug, '--date', iso(D1)], env);
    expect(json.code, json.stderr).to.equal(0);
    expect((JSON.parse(json.stdout) as ReportJson).ingested).to.deep.equal({ points: 78, logs: 4, events: 3 });

    const file = join(scratchDir('sentinel-report-'), 'r.csv');
    const csv = await cli(['report', 'generate', '--org', orgB.slug, '--date', iso(D1), '--format', 'csv', '--output', file], env);
    expect(csv.code, csv.stderr).to.equal(0);
    expect(csv.stdout).to.equal('');
    expect(csv.stderr).to.match(new RegExp(`^already stored: daily report [0-9a-f-]{36} of ${orgB.slug} for ${iso(D1)}; csv written to `));
    expect(readFileSync(file, 'utf8')).to.contain('ingested,points,,22\r\n').and.contain('rejections,rate_limited (429),items,15\r\n');

    const d3 = iso(dayStart(3));
    const made = await cli(['report', 'generate', '--org', orgB.slug, '--date', d3, '--format', 'html'], env);
    expect(made.code, made.stderr).to.equal(0);
    expect(made.stdout).to.match(/^<!DOCTYPE html>/);
    expect(await query(url, "select 1 from reports where org_id = $1 and date = $2", [orgB.id, d3])).to.have.length(1);

    expect((await cli(['report', 'generate', '--org', orgB.slug, '--format', 'pdf'], env)).code).to.equal(2);
    expect((await cli(['report', 'generate', '--org', 'no-such-org'], env)).code).to.equal(3);
  });
});

describe('daily-report job: days a run missed', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  before(async () => {
    url = await cloneDatabase();
    t = await startTestApp(url);
  });
  after(async () => {
    await t?.stop();
    if (url) await dropDatabase(url);
  });

  const reportDays = async (orgId: string) =>
    (await query<{ date: string }>(url, "select to_char(date, 'YYYY-MM-DD') as date from reports where org_id = $1 and kind = 'daily' order by date", [orgId])).map((r) => r.date);
  const lastDays = (n: number) => Array.from({ length: n }, (_, i) => iso(dayStart(n - i)));

  it('with no reports, a run makes the last 7 days once per org; a second run makes none; days missed after the latest report are made, and only those', async () => {
    const s = t.app.services;
    const a = await createOrg(s);
    const b = await createOrg(s);
    const first = await s.dailyReports.run();
    expect(first.generated.sort()).to.deep.equal([a.slug, b.slug].sort());
    expect(first.caughtUp).to.have.length(12);
    expect(await reportDays(a.id)).to.deep.equal(lastDays(7));
    expect(await reportDays(b.id)).to.deep.equal(lastDays(7));

    const second = await s.dailyReports.run();
    expect(second.generated).to.deep.equal([]);
    expect(second.caughtUp).to.deep.equal([]);
    expect(second.existing.sort()).to.deep.equal([a.slug, b.slug].sort());
    expect(await reportDays(a.id)).to.deep.equal(lastDays(7));

    // The runs of the last two days never happened for org A (the daemon was down, or a run went
    // past midnight): the next run makes both, and nothing before its latest report.
    await query(url, "delete from reports where org_id = $1 and date >= $2", [a.id, iso(dayStart(2))]);
    await query(url, "delete from reports where org_id = $1 and date = $2", [a.id, iso(dayStart(5))]);
    const third = await s.dailyReports.run();
    expect(third.generated).to.deep.equal([a.slug]);
    expect(third.caughtUp.map((c) => [c.org, c.date])).to.deep.equal([[a.slug, iso(dayStart(2))]]);
    expect(await reportDays(a.id)).to.deep.equal(lastDays(7).filter((d) => d !== iso(dayStart(5))));
  });
});
