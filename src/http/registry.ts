import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import type { Static, TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { DomainError, type ErrorDetail } from '../core/errors.js';
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
  params?: P;
  query?: Q;
  body?: B;
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
}

type AnyRouteDef = RouteDef<Maybe, Maybe, Maybe>;

interface CompiledRoute {
  def: AnyRouteDef;
  info: RouteInfo;
  params?: ValidateFunction;
  query?: ValidateFunction;
  body?: ValidateFunction;
}

// ajv-formats is CommonJS with an `exports.default`; under NodeNext the default import is module.exports.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

function newAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
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
function toErrorDetails(where: 'params' | 'query' | 'body', errors: ErrorObject[]): ErrorDetail[] {
  const seen = new Set<string>();
  const out: ErrorDetail[] = [];
  for (const e of errors) {
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
  return out;
}

export class ApiRegistry {
  readonly #routes: CompiledRoute[] = [];
  readonly #bodyAjv = newAjv(false);
  readonly #stringAjv = newAjv(true);
  #authenticate: Authenticator | undefined;

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
    });
    return this;
  }

  routes(): RouteInfo[] {
    return this.#routes.map((r) => ({ ...r.info }));
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
  middleware(prefix = API_PREFIX): Middleware {
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
    if (this.#authenticate) await this.#authenticate(ctx, route.info);
    const hasBody = (ctx.request.length ?? 0) > 0 || ctx.get('Transfer-Encoding') !== '';
    if (route.body && hasBody && !ctx.request.is(['json', '+json'])) {
      throw new DomainError('unsupported_media_type', 'request body must be application/json');
    }
    const rawParams = (ctx as unknown as { params?: Record<string, string> }).params ?? {};
    const input = {
      params: { ...rawParams } as unknown,
      query: { ...ctx.query } as unknown,
      body: (ctx.request as { body?: unknown }).body,
    };
    const errors: ErrorDetail[] = [];
    // Validators coerce and fill defaults in place, so handlers receive the typed values.
    if (route.params && !route.params(input.params)) errors.push(...toErrorDetails('params', route.params.errors ?? []));
    if (route.query && !route.query(input.query)) errors.push(...toErrorDetails('query', route.query.errors ?? []));
    if (route.body && !route.body(input.body)) errors.push(...toErrorDetails('body', route.body.errors ?? []));
    if (errors.length > 0) throw new DomainError('validation_failed', 'request validation failed', { errors });
    await route.def.handler(ctx, input as RouteInput<Maybe, Maybe, Maybe>);
  }

  /** An OpenAPI 3.1 document of every registered route; paths are relative to the /api/v1 server. */
  openapi(info: OpenApiInfo): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const { def, info: ri } of this.#routes) {
      (paths[def.path] ??= {})[def.method] = this.#operation(def, ri);
    }
    return {
      openapi: '3.1.0',
      info: { title: info.title, version: info.version, ...(info.description ? { description: info.description } : {}) },
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
    const problemRef = { $ref: '#/components/schemas/Problem' };
    const problem = (description: string) => ({ description, content: { [PROBLEM_CONTENT_TYPE]: { schema: problemRef } } });

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

    return {
      operationId: def.operationId,
      summary: def.summary,
      ...(def.description ? { description: def.description } : {}),
      ...(def.tags?.length ? { tags: def.tags } : {}),
      security: ri.auth === 'none' ? [] : ri.auth === 'user' ? [{ bearer: [] }] : [{ bearer: [] }, { apiKey: [] }],
      ...(parameters.length ? { parameters } : {}),
      ...(def.body ? { requestBody: { required: true, content: { 'application/json': { schema: plain(def.body) } } } } : {}),
      responses,
    };
  }
}

function describe(schema: unknown): { description?: string } {
  const d = (schema as { description?: unknown }).description;
  return typeof d === 'string' ? { description: d } : {};
}
