import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/**
 * Checks answers against the response schemas of the OpenAPI 3.1 document the server itself
 * serves, so the document and the server cannot drift apart unnoticed: a test that gets an answer
 * the document does not describe fails with the operation, the status and ajv's errors.
 */

// ajv-formats is CommonJS with an `exports.default`; under NodeNext the default import is module.exports.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv2020) => Ajv2020;

const DOC_ID = 'sentinel-openapi.json';

/**
 * The ajv every schema check of the tests uses: JSON Schema 2020-12 as OpenAPI 3.1 writes it
 * (prefixItems is native here, unlike the server's draft-07 ajv), strict so that a keyword the
 * validator would silently ignore is an error, `example` allowed as OpenAPI does.
 */
export function openapiAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false, validateFormats: true });
  addFormats(ajv);
  ajv.addKeyword('example');
  return ajv;
}

interface MediaType {
  schema?: unknown;
}
interface ResponseObject {
  description?: string;
  content?: Record<string, MediaType>;
}
export interface OperationObject {
  operationId: string;
  servers?: { url: string }[];
  parameters?: { name: string; in: string; schema?: unknown }[];
  requestBody?: { content: Record<string, MediaType> };
  responses: Record<string, ResponseObject>;
}
type PathItem = Record<string, unknown> & { servers?: { url: string }[] };
export interface OpenApiDocument {
  servers?: { url: string }[];
  paths: Record<string, PathItem>;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** One operation of the document, with the full server path it is answered at. */
export interface DocOperation {
  method: string;
  /** The template as the document writes it (relative to its server). */
  path: string;
  /** Where the server answers it: the server URL's path joined with the template. */
  serverPath: string;
  /** JSON pointer (as a URI fragment) to the operation inside the document. */
  pointer: string;
  op: OperationObject;
}

const pointerToken = (s: string) => encodeURIComponent(s.replaceAll('~', '~0').replaceAll('/', '~1'));

/** Every operation of the document, each with the server path it is answered at. */
export function documentOperations(doc: OpenApiDocument): DocOperation[] {
  const out: DocOperation[] = [];
  const rootServer = doc.servers?.[0]?.url ?? '/';
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of HTTP_METHODS) {
      const op = item[method] as OperationObject | undefined;
      if (!op) continue;
      const server = (op.servers ?? item.servers)?.[0]?.url ?? rootServer;
      const serverPath = (server.endsWith('/') ? server.slice(0, -1) : server) + path;
      out.push({ method, path, serverPath, pointer: `#/paths/${pointerToken(path)}/${method}`, op });
    }
  }
  return out;
}

export const isJsonMedia = (media: string) => media === 'application/json' || media.endsWith('+json');

/** Every schema of an operation (parameters, request bodies, responses) as `[label, pointer]`. */
export function operationSchemas(o: DocOperation): [string, string][] {
  const out: [string, string][] = [];
  (o.op.parameters ?? []).forEach((p, i) => p.schema && out.push([`parameter ${p.in} ${p.name}`, `${o.pointer}/parameters/${i}/schema`]));
  for (const [media, m] of Object.entries(o.op.requestBody?.content ?? {})) {
    if (m.schema) out.push([`request body ${media}`, `${o.pointer}/requestBody/content/${pointerToken(media)}/schema`]);
  }
  for (const [status, r] of Object.entries(o.op.responses)) {
    for (const [media, m] of Object.entries(r.content ?? {})) {
      if (m.schema) out.push([`response ${status} ${media}`, `${o.pointer}/responses/${status}/content/${pointerToken(media)}/schema`]);
    }
  }
  return out;
}

interface Matcher {
  pattern: RegExp;
  /** Literal segments win over templated ones: /users/me before /users/{id}. */
  templated: number;
  o: DocOperation;
}

export interface Verdict {
  operationId: string;
  status: number;
  /** Empty when the answer is what the document declares. */
  errors: string[];
}

export interface AnswerToCheck {
  status: number;
  contentType: string;
  text: string;
}

const formatErrors = (errors: ErrorObject[] | null | undefined) => (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);

export class ResponseValidator {
  readonly operations: DocOperation[];
  readonly #ajv = openapiAjv();
  readonly #matchers: Matcher[];
  readonly #compiled = new Map<string, ValidateFunction>();

  constructor(doc: OpenApiDocument) {
    this.operations = documentOperations(doc);
    // The document is one schema resource, so its internal $refs (#/components/schemas/Problem)
    // resolve; its top-level OpenAPI fields are known to ajv as keywords that check nothing.
    this.#ajv.addVocabulary(Object.keys(doc).filter((k) => !this.#ajv.getKeyword(k)));
    this.#ajv.addSchema(doc as object, DOC_ID);
    this.#matchers = this.operations
      .map((o) => {
        const parts = o.serverPath.split(/(\{[^}]+\})/);
        const source = parts.map((p) => (p.startsWith('{') ? '[^/]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
        return { pattern: new RegExp(`^${source}$`), templated: parts.filter((p) => p.startsWith('{')).length, o };
      })
      .sort((a, b) => a.templated - b.templated);
  }

  /** The compiled schema at a pointer into the document (compiled once). */
  compile(pointer: string): ValidateFunction {
    let v = this.#compiled.get(pointer);
    if (!v) this.#compiled.set(pointer, (v = this.#ajv.compile({ $ref: `${DOC_ID}${pointer}` })));
    return v;
  }

  /** The operation a request hits, or null when the document has none (e.g. /metrics, an unknown path). */
  operationFor(method: string, pathname: string): DocOperation | null {
    const m = method.toLowerCase();
    return this.#matchers.find((x) => x.o.method === m && x.pattern.test(pathname))?.o ?? null;
  }

  /** Null when the request matches no operation; else the operation, the status and what does not match. */
  check(method: string, pathname: string, answer: AnswerToCheck): Verdict | null {
    const o = this.operationFor(method, pathname);
    if (!o) return null;
    const { status } = answer;
    const errors: string[] = [];
    const code = String(status);
    const key = code in o.op.responses ? code : `${code[0]}XX` in o.op.responses ? `${code[0]}XX` : 'default' in o.op.responses ? 'default' : null;
    if (!key) return { operationId: o.op.operationId, status, errors: [`status ${status} is not declared (declared: ${Object.keys(o.op.responses).join(', ')})`] };
    const content = o.op.responses[key].content;
    const media = answer.contentType.split(';')[0].trim().toLowerCase();
    if (!content || Object.keys(content).length === 0) {
      if (answer.text !== '') errors.push(`a ${media || 'untyped'} body where response ${key} declares none: ${answer.text.slice(0, 200)}`);
    } else if (!(media in content)) {
      errors.push(`content type "${media}" is not declared for response ${key} (declared: ${Object.keys(content).join(', ')})`);
    } else if (content[media].schema && isJsonMedia(media)) {
      let body: unknown;
      try {
        body = JSON.parse(answer.text);
      } catch {
        errors.push(`${media} body is not JSON: ${answer.text.slice(0, 200)}`);
        return { operationId: o.op.operationId, status, errors };
      }
      const validate = this.compile(`${o.pointer}/responses/${key}/content/${pointerToken(media)}/schema`);
      if (!validate(body)) errors.push(...formatErrors(validate.errors).map((e) => `response ${key} ${media}: ${e}`));
    }
    return { operationId: o.op.operationId, status, errors };
  }
}

const byDocument = new Map<string, ResponseValidator>();

/** One validator per distinct document text: every test app serves the same one, compiled once. */
export function validatorFor(docText: string): ResponseValidator {
  let v = byDocument.get(docText);
  if (!v) byDocument.set(docText, (v = new ResponseValidator(JSON.parse(docText) as OpenApiDocument)));
  return v;
}
