import { createTask, parse, validateDetailed, type ScheduledTask } from 'node-cron';

/*
 * Cron expressions as node-cron reads them (5 fields, or 6 with seconds first; names, ranges,
 * steps, L and #), always in UTC. node-cron fires the ticks; this file answers the two questions
 * it has no public answer for: "which slot came last before t" (the scheduler's catch-up) and
 * "which comes next after t" (`jobs list`, GET /admin/jobs). Both walk the days with node-cron's
 * own parsed fields and ask node-cron's own matcher, so they mean exactly what the ticks mean.
 */

const DAY_MS = 86_400_000;
/** How far a walk looks: a Monday 29 February comes back every 28 years. */
const MAX_DAYS = 366 * 29;

/** Null when node-cron accepts the expression; otherwise why not, naming the field. */
export function cronProblem(expression: string): string | null {
  if (typeof expression !== 'string' || expression.trim() === '') return 'must be a cron expression such as "0 */6 * * *"';
  const v = validateDetailed(expression);
  if (v.valid) return null;
  return `not a valid cron expression: ${v.errors.map((e) => e.message).join('; ')}`;
}

function withMatcher<T>(expression: string, fn: (task: ScheduledTask) => T): T {
  // createTask registers the task in node-cron's process-wide list: destroyed when done.
  const task = createTask(expression, () => undefined, { timezone: 'UTC' });
  try {
    return fn(task);
  } finally {
    void task.destroy();
  }
}

/** A validated UTC schedule. */
export class CronSchedule {
  private readonly times: number[];

  constructor(readonly expression: string) {
    const problem = cronProblem(expression);
    if (problem) throw new Error(`${JSON.stringify(expression)}: ${problem}`);
    const f = parse(expression);
    const asc = (a: number[]) => [...a].sort((x, y) => x - y);
    // Every time of day the expression allows, in ms after midnight, ascending.
    this.times = [];
    for (const h of asc(f.hour)) for (const m of asc(f.minute)) for (const s of asc(f.second)) this.times.push(((h * 60 + m) * 60 + s) * 1000);
  }

  /** The latest slot at or before `at` (null when none within the walk). */
  previous(at: Date): Date | null {
    return this.walk(at.getTime(), -1);
  }

  /** The earliest slot strictly after `at`. */
  next(at: Date): Date | null {
    return this.walk(at.getTime(), 1);
  }

  private walk(at: number, dir: 1 | -1): Date | null {
    const times = dir === 1 ? this.times : [...this.times].reverse();
    return withMatcher(this.expression, (task) => {
      let day = Math.floor(at / DAY_MS) * DAY_MS;
      for (let i = 0; i < MAX_DAYS; i++, day += dir * DAY_MS) {
        // Every candidate is built from allowed times, so the matcher says no only for the day
        // (day of month, month, weekday): one question per day.
        if (!task.match(new Date(day + this.times[0]))) continue;
        for (const t of times) {
          const ts = day + t;
          if (dir === 1 ? ts > at : ts <= at) return new Date(ts);
        }
      }
      return null;
    });
  }
}
