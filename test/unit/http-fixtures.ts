import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { Config } from '../../src/config/schema.js';
import type { DomainError } from '../../src/core/errors.js';
import type { RateLimiter } from '../../src/core/rate-limiter.js';
import { createHttpMetrics, type HttpMetrics } from '../../src/http/metrics.js';
import { ApiRegistry } from '../../src/http/registry.js';
import { createHttpServer, type HttpServer } from '../../src/http/server.js';
import { testConfig } from '../support/config.js';

// Shared by the http-*.test.ts files (not itself a test file: mocha only picks *.test.ts).

export interface CapturedLogger {
  logger: Logger;
  lines: () => Record<string, unknown>[];
  raw: () => string;
}

/** A real pino logger writing JSON lines into memory, so tests can assert on what is logged. */
export function captureLogger(): CapturedLogger {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  const raw = () => chunks.join('');
  const lines = () =>
    raw()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, raw };
}

export interface RunningServer {
  url: string;
  port: number;
  http: HttpServer;
  registry: ApiRegistry;
  metrics: HttpMetrics;
  log: CapturedLogger;
  close: (graceMs?: number) => Promise<void>;
}

export interface StartOptions {
  http?: Partial<Config['http']>;
  routes?: (registry: ApiRegistry) => void;
  classifyError?: (err: unknown) => DomainError | null;
  apiRateLimiter?: RateLimiter;
}

export async function startServer(opts: StartOptions = {}): Promise<RunningServer> {
  const log = captureLogger();
  const registry = new ApiRegistry();
  opts.routes?.(registry);
  const metrics = createHttpMetrics();
  const http = createHttpServer({
    config: testConfig(undefined, {}, opts.http),
    logger: log.logger,
    registry,
    metrics,
    classifyError: opts.classifyError,
    apiRateLimiter: opts.apiRateLimiter,
    openapiInfo: { title: 'Sentinel test', version: '0.0.0-test' },
  });
  const { port } = await http.listen();
  return { url: `http://127.0.0.1:${port}`, port, http, registry, metrics, log, close: (g = 1000) => http.close(g) };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
