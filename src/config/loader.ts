import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { cronProblem } from '../core/cron.js';
import { parseDuration } from '../core/duration.js';
import { DomainError, type ErrorDetail } from '../core/errors.js';
import { packageRoot } from './paths.js';
import { ConfigSchema, type Config } from './schema.js';
import { secretProblem } from './secrets.js';

export const DEFAULT_CONFIG_FILE = '/etc/sentinel/sentinel.json';
const ENV_PREFIX = 'SENTINEL_';
/** SENTINEL_* variables that are not config keys. */
const ENV_NOT_KEYS = new Set(['SENTINEL_CONFIG']);
const ENV_RESERVED_PREFIXES = ['SENTINEL_TEST_', 'SENTINEL_BENCH_'];

type Env = Record<string, string | undefined>;
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  writeOnly?: boolean;
  enum?: unknown[];
}

export interface ConfigKey {
  path: string;
  env: string;
  type: string;
  secret: boolean;
}

export interface LoadedConfig {
  config: Config;
  /** Where each key's value came from: "default", "file <path>", "env NAME", "file NAME_FILE (<path>)". */
  sources: Record<string, string>;
  file: string | null;
}

export interface LoadOptions {
  file?: string;
  env?: Env;
  uid?: number;
}

export class ConfigError extends DomainError {
  constructor(errors: ErrorDetail[]) {
    super('invalid_config', `invalid configuration:\n${errors.map((e) => `  ${e.path}: ${e.message}`).join('\n')}`, {
      errors,
    });
  }
}

export const envNameFor = (path: string): string => ENV_PREFIX + path.replace(/\./g, '_').toUpperCase();

/** Every leaf key of the schema with its environment variable name. */
export function configKeys(schema: SchemaNode = ConfigSchema as unknown as SchemaNode, prefix = ''): ConfigKey[] {
  const out: ConfigKey[] = [];
  for (const [name, node] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    if (node.type === 'object' && node.properties) out.push(...configKeys(node, path));
    else out.push({ path, env: envNameFor(path), type: node.type ?? 'string', secret: node.writeOnly === true });
  }
  return out;
}

const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
const validate = ajv.compile<Config>(ConfigSchema);

function readJsonFile(path: string, label: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${label} ${path}: ${(err as Error).message}` }]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([{ path: '(file)', message: `${label} ${path} is not valid JSON: ${(err as Error).message}` }]);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError([{ path: '(file)', message: `${label} ${path} must hold a JSON object` }]);
  }
  return parsed as JsonObject;
}

function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Merge `layer` into `target`, recording the source of every leaf it sets. */
function mergeLayer(target: JsonObject, layer: JsonObject, source: string, sources: Record<string, string>, prefix = ''): void {
  for (const [k, v] of Object.entries(layer)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isObject(v) && isObject(target[k])) {
      mergeLayer(target[k] as JsonObject, v, source, sources, path);
    } else {
      target[k] = v;
      sources[path] = source;
    }
  }
}

function setPath(target: JsonObject, path: string, value: Json): void {
  const parts = path.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) {
    if (!isObject(node[p])) node[p] = {};
    node = node[p] as JsonObject;
  }
  node[parts[parts.length - 1]] = value;
}

function getPath(target: JsonObject, path: string): Json | undefined {
  let node: Json | undefined = target;
  for (const p of path.split('.')) {
    if (!isObject(node)) return undefined;
    node = node[p];
  }
  return node;
}

/** Environment strings to the key's JSON type; a value that does not parse is kept as a string so validation names it. */
function coerce(raw: string, type: string): Json {
  switch (type) {
    case 'integer':
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      return raw;
    }
    case 'array': {
      const t = raw.trim();
      if (t.startsWith('[')) {
        try {
          return JSON.parse(t) as Json;
        } catch {
          return raw;
        }
      }
      return t === '' ? [] : t.split(',').map((s) => s.trim());
    }
    case 'object': {
      // Keys whose names are not fixed (jobs.<name>): the whole object as JSON.
      const t = raw.trim();
      if (!t.startsWith('{')) return raw;
      try {
        return JSON.parse(t) as Json;
      } catch {
        return raw;
      }
    }
    default:
      return raw;
  }
}

function readSecretFile(path: string, envName: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError([{ path: envName, message: `cannot read ${path}: ${(err as Error).message}` }]);
  }
}

function formatValue(v: Json | undefined, secret: boolean): string {
  if (secret) return '"***"';
  const s = JSON.stringify(v);
  return s === undefined ? 'undefined' : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function describeErrors(errors: ErrorObject[], merged: JsonObject, sources: Record<string, string>): ErrorDetail[] {
  const secrets = new Set(configKeys().filter((k) => k.secret).map((k) => k.path));
  const sourceOf = (path: string): string => {
    for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
      if (sources[p]) return sources[p];
    }
    return 'default';
  };
  const seen = new Set<string>();
  const out: ErrorDetail[] = [];
  for (const e of errors) {
    let path = e.instancePath.slice(1).replace(/\//g, '.');
    let message: string;
    if (e.keyword === 'additionalProperties') {
      path = path ? `${path}.${String(e.params.additionalProperty)}` : String(e.params.additionalProperty);
      message = `unknown key (from ${sourceOf(path)})`;
    } else {
      const allowed = e.keyword === 'enum' ? `: ${(e.params.allowedValues as unknown[]).join(', ')}` : '';
      message = `${formatValue(getPath(merged, path), secrets.has(path))} (from ${sourceOf(path)}): ${e.message ?? 'invalid'}${allowed}`;
    }
    const key = `${path}|${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ path: path || '(root)', message });
    }
  }
  return out;
}

function databaseUrlProblem(url: string): string | null {
  if (url === '') return null;
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = '';
  }
  // Caught here rather than as a connection error at the first query, which names no key.
  return protocol === 'postgres:' || protocol === 'postgresql:' ? null : 'must be a postgres:// URL (postgres://user:password@host:5432/database), or empty for the embedded server';
}

/** storage.compact_after: compacting windows that fresh points still arrive for only makes late merges. */
const MIN_COMPACT_AFTER_MS = 10 * 60_000;

function compactAfterProblem(v: string): string | null {
  const ms = parseDuration(v);
  return ms !== null && ms < MIN_COMPACT_AFTER_MS ? 'must be at least 10m' : null;
}

/** Rules JSON Schema cannot state (byte lengths, key encodings, URL syntax, least durations), reported like schema errors. */
const VALUE_CHECKS: { path: string; secret: boolean; problem: (value: string) => string | null }[] = [
  { path: 'auth.jwt_secret', secret: true, problem: (v) => secretProblem('auth.jwt_secret', v) },
  { path: 'auth.encryption_key', secret: true, problem: (v) => secretProblem('auth.encryption_key', v) },
  { path: 'database.url', secret: true, problem: databaseUrlProblem },
  { path: 'storage.compact_after', secret: false, problem: compactAfterProblem },
];

function checkValues(merged: JsonObject, sources: Record<string, string>): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  for (const c of VALUE_CHECKS) {
    const value = getPath(merged, c.path);
    const problem = typeof value === 'string' ? c.problem(value) : null;
    // A secret's value is never echoed.
    if (problem) out.push({ path: c.path, message: `${formatValue(value, c.secret)} (from ${sources[c.path] ?? 'default'}): ${problem}` });
  }
  return out;
}

/** Where the value at `path` (or the nearest object holding it) came from. */
function sourceAt(sources: Record<string, string>, path: string): string {
  for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    if (sources[p]) return sources[p];
  }
  return 'default';
}

/** jobs.<name>.schedule must be a cron expression node-cron accepts (checked here, not at the first tick). */
function checkSchedules(merged: JsonObject, sources: Record<string, string>): ErrorDetail[] {
  const jobs = merged.jobs;
  if (!isObject(jobs)) return [];
  const out: ErrorDetail[] = [];
  for (const [name, job] of Object.entries(jobs)) {
    const schedule = isObject(job) ? job.schedule : undefined;
    if (typeof schedule !== 'string') continue;
    const problem = cronProblem(schedule);
    const path = `jobs.${name}.schedule`;
    if (problem) out.push({ path, message: `${formatValue(schedule, false)} (from ${sourceAt(sources, path)}): ${problem}` });
  }
  return out;
}

export function defaultDataDir(env: Env, uid: number): string {
  if (uid === 0) return '/var/lib/sentinel';
  const xdg = env.XDG_DATA_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(env.HOME ?? homedir(), '.local', 'share'), 'sentinel');
}

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? {};
  const uid = opts.uid ?? process.getuid?.() ?? 1000;
  const sources: Record<string, string> = {};
  const merged = readJsonFile(join(packageRoot(), 'config', 'default.json'), 'defaults');

  const explicit = opts.file ?? env.SENTINEL_CONFIG;
  const file = explicit ? resolve(explicit) : existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : null;
  if (file) mergeLayer(merged, readJsonFile(file, 'config file'), `file ${file}`, sources);

  const keys = configKeys();
  const errors: ErrorDetail[] = [];
  const known = new Set<string>(ENV_NOT_KEYS);
  for (const k of keys) known.add(k.env).add(`${k.env}_FILE`);
  for (const name of Object.keys(env)) {
    if (name.startsWith(ENV_PREFIX) && !known.has(name) && !ENV_RESERVED_PREFIXES.some((p) => name.startsWith(p))) {
      errors.push({ path: name, message: 'unknown environment variable (no such config key)' });
    }
  }
  for (const k of keys) {
    const fromEnv = env[k.env] ?? (k.path === 'database.url' ? env.DATABASE_URL : undefined);
    if (fromEnv !== undefined) {
      setPath(merged, k.path, coerce(fromEnv, k.type));
      sources[k.path] = `env ${env[k.env] !== undefined ? k.env : 'DATABASE_URL'}`;
    }
    const fileVar = env[`${k.env}_FILE`];
    if (fileVar !== undefined) {
      setPath(merged, k.path, coerce(readSecretFile(fileVar, `${k.env}_FILE`), k.type));
      sources[k.path] = `file ${k.env}_FILE (${fileVar})`;
    }
  }
  if (!validate(merged)) errors.push(...describeErrors(validate.errors ?? [], merged, sources));
  errors.push(...checkValues(merged, sources));
  errors.push(...checkSchedules(merged, sources));
  if (errors.length) throw new ConfigError(errors);

  const config = merged as unknown as Config;
  if (!config.data_dir) config.data_dir = defaultDataDir(env, uid);
  else config.data_dir = resolve(config.data_dir);
  return { config, sources, file };
}

/** The effective config with every secret replaced by "***" (and the password of database.url masked). */
export function maskSecrets(config: Config): Config {
  const copy = JSON.parse(JSON.stringify(config)) as JsonObject;
  for (const k of configKeys()) {
    const v = getPath(copy, k.path);
    if (!k.secret || typeof v !== 'string' || v === '') continue;
    setPath(copy, k.path, k.path === 'database.url' ? maskUrlPassword(v) : '***');
  }
  return copy as unknown as Config;
}

export function maskUrlPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '***';
  }
}
