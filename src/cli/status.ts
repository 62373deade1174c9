import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/loader.js';
import type { Config } from '../config/schema.js';
import { secretsDir } from '../config/secrets.js';
import { mintLocalAdminToken } from '../core/local-admin-token.js';
import { describeFailure, StatusClient } from '../tui/status-client.js';
import { printJson } from './io.js';
import { usage, type CliContext } from './context.js';

/*
 * `sentinel status`: the live dashboard, or one JSON snapshot. It talks to the running daemon over
 * HTTP only: no database connection, no embedded server, nothing written to data_dir.
 */

export interface Terminal {
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
}

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
const MAX_TOKEN_LENGTH = 8192;

/** The daemon's own address from its config: a wildcard listen address is reached on loopback. */
export function daemonUrl(config: Config): string {
  if (config.http.port === 0) throw usage('http.port is 0 (the daemon picks a free port at start), so the address cannot be known: pass --url');
  const host = config.http.host;
  const reach = host === '0.0.0.0' || host === '::' || host === '[::]' ? '127.0.0.1' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `http://${reach}:${config.http.port}`;
}

export function parseUrlOption(value: string): string {
  let u: URL;
  try {
    if (/[\s\0]/.test(value)) throw new Error('blank or NUL');
    u = new URL(value);
  } catch {
    throw usage(`--url: '${value.replace(/[^\x20-\x7e]/g, '?').slice(0, 100)}' is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usage(`--url: must be http:// or https:// (got ${u.protocol})`);
  if (u.username || u.password || u.search || u.hash) throw usage('--url: only scheme, host, port and path (no credentials, query or fragment)');
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

export function parseTokenOption(value: string): string {
  if (value.length === 0 || value.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
    throw usage(`--token: must be 1 to ${MAX_TOKEN_LENGTH} printable ASCII characters without blanks (an access token)`);
  }
  return value;
}

/** The configured JWT secret, or the one the daemon generated in <data_dir>/secrets; never creates one. */
function localJwtSecret(config: Config): { secret: string; source: string } {
  if (config.auth.jwt_secret) return { secret: config.auth.jwt_secret, source: 'auth.jwt_secret of the configuration' };
  const file = join(secretsDir(config.data_dir), 'jwt_secret');
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret) return { secret, source: file };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new Error(
      code === 'ENOENT'
        ? `no local secret at ${file} (has the daemon ever started with data_dir ${config.data_dir}? is --config the daemon's?); or pass --token`
        : `cannot read ${file} (${code}): run as root or the daemon's user, or pass --token`,
    );
  }
  throw new Error(`${file} is empty; pass --token`);
}

const bare = (host: string): string => host.replace(/^\[(.*)\]$/, '$1').toLowerCase();

/**
 * Whether a local admin token may be sent to `url`: only to this host's daemon, i.e. a loopback
 * address (127.0.0.0/8, ::1, localhost) or the configured http.host, on the configured http.port.
 * The token opens the instance's status to whoever receives it, so it is never minted for another
 * host, nor for another port of this one (another local user's process may listen there): pass
 * --token there.
 */
export function mayMintFor(url: string, configuredHost: string, configuredPort: number): boolean {
  const u = new URL(url);
  const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  if (port !== configuredPort) return false;
  const host = bare(u.hostname);
  if (host === 'localhost' || host === '::1') return true;
  // 127.0.0.0/8, also as an IPv4-mapped IPv6 address (which URL writes in hex: ::ffff:7f00:1).
  if (/^127(\.\d{1,3}){3}$/.test(host) || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(host)) return true;
  return host === bare(configuredHost);
}

interface Target {
  url: string;
  token: () => string;
  /** Shown with a 401/403: where the token came from and what to do instead. */
  deniedHint: string;
}

/** Where to ask and with which token; the configuration is read only for what the options leave open. */
function resolveTarget(given: { url?: string; token?: string }, config: () => Config): Target {
  const loaded = given.url === undefined || given.token === undefined ? config() : null;
  const url = given.url ?? daemonUrl(loaded!);
  if (given.token !== undefined) {
    const t = given.token;
    return { url, token: () => t, deniedHint: 'The daemon refused --token: pass an access token of a superadmin (sentinel token create --user EMAIL), or leave --token out to mint a local one.' };
  }
  if (given.url !== undefined && !mayMintFor(url, loaded!.http.host, loaded!.http.port)) {
    throw usage(
      `--url: ${new URL(url).host} is not a loopback address or http.host (${loaded!.http.host}) on http.port (${loaded!.http.port}), and a local admin token is minted only for this host's daemon: pass --token with a superadmin's access token`,
    );
  }
  const { secret, source } = localJwtSecret(loaded!);
  return {
    url,
    // Minted per request: each lives a minute, however long the dashboard stays open.
    token: () => mintLocalAdminToken(secret, 60),
    deniedHint: `The token was minted from ${source}; if the daemon runs with another configuration or data_dir, pass its --config, or pass --token with a superadmin's access token.`,
  };
}

export function registerStatusCommand(program: Command, ctx: CliContext, terminal: Terminal = { stdout: process.stdout, stdin: process.stdin }): void {
  program
    .command('status')
    .description('live status dashboard of the running daemon (one JSON snapshot with --json or without a terminal)')
    .option('--url <url>', 'daemon URL (default: from http.host and http.port of the configuration)')
    .option('--token <token>', "access token of a superadmin (default: a short-lived local admin token minted from the daemon's secret)")
    .option('--json', 'print one snapshot as JSON and exit')
    .action(async (o: { url?: string; token?: string; json?: boolean }) => {
      const given = { url: o.url !== undefined ? parseUrlOption(o.url) : undefined, token: o.token !== undefined ? parseTokenOption(o.token) : undefined };
      const { url: base, token, deniedHint } = resolveTarget(given, () => {
        const appEnv = ctx.appEnv();
        return loadConfig({ file: appEnv.configFile, env: appEnv.env }).config;
      });
      const client = new StatusClient({ url: base, token });
      const get = () => client.fetch();

      if (o.json || !terminal.stdout.isTTY || !terminal.stdin.isTTY) {
        const r = await get();
        if (r.ok) {
          printJson(ctx.io, r.status);
          return;
        }
        throw new Error(`${describeFailure(base, r)}${r.kind === 'denied' ? `\n${deniedHint}` : ''}`);
      }

      // Loaded only here: ink, React and the layout engine cost every other command ~0.3 s at start.
      const { runDashboard } = await import('../tui/run.js');
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      for (const s of SIGNALS) ctx.io.signals.on(s, onSignal);
      try {
        await runDashboard({ url: base, fetchStatus: get, deniedHint, stdout: terminal.stdout, stdin: terminal.stdin, signal: stop.signal });
      } finally {
        for (const s of SIGNALS) ctx.io.signals.off(s, onSignal);
      }
    });
}
