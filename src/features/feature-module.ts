import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { JobControl } from '../core/jobs.js';
import type { Database } from '../db/database.js';
import type { Cacher } from '../db/read-cache.js';
import type { HttpStatusSource } from '../http/http-window.js';
import type { ApiRegistry } from '../http/registry.js';

/*
 * The contract between a feature and the composition root (DESIGN §2). It lives here, beside the
 * feature folders and in none of them, because features may not import src/app; only a
 * feature's `<name>-module.ts` (and this file) may import src/config, since turning the config
 * into constructor options is the module's job.
 */

/** The shared dependencies every module is built from; the composition root builds them once. */
export interface Kits {
  /** With the generated secrets filled in. */
  config: Config;
  logger: Logger;
  db: Database;
  /** The daemon's read cache; short CLI commands get one that reads straight through. */
  cache: Cacher;
  /** The running Sentinel's version (for /health and the OpenAPI document). */
  version: string;
  /** True in `serve` (HTTP, start hooks), false in a one-shot CLI command. */
  daemon: boolean;
  /**
   * The app's Prometheus registry (served at /metrics by the daemon): modules register their own
   * metrics in it, never in prom-client's process-wide default.
   */
  metrics: Registry;
  /**
   * The durable queue (src/jobs): `enqueue` stores the task in PostgreSQL; the daemon's workers
   * run it. A CLI command gets the same queue: what it enqueues waits for the daemon.
   */
  queue: WorkQueue;
  /** The jobs and their runs (the jobs kit): what the admin routes show and trigger. */
  jobs: JobControl;
  /** "Now" for features that decide by time (alert evaluation, heartbeats): tests pin it. */
  clock: Clock;
  /** The HTTP kit's last minute (requests, latency, errors, in flight): what the admin status shows. */
  httpStatus: HttpStatusSource;
}

/** Enqueue one-off work by task name; the task is stored (committed) before this resolves. */
export interface WorkQueue {
  enqueue(task: string, payload: Record<string, unknown>, opts?: EnqueueOptions): Promise<void>;
}

export interface EnqueueOptions {
  /** Enqueueing the same key again (while the first is stored) does nothing: idempotent hand-offs. */
  dedupeKey?: string;
  /** Not run before this time (default: now). */
  notBefore?: Date;
}

/** Which attempt of a task this run is, as the queue counts them (a claim is an attempt). */
export interface TaskAttempt {
  /** 1 for the first. */
  attempt: number;
  /** The attempt that reaches it is the last: its failure is final. */
  maxAttempts: number;
}

/**
 * A one-off task as data, run by the queue's workers in the daemon: retried with exponential
 * backoff (`backoffMs`, doubling) until `maxAttempts`; every attempt is recorded by the queue.
 * The payload is JSON (it is stored in PostgreSQL while it waits).
 */
export interface TaskSpec<S, P = Record<string, unknown>> {
  name: string;
  /** Default 5. */
  maxAttempts?: number;
  /** Delay before the first retry, doubling after each; default 1000. */
  backoffMs?: number;
  /** No delay between attempts exceeds it (the doubling stops there); default: no cap. */
  maxBackoffMs?: number;
  timeoutMs?: number;
  /**
   * Settings read from the configuration, over the fixed ones above (tasks are declared before
   * anything is built, so the composition root resolves them).
   */
  configured?(config: Config): TaskSettings;
  run(services: S, payload: P, signal: AbortSignal, attempt: TaskAttempt): Promise<void>;
}

/**
 * One step of start or stop. A start hook that overruns its timeout fails the start; a stop hook
 * that overruns is logged and left behind so the rest still stop (src/app/lifecycle.ts).
 */
export interface Hook {
  name: string;
  timeoutMs: number;
  run(): Promise<void>;
}

/**
 * A job as data: the jobs kit schedules it, `sentinel jobs run <name>` runs it now. `run` gets
 * the module's services (jobs are declared before anything is built, so `jobs list` and a
 * mistyped name need no database) and a signal that is aborted when the run should give up.
 */
export interface JobSpec<S, R = unknown> {
  name: string;
  description: string;
  /** Cron expression the scheduler uses unless `jobs.<name>.schedule` says otherwise. */
  defaultSchedule?: string;
  timeoutMs?: number;
  run(services: S, signal: AbortSignal): Promise<R>;
  /** The human-readable report of `sentinel jobs run` (without --json). */
  print?(result: R): string;
}

/** What `build` returns: the module's pieces, wired. */
export interface BuiltModule<Provides, Services> {
  /** The small interfaces this module offers other modules, by the names in `provides`. */
  provides: Provides;
  /** What the CLI, seeds and tests call (merged into `app.services`). */
  services: Services;
  /**
   * Routes (daemon only): API routes and raw ones (own body and error format, e.g. OTLP at the
   * spec's paths), each declaring its own rate limit (`rateLimit`), all in the registry.
   */
  routes?(registry: ApiRegistry): void;
  /** Run in list order after migrations, before the HTTP server listens (daemon only). */
  start?: Hook[];
  /** Run in reverse list order after the HTTP server has drained (daemon and CLI). */
  stop?: Hook[];
}

/**
 * A feature as the composition root sees it. `requires` and `provides` name the interfaces that
 * cross feature boundaries; the root checks before building anything that each required name is
 * provided by exactly one module, and TypeScript checks that the provided type fits the need.
 * A module may need one provided by a later module in the list (users ↔ auth, orgs ↔ audit): it
 * gets a reference that resolves once the provider is built, to be called at run time only.
 */
export interface FeatureModule<Needs = object, Provides = object, Services = object> {
  readonly name: string;
  readonly requires: readonly (keyof Needs & string)[];
  readonly provides: readonly (keyof Provides & string)[];
  build(kits: Kits, needs: Needs): BuiltModule<Provides, Services>;
  readonly jobs?: readonly JobSpec<Services>[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each task has its own payload type
  readonly tasks?: readonly TaskSpec<Services, any>[];
}

export type TaskSettings = Partial<Pick<TaskSpec<unknown>, 'maxAttempts' | 'backoffMs' | 'maxBackoffMs' | 'timeoutMs'>>;

/** A task's settings under `config`: its fixed ones with the configured ones over them. */
export function taskSettings(spec: TaskSpec<never, never>, config: Config): TaskSettings {
  const { maxAttempts, backoffMs, maxBackoffMs, timeoutMs } = spec;
  return { maxAttempts, backoffMs, maxBackoffMs, timeoutMs, ...spec.configured?.(config) };
}

/** Identity, so the three type parameters are inferred from the object literal. */
export function defineModule<Needs, Provides, Services>(m: FeatureModule<Needs, Provides, Services>): FeatureModule<Needs, Provides, Services> {
  return m;
}
