import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Debian's Chromium (.ci/run installs it), headless, with a profile of its own and without the
 * background traffic a closed network refuses. A test that needs it fails loudly without it.
 */
export async function launchChromium(what: string): Promise<TestBrowser> {
  if (!CHROMIUM) throw new Error(`chromium is not installed (apt-get install chromium): ${what} needs a real browser and cannot pass without one`);
  const profile = mkdtempSync(join(tmpdir(), 'sentinel-chromium-'));
  try {
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    return {
      browser,
      close: async () => {
        await browser.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}
