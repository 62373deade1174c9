import type { Logger } from 'pino';

/**
 * Runs the missed check every `tickMs` (alerts.tick_ms), one run at a time: the next is timed
 * from the end of the last, so a slow database never piles runs up. A failed run is logged and
 * the loop goes on (the next tick retries what it left).
 */
export class MissedCheckLoop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;

  constructor(
    private readonly check: () => Promise<unknown>,
    private readonly tickMs: number,
    private readonly logger: Pick<Logger, 'error'>,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.check()
        .then(() => undefined)
        .catch((err: unknown) => this.logger.error({ err }, 'heartbeats: missed check failed'))
        .finally(() => {
          this.running = null;
          this.schedule();
        });
    }, this.tickMs);
    this.timer.unref();
  }
}
