import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { AssertionError, expect } from 'chai';
import { runRecorder, type AnswerRecorder } from './observed-answers.js';
import { validatorFor, type ResponseValidator } from './response-schemas.js';

/** One answer from the server: status, parsed JSON body (null when empty or not JSON), raw text and bytes, headers. */
export interface Answer<T = unknown> {
  status: number;
  body: T;
  text: string;
  bytes: Buffer;
  contentType: string;
  headers: Headers;
}

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  request_id?: string;
  errors?: { path: string; message: string }[];
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
}

/** A request as `raw` sends it, for what `call` cannot express: other headers, bytes, compression. */
export interface RawRequest {
  /** Sent as `Authorization: Bearer <token>` (use `headers` for any other scheme). */
  token?: string | null;
  headers?: Record<string, string>;
  /** Bytes or text are sent as they are; anything else as JSON. Content-Type defaults to application/json. */
  body?: string | Uint8Array | unknown;
  /** Compresses the body and sends Content-Encoding. */
  encoding?: 'gzip' | 'deflate' | 'br';
}

export interface ApiClientOptions {
  /** The document to check answers against; by default the one the server serves. */
  validator?: ResponseValidator;
  /** By default the run's registry (observed-answers.ts). */
  recorder?: AnswerRecorder;
}

const COMPRESS = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync };
const isJson = (contentType: string) => /^application\/([a-z.+-]*\+)?json\b/i.test(contentType);

/**
 * Real fetch against a running Sentinel (a test app or a daemon). Every answer that hits an
 * operation of the OpenAPI document the server serves is validated against that operation's
 * declared response, and recorded (observed-answers.ts) for the coverage check after the run.
 */
export class ApiClient {
  #validator: Promise<ResponseValidator> | null = null;

  readonly #recorder: AnswerRecorder;

  constructor(
    readonly baseUrl: string,
    private readonly userAgent = 'sentinel-test/1.0',
    options: ApiClientOptions = {},
  ) {
    this.#recorder = options.recorder ?? runRecorder;
    if (options.validator) {
      this.#validator = Promise.resolve(options.validator);
      this.#recorder.operations(this.#operationsOf(options.validator));
    }
  }

  /** A JSON request under /api/v1. */
  call<T = unknown>(method: string, path: string, token: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
    return this.raw<T>(method, `/api/v1${path}`, { token, body, headers });
  }

  get<T = unknown>(path: string, token: string | null = null): Promise<Answer<T>> {
    return this.call<T>('GET', path, token);
  }

  post<T = unknown>(path: string, token: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
    return this.call<T>('POST', path, token, body, headers);
  }

  /** Any request; `path` is from the server root (`/api/v1/…`, `/v1/metrics`, `/metrics`). */
  async raw<T = unknown>(method: string, path: string, req: RawRequest = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (req.token) headers.authorization = `Bearer ${req.token}`;
    let body: Uint8Array | string | undefined;
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = typeof req.body === 'string' || req.body instanceof Uint8Array ? req.body : JSON.stringify(req.body);
      if (req.encoding) {
        body = COMPRESS[req.encoding](typeof body === 'string' ? Buffer.from(body) : body);
        headers['content-encoding'] = req.encoding;
      }
    }
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
    const res = await fetch(`${this.baseUrl}${path}`, { method: method.toUpperCase(), headers, body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body) });
    const bytes = Buffer.from(await res.arrayBuffer());
    const text = bytes.toString('utf8');
    const contentType = res.headers.get('content-type') ?? '';
    const answer: Answer<T> = { status: res.status, body: (text && isJson(contentType) ? JSON.parse(text) : null) as T, text, bytes, contentType, headers: res.headers };
    await this.#validate(method, path, answer);
    return answer;
  }

  /** The same server, document check and recorder, another User-Agent (audit rows record it). */
  withUserAgent(userAgent: string): ApiClient {
    const other = new ApiClient(this.baseUrl, userAgent, { recorder: this.#recorder });
    other.#validator = this.#validator;
    return other;
  }

  async login(email: string, password: string): Promise<TokenPair> {
    const res = await this.call<TokenPair>('POST', '/auth/login', null, { email, password });
    expect(res.status, res.text).to.equal(200);
    return res.body;
  }

  /** The validator of this server's document, fetched once per client. */
  validator(): Promise<ResponseValidator> {
    this.#validator ??= (async () => {
      const res = await fetch(`${this.baseUrl}/api/v1/openapi.json`);
      const text = await res.text();
      if (res.status !== 200) throw new Error(`GET /api/v1/openapi.json answered ${res.status}: answers cannot be validated`);
      const v = validatorFor(text);
      this.#recorder.operations(this.#operationsOf(v));
      return v;
    })();
    // A failed fetch is retried by the next request rather than remembered.
    this.#validator.catch(() => (this.#validator = null));
    return this.#validator;
  }

  #operationsOf(v: ResponseValidator) {
    return v.operations.map((o) => ({ operationId: o.op.operationId, method: o.method, path: o.path }));
  }

  async #validate(method: string, path: string, answer: Answer): Promise<void> {
    const pathname = new URL(path, this.baseUrl).pathname;
    const verdict = (await this.validator()).check(method, pathname, answer);
    if (!verdict) return;
    if (verdict.errors.length === 0) {
      this.#recorder.answer(verdict.operationId, verdict.status);
      return;
    }
    const request = `${method.toUpperCase()} ${pathname}`;
    this.#recorder.failure({ operationId: verdict.operationId, status: verdict.status, request, errors: verdict.errors });
    throw new AssertionError(`${verdict.operationId} (${request}) answered ${verdict.status}, which its declared response does not describe:\n  ${verdict.errors.join('\n  ')}\nbody: ${answer.text.slice(0, 500)}`);
  }
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The `{name}` placeholders of an OpenAPI-style path template. */
export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

/** Fill a path template; every placeholder must be given, and nothing else. */
export function fillPath(template: string, params: Record<string, string>): string {
  const names = placeholders(template);
  const extra = Object.keys(params).filter((k) => !names.includes(k));
  if (extra.length) throw new Error(`${template}: params ${extra.join(', ')} are not in the path`);
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`${template}: no value for {${name}}`);
    return encodeURIComponent(v);
  });
}

/** A 4xx/5xx answer is application/problem+json whose `status` matches the HTTP status. */
export function expectProblem(res: Answer, status: number, label: string): void {
  expect(res.status, `${label}: ${res.text}`).to.equal(status);
  expect(res.contentType, `${label}: content type`).to.match(/^application\/problem\+json/);
  expect((res.body as Problem | null)?.status, `${label}: problem status`).to.equal(status);
}
