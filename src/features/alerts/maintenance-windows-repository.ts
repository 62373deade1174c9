import type { Knex } from 'knex';
import type { Matcher } from './matchers.js';
import type { WindowSchedule } from './maintenance-windows-schedule.js';

export interface MaintenanceWindowRow {
  org_id: string;
  id: string;
  name: string;
  matchers: Matcher[];
  weekdays: number[];
  start_time: string;
  end_time: string;
  time_zone: string;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

export type MaintenanceWindowFields = Pick<MaintenanceWindowRow, 'name' | 'matchers' | 'weekdays' | 'start_time' | 'end_time' | 'time_zone'>;

/** The row's schedule as maintenance-windows-schedule.ts judges it. */
export const scheduleOf = (r: MaintenanceWindowRow): WindowSchedule => ({ weekdays: r.weekdays, start: r.start_time, end: r.end_time, time_zone: r.time_zone });

const TABLE = 'maintenance_windows';

// jsonb: the pg driver would send a JS array as a PostgreSQL array.
const stored = (f: Partial<MaintenanceWindowFields>) => (f.matchers ? { ...f, matchers: JSON.stringify(f.matchers) } : f);

/** Every method takes orgId and puts it in the WHERE clause: another org's window id matches nothing. */
export class MaintenanceWindowsRepository {
  constructor(private readonly knex: Knex) {}

  async insert(orgId: string, f: MaintenanceWindowFields, createdBy: string | null): Promise<MaintenanceWindowRow> {
    const [row] = await this.knex<MaintenanceWindowRow>(TABLE)
      .insert({ org_id: orgId, ...stored(f), created_by: createdBy } as never)
      .returning('*');
    return row;
  }

  /** By name; `afterName` is the keyset cursor (names are unique in an org). */
  async list(orgId: string, limit: number, afterName?: string): Promise<MaintenanceWindowRow[]> {
    const q = this.knex<MaintenanceWindowRow>(TABLE).where({ org_id: orgId }).orderBy('name').limit(limit);
    if (afterName !== undefined) q.where('name', '>', afterName);
    return q;
  }

  /** All of an org's windows (the notification policy judges which are open). */
  async all(orgId: string): Promise<MaintenanceWindowRow[]> {
    return this.knex<MaintenanceWindowRow>(TABLE).where({ org_id: orgId });
  }

  async get(orgId: string, id: string): Promise<MaintenanceWindowRow | undefined> {
    return this.knex<MaintenanceWindowRow>(TABLE).where({ org_id: orgId, id }).first();
  }

  async update(orgId: string, id: string, f: Partial<MaintenanceWindowFields>, now: Date): Promise<MaintenanceWindowRow | undefined> {
    const [row] = await this.knex<MaintenanceWindowRow>(TABLE)
      .where({ org_id: orgId, id })
      .update({ ...stored(f), updated_at: now } as never)
      .returning('*');
    return row as MaintenanceWindowRow | undefined;
  }

  async delete(orgId: string, id: string): Promise<MaintenanceWindowRow | undefined> {
    const [row] = await this.knex<MaintenanceWindowRow>(TABLE).where({ org_id: orgId, id }).delete().returning('*');
    return row as MaintenanceWindowRow | undefined;
  }
}
