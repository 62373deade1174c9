import { expect } from 'chai';
import { SYSTEM_ACTOR } from '../../src/core/actor.js';
import { cloneDatabase, dropDatabase, query } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { freePort, smtpEnv, TestSmtp, type Received } from '../support/smtp.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The daily-report job with SMTP configured, against a real SMTP server (smtp-server on
 * 127.0.0.1): each org's owners and admins (not its editors or viewers) receive yesterday's report
 * once, the HTML inline and as an attachment, with the figures the test ingested; further runs of
 * the job send nothing more; a report made by hand before the job ran is mailed too; an org with
 * no data still gets its report.
 */

const DAY = 86_400_000;

/** The decoded body of the MIME part whose headers match `header` (base64 or quoted-printable). */
function part(m: Received, header: RegExp): string {
  const sections = m.raw.split(/\r\n--[^\r\n]+\r\n/);
  const s = sections.find((p) => header.test(p.split('\r\n\r\n')[0]));
  if (!s) throw new Error(`no part with ${header} in:\n${m.raw.slice(0, 2000)}`);
  const [head, ...rest] = s.split('\r\n\r\n');
  const body = rest.join('\r\n\r\n').replace(/\r\n--[^\r\n]+--\r\n?$/, '');
  if (/Content-Transfer-Encoding: base64/i.test(head)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (/Content-Transfer-Encoding: quoted-printable/i.test(head)) return Buffer.from(body.replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
  return body;
}

describe('daily-report job: the report by email', function () {
  this.timeout(60_000);
  let url: string;
  let t: TestApp;
  let smtp: TestSmtp;

  before(async () => {
    url = await cloneDatabase();
    smtp = await new TestSmtp(await freePort()).start();
    t = await startTestApp(url, smtpEnv(smtp.port));
  });
  after(async () => {
    await t?.stop();
    await smtp?.stop();
    if (url) await dropDatabase(url);
  });

  it("mails yesterday's report to each org's owners and admins, once, inline and attached", async () => {
    const s = t.app.services;
    const org = await createOrg(s);
    const quiet = await createOrg(s);
    const owner = await createUser(s, { org: org.slug, role: 'owner' });
    const admin = await createUser(s, { org: org.slug, role: 'admin' });
    const editor = await createUser(s, { org: org.slug, role: 'editor' });
    const viewer = await createUser(s, { org: org.slug, role: 'viewer' });
    const quietOwner = await createUser(s, { org: quiet.slug, role: 'owner' });
    const key = (await createApiKey(s, org.slug, ['ingest'])).secret;
    // Yesterday as of this test's run, not of the suite's start (which may be before midnight UTC).
    const YESTERDAY = Math.floor(Date.now() / DAY) * DAY - DAY;
    const res = await t.api.post('/telemetry', key, {
      metrics: Array.from({ length: 321 }, (_, i) => ({ name: 'mail.sent', labels: { relay: 'mx-1' }, value: i, ts: YESTERDAY + i * 1000 })),
      logs: Array.from({ length: 9 }, (_, i) => ({ ts: YESTERDAY + i, level: 'info', message: `l${i}` })),
    });
    expect(res.status, res.text).to.equal(202);

    // The quiet org's report was made by hand before the job ran: the job still mails it.
    await s.reports.generate(SYSTEM_ACTOR, quiet.slug, {});
    const first = await s.dailyReports.run();
    expect(first.generated).to.deep.equal([org.slug]);
    expect(first.existing).to.deep.equal([quiet.slug]);
    expect(first.emailed.sort()).to.deep.equal([org.slug, quiet.slug].sort());
    const date = first.date;
    const subject = `Sentinel daily report: ${org.slug}, ${date}`;
    const m = await smtp.waitFor((r) => r.subject === subject);
    expect(m.to.sort()).to.deep.equal([owner.email, admin.email].sort());
    expect(m.to).to.not.include.members([editor.email, viewer.email]);

    const text = part(m, /Content-Type: text\/plain/i);
    expect(text).to.contain('Ingested: 321 metric points, 9 log lines, 0 events.');
    const inline = part(m, /Content-Type: text\/html(?![\s\S]*Content-Disposition: attachment)/i);
    expect(inline).to.match(/^<!DOCTYPE html>/);
    expect(inline).to.contain('321').and.contain('mail.sent').and.contain('relay=mx-1').and.contain('alerting not configured');
    const attached = part(m, new RegExp(`Content-Disposition: attachment; filename=sentinel-${org.slug}-daily-${date}\\.html`, 'i'));
    // The attachment (base64, byte for byte) is the stored report's HTML, as the API serves it.
    const [stored] = (await t.api.get<{ items: { id: string }[] }>(`/organizations/${org.slug}/reports`, (await t.api.login(viewer.email, viewer.password)).access_token)).body.items;
    const download = await t.api.get(`/organizations/${org.slug}/reports/${stored.id}?format=html`, (await t.api.login(admin.email, admin.password)).access_token);
    expect(attached).to.equal(download.text);

    const q = await smtp.waitFor((r) => r.subject === `Sentinel daily report: ${quiet.slug}, ${date}`);
    expect(q.to).to.deep.equal([quietOwner.email]);
    expect(part(q, /Content-Type: text\/plain/i)).to.contain('Ingested: 0 metric points, 0 log lines, 0 events.');

    // Run again, twice at once (a retry, a second daemon): nothing is generated or sent again.
    const again = await Promise.all([s.dailyReports.run(), s.dailyReports.run()]);
    expect(again.flatMap((r) => [...r.generated, ...r.emailed])).to.deep.equal([]);
    await new Promise((r) => setTimeout(r, 500));
    expect(smtp.received.filter((r) => r.subject.startsWith('Sentinel daily report:'))).to.have.length(2);
    const logged = await query<{ org_id: string; n: number }>(url, "select org_id, count(*)::int as n from mail_log where kind = 'report' group by org_id order by org_id");
    expect(logged).to.deep.equal([org.id, quiet.id].sort().map((id) => ({ org_id: id, n: 1 })));
  });
});
