import type { ValidateFunction } from 'ajv';
import { AdminStatusSchema, type AdminStatus } from '../core/status.js';
import { newAjv } from '../core/validation.js';
import { terminalSafe } from './format.js';

/*
 * The dashboard's one request: GET /api/v1/admin/status. Every way it can go wrong becomes a
 * short sentence for the screen (or stderr); nothing here throws.
 */

export const STATUS_PATH = '/api/v1/admin/status';

export type FetchResult =
  | { ok: true; status: AdminStatus }
  /** No answer: connection refused, DNS, timeout, reset. */
  | { ok: false; kind: 'unreachable'; reason: string }
  /** 401 or 403: the token is not accepted there. */
  | { ok: false; kind: 'denied'; httpStatus: number; reason: string }
  /** An answer, but not a status: another status code, or a body that is not the contract. */
  | { ok: false; kind: 'failed'; reason: string };

export interface StatusClientOptions {
  /** Base URL of the daemon, e.g. http://127.0.0.1:8080 (a path prefix is kept). */
  url: string;
  /** Called for every request, so a short-lived token can be minted fresh each time. */
  token: () => string;
  timeoutMs?: number;
  /** The fetch to use; default the global one (tests stand in a failing one). */
  fetch?: typeof fetch;
}

export function statusUrl(base: string): string {
  return `${base.replace(/\/+$/, '')}${STATUS_PATH}`;
}

/** Why fetch failed, in the words the system used: ECONNREFUSED, ENOTFOUND, timed out after 3 s. */
function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string; errors?: { code?: string }[] } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
  const cause = e?.cause;
  if (cause?.code) return cause.code;
  // Happy eyeballs (localhost → ::1 and 127.0.0.1) reports an AggregateError of both attempts.
  const inner = cause?.errors?.find((x) => x?.code)?.code;
  if (inner) return inner;
  // fetch refuses the ports browsers block (1, 9, 6000, 6665-6669 …) before connecting.
  if (cause?.message === 'bad port') return 'bad port (fetch refuses to connect to this port; give the daemon another http.port)';
  return cause?.message ?? e?.message ?? String(err);
}

/** The `detail` (or `title`) of a problem+json answer, else the body's first line, bounded and safe to print. */
function problemText(body: string): string {
  try {
    const p = JSON.parse(body) as { detail?: unknown; title?: unknown };
    const text = typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : '';
    if (text) return terminalSafe(text.slice(0, 200));
  } catch {
    // not JSON
  }
  return terminalSafe(body.split('\n')[0].slice(0, 200));
}

/**
 * The status request of one daemon, its answer's validator compiled once per client (the
 * dashboard asks every second).
 */
export class StatusClient {
  readonly #validate: ValidateFunction<AdminStatus> = newAjv({ allErrors: false }).compile<AdminStatus>(AdminStatusSchema);

  constructor(private readonly opts: StatusClientOptions) {}

  fetch(): Promise<FetchResult> {
    return request(this.opts, this.#validate);
  }
}

/** One request with a client of its own (a single snapshot). */
export function fetchStatus(opts: StatusClientOptions): Promise<FetchResult> {
  return new StatusClient(opts).fetch();
}

async function request(opts: StatusClientOptions, validate: ValidateFunction<AdminStatus>): Promise<FetchResult> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  let res: Response;
  let body: string;
  try {
    res = await (opts.fetch ?? fetch)(statusUrl(opts.url), {
      headers: { authorization: `Bearer ${opts.token()}`, accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    body = await res.text();
  } catch (err) {
    return { ok: false, kind: 'unreachable', reason: networkReason(err, timeoutMs) };
  }
  if (res.status === 401 || res.status === 403) {
    return { ok: false, kind: 'denied', httpStatus: res.status, reason: `${res.status} ${res.statusText || (res.status === 401 ? 'Unauthorized' : 'Forbidden')}: ${problemText(body)}` };
  }
  if (res.status !== 200) return { ok: false, kind: 'failed', reason: `HTTP ${res.status}: ${problemText(body)}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { ok: false, kind: 'failed', reason: 'the answer is not JSON (is this URL a Sentinel daemon?)' };
  }
  if (!validate(parsed)) {
    const first = validate.errors?.[0];
    return { ok: false, kind: 'failed', reason: terminalSafe(`unexpected answer${first ? ` at ${first.instancePath || '/'}: ${first.message ?? 'invalid'}` : ''} (daemon and CLI of different versions?)`) };
  }
  return { ok: true, status: parsed };
}

/** One line for stderr or the screen: what went wrong at which URL. */
export function describeFailure(url: string, r: Exclude<FetchResult, { ok: true }>): string {
  switch (r.kind) {
    case 'unreachable':
      return `cannot reach Sentinel at ${url}: ${r.reason}`;
    case 'denied':
      return `Sentinel at ${url} refused the status request: ${r.reason}`;
    case 'failed':
      return `Sentinel at ${url} answered, but not with a status: ${r.reason}`;
  }
}
