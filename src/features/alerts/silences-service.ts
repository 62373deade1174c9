import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { conflict, notFound, type ErrorDetail } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { pageLimit, toPage, uuidCursor, type Page } from '../../core/pagination.js';
import { parseRfc3339 } from '../../core/timestamp.js';
import { compile, validationError } from '../../core/validation.js';
import type { NotificationPolicy } from './alert-types.js';
import { matcherErrors, matchesEmpty, type Matcher } from './matchers.js';
import type { SilenceFields, SilenceRow, SilencesRepository, SilenceState } from './silences-repository.js';
import {
  CreateSilenceBody,
  SilenceListQuery,
  UpdateSilenceBody,
  type CreateSilenceInput,
  type Silence,
  type SilenceListInput,
  type UpdateSilenceInput,
} from './silences-schemas.js';

const validCreate = compile(CreateSilenceBody);
const validUpdate = compile(UpdateSilenceBody);
const validList = compile(SilenceListQuery, { where: 'query' });

/** A time in (RFC 3339, or epoch ms as a number or a string of digits), or an error at `path`. */
export function parseTimeIn(v: string | number, path: string, errors: ErrorDetail[]): Date | null {
  const ms = typeof v === 'number' ? v : /^\d{1,15}$/.test(v) ? Number(v) : parseRfc3339(v);
  if (ms === null || !Number.isSafeInteger(ms) || ms > 253_402_300_799_999) {
    errors.push({ path, message: 'must be an RFC 3339 time or Unix epoch milliseconds' });
    return null;
  }
  return new Date(ms);
}

export function silenceState(r: Pick<SilenceRow, 'starts_at' | 'ends_at'>, now: Date): SilenceState {
  if (r.ends_at <= now) return 'expired';
  return r.starts_at <= now ? 'active' : 'pending';
}

export function toSilence(r: SilenceRow, now: Date): Silence {
  return {
    id: r.id,
    matchers: r.matchers,
    starts_at: r.starts_at.toISOString(),
    ends_at: r.ends_at.toISOString(),
    comment: r.comment,
    state: silenceState(r, now),
    created_by: r.created_by,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

/**
 * Silences: label matchers and a time range; an active one keeps the alerts it matches from being
 * notified (they still change state). Authorization here: alert.read to read, alert.write to
 * change. Deleting expires (ends it now), so what was silenced when stays on record.
 */
export class SilencesService {
  constructor(
    private readonly repo: SilencesRepository,
    private readonly orgs: OrgAccess,
    private readonly audit: AuditSink,
    private readonly clock: Clock = systemClock,
    /** Woken when a silence ends early or changes: the alerts it held go out now, not at the end the last flush saw. */
    private readonly policy?: Pick<NotificationPolicy, 'wakeOrg'>,
  ) {}

  async list(actor: Actor, orgSlug: string, input: SilenceListInput = {}): Promise<Page<Silence>> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.read');
    input = validList(input);
    const limit = pageLimit(input.limit);
    const after = uuidCursor(input.cursor);
    const now = this.clock.now();
    const rows = await this.repo.list(org.id, { limit: limit + 1, afterId: after, state: input.state, now });
    const p = toPage(rows, limit, (r) => r.id);
    return { items: p.items.map((r) => toSilence(r, now)), next_cursor: p.next_cursor };
  }

  async get(actor: Actor, orgSlug: string, id: string): Promise<Silence> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.read');
    const row = isUuid(id) ? await this.repo.get(org.id, id) : undefined;
    if (!row) throw notFound('silence');
    return toSilence(row, this.clock.now());
  }

  async create(actor: Actor, orgSlug: string, input: CreateSilenceInput, meta: RequestMeta = {}): Promise<Silence> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.write');
    input = validCreate(input);
    const now = this.clock.now();
    const errors: ErrorDetail[] = [];
    const startsAt = input.starts_at === undefined ? now : parseTimeIn(input.starts_at, 'body/starts_at', errors);
    const endsAt = parseTimeIn(input.ends_at, 'body/ends_at', errors);
    const fields = this.checked({ matchers: input.matchers, starts_at: startsAt, ends_at: endsAt, comment: input.comment }, now, errors);
    const row = await this.repo.insert(org.id, fields, actor.kind === 'user' ? actor.userId : null);
    await this.record(actor, 'silence.create', row, meta);
    return toSilence(row, now);
  }

  async update(actor: Actor, orgSlug: string, id: string, input: UpdateSilenceInput, meta: RequestMeta = {}): Promise<Silence> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.write');
    input = validUpdate(input);
    const current = isUuid(id) ? await this.repo.get(org.id, id) : undefined;
    if (!current) throw notFound('silence');
    const now = this.clock.now();
    if (current.ends_at <= now) throw conflict('this silence has expired; create a new one');
    const errors: ErrorDetail[] = [];
    const startsAt = input.starts_at === undefined ? current.starts_at : parseTimeIn(input.starts_at, 'body/starts_at', errors);
    const endsAt = input.ends_at === undefined ? current.ends_at : parseTimeIn(input.ends_at, 'body/ends_at', errors);
    const fields = this.checked(
      { matchers: input.matchers ?? current.matchers, starts_at: startsAt, ends_at: endsAt, comment: input.comment ?? current.comment },
      now,
      errors,
    );
    const row = await this.repo.update(org.id, id, fields, now);
    if (!row) throw notFound('silence');
    await this.policy?.wakeOrg(org.id, now);
    await this.record(actor, 'silence.update', row, meta);
    return toSilence(row, now);
  }

  /** DELETE: ends it now (it stays listed as expired). */
  async expire(actor: Actor, orgSlug: string, id: string, meta: RequestMeta = {}): Promise<void> {
    const org = await this.orgs.require(actor, orgSlug, 'alert.write');
    const now = this.clock.now();
    const row = isUuid(id) ? await this.repo.expire(org.id, id, now) : undefined;
    if (!row) throw notFound('silence');
    await this.policy?.wakeOrg(org.id, now);
    await this.record(actor, 'silence.expire', row, meta);
  }

  /** The rules the schema cannot state, each error with its path; throws them all at once. */
  private checked(f: { matchers: Matcher[]; starts_at: Date | null; ends_at: Date | null; comment: string }, now: Date, errors: ErrorDetail[]): SilenceFields {
    const bad = matcherErrors(f.matchers, 'body/matchers');
    errors.push(...bad);
    if (bad.length === 0 && f.matchers.every(matchesEmpty)) {
      errors.push({ path: 'body/matchers', message: 'at least one matcher must not match an absent label (else it silences every alert)' });
    }
    if (f.starts_at && f.ends_at) {
      if (f.ends_at <= f.starts_at) errors.push({ path: 'body/ends_at', message: 'must be after starts_at' });
      else if (f.ends_at <= now) errors.push({ path: 'body/ends_at', message: 'must be in the future' });
    }
    if (errors.length > 0) throw validationError(errors);
    return { matchers: f.matchers, starts_at: f.starts_at!, ends_at: f.ends_at!, comment: f.comment.trim() };
  }

  private async record(actor: Actor, action: string, row: SilenceRow, meta: RequestMeta): Promise<void> {
    await this.audit.record({
      actor,
      action,
      orgId: row.org_id,
      targetType: 'silence',
      targetId: row.id,
      details: { matchers: row.matchers, starts_at: row.starts_at.toISOString(), ends_at: row.ends_at.toISOString() },
      ...meta,
    });
  }
}
