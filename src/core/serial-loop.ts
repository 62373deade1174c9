import type { Logger } from 'pino';

export interface SerialLoopOptions {
  /** Short name for the log line of a failed step, e.g. 'alerts: evaluation tick'. */
  name: string;
  /** The pause between the end of one step and the start of the next. */
  intervalMs: number;
  /** The pause before the first step (default 0: at once). */
  firstDelayMs?: number;
  logger: Pick<Logger, 'error'>;
}

/**
 * Runs an async step every `intervalMs`, one at a time: the next is timed from the end of the
 * last, so a slow database never piles steps up. A failed step is logged and the loop goes on
 * (the next step retries what it left). `stop()` resolves once a running step has finished; the
 * step gets an AbortSignal (also `stopping`) to check between batches, so a long step ends
 * within the shutdown grace period instead of running to its end.
 */
export class SerialLoop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private controller = new AbortController();
  private started = false;

  constructor(
    private readonly step: (signal: AbortSignal) => Promise<unknown>,
    private readonly opts: SerialLoopOptions,
  ) {}

  /** True once stop() was called (the step should return at its next batch boundary). */
  get stopping(): boolean {
    return this.controller.signal.aborted;
  }

  /** Aborted when stop() is called. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Starts the loop (idempotent while running; after stop() it starts afresh). */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.controller.signal.aborted) this.controller = new AbortController();
    this.schedule(this.opts.firstDelayMs ?? 0);
  }

  /** Stops the loop; resolves once the running step (if any) has finished. Never rejects. */
  async stop(): Promise<void> {
    this.started = false;
    this.controller.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (!this.started) return;
    const signal = this.controller.signal;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = Promise.resolve()
        .then(() => this.step(signal))
        .then(
          () => undefined,
          (err: unknown) => this.opts.logger.error({ err }, `${this.opts.name} failed`),
        )
        .finally(() => {
          this.running = null;
          if (!signal.aborted) this.schedule(this.opts.intervalMs);
        });
    }, delayMs);
    // The loop alone never keeps the process alive (shutdown stops it explicitly).
    this.timer.unref();
  }
}
