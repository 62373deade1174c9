import { expect } from 'chai';
import type { Browser } from 'puppeteer-core';
import { launchChromium, type TestBrowser } from '../support/browser.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The API reference pages as a person sees them, in Debian's Chromium (.ci/run installs it):
 * Swagger UI at /docs and ReDoc at /redoc render the served OpenAPI document, load nothing from
 * any other origin (a self-hosted install may have no internet, and a CDN would see who reads
 * the docs), and run under the pages' Content-Security-Policy without a violation.
 */

// An operation summary from the document (src/features/audit/audit-routes.ts): proof the page
// rendered the document itself, not just its frame.
const SUMMARY = 'The whole audit log, newest first (superadmins)';

describe('API reference pages in a real browser', function () {
  this.timeout(90_000);
  let dbUrl: string;
  let t: TestApp;
  let chromium: TestBrowser;
  let browser: Browser;

  before(async () => {
    dbUrl = await cloneDatabase();
    t = await startTestApp(dbUrl);
    chromium = await launchChromium('the docs pages test');
    browser = chromium.browser;
  });
  after(async () => {
    await chromium?.close();
    await t?.stop();
    if (dbUrl) await dropDatabase(dbUrl);
  });

  async function visit(path: string, rendered: (page: import('puppeteer-core').Page) => Promise<unknown>) {
    const page = await browser.newPage();
    const origin = new URL(t.baseUrl).origin;
    const foreign: string[] = [];
    const problems: string[] = [];
    page.on('request', (req) => {
      const url = req.url();
      if (!url.startsWith(origin) && !url.startsWith('data:') && !url.startsWith('blob:')) foreign.push(url);
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || /Content Security Policy/i.test(msg.text())) problems.push(msg.text());
    });
    page.on('pageerror', (err) => problems.push(String(err)));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
    const res = await page.goto(`${t.baseUrl}${path}`, { waitUntil: 'load' });
    expect(res?.status(), path).to.equal(200);
    await rendered(page);
    await page.close();
    return { foreign, problems };
  }

  it('/docs (Swagger UI) renders the document from local assets, without CSP violations', async () => {
    const { foreign, problems } = await visit('/docs', (page) => page.waitForFunction((s) => document.body.innerText.includes(s), { timeout: 30_000 }, SUMMARY));
    expect(foreign, 'requests to other origins').to.deep.equal([]);
    expect(problems, 'console errors and CSP violations').to.deep.equal([]);
  });

  it('/redoc (ReDoc) renders the document from local assets, without CSP violations', async () => {
    const { foreign, problems } = await visit('/redoc', (page) => page.waitForFunction((s) => document.body.innerText.includes(s), { timeout: 30_000 }, SUMMARY));
    expect(foreign, 'requests to other origins').to.deep.equal([]);
    expect(problems, 'console errors and CSP violations').to.deep.equal([]);
  });
});
