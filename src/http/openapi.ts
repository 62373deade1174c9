import type { TSchema } from '@sinclair/typebox';
import { API_KEY_SCOPES, PERMISSIONS, scopeGrants, type Permission } from '../core/permissions.js';
import { PROBLEM_CONTENT_TYPE, ProblemSchema } from './problem.js';
import type { AuthMode, RawRouteDef, RouteDef } from './registry.js';

/*
 * The OpenAPI 3.1 document, generated from the same route declarations the registry serves, so
 * the document cannot say something the server does not do.
 */

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
  /** SPDX `identifier`, as OpenAPI 3.1 allows. */
  license?: { name: string; identifier?: string };
}

type Maybe = TSchema | undefined;
type AnyRouteDef = RouteDef<Maybe, Maybe, Maybe>;

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The `{name}` placeholders of an OpenAPI path, in order. */
export function placeholders(path: string): string[] {
  return [...path.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

/** An OpenAPI path as @koa/router writes it: `{x}` becomes `:x`. */
export const routerPath = (path: string): string => path.replace(PLACEHOLDER, ':$1');

// TypeBox marks schemas with symbol keys; JSON round-tripping drops them for the OpenAPI document.
function plain<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema)) as T;
}

/**
 * The document of `routes` (paths relative to the `apiPrefix` server) and `raw` routes (at the
 * server's root, each path with a `servers` of its own).
 */
export function openApiDocument(info: OpenApiInfo, apiPrefix: string, routes: readonly { def: AnyRouteDef; auth: AuthMode }[], raw: readonly RawRouteDef[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const { def, auth } of routes) (paths[def.path] ??= {})[def.method] = operation(def, auth);
  // Path-level servers: these paths sit at the server's root, not under the document's /api/v1.
  for (const op of raw) (paths[op.path] ??= { servers: [{ url: '/' }] })[op.method] = rawOperation(op);
  return {
    openapi: '3.1.0',
    info: { title: info.title, version: info.version, ...(info.description ? { description: info.description } : {}), ...(info.license ? { license: info.license } : {}) },
    servers: [{ url: apiPrefix }],
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

function operation(def: AnyRouteDef, auth: AuthMode): Record<string, unknown> {
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
    const also = Object.fromEntries((r.alsoContentTypes ?? []).map((t) => [t, {}]));
    if (r.schema) {
      responses[code] = { description: r.description, content: { [r.contentType ?? 'application/json']: { schema: plain(r.schema) }, ...also } };
    } else if (status >= 400) {
      responses[code] = problem(r.description);
    } else if (r.contentType) {
      responses[code] = { description: r.description, content: { [r.contentType]: {} } };
    } else {
      responses[code] = { description: r.description };
    }
  }
  if ((def.params || def.query || def.body) && !responses['400']) responses['400'] = problem('Invalid input; `errors` lists each offending field.');
  if (auth !== 'none' && !responses['401']) responses['401'] = problem('Missing or invalid credentials.');
  responses.default = problem('Error.');

  const { security, note } = credentials(auth, def.permission, def.apiKeyOnly);
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

function rawOperation(op: RawRouteDef): Record<string, unknown> {
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
