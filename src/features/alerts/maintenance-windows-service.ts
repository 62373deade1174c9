import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { conflictOnUnique, notFound, type ErrorDetail } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { decodeCursor, pageLimit, toPage, type Page, type PageRequest } from '../../core/pagination.js';
import { compile, validationError } from '../../core/validation.js';
import type { NotificationPolicy } from './alert-types.js';
import { matcherErrors } from './matchers.js';
import { scheduleOf, type MaintenanceWindowFields, type MaintenanceWindowRow, type MaintenanceWindowsRepository } from './maintenance-windows-repository.js';
import { isActive, isValidTimeZone } from './maintenance-windows-schedule.js';
import {
  CreateMaintenanceWindowBody,
  UpdateMaintenanceWindowBody,
  type CreateMaintenanceWindowInput,
  type MaintenanceWindow,
  type UpdateMaintenanceWindowInput,
} from './maintenance-windows-schemas.js';

const validCreate = compile(CreateMaintenanceWindowBody);
const validUpdate = compile(UpdateMaintenanceWindowBody);

export function toMaintenanceWindow(r: MaintenanceWindowRow, now: Date): MaintenanceWindow {
  return {
    id: r.id,
    name: r.name,
    matchers: r.matchers,
    weekdays: r.weekdays,
    start: r.start_time,
    end: r.end_time,
    time_zone: r.time_zone,
    active: isActive(scheduleOf(r), now),
    created_by: r.created_by,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

/**
 * Recurring maintenance windows: while one is open, the alerts it matches are not notified (they
 * still change state); a firing one is notified when it closes. alert.read to read, alert.write
 * to change.
 */
export class MaintenanceWindowsService {
  constructor(
    private readonly repo: MaintenanceWindowsRepository,
    private readonly orgs: OrgAccess,
    private readonly audit: AuditSink,
    private readonly clock: Clock = systemClock,
    /** Woken on every change: a window closed (or narrowed) early releases the alerts it held now, not at the close the last flush saw. */
    private readonly policy?: Pick<NotificationPolicy, 'wakeOrg'>,
  ) {}

  async list(actor: Actor, orgSlug: string, page: PageRequest = {}): Promise<Page<MaintenanceWindow>> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.read');
    const limit = pageLimit(page.limit);
    const after = decodeCursor(page.cursor);
    const rows = await this.repo.list(org.id, limit + 1, after);
    const p = toPage(rows, limit, (r) => r.name);
    const now = this.clock.now();
    return { items: p.items.map((r) => toMaintenanceWindow(r, now)), next_cursor: p.next_cursor };
  }

  async get(actor: Actor, orgSlug: string, id: string): Promise<MaintenanceWindow> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.read');
    const row = isUuid(id) ? await this.repo.get(org.id, id) : undefined;
    if (!row) throw notFound('maintenance window');
    return toMaintenanceWindow(row, this.clock.now());
  }

  async create(actor: Actor, orgSlug: string, input: CreateMaintenanceWindowInput, meta: RequestMeta = {}): Promise<MaintenanceWindow> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.write');
    input = validCreate(input);
    const fields = checked({ name: input.name, matchers: input.matchers, weekdays: input.weekdays, start_time: input.start, end_time: input.end, time_zone: input.time_zone });
    const row = await conflictOnUnique(() => this.repo.insert(org.id, fields, actor.kind === 'user' ? actor.userId : null), `a maintenance window named '${fields.name}' already exists`);
    await this.policy?.wakeOrg(org.id, this.clock.now());
    await this.record(actor, 'maintenance_window.create', row, meta);
    return toMaintenanceWindow(row, this.clock.now());
  }

  async update(actor: Actor, orgSlug: string, id: string, input: UpdateMaintenanceWindowInput, meta: RequestMeta = {}): Promise<MaintenanceWindow> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.write');
    input = validUpdate(input);
    const current = isUuid(id) ? await this.repo.get(org.id, id) : undefined;
    if (!current) throw notFound('maintenance window');
    const fields = checked({
      name: input.name ?? current.name,
      matchers: input.matchers ?? current.matchers,
      weekdays: input.weekdays ?? current.weekdays,
      start_time: input.start ?? current.start_time,
      end_time: input.end ?? current.end_time,
      time_zone: input.time_zone ?? current.time_zone,
    });
    const now = this.clock.now();
    const row = await conflictOnUnique(() => this.repo.update(org.id, id, fields, now), `a maintenance window named '${fields.name}' already exists`);
    if (!row) throw notFound('maintenance window');
    await this.policy?.wakeOrg(org.id, now);
    await this.record(actor, 'maintenance_window.update', row, meta);
    return toMaintenanceWindow(row, now);
  }

  async delete(actor: Actor, orgSlug: string, id: string, meta: RequestMeta = {}): Promise<void> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.write');
    const row = isUuid(id) ? await this.repo.delete(org.id, id) : undefined;
    if (!row) throw notFound('maintenance window');
    await this.policy?.wakeOrg(org.id, this.clock.now());
    await this.record(actor, 'maintenance_window.delete', row, meta);
  }

  private async record(actor: Actor, action: string, row: MaintenanceWindowRow, meta: RequestMeta): Promise<void> {
    await this.audit.record({
      actor,
      action,
      orgId: row.org_id,
      targetType: 'maintenance_window',
      targetId: row.id,
      details: { name: row.name, matchers: row.matchers, weekdays: row.weekdays, start: row.start_time, end: row.end_time, time_zone: row.time_zone },
      ...meta,
    });
  }
}

/** The rules the schema cannot state, each error with its path. */
function checked(f: MaintenanceWindowFields): MaintenanceWindowFields {
  const errors: ErrorDetail[] = matcherErrors(f.matchers, 'body/matchers');
  if (!isValidTimeZone(f.time_zone)) errors.push({ path: 'body/time_zone', message: 'must be an IANA time zone name (e.g. Europe/Berlin, UTC)' });
  if (errors.length > 0) throw validationError(errors);
  return { ...f, name: f.name.trim(), weekdays: [...f.weekdays].sort((a, b) => a - b) };
}
