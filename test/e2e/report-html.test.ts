import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'puppeteer-core';
import { launchChromium, type TestBrowser } from '../support/browser.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { createApiKey, createOrg, createUser } from '../support/factories.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The daily report's HTML as a person sees it, in Debian's Chromium (.ci/run installs it): the
 * page downloaded from the API (with the API's headers, CSP included) renders without a console
 * error or a request of any kind (it is self-contained), shows the figures the test ingested,
 * and a screenshot is kept under test-artifacts/ (gitignored) for a human to look at.
 */

const DAY = 86_400_000;
const ARTIFACTS = resolve('test-artifacts');

describe('the daily report page in a real browser', function () {
  this.timeout(90_000);
  let dbUrl: string;
  let t: TestApp;
  let chromium: TestBrowser;
  let browser: Browser;

  before(async () => {
    dbUrl = await cloneDatabase();
    t = await startTestApp(dbUrl);
    chromium = await launchChromium('the report page test');
    browser = chromium.browser;
  });
  after(async () => {
    await chromium?.close();
    await t?.stop();
    if (dbUrl) await dropDatabase(dbUrl);
  });

  it('renders without console errors or requests, shows the ingested figures, and is kept as a screenshot', async () => {
    const org = await createOrg(t.app.services, `acme-${Math.random().toString(16).slice(2, 8)}`);
    const key = (await createApiKey(t.app.services, org.slug, ['ingest'])).secret;
    const admin = await createUser(t.app.services, { org: org.slug, role: 'admin' });
    const token = (await t.api.login(admin.email, admin.password)).access_token;
    // Yesterday as of this test's run (a suite that starts before midnight UTC runs this after it),
    // and the report asked for that day by name.
    const YESTERDAY = Math.floor(Date.now() / DAY) * DAY - DAY;
    // 700 + 400 + 134 = 1,234 points in three series, 56 logs, 7 events, all yesterday (UTC).
    const series: [string, Record<string, string>, number][] = [
      ['http.requests', { service: 'api', status: '200' }, 700],
      ['cpu.usage', { host: 'web-1' }, 400],
      ['queue.depth', { queue: 'mail' }, 134],
    ];
    for (const [name, labels, n] of series) {
      const res = await t.api.post('/telemetry', key, { metrics: Array.from({ length: n }, (_, i) => ({ name, labels, value: i, ts: YESTERDAY + i * 60_000 })) });
      expect(res.status, res.text).to.equal(202);
    }
    const signals = await t.api.post('/telemetry', key, {
      logs: Array.from({ length: 56 }, (_, i) => ({ ts: YESTERDAY + i * 1000, level: 'info', message: `line ${i}` })),
      events: Array.from({ length: 7 }, (_, i) => ({ ts: YESTERDAY + i * 1000, type: 'deploy', title: `v1.${i}` })),
    });
    expect(signals.status, signals.text).to.equal(202);
    const made = await t.api.post<{ id: string; date: string }>(`/organizations/${org.slug}/reports`, token, { date: new Date(YESTERDAY).toISOString().slice(0, 10) });
    expect(made.status, made.text).to.equal(201);
    const html = await t.api.get(`/organizations/${org.slug}/reports/${made.body.id}?format=html`, token);
    expect(html.status).to.equal(200);

    // The page is served to the browser as the API served it (body and CSP), at a made-up origin;
    // any other request it makes is recorded and refused.
    const page = await browser.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      if (req.url() === 'http://report.test/') {
        void req.respond({ status: 200, contentType: html.contentType, headers: { 'content-security-policy': html.headers.get('content-security-policy') ?? '' }, body: html.text });
      } else {
        requests.push(req.url());
        void req.abort();
      }
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warn') problems.push(msg.text());
    });
    page.on('pageerror', (err) => problems.push(String(err)));
    await page.setViewport({ width: 1000, height: 800 });
    const res = await page.goto('http://report.test/', { waitUntil: 'load' });
    expect(res?.status()).to.equal(200);

    const text = await page.evaluate(() => document.body.innerText);
    expect(await page.title()).to.equal(`${org.slug} — daily report for ${made.body.date}`);
    for (const figure of ['1,234', '56', '7', 'http.requests', 'service=api', 'cpu.usage', 'queue.depth', 'alerting not configured', 'Nothing refused that day.']) {
      expect(text, figure).to.contain(figure);
    }
    // The top-series table lists them most first, with their counts.
    const rows = await page.$$eval('#top-series tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td as HTMLElement).innerText)));
    expect(rows.map((r) => [r[1], r[3]])).to.deep.equal([
      ['http.requests', '700'],
      ['cpu.usage', '400'],
      ['queue.depth', '134'],
    ]);
    // Styled (the inline stylesheet applied under the CSP), not a bare page.
    const cardBorder = await page.$eval('.card', (el) => getComputedStyle(el).borderTopStyle);
    expect(cardBorder).to.equal('solid');

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, `daily-report-${made.body.date}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).to.be.greaterThan(10_000);
    console.log(`      screenshot: ${shot}`);
    await page.close();

    expect(requests, 'requests the page made').to.deep.equal([]);
    expect(problems, 'console errors and warnings').to.deep.equal([]);
  });
});
