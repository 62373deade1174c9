/** What the job runner and the queue workers record of a failure, and their shutdown reason. */

/** Longest error text kept in job_runs.error and queue_tasks.last_error. */
export const MAX_ERROR_LENGTH = 2000;

/** An error as recorded: its message, cut to MAX_ERROR_LENGTH ('failed' when empty). */
export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_LENGTH) || 'failed';

/**
 * The abort reason at the end of the shutdown grace: a job run is recorded failed ("interrupted
 * by shutdown"), a task goes back to pending without spending an attempt.
 */
export class ShutdownAbort extends Error {}
