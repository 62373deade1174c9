import type { Logger } from 'pino';
import type { TaskStore } from './task-store.js';

/**
 * The queue as modules see it (`WorkQueue` in src/features/feature-module.ts): `enqueue` commits
 * the task to `queue_tasks` before it resolves, in the daemon and in a CLI command alike. The
 * daemon's workers (src/jobs/queue-workers.ts) run it; a CLI command only stores it, and the
 * running daemon's poll picks it up.
 */
export class PgWorkQueue {
  /** Set by the daemon's workers: tells them a task was just stored here (no wait for the poll). */
  onEnqueued: ((id: string) => void) | null = null;

  constructor(
    private readonly store: TaskStore,
    /** The tasks the modules declare, with their maxAttempts (stored with each task); any other name is a defect of the caller. */
    private readonly tasks: ReadonlyMap<string, number>,
    private readonly logger: Logger,
  ) {}

  async enqueue(task: string, payload: Record<string, unknown>, opts: { dedupeKey?: string; notBefore?: Date } = {}): Promise<void> {
    const maxAttempts = this.tasks.get(task);
    if (maxAttempts === undefined) throw new Error(`unknown task '${task}': no module declares it (known: ${[...this.tasks.keys()].join(', ') || 'none'})`);
    const id = await this.store.insert({ task, payload, maxAttempts, dedupeKey: opts.dedupeKey, notBefore: opts.notBefore });
    if (id === null) return;
    this.logger.debug({ task, task_id: id }, 'task queued');
    this.onEnqueued?.(id);
  }
}
