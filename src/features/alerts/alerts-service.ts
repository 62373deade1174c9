import type { Actor, RequestMeta } from '../../core/actor.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { conflict, notFound } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { pageLimit, toPage, uuidCursor, type Page } from '../../core/pagination.js';
import { compile, validationError } from '../../core/validation.js';
import type { AlertsReadRepository, ListedAlert } from './alerts-read-repository.js';
import { AckBody, AlertListQuery, type AckInput, type Alert, type AlertListInput } from './alerts-schemas.js';
import { isoOrNull } from '../../core/timestamp.js';

const validList = compile(AlertListQuery, { where: 'query' });
const validAck = compile(AckBody);


/**
 * Whether alerts are silenced now (an active silence or maintenance window matches their
 * labels): provided by the notification policy's side of the feature. One answer per label set.
 */
export interface SilenceCheck {
  silenced(orgId: string, labelSets: Record<string, string>[], now: Date): Promise<boolean[]>;
}

/** Until the module wires the real one. */
export const NO_SILENCES: SilenceCheck = { silenced: async (_org, sets) => sets.map(() => false) };

function since(a: ListedAlert): Date {
  if (a.state === 'firing' && a.fired_at) return a.fired_at;
  if (a.state === 'pending' && a.active_at) return a.active_at;
  if (a.state === 'resolved' && a.resolved_at) return a.resolved_at;
  return a.updated_at;
}

export function toAlert(a: ListedAlert, silenced: boolean): Alert {
  return {
    id: a.id,
    rule_id: a.rule_id,
    rule_name: a.rule_name ?? a.labels.alertname ?? null,
    source: a.source,
    labels: a.labels,
    annotations: a.annotations,
    state: a.state,
    value: a.value,
    since: since(a).toISOString(),
    active_at: isoOrNull(a.active_at),
    fired_at: isoOrNull(a.fired_at),
    resolved_at: isoOrNull(a.resolved_at),
    silenced,
    ack: a.ack_at ? { by: a.ack_by, at: a.ack_at.toISOString(), comment: a.ack_comment ?? '', expires_at: isoOrNull(a.ack_expires_at) } : null,
  };
}

export interface AlertsServiceDeps {
  repo: AlertsReadRepository;
  orgs: OrgAccess;
  audit: AuditSink;
  silences?: SilenceCheck;
  clock?: Clock;
}

/** The alerts API: list, one alert, acknowledge (alert.read / alert.write, checked here). */
export class AlertsService {
  private readonly clock: Clock;
  private readonly silences: SilenceCheck;

  constructor(private readonly d: AlertsServiceDeps) {
    this.clock = d.clock ?? systemClock;
    this.silences = d.silences ?? NO_SILENCES;
  }

  async list(actor: Actor, orgSlug: string, input: AlertListInput = {}): Promise<Page<Alert>> {
    const org = await this.d.orgs.require(actor, orgSlug, 'alert.read');
    input = validList(input);
    const limit = pageLimit(input.limit);
    const after = uuidCursor(input.cursor);
    const p = toPage(await this.d.repo.list(org.id, { state: input.state, ruleId: input.rule_id }, limit + 1, after), limit, (a) => a.id);
    return { items: await this.present(org.id, p.items), next_cursor: p.next_cursor };
  }

  async get(actor: Actor, orgSlug: string, id: string): Promise<Alert> {
    const org = await this.d.orgs.require(actor, orgSlug, 'alert.read');
    const row = isUuid(id) ? await this.d.repo.get(org.id, id) : undefined;
    if (!row) throw notFound('alert');
    return (await this.present(org.id, [row]))[0];
  }

  /**
   * Records who acknowledged (a user's id; null for an API key, which the audit log names), when,
   * why and until when. Only a pending or firing alert can be acknowledged (409 otherwise). The
   * notification policy holds back its notifications until it resolves, the acknowledgement
   * expires, or it fires again after resolving.
   */
  async acknowledge(actor: Actor, orgSlug: string, id: string, input: AckInput, meta: RequestMeta = {}): Promise<Alert> {
    const org = await this.d.orgs.require(actor, orgSlug, 'alert.write');
    input = validAck(input);
    const now = this.clock.now();
    let expiresAt: Date | null = null;
    if (input.expires_at !== undefined) {
      expiresAt = new Date(input.expires_at);
      // ajv's date-time format admits a leap second (…T23:59:60Z), which Date cannot represent.
      if (Number.isNaN(expiresAt.getTime())) throw validationError([{ path: 'body/expires_at', message: 'is not a representable time (a leap second such as 23:59:60 is not accepted)' }]);
      if (expiresAt.getTime() <= now.getTime()) throw validationError([{ path: 'body/expires_at', message: 'must be in the future' }]);
    }
    const current = isUuid(id) ? await this.d.repo.get(org.id, id) : undefined;
    if (!current) throw notFound('alert');
    const by = actor.kind === 'user' ? actor.userId : null;
    const row = await this.d.repo.acknowledge(org.id, id, { by, at: now, comment: input.comment.trim(), expiresAt });
    if (!row) throw conflict(`only a pending or firing alert can be acknowledged; this one is ${(await this.d.repo.get(org.id, id))?.state ?? current.state}`);
    await this.d.audit.record({
      actor,
      action: 'alert.ack',
      orgId: org.id,
      targetType: 'alert',
      targetId: row.id,
      details: { rule_id: row.rule_id, state: row.state, comment: row.ack_comment, expires_at: isoOrNull(row.ack_expires_at), ...(actor.kind === 'apikey' ? { api_key_id: actor.keyId } : {}) },
      ...meta,
    });
    return (await this.present(org.id, [row]))[0];
  }

  private async present(orgId: string, rows: ListedAlert[]): Promise<Alert[]> {
    const silenced = rows.length ? await this.silences.silenced(orgId, rows.map((r) => r.labels), this.clock.now()) : [];
    return rows.map((r, i) => toAlert(r, silenced[i] ?? false));
  }
}
