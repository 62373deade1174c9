import { Router, type Layer } from '@koa/router';
import type { Middleware, Next } from 'koa';
import type { Static, TSchema } from '@sinclair/typebox';
import type { ValidateFunction } from 'ajv';
import bodyParser from 'koa-bodyparser';
import { DomainError, HTTP_STATUS, type ErrorDetail } from '../core/errors.js';
import { markValidated, newAjv, toErrorDetails, unstorableDetails } from '../core/validation.js';
import { PERMISSIONS, type Permission } from '../core/permissions.js';
import type { HttpContext, RouteTag } from './context.js';
import { openApiDocument, placeholders, routerPath, type OpenApiInfo } from './openapi.js';

export type { OpenApiInfo } from './openapi.js';

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
  /** Further media types the same answer may come in, without a schema (a download as CSV or HTML). */
  alsoContentTypes?: string[];
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
  /**
   * For auth 'user': the authenticator also takes a local admin token here (core/local-admin-token:
   * minted from the daemon's own signing key by `sentinel status` on the host), as the system actor.
   */
  localAdmin?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  /**
   * Bulk ingest: the body may be as large as http.body_limit_bytes (every other route takes
   * http.api_body_limit_bytes), and its strings reach the service as sent, because the service
   * stores NUL and unpaired surrogates as U+FFFD instead of refusing the batch.
   */
  bulkBody?: boolean;
  /**
   * A cheaper check of the parsed body for the route's common shape: true only for bodies `body`
   * accepts (the schema is then not run), false for anything else, which the schema then judges
   * and answers as always. For bulk bodies, whose compiled schema costs per item.
   */
  bodyAccepts?: (body: unknown) => boolean;
  /** Which limit applies before the route runs; default 'api'. See RateLimitPolicy. */
  rateLimit?: RateLimitPolicy;
  responses: Record<number, ResponseDef>;
  handler: (ctx: HttpContext, input: RouteInput<P, Q, B>) => Promise<void> | void;
}

/**
 * 'api': the per-client-IP request limit (rate_limits.api_per_minute). 'ingest': not that limit,
 * because the service applies per-organization token buckets of its own (points per second, 429
 * with Retry-After). 'none': no limit at all, for health probes a load balancer must never be
 * locked out of.
 */
export type RateLimitPolicy = 'api' | 'ingest' | 'none';

export interface RouteInfo {
  method: HttpMethod;
  path: string;
  operationId: string;
  auth: AuthMode;
  /** Takes a local admin token too (RouteDef.localAdmin). */
  localAdmin?: true;
}

/**
 * Called before the body is read and input is validated, for every registry route and raw route
 * (it lets auth 'none' routes through untouched). The auth feature provides it via the
 * composition root; the kit never imports it.
 */
export type Authenticator = (ctx: HttpContext, route: RouteInfo) => Promise<void> | void;

/**
 * A route served at its own path outside /api/v1 that reads its own raw body and answers in its
 * own format (OTLP/HTTP at the spec's paths, answering google.rpc.Status). The registry serves it
 * (authentication, rate-limit policy, metrics label) and documents it, from this one declaration.
 */
export interface RawRouteDef {
  method: HttpMethod;
  /** The path on the server, not under /api/v1: it is documented with a `servers: [{url: '/'}]` of its own. No placeholders. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  auth: AuthMode;
  permission?: Permission;
  apiKeyOnly?: boolean;
  /** Default 'api': counted by the per-IP limit like any API route ('ingest' or 'none' leave it out). */
  rateLimit?: RateLimitPolicy;
  /** Request headers (an object schema whose properties become header parameters). */
  headers?: TSchema;
  requestBody?: { description?: string; content: Record<string, TSchema> };
  /** By status; a 4xx/5xx without content is application/problem+json, as for routes. */
  responses: Record<number, { description: string; content?: Record<string, TSchema> }>;
  /** Runs after authentication; reads the body from ctx.req itself. */
  handler: (ctx: HttpContext) => Promise<void> | void;
  /**
   * Answers every error of the route in its own format: DomainErrors (authentication's included),
   * infrastructure errors the registry's classifier knows (PostgreSQL unreachable: `unavailable`,
   * 503 with Retry-After, as the problem layer classifies them), and anything else as `internal`
   * (500, the message naming the request id; the error itself is logged). The registry logs each
   * error as the problem layer does; answerError only writes the answer. Without it, errors are
   * problem+json.
   */
  answerError?: (ctx: HttpContext, err: DomainError) => void;
}

/** Infrastructure errors ("PostgreSQL unreachable") as DomainErrors; null for one it does not know. */
export type ErrorClassifier = (err: unknown) => DomainError | null;

/**
 * A path prefix owned by raw routes that answer in their own format ("/v1/" for OTLP/HTTP): a
 * request under it that no raw route takes (an unknown path, or a method the path's routes do
 * not take) is answered by `unmatched` instead of the problem layer's 404/405.
 */
export interface RawScopeDef {
  /** Starts and ends with "/"; outside /api/v1. */
  prefix: string;
  /**
   * Writes the answer (status, body, type). `allow` holds the methods the path's raw routes take
   * (the registry has set the Allow header: answer 405), or is empty for a path no raw route
   * serves (answer 404). OPTIONS on a served path is answered by the registry (204 with Allow).
   */
  unmatched: (ctx: HttpContext, allow: readonly string[]) => void;
}

type AnyRouteDef = RouteDef<Maybe, Maybe, Maybe>;

interface RawEntry {
  def: RawRouteDef;
  info: RouteInfo;
  tag: RouteTag;
}

interface CompiledRoute {
  def: AnyRouteDef;
  info: RouteInfo;
  tag: RouteTag;
  params?: ValidateFunction;
  query?: ValidateFunction;
  body?: ValidateFunction;
  /** The same body schema, stopping at the first error: for bodies too large to list every error of. */
  bodyFirstError?: ValidateFunction;
}

/** A registry route with the router layer that matches its path (and decodes its parameters). */
interface RouteMatcher {
  layer: Layer;
  route: CompiledRoute;
}

const LIST_EVERY_ERROR_BELOW_BYTES = 64 * 1024;

/** Largest JSON bodies: ingest routes (bulkBody) and every other route. */
export interface BodyLimits {
  bodyLimitBytes: number;
  bulkBodyLimitBytes: number;
}

export interface RegistryMiddlewareOptions extends BodyLimits {
  /** The classifier the problem layer uses, for the errors raw routes answer themselves (answerError). */
  classifyError?: ErrorClassifier;
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

export class ApiRegistry {
  readonly #routes: CompiledRoute[] = [];
  readonly #raw: RawEntry[] = [];
  readonly #rawScopes: RawScopeDef[] = [];
  #classifyError: ErrorClassifier | undefined;
  readonly #bodyAjv = newAjv();
  readonly #bodyFirstErrorAjv = newAjv({ allErrors: false });
  readonly #stringAjv = newAjv({ coerce: true });
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
    if (this.#raw.some((e) => e.def.path === def.path)) throw new Error(`${def.operationId}: ${def.path} is a raw route's path`);
    this.#checkDocumented(def.operationId, def.auth ?? 'user', def.permission, def.apiKeyOnly);
    if (def.localAdmin && (def.auth ?? 'user') !== 'user') throw new Error(`${def.operationId}: localAdmin describes auth 'user' routes`);
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
      info: { method: def.method, path: def.path, operationId: def.operationId, auth: def.auth ?? 'user', ...(def.localAdmin ? { localAdmin: true as const } : {}) },
      // Made once here: a request only points at it (metrics label, access line).
      tag: { template: def.path },
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

  /** Serves and documents a route outside /api/v1 that reads its own body; see RawRouteDef. */
  raw(def: RawRouteDef): this {
    if (!def.path.startsWith('/')) throw new Error(`raw route path must start with "/": ${def.path}`);
    if (def.path.startsWith(`${API_PREFIX}/`)) throw new Error(`${def.operationId}: a raw route sits outside ${API_PREFIX}`);
    if (placeholders(def.path).length) throw new Error(`${def.operationId}: a raw route path has no placeholders`);
    if (this.#routes.some((r) => r.def.operationId === def.operationId)) throw new Error(`duplicate operationId ${def.operationId}`);
    // One key of the document's `paths` cannot hold both: they have different servers.
    if (this.#routes.some((r) => r.def.path === def.path)) throw new Error(`${def.operationId}: ${def.path} is a registry route path`);
    if (this.#raw.some((e) => e.def.path === def.path && e.def.method === def.method)) throw new Error(`duplicate route ${def.method.toUpperCase()} ${def.path}`);
    this.#checkDocumented(def.operationId, def.auth, def.permission, def.apiKeyOnly);
    this.#raw.push({ def, info: { method: def.method, path: def.path, operationId: def.operationId, auth: def.auth }, tag: { template: def.path } });
    return this;
  }

  /** Claims a path prefix for raw routes answering in their own format; see RawScopeDef. */
  rawScope(def: RawScopeDef): this {
    if (!def.prefix.startsWith('/') || !def.prefix.endsWith('/') || def.prefix.length < 3) throw new Error(`raw scope prefix must be "/<segment>/…/": ${def.prefix}`);
    if (def.prefix.startsWith(`${API_PREFIX}/`) || API_PREFIX.startsWith(def.prefix)) throw new Error(`raw scope ${def.prefix} overlaps ${API_PREFIX}`);
    if (this.#rawScopes.some((s) => s.prefix.startsWith(def.prefix) || def.prefix.startsWith(s.prefix))) throw new Error(`raw scope ${def.prefix} overlaps another`);
    this.#rawScopes.push(def);
    return this;
  }

  /** The raw routes: the operations served outside /api/v1. */
  externalOperations(): RouteInfo[] {
    return this.#raw.map((r) => ({ ...r.info }));
  }

  /**
   * Whether a request path counts against the per-IP API limit, from the routes' `rateLimit`
   * declarations: /api/ paths do unless their route says 'ingest' or 'none' (unmatched /api/
   * paths count, so scanning is limited too); other paths only when a raw route there says 'api'.
   * The server builds it on the first request, when every route is registered.
   */
  rateLimited(prefix = API_PREFIX): (path: string) => boolean {
    const exemptExact = new Set<string>();
    const exemptTemplates: string[] = [];
    for (const { def } of this.#routes) {
      if ((def.rateLimit ?? 'api') === 'api') continue;
      // Another method on the same path may still be limited; its requests are then exempt too,
      // which errs towards the limits the service applies itself.
      if (placeholders(def.path).length === 0) exemptExact.add(prefix + def.path);
      else exemptTemplates.push(prefix + def.path);
    }
    const escape = (t: string) => t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[A-Za-z_][A-Za-z0-9_]*\\?\}/g, '[^/]+');
    const exemptPattern = exemptTemplates.length ? new RegExp(`^(?:${exemptTemplates.map(escape).join('|')})$`) : null;
    const limitedRaw = new Set(this.#raw.filter((r) => (r.def.rateLimit ?? 'api') === 'api').map((r) => r.def.path));
    return (path) => {
      if (!path.startsWith('/api/')) return limitedRaw.has(path);
      return !exemptExact.has(path) && !(exemptPattern?.test(path) ?? false);
    };
  }

  #checkDocumented(operationId: string, auth: AuthMode, permission: Permission | undefined, apiKeyOnly: boolean | undefined): void {
    if (this.#raw.some((e) => e.def.operationId === operationId)) throw new Error(`duplicate operationId ${operationId}`);
    if ((permission || apiKeyOnly) && auth !== 'any') throw new Error(`${operationId}: permission and apiKeyOnly describe auth 'any' routes`);
    if (apiKeyOnly && permission && PERMISSIONS[permission].scope === null) throw new Error(`${operationId}: API keys only, but no API key scope grants ${permission}`);
  }

  /**
   * The registry's routes as one middleware that picks a group by the first path segment after
   * `prefix` (`/organizations/…`, `/auth/…`, compared exactly: `/ORGANIZATIONS/…` is no group's),
   * so a request is matched against the few routes of its group instead of every route. Within a
   * group the rest of the path matches as @koa/router matches it (its own compiled patterns:
   * case-insensitive, an optional trailing slash, parameters percent-decoded), and a
   * path a route of the group takes with another method is answered as its allowedMethods answers
   * (405 with Allow, OPTIONS 200 with Allow, 501 for a method no route can have); but a request
   * runs its route directly, without the router's per-request chain (a composed middleware list
   * and closures per matched route: a third of the request's routing time). So a routed request
   * carries ctx.params only (ctx.matched is set for a request no route of the group ran), none of
   * the router's other fields (ctx._matchedRoute, ctx._matchedRouteName, ctx.routerPath,
   * ctx.captures, ctx.router…): the route's tag (ctx.state.route) names it.
   */
  middleware(limits: RegistryMiddlewareOptions = DEFAULT_BODY_LIMITS, prefix = API_PREFIX): Middleware {
    this.#readBody = bodyReader(limits.bodyLimitBytes);
    this.#readBulkBody = bodyReader(limits.bulkBodyLimitBytes);
    this.#classifyError = limits.classifyError;
    const groups = new Map<string, RouteMatcher[]>();
    const router = new Router();
    const noop: Middleware = (_ctx, next) => next();
    for (const route of this.#routes) {
      const segment = route.def.path.split('/')[1] ?? '';
      let group = groups.get(segment);
      if (!group) groups.set(segment, (group = []));
      const layer = router.register(prefix + routerPath(route.def.path), [route.def.method.toUpperCase()], noop) as Layer;
      group.push({ layer, route });
    }
    const handlers = new Map<string, Middleware>();
    for (const [segment, group] of groups) handlers.set(segment, (ctx, next) => this.#dispatch(ctx as unknown as HttpContext, next, group, router.methods));
    const raw = this.#rawRouter();
    const start = prefix.length + 1;
    return (ctx, next) => {
      const path = ctx.path;
      if (path.length <= start || !path.startsWith(prefix) || path[prefix.length] !== '/') return raw ? raw(ctx, next) : next();
      const end = path.indexOf('/', start);
      const handler = handlers.get(end === -1 ? path.slice(start) : path.slice(start, end));
      return handler ? handler(ctx, next) : next();
    };
  }

  /** Runs the first route of `group` that takes the path and method; see middleware(). */
  #dispatch(ctx: HttpContext, next: Next, group: readonly RouteMatcher[], implemented: readonly string[]): Promise<void> {
    const path = ctx.path;
    const method = ctx.method;
    let matched: Layer[] | undefined;
    for (const { layer, route } of group) {
      if (!layer.match(path)) continue;
      if (layer.methods.includes(method)) {
        (ctx as unknown as { params: Record<string, string> }).params = layer.params(path, layer.captures(path));
        return this.#run(ctx, route);
      }
      (matched ??= []).push(layer);
    }
    // As the router: the layers that took the path stay on ctx.matched (the builtin routes' router
    // adds its own and answers from them all), and after the rest of the chain, a request nothing
    // answered gets what the router's allowedMethods gives it.
    const routed = ctx as unknown as { matched?: Layer[] };
    if (routed.matched) routed.matched.push(...(matched ?? []));
    else routed.matched = matched ?? [];
    return next().then(() => {
      if (ctx.status && ctx.status !== 404) return;
      const allow = [...new Set((routed.matched ?? []).flatMap((l) => l.methods))];
      if (!implemented.includes(method)) {
        ctx.status = 501;
        ctx.set('Allow', allow.join(', '));
      } else if (allow.length > 0 && method === 'OPTIONS') {
        ctx.status = 200;
        ctx.body = '';
        ctx.set('Allow', allow.join(', '));
      } else if (allow.length > 0 && !allow.includes(method)) {
        ctx.status = 405;
        ctx.set('Allow', allow.join(', '));
      }
    });
  }

  async #run(ctx: HttpContext, route: CompiledRoute): Promise<void> {
    ctx.state.route = route.tag;
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
    unstorableDetails(input.params, 'params', errors);
    unstorableDetails(input.query, 'query', errors);
    if (!bulk) unstorableDetails(input.body, 'body', errors);
    // Validators coerce and fill defaults in place, so handlers receive the typed values.
    if (route.params && !route.params(input.params)) toErrorDetails('params', route.params.errors ?? [], errors);
    if (route.query && !route.query(input.query)) toErrorDetails('query', route.query.errors ?? [], errors);
    if (route.body && !(route.def.bodyAccepts?.(input.body) ?? false)) {
      // Every error of a large body (100,000 unknown keys) would cost as much to find as to send:
      // such bodies are answered with their first error only.
      const rawLength = (ctx.request as { rawBody?: string }).rawBody?.length ?? 0;
      const validate = rawLength > LIST_EVERY_ERROR_BELOW_BYTES ? route.bodyFirstError! : route.body;
      if (!validate(input.body)) {
        // In a bulk body, a list longer than its limit is a size problem like too many bytes:
        // 413, as the service answers for too many items in all.
        const tooMany = bulk ? validate.errors?.find((e) => e.keyword === 'maxItems' && /^\/[^/]+$/.test(e.instancePath)) : undefined;
        if (tooMany) throw new DomainError('payload_too_large', `body${tooMany.instancePath}: ${tooMany.message ?? 'too many items'}`);
        toErrorDetails('body', validate.errors ?? [], errors);
      }
    }
    if (errors.length > 0) throw new DomainError('validation_failed', 'request validation failed', { errors });
    // The service the handler calls validates its input with the same schema (for the CLI and
    // other callers); marking the body spares it a second pass. Bulk bodies are left out: ingest
    // keeps its own checks and never re-validates, so the mark would be pure cost on the hot path.
    if (route.def.body && !bulk) markValidated(input.body, route.def.body);
    await route.def.handler(ctx, input as RouteInput<Maybe, Maybe, Maybe>);
  }

  /**
   * Raw routes by exact path and method (no pattern matching: their paths have no placeholders),
   * and the raw scopes' answers for what no raw route under them takes. Null when there is nothing
   * outside /api/v1 to serve.
   */
  #rawRouter(): Middleware | null {
    if (this.#raw.length === 0 && this.#rawScopes.length === 0) return null;
    const byPath = new Map<string, Map<string, RawEntry>>();
    for (const route of this.#raw) {
      let byMethod = byPath.get(route.def.path);
      if (!byMethod) byPath.set(route.def.path, (byMethod = new Map()));
      byMethod.set(route.def.method.toUpperCase(), route);
    }
    const scopes = this.#rawScopes;
    return async (koaCtx, next) => {
      const ctx = koaCtx as unknown as HttpContext;
      const byMethod = byPath.get(ctx.path);
      const route = byMethod && (byMethod.get(ctx.method) ?? (ctx.method === 'HEAD' ? byMethod.get('GET') : undefined));
      if (route) return this.#runRaw(ctx, route);
      const scope = scopes.find((s) => ctx.path.startsWith(s.prefix));
      if (!byMethod && !scope) return next();
      const allow = byMethod ? [...byMethod.keys()] : [];
      if (allow.length) {
        ctx.set('Allow', allow.join(', '));
        if (ctx.method === 'OPTIONS') {
          ctx.status = 204;
          return;
        }
      }
      // Without a scope: the bare 404/405 the problem layer gives its shape (as a router would).
      if (scope) scope.unmatched(ctx, allow);
      else ctx.status = 405;
    };
  }

  async #runRaw(ctx: HttpContext, route: RawEntry): Promise<void> {
    ctx.state.route = route.tag;
    try {
      if (this.#authenticate) await this.#authenticate(ctx, route.info);
      await route.def.handler(ctx);
    } catch (err) {
      // A body already on its way cannot be replaced: the frame records the error.
      if (!route.def.answerError || ctx.headerSent || !ctx.writable) throw err;
      route.def.answerError(ctx, this.#domainErrorOf(ctx, err));
    }
  }

  /** What a raw route answers for `err`, logged as the problem layer logs what it answers. */
  #domainErrorOf(ctx: HttpContext, err: unknown): DomainError {
    const log = ctx.state.log;
    let domain: DomainError | null = err instanceof DomainError ? err : null;
    if (!domain && this.#classifyError) {
      try {
        domain = this.#classifyError(err);
      } catch (classifyErr) {
        log?.error({ err: classifyErr }, 'error classifier threw');
      }
    }
    if (!domain) {
      log?.error({ err }, 'unhandled error');
      return new DomainError('internal', `internal error; quote request id ${ctx.state.requestId} when reporting it`);
    }
    if (HTTP_STATUS[domain.code] >= 500) log?.error({ err, code: domain.code }, domain.message);
    else log?.debug({ code: domain.code }, domain.message);
    return domain;
  }

  /** An OpenAPI 3.1 document of every route; API paths are relative to the /api/v1 server. */
  openapi(info: OpenApiInfo): Record<string, unknown> {
    return openApiDocument(
      info,
      API_PREFIX,
      this.#routes.map((r) => ({ def: r.def, auth: r.info.auth })),
      this.#raw.map((r) => r.def),
    );
  }
}
