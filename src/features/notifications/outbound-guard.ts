import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/*
 * The SSRF guard of webhook and Slack channels (issue 10 point 5): a channel must not make
 * Sentinel reach what only Sentinel can reach. Checked when a channel is saved (literal IPs and
 * the addresses its host resolves to), and again when it sends: in the socket's `lookup` (so a
 * DNS answer that changed since, or changes between two lookups, cannot slip through), and for
 * every redirect hop. A refusal always comes before a connection is attempted.
 */

/** Why an address is refused; null: it may be reached. */
export type Refusal = { reason: string; always: boolean };

/** A send or a save refused by the guard: a permanent failure (retrying cannot help). */
export class OutboundRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboundRefused';
  }
}

/** IPv4 ranges that are reachable only from inside (refused unless notifications.allow_private_networks). */
const INTERNAL_V4: Record<string, string> = {
  loopback: 'a loopback address',
  private: 'a private network address (RFC 1918)',
  carrierGradeNat: 'a shared address (100.64.0.0/10)',
  unspecified: 'the unspecified address',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
};

const INTERNAL_V6: Record<string, string> = {
  loopback: 'a loopback address',
  uniqueLocal: 'a unique local address (fc00::/7)',
  unspecified: 'the unspecified address',
  multicast: 'a multicast address',
};

/**
 * The IPv4 address an IPv6 one carries (NAT64 64:ff9b::/96, 6to4 2002::/16, IPv4-translated,
 * IPv4-compatible ::/96), if any.
 */
function embeddedV4(a: ipaddr.IPv6): ipaddr.IPv4 | null {
  const p = a.parts;
  // ::/96 (deprecated IPv4-compatible, e.g. [::169.254.169.254], which URL parsing turns into
  // ::a9fe:a9fe and ipaddr.js rates plain unicast); :: and ::1 are IPv6's own.
  if (p.slice(0, 6).every((x) => x === 0) && (p[6] !== 0 || p[7] > 1)) return new ipaddr.IPv4([p[6] >> 8, p[6] & 0xff, p[7] >> 8, p[7] & 0xff]);
  switch (a.range()) {
    case 'rfc6052':
    case 'rfc6145':
      return new ipaddr.IPv4([p[6] >> 8, p[6] & 0xff, p[7] >> 8, p[7] & 0xff]);
    case '6to4':
      return new ipaddr.IPv4([p[1] >> 8, p[1] & 0xff, p[2] >> 8, p[2] & 0xff]);
    default:
      return null;
  }
}

/**
 * Classifies one IP address (IPv4-mapped, -compatible and -embedding IPv6 forms are judged by their IPv4
 * address). Link-local (169.254.0.0/16, where cloud metadata services answer, and fe80::/10) is
 * refused always; other internal ranges unless `allowPrivate`; anything not plain global
 * unicast (reserved, documentation, benchmarking ranges) is treated as internal too.
 */
export function refusalOf(address: string, allowPrivate: boolean): Refusal | null {
  if (!ipaddr.isValid(address)) return { reason: `'${address}' is not an IP address`, always: true };
  const ip = ipaddr.process(address);
  if (ip.kind() === 'ipv6') {
    const v6 = ip as ipaddr.IPv6;
    const inner = embeddedV4(v6);
    if (inner) return refusalOf(inner.toString(), allowPrivate);
    const range = v6.range();
    if (range === 'linkLocal') return { reason: 'a link-local address (fe80::/10)', always: true };
    if (range === 'unicast') return null;
    return allowPrivate ? null : { reason: INTERNAL_V6[range] ?? `a reserved address (${range})`, always: false };
  }
  const range = (ip as ipaddr.IPv4).range();
  if (range === 'linkLocal') return { reason: 'a link-local address (169.254.0.0/16)', always: true };
  if (range === 'unicast') return null;
  return allowPrivate ? null : { reason: INTERNAL_V4[range] ?? `a reserved address (${range})`, always: false };
}

/** Throws OutboundRefused when `address` may not be reached. */
export function assertReachable(address: string, allowPrivate: boolean, host = address): void {
  const r = refusalOf(address, allowPrivate);
  if (!r) return;
  const why = r.always ? 'link-local addresses are never reached' : 'private networks are not allowed (notifications.allow_private_networks)';
  throw new OutboundRefused(`refused: ${host === address ? address : `${host} resolves to ${address}`}, ${r.reason}; ${why}`);
}

/** The URL's host as an IP address when it is a literal one (brackets of IPv6 removed), else null. */
export function literalAddress(url: URL): string | null {
  const h = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(h) ? h : null;
}

/**
 * Parses an outbound URL: http or https only, no credentials in it (they would be shown with the
 * channel), a host. Throws OutboundRefused naming the problem.
 */
export function parseOutboundUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OutboundRefused('must be an absolute http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundRefused('must be an http or https URL');
  if (url.username || url.password) throw new OutboundRefused('must not contain a user name or password');
  if (!url.hostname) throw new OutboundRefused('must name a host');
  return url;
}

type LookupAll = (host: string) => Promise<LookupAddress[]>;

const lookupAll: LookupAll = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

/**
 * Save-time check of a channel's URL: its literal address, or every address its host resolves
 * to now (one refused address refuses the URL). A host that does not resolve is refused too:
 * the channel could not send. Resolution is bounded by `timeoutMs`.
 */
export async function checkOutboundUrl(raw: string, allowPrivate: boolean, opts: { timeoutMs?: number; resolve?: LookupAll } = {}): Promise<URL> {
  const url = parseOutboundUrl(raw);
  const literal = literalAddress(url);
  if (literal) {
    assertReachable(literal, allowPrivate);
    return url;
  }
  const resolve = opts.resolve ?? lookupAll;
  let timer: NodeJS.Timeout | undefined;
  let addresses: LookupAddress[];
  try {
    addresses = await Promise.race([
      resolve(url.hostname),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), opts.timeoutMs ?? 5000);
      }),
    ]);
  } catch (err) {
    throw new OutboundRefused(`the host ${url.hostname} could not be resolved (${err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : String(err)})`);
  } finally {
    clearTimeout(timer);
  }
  if (addresses.length === 0) throw new OutboundRefused(`the host ${url.hostname} could not be resolved`);
  for (const a of addresses) assertReachable(a.address, allowPrivate, url.hostname);
  return url;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * The `lookup` to hand to http.request / https.request: resolves like the default one, then
 * refuses (with the guard's error, before the socket connects) when any answer may not be
 * reached. Handles both the single-address and the `all: true` (autoSelectFamily) callers.
 */
export function guardedLookup(allowPrivate: boolean, resolve: LookupAll = lookupAll) {
  return (hostname: string, options: { all?: boolean } | number | undefined, callback: LookupCallback): void => {
    const all = typeof options === 'object' && options !== null && options.all === true;
    resolve(hostname).then(
      (addresses) => {
        try {
          if (addresses.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
          for (const a of addresses) assertReachable(a.address, allowPrivate, hostname);
        } catch (err) {
          callback(err as NodeJS.ErrnoException, all ? [] : '', undefined);
          return;
        }
        if (all) callback(null, addresses);
        else callback(null, addresses[0].address, addresses[0].family);
      },
      (err: NodeJS.ErrnoException) => callback(err, all ? [] : '', undefined),
    );
  };
}
