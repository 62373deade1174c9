import type { Config } from '../config/schema.js';
import { taskSettings, type BuiltModule, type FeatureModule, type Hook, type Kits } from '../features/feature-module.js';
import type { QueueTaskDef } from '../jobs/queue-workers.js';

/*
 * Wiring a list of feature modules: checks the list (unique names, every required interface
 * provided by exactly one module, unique job names) before anything is built, builds the modules
 * in list order, and collects what the rest of the app needs from them (services, routes, jobs,
 * hooks). The types check the same at compile time: a need that no module provides, or provides
 * with the wrong shape, is a type error at the list.
 */

// The list holds modules of every shape; `any` is confined to this alias.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModule = FeatureModule<any, any, any>;

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
type BuiltOf<M extends AnyModule> = ReturnType<M['build']>;
type NeedsOf<M extends AnyModule> = Parameters<M['build']>[1];
/** Everything the modules of the list provide, by name. */
export type ProvidedBy<Ms extends readonly AnyModule[]> = UnionToIntersection<BuiltOf<Ms[number]>['provides']>;
/** `app.services`: the union of every module's services. */
export type ServicesOf<Ms extends readonly AnyModule[]> = UnionToIntersection<BuiltOf<Ms[number]>['services']>;
type UnmetOf<M extends AnyModule, P> = {
  [K in keyof NeedsOf<M>]-?: K extends keyof P ? (P[K] extends NeedsOf<M>[K] ? never : K) : K;
}[keyof NeedsOf<M>];
/** The needs of the list's modules that no module provides (or provides with another shape). */
export type Unmet<Ms extends readonly AnyModule[]> = { [I in keyof Ms]: UnmetOf<Ms[I], ProvidedBy<Ms>> }[number];

/**
 * The module list, checked at compile time: every module's needs are met by what the list
 * provides. A type error here names the unmet interface (`unmet: 'orgAccess'`).
 */
export function moduleList<const Ms extends readonly AnyModule[]>(modules: Ms & ([Unmet<Ms>] extends [never] ? unknown : { unmet: Unmet<Ms> })): Ms {
  checkModuleList(modules);
  return modules;
}

/** A job as the app runs it: the module's job spec bound to the module's services. */
export interface Job {
  name: string;
  description: string;
  defaultSchedule?: string;
  timeoutMs?: number;
  /** The module that declared it. */
  module: string;
  run(signal: AbortSignal): Promise<unknown>;
  print?(result: unknown): string;
}

/** What is known about the jobs without building anything (`sentinel jobs list`). */
export type JobInfo = Pick<Job, 'name' | 'description' | 'defaultSchedule' | 'timeoutMs' | 'module'>;

/** The app's jobs, in module order. */
export class JobRegistry {
  readonly #jobs = new Map<string, Job>();

  constructor(jobs: Job[]) {
    for (const j of jobs) this.#jobs.set(j.name, j);
  }

  list(): Job[] {
    return [...this.#jobs.values()];
  }

  get(name: string): Job | undefined {
    return this.#jobs.get(name);
  }
}

/** Throws naming the first problem of the list; nothing is built. */
export function checkModuleList(modules: readonly AnyModule[]): void {
  const names = new Set<string>();
  const providers = new Map<string, string>();
  const jobs = new Map<string, string>();
  const tasks = new Map<string, string>();
  for (const m of modules) {
    if (names.has(m.name)) throw new Error(`module '${m.name}' is in the list twice`);
    names.add(m.name);
    for (const p of m.provides as readonly string[]) {
      const other = providers.get(p);
      if (other) throw new Error(`'${p}' is provided by both module '${other}' and module '${m.name}'`);
      providers.set(p, m.name);
    }
    for (const j of m.jobs ?? []) {
      const other = jobs.get(j.name);
      if (other) throw new Error(`job '${j.name}' is declared by both module '${other}' and module '${m.name}'`);
      jobs.set(j.name, m.name);
    }
    for (const t of m.tasks ?? []) {
      const other = tasks.get(t.name);
      if (other) throw new Error(`task '${t.name}' is declared by both module '${other}' and module '${m.name}'`);
      if (RESERVED_TASKS.includes(t.name)) throw new Error(`task '${t.name}' of module '${m.name}': the name is the jobs kit's own`);
      tasks.set(t.name, m.name);
    }
  }
  for (const m of modules) {
    for (const r of m.requires as readonly string[]) {
      if (!providers.has(r)) throw new Error(`module '${m.name}' requires '${r}', which no module in the list provides`);
    }
  }
}

/** Task names the jobs kit uses for its own queue entries (a scheduled job run). */
export const RESERVED_TASKS: readonly string[] = ['jobs.run'];

/**
 * The tasks the list declares with their attempt caps, without building it (what
 * `WorkQueue.enqueue` accepts; the cap is stored with each queued task).
 */
export function taskAttempts(modules: readonly AnyModule[], config: Config): Map<string, number> {
  return new Map(modules.flatMap((m) => (m.tasks ?? []).map((t) => [t.name, taskSettings(t, config).maxAttempts ?? DEFAULT_TASK_ATTEMPTS] as const)));
}

/** The jobs the list declares, without building it. */
export function jobCatalog(modules: readonly AnyModule[]): JobInfo[] {
  return modules.flatMap((m) =>
    (m.jobs ?? []).map((j) => ({ name: j.name, description: j.description, defaultSchedule: j.defaultSchedule, timeoutMs: j.timeoutMs, module: m.name })),
  );
}

/**
 * Stands in for an interface whose module comes later in the list: every property read goes to
 * the provider, which must have been built by then. Services keep the reference and call it when
 * serving, so a cycle between features (users ↔ auth) needs no setter or second phase.
 */
function provisional<T extends object>(name: string, consumer: string, provided: ReadonlyMap<string, unknown>): T {
  return new Proxy(Object.create(null) as T, {
    get(_target, prop) {
      const target = provided.get(name) as Record<PropertyKey, unknown> | undefined;
      if (target === undefined) throw new Error(`module '${consumer}' used '${name}' while the modules were still being built`);
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export const DEFAULT_TASK_ATTEMPTS = 5;
export const DEFAULT_TASK_BACKOFF_MS = 1000;

export interface Composed {
  modules: { module: AnyModule; built: BuiltModule<unknown, object> }[];
  services: Record<string, unknown>;
  jobs: JobRegistry;
  /** The modules' tasks as the queue's workers run them: each spec bound to its module's services. */
  tasks: QueueTaskDef[];
  /** In list order, each named `<module>: <hook>`. */
  startHooks: Hook[];
}

/**
 * Builds the modules in list order. Their stop hooks go into `stopHooks` (list order; the
 * lifecycle runs them in reverse) as each module is built, so when a later module's build throws,
 * the caller can still stop what the earlier ones opened.
 */
export function composeModules(modules: readonly AnyModule[], kits: Kits, stopHooks: Hook[]): Composed {
  checkModuleList(modules);
  const provided = new Map<string, unknown>();
  const out: Composed = { modules: [], services: {}, jobs: new JobRegistry([]), tasks: [], startHooks: [] };
  const jobs: Job[] = [];
  for (const m of modules) {
    const needs: Record<string, unknown> = {};
    for (const r of m.requires as readonly string[]) needs[r] = provided.has(r) ? provided.get(r) : provisional(r, m.name, provided);
    const built = m.build(kits, needs) as BuiltModule<Record<string, unknown>, Record<string, unknown>>;
    const named = (h: Hook): Hook => ({ ...h, name: `${m.name}: ${h.name}` });
    stopHooks.push(...(built.stop ?? []).map(named));
    const declared = [...(m.provides as readonly string[])].sort();
    const given = Object.keys(built.provides).sort();
    if (declared.join() !== given.join()) throw new Error(`module '${m.name}' declares provides [${declared.join(', ')}] but built [${given.join(', ')}]`);
    for (const [name, value] of Object.entries(built.provides)) provided.set(name, value);
    for (const [name, value] of Object.entries(built.services)) {
      if (name in out.services) throw new Error(`service '${name}' of module '${m.name}' is already taken by another module`);
      out.services[name] = value;
    }
    out.startHooks.push(...(built.start ?? []).map(named));
    for (const spec of m.jobs ?? []) {
      jobs.push({
        name: spec.name,
        description: spec.description,
        defaultSchedule: spec.defaultSchedule,
        timeoutMs: spec.timeoutMs,
        module: m.name,
        run: (signal) => spec.run(built.services, signal),
        print: spec.print ? (result) => spec.print!(result as never) : undefined,
      });
    }
    for (const spec of m.tasks ?? []) {
      const set = taskSettings(spec, kits.config);
      out.tasks.push({
        name: spec.name,
        maxAttempts: set.maxAttempts ?? DEFAULT_TASK_ATTEMPTS,
        backoffMs: set.backoffMs ?? DEFAULT_TASK_BACKOFF_MS,
        maxBackoffMs: set.maxBackoffMs,
        timeoutMs: set.timeoutMs,
        run: (payload, signal, attempt) => spec.run(built.services, payload, signal, attempt),
      });
    }
    out.modules.push({ module: m, built });
  }
  out.jobs = new JobRegistry(jobs);
  return out;
}
