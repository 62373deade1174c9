import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import type { Static, TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import bodyParser from 'koa-bodyparser';
import { DomainError, type ErrorDetail } from '../core/errors.js';
import { UNSTORABLE_TEXT_MESSAGE, findUnstorableText } from '../core/text.js';
import { API_KEY_SCOPES, PERMISSIONS, scopeGrants, type Permission } from '../core/permissions.js';
import type { HttpContext } from './context.js';
import { PROBLEM_CONTENT_TYPE, ProblemSchema } from './problem.js';

export const API_PREFIX = '/api/v1';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';
/** none: public; user: a user access token; any: a user token or an API key. */
export type AuthMode = 'none' | 'user' | 'any';

/** One readiness probe for GET /health/ready: resolves when healthy, throws with a reason otherwise. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface ResponseDef {
  description: string;
  schema?: TSchema;
  /** Default application/json, or application/problem+json for 4xx/5xx without a schema. */
  contentType?: string;
}

type Maybe = TSchema | undefined;
// Tuple-wrapped so `undefined` does not distribute into the conditional.
type InputOf<S extends Maybe, Fallback> = [S] extends [TSchema] ? Static<S> : Fallback;

export interface RouteInput<P extends Maybe = undefined, Q extends Maybe = undefined, B extends Maybe = undefined> {
  params: InputOf<P, Record<string, string>>;
  query: InputOf<Q, Record<string, string | string[] | undefined>>;
  body: InputOf<B, unknown>;
}

export interface RouteDef<P extends Maybe = undefined, Q extends Maybe = undefined, B extends Maybe = undefined> {
  method: HttpMethod;
  /** OpenAPI style, relative to /api/v1: "/organizations/{org}". */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  auth?: AuthMode;
  /**
   * For auth 'any': the permission the route's service checks (core/permissions). The document
   * derives from it which API keys the route takes: those whose scopes grant it, or none at all
   * when no scope does (the service then answers 403 to every key). Without it the document can
   * only say "an API key" with no scope.
   */
  permission?: Permission;
  /** For auth 'any': the service refuses user tokens (the API key decides the organization). */
  apiKeyOnly?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  /**
   * Bulk ingest: the body may be as large as http.body_limit_bytes (every other route takes
   * http.api_body_limit_bytes), and its strings reach the service as sent, because the service
   * stores NUL and unpaired surrogates as U+FFFD instead of refusing the batch.
   */
  bulkBody?: boolean;
  responses: Record<number, ResponseDef>;
  handler: (ctx: HttpContext, input: RouteInput<P, Q, B>) => Promise<void> | void;
}

export interface RouteInfo {
  method: HttpMethod;
  path: string;
  operationId: string;
  auth: AuthMode;
}

/**
 * Called before input validation for every registry route (also auth 'none', so it may pick up an
 * optional token). The auth feature provides it via the composition root; the kit never imports it.
 */
export type Authenticator = (ctx: HttpContext, route: RouteInfo) => Promise<void> | void;

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
  /** SPDX `identifier`, as OpenAPI 3.1 allows. */
  license?: { name: string; identifier?: string };
}

/**
 * An operation the server answers outside the registry (e.g. OTLP/HTTP at the spec's root paths,
 * which reads its own bodies and answers in its own format). The registry only documents it, so
 * the OpenAPI document still says everything the server does.
 */
export interface ExternalOperation {
  method: HttpMethod;
  /** The path on the server, not under /api/v1: it is documented with a `servers: [{url: '/'}]` of its own. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  auth: AuthMode;
  permission?: Permission;
  apiKeyOnly?: boolean;
  /** Request headers (an object schema whose properties become header parameters). */
  headers?: TSchema;
  requestBody?: { description?: string; content: Record<string, TSchema> };
  /** By status; a 4xx/5xx without content is application/problem+json, as for routes. */
  responses: Record<number, { description: string; content?: Record<string, TSchema> }>;
}

type AnyRouteDef = RouteDef<Maybe, Maybe, Maybe>;

interface CompiledRoute {
  def: AnyRouteDef;
  info: RouteInfo;
  params?: ValidateFunction;
  query?: ValidateFunction;
  body?: ValidateFunction;
  /** The same body schema, stopping at the first error: for bodies too large to list every error of. */
  bodyFirstError?: ValidateFunction;
}

// ajv-formats is CommonJS with an `exports.default`; under NodeNext the default import is module.exports.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

function newAjv(coerce: boolean, allErrors = true): Ajv {
  const ajv = new Ajv({
    allErrors,
    // 'array' lets ?tag=a and ?tag=a&tag=b both satisfy an array schema, and a lone value a scalar one.
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    strict: true,
    strictTypes: false,
    strictTuples: false,
  });
  addFormats(ajv);
  ajv.addKeyword('example');
  // OpenAPI 3.1 (JSON Schema 2020-12) writes tuples as prefixItems (e.g. the metric query's points); ajv's
  // draft-07 mode checks the same thing as its `items: [...]`.
  ajv.addKeyword({ keyword: 'prefixItems', type: 'array', schemaType: 'array', macro: (items: unknown) => ({ items }) });
  return ajv;
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

function placeholders(path: string): string[] {
  return [...path.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

// TypeBox marks schemas with symbol keys; JSON round-tripping drops them for the OpenAPI document.
function plain<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema)) as T;
}

/**
 * Paths look like "body/email", "query/limit", "params/org", "body/items/3/name": the input's
 * location followed by the JSON pointer into it, naming the missing or unknown field itself
 * rather than its parent object.
 */
function toErrorDetails(where: 'params' | 'query' | 'body', errors: ErrorObject[], out: ErrorDetail[]): void {
  const seen = new Set<string>();
  for (const e of errors) {
    if (out.length >= MAX_REPORTED_ERRORS) return;
    let path = where + e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      path += `/${String(e.params.missingProperty)}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path += `/${String(e.params.additionalProperty)}`;
      message = 'is not an allowed field';
    }
    const key = `${path}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ path, message });
    }
  }
}

/**
 * A problem lists at most this many fields: a body of 100,000 unknown keys gets a short answer,
 * and nothing spreads an unbounded array into a call.
 */
export const MAX_REPORTED_ERRORS = 20;
const LIST_EVERY_ERROR_BELOW_BYTES = 64 * 1024;

/** Largest JSON bodies: ingest routes (bulkBody) and every other route. */
export interface BodyLimits {
  bodyLimitBytes: number;
  bulkBodyLimitBytes: number;
}

const DEFAULT_BODY_LIMITS: BodyLimits = { bodyLimitBytes: 1_048_576, bulkBodyLimitBytes: 10_485_760 };

type BodyReader = (ctx: HttpContext) => Promise<unknown>;

function bodyReader(limitBytes: number): BodyReader {
  const parse = bodyParser({ enableTypes: ['json'], jsonLimit: String(limitBytes), extendTypes: { json: ['application/*+json'] } }) as unknown as (
    ctx: HttpContext,
    next: () => Promise<void>,
  ) => Promise<void>;
  return async (ctx) => {
    try {
      await parse(ctx, async () => {});
    } catch (err) {
      // http-errors (400 bad JSON, 413, 415 unknown encoding) carry their status; a zlib or brotli
      // stream error on a corrupt or truncated compressed body does not, and is the client's too.
      const status = (err as { status?: unknown }).status;
      const encoding = ctx.get('Content-Encoding');
      if (typeof status !== 'number' && encoding && encoding !== 'identity') {
        throw new DomainError('bad_request', `the request body could not be decompressed (Content-Encoding: ${encoding}): ${(err as Error).message}`);
      }
      throw err;
    }
    return (ctx.request as { body?: unknown }).body;
  };
}

/** Paths of strings PostgreSQL could not store, as validation errors. */
function unstorable(value: unknown, where: 'params' | 'query' | 'body', out: ErrorDetail[]): void {
  for (const path of findUnstorableText(value, where, MAX_REPORTED_ERRORS - out.length)) out.push({ path, message: UNSTORABLE_TEXT_MESSAGE });
}

export class ApiRegistry {
  readonly #routes: CompiledRoute[] = [];
  readonly #external: ExternalOperation[] = [];
  readonly #bodyAjv = newAjv(false);
  readonly #bodyFirstErrorAjv = newAjv(false, false);
  readonly #stringAjv = newAjv(true);
  #authenticate: Authenticator | undefined;
  #readBody: BodyReader = bodyReader(DEFAULT_BODY_LIMITS.bodyLimitBytes);
  #readBulkBody: BodyReader = bodyReader(DEFAULT_BODY_LIMITS.bulkBodyLimitBytes);

  setAuthenticator(fn: Authenticator): void {
    this.#authenticate = fn;
  }

  route<P extends Maybe = undefined, Q extends Maybe = undefined, B extends Maybe = undefined>(def: RouteDef<P, Q, B>): this {
    const any = def as unknown as AnyRouteDef;
    if (!def.path.startsWith('/')) throw new Error(`route path must start with "/": ${def.path}`);
    for (const r of this.#routes) {
      if (r.def.operationId === def.operationId) throw new Error(`duplicate operationId ${def.operationId}`);
      if (r.def.method === def.method && r.def.path === def.path) throw new Error(`duplicate route ${def.method.toUpperCase()} ${def.path}`);
    }
    if (this.#external.some((e) => e.path === def.path)) throw new Error(`${def.operationId}: ${def.path} is documented as an external path`);
    this.#checkDocumented(def.operationId, def.auth ?? 'user', def.permission, def.apiKeyOnly);
    const inPath = placeholders(def.path);
    if (def.params) {
      const declared = Object.keys((def.params as { properties?: object }).properties ?? {});
      const missing = inPath.filter((p) => !declared.includes(p));
      const extra = declared.filter((p) => !inPath.includes(p));
      if (missing.length || extra.length) {
        throw new Error(`${def.operationId}: params schema and path disagree (missing ${missing.join(',') || '-'}, extra ${extra.join(',') || '-'})`);
      }
    }
    this.#routes.push({
      def: any,
      info: { method: def.method, path: def.path, operationId: def.operationId, auth: def.auth ?? 'user' },
      params: def.params ? this.#stringAjv.compile(def.params) : undefined,
      query: def.query ? this.#stringAjv.compile(def.query) : undefined,
      body: def.body ? this.#bodyAjv.compile(def.body) : undefined,
      bodyFirstError: def.body ? this.#bodyFirstErrorAjv.compile(def.body) : undefined,
    });
    return this;
  }

  routes(): RouteInfo[] {
    return this.#routes.map((r) => ({ ...r.info }));
  }

  /** Documents an operation served outside the registry; see ExternalOperation. */
  external(op: ExternalOperation): this {
    if (!op.path.startsWith('/')) throw new Error(`operation path must start with "/": ${op.path}`);
    if (this.#routes.some((r) => r.def.operationId === op.operationId)) throw new Error(`duplicate operationId ${op.operationId}`);
    // One key of the document's `paths` cannot hold both: they have different servers.
    if (this.#routes.some((r) => r.def.path === op.path)) throw new Error(`${op.operationId}: ${op.path} is a registry route path`);
    if (this.#external.some((e) => e.path === op.path && e.method === op.method)) throw new Error(`duplicate operation ${op.method.toUpperCase()} ${op.path}`);
    this.#checkDocumented(op.operationId, op.auth, op.permission, op.apiKeyOnly);
    this.#external.push(op);
    return this;
  }

  externalOperations(): ExternalOperation[] {
    return [...this.#external];
  }

  #checkDocumented(operationId: string, auth: AuthMode, permission: Permission | undefined, apiKeyOnly: boolean | undefined): void {
    if (this.#external.some((e) => e.operationId === operationId)) throw new Error(`duplicate operationId ${operationId}`);
    if ((permission || apiKeyOnly) && auth !== 'any') throw new Error(`${operationId}: permission and apiKeyOnly describe auth 'any' routes`);
    if (apiKeyOnly && permission && PERMISSIONS[permission].scope === null) throw new Error(`${operationId}: API keys only, but no API key scope grants ${permission}`);
  }

  /** Registers every route on `router` under `prefix`, OpenAPI `{x}` becoming the router's `:x`. */
  mount(router: Router, prefix = API_PREFIX): void {
    for (const route of this.#routes) this.#register(router, route, prefix);
  }

  /**
   * The registry's routes as one middleware that picks a router by the first path segment after
   * `prefix` (`/organizations/…`, `/auth/…`), so a request is matched against the few routes of
   * its group instead of every route (@koa/router tests each route's pattern in turn). Each
   * group keeps its own allowedMethods (405 with Allow).
   */
  middleware(limits: BodyLimits = DEFAULT_BODY_LIMITS, prefix = API_PREFIX): Middleware {
    this.#readBody = bodyReader(limits.bodyLimitBytes);
    this.#readBulkBody = bodyReader(limits.bulkBodyLimitBytes);
    const groups = new Map<string, Router>();
    for (const route of this.#routes) {
      const segment = route.def.path.split('/')[1] ?? '';
      let router = groups.get(segment);
      if (!router) groups.set(segment, (router = new Router()));
      this.#register(router, route, prefix);
    }
    const handlers = new Map<string, Middleware>();
    for (const [segment, router] of groups) {
      const routes = router.routes() as unknown as Middleware;
      const allowed = router.allowedMethods() as unknown as Middleware;
      handlers.set(segment, (ctx, next) => routes(ctx, () => allowed(ctx, next)));
    }
    const start = prefix.length + 1;
    return (ctx, next) => {
      const path = ctx.path;
      if (path.length <= start || !path.startsWith(prefix) || path[prefix.length] !== '/') return next();
      const end = path.indexOf('/', start);
      const handler = handlers.get(end === -1 ? path.slice(start) : path.slice(start, end));
      return handler ? handler(ctx, next) : next();
    };
  }

  #register(router: Router, route: CompiledRoute, prefix: string): void {
    const koaPath = prefix + route.def.path.replace(PLACEHOLDER, ':$1');
    router[route.def.method](koaPath, async (ctx) => {
      await this.#run(ctx as unknown as HttpContext, route);
    });
  }

  async #run(ctx: HttpContext, route: CompiledRoute): Promise<void> {
    ctx.state.routeTemplate = route.def.path;
    // Credentials first: an unauthenticated client cannot make us read and parse a large body.
    if (this.#authenticate) await this.#authenticate(ctx, route.info);
    const bulk = route.def.bulkBody === true;
    let body: unknown;
    if (route.body) {
      const hasBody = (ctx.request.length ?? 0) > 0 || ctx.get('Transfer-Encoding') !== '';
      if (hasBody && !ctx.request.is(['json', '+json'])) {
        throw new DomainError('unsupported_media_type', 'request body must be application/json');
      }
      body = await (bulk ? this.#readBulkBody : this.#readBody)(ctx);
    }
    const rawParams = (ctx as unknown as { params?: Record<string, string> }).params ?? {};
    const input = { params: { ...rawParams } as unknown, query: { ...ctx.query } as unknown, body };
    const errors: ErrorDetail[] = [];
    // Strings PostgreSQL cannot store are refused here, on every route, so no such value can
    // fail a statement later (a 500) or, worse, lose the audit row written beside it.
    unstorable(input.params, 'params', errors);
    unstorable(input.query, 'query', errors);
    if (!bulk) unstorable(input.body, 'body', errors);
    // Validators coerce and fill defaults in place, so handlers receive the typed values.
    if (route.params && !route.params(input.params)) toErrorDetails('params', route.params.errors ?? [], errors);
    if (route.query && !route.query(input.query)) toErrorDetails('query', route.query.errors ?? [], errors);
    if (route.body) {
      // Every error of a large body (100,000 unknown keys) would cost as much to find as to send:
      // such bodies are answered with their first error only.
      const rawLength = (ctx.request as { rawBody?: string }).rawBody?.length ?? 0;
      const validate = rawLength > LIST_EVERY_ERROR_BELOW_BYTES ? route.bodyFirstError! : route.body;
      if (!validate(input.body)) toErrorDetails('body', validate.errors ?? [], errors);
    }
    if (errors.length > 0) throw new DomainError('validation_failed', 'request validation failed', { errors });
    await route.def.handler(ctx, input as RouteInput<Maybe, Maybe, Maybe>);
  }

  /** An OpenAPI 3.1 document of every registered route; paths are relative to the /api/v1 server. */
  openapi(info: OpenApiInfo): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const { def, info: ri } of this.#routes) {
      (paths[def.path] ??= {})[def.method] = this.#operation(def, ri);
    }
    // Path-level servers: these paths sit at the server's root, not under the document's /api/v1.
    for (const op of this.#external) (paths[op.path] ??= { servers: [{ url: '/' }] })[op.method] = externalOperation(op);
    return {
      openapi: '3.1.0',
      info: { title: info.title, version: info.version, ...(info.description ? { description: info.description } : {}), ...(info.license ? { license: info.license } : {}) },
      servers: [{ url: API_PREFIX }],
      paths,
      components: {
        schemas: { Problem: plain(ProblemSchema) },
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'User access token from POST /auth/login.' },
          apiKey: { type: 'http', scheme: 'bearer', description: 'Organization API key (snt_…) sent as a bearer token.' },
        },
      },
    };
  }

  #operation(def: AnyRouteDef, ri: RouteInfo): Record<string, unknown> {
    const problem = problemResponse;

    const parameters: Record<string, unknown>[] = [];
    const pathProps = (def.params as { properties?: Record<string, TSchema> } | undefined)?.properties ?? {};
    for (const name of placeholders(def.path)) {
      const schema = pathProps[name] ? plain(pathProps[name]) : { type: 'string' };
      parameters.push({ name, in: 'path', required: true, schema, ...describe(schema) });
    }
    const q = def.query as { properties?: Record<string, TSchema>; required?: string[] } | undefined;
    for (const [name, s] of Object.entries(q?.properties ?? {})) {
      const schema = plain(s);
      parameters.push({ name, in: 'query', required: q?.required?.includes(name) ?? false, schema, ...describe(schema) });
    }

    const responses: Record<string, unknown> = {};
    for (const [code, r] of Object.entries(def.responses)) {
      const status = Number(code);
      if (r.schema) {
        responses[code] = { description: r.description, content: { [r.contentType ?? 'application/json']: { schema: plain(r.schema) } } };
      } else if (status >= 400) {
        responses[code] = problem(r.description);
      } else if (r.contentType) {
        responses[code] = { description: r.description, content: { [r.contentType]: {} } };
      } else {
        responses[code] = { description: r.description };
      }
    }
    if ((def.params || def.query || def.body) && !responses['400']) responses['400'] = problem('Invalid input; `errors` lists each offending field.');
    if (ri.auth !== 'none' && !responses['401']) responses['401'] = problem('Missing or invalid credentials.');
    responses.default = problem('Error.');

    const { security, note } = credentials(ri.auth, def.permission, def.apiKeyOnly);
    const description = [def.description, note].filter(Boolean).join('\n\n');
    return {
      operationId: def.operationId,
      summary: def.summary,
      ...(description ? { description } : {}),
      ...(def.tags?.length ? { tags: def.tags } : {}),
      security,
      ...(parameters.length ? { parameters } : {}),
      ...(def.body ? { requestBody: { required: true, content: { 'application/json': { schema: plain(def.body) } } } } : {}),
      responses,
    };
  }
}

const problemResponse = (description: string) => ({ description, content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } } });

type SecurityRequirement = Record<string, string[]>;

/**
 * What the document says about credentials, from what the authenticator and the route's service
 * accept. OpenAPI 3.1 lets a non-OAuth requirement list role names: the apiKey entry names the
 * scope the permission needs (wider scopes that include it are named in the note).
 */
function credentials(auth: AuthMode, permission: Permission | undefined, apiKeyOnly = false): { security: SecurityRequirement[]; note?: string } {
  if (auth === 'none') return { security: [] };
  if (auth === 'user') return { security: [{ bearer: [] }], note: 'Credentials: a user access token; API keys are refused.' };
  if (!permission) return { security: [{ bearer: [] }, { apiKey: [] }], note: 'Credentials: a user access token or an API key.' };
  const scope = PERMISSIONS[permission].scope;
  if (scope === null) return { security: [{ bearer: [] }], note: 'Credentials: a user access token; API keys are refused whatever their scopes.' };
  const wider = API_KEY_SCOPES.filter((s) => s !== scope && scopeGrants([s], permission));
  const key = `an API key of the organization with the \`${scope}\` scope${wider.length ? ` (${wider.map((s) => `\`${s}\``).join(' and ')} include it)` : ''}`;
  if (apiKeyOnly) return { security: [{ apiKey: [scope] }], note: `Credentials: ${key}; user access tokens are refused.` };
  return { security: [{ bearer: [] }, { apiKey: [scope] }], note: `Credentials: a user access token, or ${key}.` };
}

function externalOperation(op: ExternalOperation): Record<string, unknown> {
  const headers = (op.headers as { properties?: Record<string, TSchema>; required?: string[] } | undefined) ?? {};
  const parameters = Object.entries(headers.properties ?? {}).map(([name, s]) => {
    const schema = plain(s);
    return { name, in: 'header', required: headers.required?.includes(name) ?? false, schema, ...describe(schema) };
  });
  const content = (byType: Record<string, TSchema>) => Object.fromEntries(Object.entries(byType).map(([type, s]) => [type, { schema: plain(s) }]));
  const responses: Record<string, unknown> = {};
  for (const [code, r] of Object.entries(op.responses)) {
    responses[code] = r.content ? { description: r.description, content: content(r.content) } : Number(code) >= 400 ? problemResponse(r.description) : { description: r.description };
  }
  const { security, note } = credentials(op.auth, op.permission, op.apiKeyOnly);
  const description = [op.description, note].filter(Boolean).join('\n\n');
  return {
    operationId: op.operationId,
    summary: op.summary,
    ...(description ? { description } : {}),
    ...(op.tags?.length ? { tags: op.tags } : {}),
    security,
    ...(parameters.length ? { parameters } : {}),
    ...(op.requestBody
      ? { requestBody: { required: true, ...(op.requestBody.description ? { description: op.requestBody.description } : {}), content: content(op.requestBody.content) } }
      : {}),
    responses,
  };
}

function describe(schema: unknown): { description?: string } {
  const d = (schema as { description?: unknown }).description;
  return typeof d === 'string' ? { description: d } : {};
}
