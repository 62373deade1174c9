import pg from 'pg';
import type { Logger } from 'pino';
import type { ChangeSource } from './read-cache.js';

export const CHANGE_CHANNEL = 'sentinel_changes';

/** How often the feed checks that its connection still answers, and how long an answer may take. */
const HEARTBEAT_MS = 10_000;
const HEARTBEAT_TIMEOUT_MS = 5000;
/** Idle time before TCP keepalive probes start (the OS default is two hours). */
const KEEPALIVE_DELAY_MS = 10_000;

/**
 * LISTENs on `sentinel_changes` (see the migration that creates the triggers: the payload is the
 * changed table's name) over one dedicated connection, and reconnects with backoff when it drops.
 * While it is not listening, `connected` is false: caches that depend on it must not serve
 * entries, since changes may be missed; status listeners hear both the loss and the return, so
 * they can drop what they hold.
 *
 * A connection can also die silently (a half-open TCP connection after a network failure or a
 * host that vanished, a server process that hangs): no error, no end, and `connected` would stay
 * true while changes go unheard, so caches would serve stale auth data up to their TTL. TCP
 * keepalive catches a dead peer; a heartbeat (`SELECT 1` that must answer within a timeout)
 * also catches one that is reachable but not answering. A failed heartbeat is a loss like any
 * other.
 */
export class ChangeFeed implements ChangeSource {
  private client: pg.Client | null = null;
  private listening = false;
  private stopped = false;
  private retryMs: number;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly changeListeners = new Set<(table: string | null) => void>();
  private readonly statusListeners = new Set<(connected: boolean) => void>();

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
    private readonly opts: { retryMs?: number; heartbeatMs?: number; heartbeatTimeoutMs?: number } = {},
  ) {
    this.retryMs = opts.retryMs ?? 500;
  }

  get connected(): boolean {
    return this.listening;
  }

  /** `table` is null when a notification did not say which table changed. */
  onChange(fn: (table: string | null) => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  onStatus(fn: (connected: boolean) => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  async start(): Promise<void> {
    await this.connect().catch(() => this.scheduleReconnect());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopHeartbeat();
    const client = this.client;
    this.client = null;
    this.setListening(false);
    await client?.end().catch(() => undefined);
  }

  private setListening(listening: boolean): void {
    if (this.listening === listening) return;
    this.listening = listening;
    for (const fn of this.statusListeners) fn(listening);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: 3000,
      application_name: 'sentinel-change-feed',
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    });
    const lost = () => this.lose(client);
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (msg) => {
      if (msg.channel !== CHANGE_CHANNEL) return;
      for (const fn of this.changeListeners) fn(msg.payload || null);
    });
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (err) {
      if (this.client === client) this.client = null;
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.client !== client) return; // stopped meanwhile
    // Status listeners drop what they hold: anything cached before this point may predate a
    // change we did not hear about.
    this.setListening(true);
    this.retryMs = this.opts.retryMs ?? 500;
    this.startHeartbeat(client);
  }

  private lose(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.stopHeartbeat();
    if (this.listening) this.logger.warn('change feed lost its connection; caches disabled until it is back');
    this.setListening(false);
    this.scheduleReconnect();
  }

  private startHeartbeat(client: pg.Client): void {
    const everyMs = this.opts.heartbeatMs ?? HEARTBEAT_MS;
    const timeoutMs = this.opts.heartbeatTimeoutMs ?? HEARTBEAT_TIMEOUT_MS;
    let beating = false;
    this.heartbeat = setInterval(() => {
      if (beating || this.client !== client) return;
      beating = true;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      Promise.race([client.query('select 1'), timeout])
        .catch((err: unknown) => {
          if (this.client !== client) return;
          this.logger.warn({ reason: (err as Error).message }, 'change feed heartbeat failed');
          this.lose(client);
          // end() would wait for a server that does not answer: cut the socket instead (the
          // server side goes when its process resumes or TCP gives up).
          (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
        })
        .finally(() => {
          clearTimeout(timer);
          beating = false;
        });
    }, everyMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 10_000);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped) return;
      this.connect().catch(() => this.scheduleReconnect());
    }, delay);
    this.timer.unref();
  }
}
