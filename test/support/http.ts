import { expect } from 'chai';

/** One answer from the API: status, parsed body (null when empty), raw text and content type. */
export interface Answer<T = unknown> {
  status: number;
  body: T;
  text: string;
  contentType: string;
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

/** Real fetch against a running test app, under /api/v1. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly userAgent = 'sentinel-test/1.0',
  ) {}

  async call<T = unknown>(method: string, path: string, token: string | null, body?: unknown): Promise<Answer<T>> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${this.baseUrl}/api/v1${path}`, { method: method.toUpperCase(), headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T, text, contentType: res.headers.get('content-type') ?? '' };
  }

  async login(email: string, password: string): Promise<TokenPair> {
    const res = await this.call<TokenPair>('POST', '/auth/login', null, { email, password });
    expect(res.status, res.text).to.equal(200);
    return res.body;
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
