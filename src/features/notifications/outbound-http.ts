import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { assertReachable, guardedLookup, literalAddress, OutboundRefused, parseOutboundUrl } from './outbound-guard.js';

/** Redirects followed at most (each hop checked by the guard). */
export const MAX_REDIRECTS = 3;
/**
 * Headers sent to the channel's own origin only: the webhook's signature (a receiver elsewhere
 * could replay it to the real one) and credentials, as browsers drop them on a cross-origin hop.
 */
const ORIGIN_ONLY_HEADER = /^(authorization|cookie|x-sentinel-signature|x-sentinel-timestamp)$/i;
/** Of an answer body, this much is read (for the error text); the rest is discarded. */
const MAX_ANSWER_BYTES = 1024;

export interface PostOptions {
  headers: Record<string, string>;
  allowPrivate: boolean;
  /** Aborts the whole attempt (every hop): the per-attempt timeout and the task's signal. */
  signal: AbortSignal;
}

/** How one POST ended: an answer (any status) or an error before one. */
export type PostOutcome =
  | { kind: 'answer'; status: number; body: string }
  /** Refused by the guard (before any connection), or an unusable redirect: retrying cannot help. */
  | { kind: 'refused'; error: string }
  | { kind: 'error'; error: string };

function send(url: URL, method: 'POST' | 'GET', body: string | null, o: PostOptions): Promise<IncomingMessage> {
  const literal = literalAddress(url);
  // A literal address never goes through `lookup`: check it here, before the request exists.
  if (literal) assertReachable(literal, o.allowPrivate);
  const headers: Record<string, string> = { ...o.headers };
  if (body !== null) headers['Content-Length'] = String(Buffer.byteLength(body));
  const options: RequestOptions = {
    method,
    headers,
    signal: o.signal,
    // A fresh connection per attempt: no pooled socket, and every connection goes through the guard.
    agent: false,
    lookup: literal ? undefined : (guardedLookup(o.allowPrivate) as unknown as RequestOptions['lookup']),
  };
  const doRequest = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = doRequest(url, options, resolve);
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

async function readSome(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    if (size < MAX_ANSWER_BYTES) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, MAX_ANSWER_BYTES);
}

const describe = (err: unknown): string => {
  if (err instanceof Error && err.name === 'AbortError') return 'timed out';
  const e = err as NodeJS.ErrnoException;
  return e?.message ? e.message : String(err);
};

/**
 * POSTs `body` to `rawUrl`, following at most MAX_REDIRECTS redirects itself (the client never
 * follows one on its own): each hop's URL is parsed and checked like the first. 307 and 308
 * repeat the POST; 301, 302 and 303 continue with a GET, as HTTP clients do. A hop to another
 * origin goes without the signature headers (ORIGIN_ONLY_HEADER).
 */
export async function postWithGuard(rawUrl: string, body: string, o: PostOptions): Promise<PostOutcome> {
  let url: URL;
  let method: 'POST' | 'GET' = 'POST';
  let payload: string | null = body;
  let headers = o.headers;
  try {
    url = parseOutboundUrl(rawUrl);
  } catch (err) {
    return { kind: 'refused', error: describe(err) };
  }
  const origin = url.origin;
  for (let hop = 0; ; hop++) {
    let res: IncomingMessage;
    try {
      res = await send(url, method, payload, { ...o, headers });
    } catch (err) {
      if (err instanceof OutboundRefused) return { kind: 'refused', error: hop > 0 ? `redirect to ${url.origin}: ${err.message}` : err.message };
      if (o.signal.aborted) return { kind: 'error', error: o.signal.reason instanceof Error && o.signal.reason.name !== 'TimeoutError' ? o.signal.reason.message : 'timed out' };
      return { kind: 'error', error: describe(err) };
    }
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (status >= 300 && status < 400 && location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) return { kind: 'refused', error: `more than ${MAX_REDIRECTS} redirects` };
      try {
        url = parseOutboundUrl(new URL(location, url).toString());
      } catch (err) {
        return { kind: 'refused', error: `redirect to an unusable location: ${describe(err)}` };
      }
      if (status !== 307 && status !== 308) {
        method = 'GET';
        payload = null;
      }
      // Once it leaves the channel's origin, for every later hop (even one back to it).
      if (url.origin !== origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !ORIGIN_ONLY_HEADER.test(k)));
      continue;
    }
    try {
      return { kind: 'answer', status, body: await readSome(res) };
    } catch (err) {
      return { kind: 'error', error: describe(err) };
    }
  }
}
