import pg from 'pg';
import type { Logger } from 'pino';

export const CHANGE_CHANNEL = 'sentinel_changes';

/**
 * LISTENs on `sentinel_changes` (see the migration that creates the triggers) over one dedicated
 * connection, and reconnects with backoff when it drops. While it is not listening, `connected`
 * is false: caches that depend on it must not serve entries, since changes may be missed.
 */
export class ChangeFeed {
  private client: pg.Client | null = null;
  private listening = false;
  private stopped = false;
  private retryMs = 500;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<(table: string | null) => void>();

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  get connected(): boolean {
    return this.listening;
  }

  /** `table` is null when notifications may have been missed (reconnect): drop everything. */
  onChange(fn: (table: string | null) => void): void {
    this.listeners.add(fn);
  }

  async start(): Promise<void> {
    await this.connect().catch(() => this.scheduleReconnect());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.listening = false;
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  private emit(table: string | null): void {
    for (const fn of this.listeners) fn(table);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 3000, application_name: 'sentinel-change-feed' });
    const lost = () => {
      if (this.client !== client) return;
      this.client = null;
      if (this.listening) this.logger.warn('change feed lost its connection; caches disabled until it is back');
      this.listening = false;
      this.emit(null);
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (msg) => {
      if (msg.channel === CHANGE_CHANNEL) this.emit(msg.payload ?? null);
    });
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (err) {
      this.client = null;
      await client.end().catch(() => undefined);
      throw err;
    }
    // Anything cached before this point may predate a change we did not hear about.
    this.emit(null);
    this.listening = true;
    this.retryMs = 500;
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
