import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Context, Suite } from 'mocha';
import { observedAnswers, type ObservedAnswers } from './observed-answers.js';

/**
 * Root hook plugin (required by .mocharc.json), run after the last test of `npm test`: every
 * answer the shared ApiClient got was validated against its operation's declared response as it
 * arrived (a mismatch already failed that test); here the run as a whole is checked.
 *
 * - Any validation failure fails the run, also one a test swallowed (e.g. in Promise.allSettled).
 * - A full run (every integration file loaded) must have seen a validated 2xx from every
 *   operation of the document; the ones it never saw are printed. The suite covers all of them
 *   today, so the bound is pinned at 100%: a new endpoint comes with a test of its success path,
 *   or its answer schema is never checked against the server.
 */
export const MIN_OBSERVED_SHARE = 1;

const INTEGRATION_DIR = resolve('test/integration');

function filesOf(suite: Suite, out = new Set<string>()): Set<string> {
  if (suite.file) out.add(resolve(suite.file));
  for (const s of suite.suites) filesOf(s, out);
  return out;
}

function isFullRun(root: Suite): boolean {
  const loaded = filesOf(root);
  const all = readdirSync(INTEGRATION_DIR).filter((f) => f.endsWith('.test.ts'));
  return all.length > 0 && all.every((f) => loaded.has(resolve(INTEGRATION_DIR, f)));
}

export function checkObservedAnswers({ operations, answers, failures }: ObservedAnswers, fullRun: boolean): { report: string; problems: string[] } {
  const problems: string[] = failures.map((f) => `${f.operationId} ${f.request} → ${f.status}: ${f.errors.join('; ')}`);
  if (operations.length === 0) return { report: '', problems };
  const ok = new Set([...answers].filter(([, byStatus]) => [...byStatus.keys()].some((s) => s >= 200 && s < 300)).map(([id]) => id));
  const never = operations.filter((o) => !ok.has(o.operationId));
  const validated = [...answers.values()].reduce((n, byStatus) => n + [...byStatus.values()].reduce((a, b) => a + b, 0), 0);
  const lines = [
    `  API answers validated against the OpenAPI document: ${validated} answers; ${ok.size}/${operations.length} operations answered with a 2xx`,
    ...never.map((o) => `    never answered with a 2xx: ${o.operationId} (${o.method.toUpperCase()} ${o.path})`),
  ];
  if (fullRun && ok.size < Math.ceil(MIN_OBSERVED_SHARE * operations.length)) {
    problems.push(`only ${ok.size} of ${operations.length} operations were answered with a validated 2xx (at least ${Math.round(MIN_OBSERVED_SHARE * 100)}% expected)`);
  }
  return { report: lines.join('\n'), problems };
}

export const mochaHooks = {
  afterAll(this: Context): void {
    let root: Suite = this.test!.parent!;
    while (root.parent) root = root.parent;
    const { report, problems } = checkObservedAnswers(observedAnswers(), isFullRun(root));
    if (report) console.log(`\n${report}`);
    if (problems.length) throw new Error(`the API answers of this run, checked against the OpenAPI document:\n  ${problems.join('\n  ')}`);
  },
};
