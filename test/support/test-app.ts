import { buildApp, type App } from '../../src/app/build-app.js';
import { startApp } from '../../src/app/lifecycle.js';
import { createLogger } from '../../src/app/logger.js';
import type { Clock } from '../../src/core/clock.js';
import { LogCapture } from './capture.js';
import { testConfig } from './config.js';
import { ApiClient } from './http.js';
import { validatorFor } from './response-schemas.js';

export interface TestApp {
  app: App;
  baseUrl: string;
  /** The shared client: every answer it gets is validated against the app's OpenAPI document. */
  api: ApiClient;
  logs: LogCapture;
  stop(): Promise<void>;
}

/** The whole app (composition root, real HTTP server on 127.0.0.1:0) on the given database. */
export async function startTestApp(databaseUrl: string, env: Record<string, string> = {}, opts: { clock?: Clock } = {}): Promise<TestApp> {
  const logs = new LogCapture();
  const config = testConfig(databaseUrl, env);
  const app = await buildApp(config, createLogger(config.log.level, logs), { role: 'daemon', http: true, clock: opts.clock });
  // As `serve` does: the lifecycle's phases after the database (the test databases are migrated:
  // the check passes), a failed phase stops what had started.
  const addr = await startApp(app, { migrate: false });
  const baseUrl = `http://127.0.0.1:${addr.port}`;
  // The document from the registry in-process rather than over HTTP: fetching it would count
  // against the per-IP rate limit that some tests count requests of. The served document is the
  // same one (test/integration/api-contract.test.ts checks that).
  const validator = validatorFor(JSON.stringify(app.registry!.openapi({ title: 'Sentinel API', version: 'test' })));
  return { app, baseUrl, api: new ApiClient(baseUrl, undefined, { validator }), logs, stop: () => app.stop() };
}
