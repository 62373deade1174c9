import type { Knex } from 'knex';
import type { Actor, RequestMeta } from '../../core/actor.js';
import type { ChannelDirectory } from '../../core/alerting.js';
import type { AuditSink } from '../../core/audit.js';
import type { OrgAccess } from '../../core/authorize.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { DomainError, conflictOnUnique, notFound, type ErrorDetail } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { parseRfc3339 } from '../../core/timestamp.js';
import { pageLimit, toPage, uuidCursor, type Page, type PageRequest } from '../../core/pagination.js';
import { compile, validationError } from '../../core/validation.js';
import type { AlertRulesRepository, RuleColumns, RuleState } from './alert-rules-repository.js';
import {
  CreateRuleBody,
  PreviewQuery,
  UpdateRuleBody,
  type CreateRuleInput,
  type Preview,
  type PreviewInput,
  type Rule,
  type UpdateRuleInput,
} from './alert-rules-schemas.js';
import { normalizeRule, ruleToDraft, type RuleDraft } from './alert-rules-draft.js';
import type { AlertRow, NotificationPolicy, RuleRow } from './alert-types.js';
import { groupLabelsOf } from './rule-condition.js';
import { ruleGroupSettings } from './rule-evaluation.js';
import { isoOrNull } from '../../core/timestamp.js';

const validCreate = compile(CreateRuleBody);
const validUpdate = compile(UpdateRuleBody);
const validPreview = compile(PreviewQuery, { where: 'query' });

const sec = (ms: number): number => ms / 1000;

export function toRule(r: RuleRow, state: RuleState = 'ok'): Rule {
  const q = r.query as unknown as Record<string, unknown>;
  const { window_ms, ...rest } = q as { window_ms: number };
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    query: { ...(rest as Omit<Rule['query'], 'window'>), window: sec(window_ms) },
    op: r.op,
    threshold: r.threshold,
    recovery_threshold: r.recovery_threshold,
    interval: sec(r.interval_ms),
    for: sec(r.for_ms),
    keep_firing_for: sec(r.keep_firing_for_ms),
    severity: r.severity as Rule['severity'],
    labels: r.labels,
    annotations: r.annotations,
    channels: r.channels,
    group_by: r.group_by,
    group_wait: sec(r.group_wait_ms),
    group_interval: sec(r.group_interval_ms),
    repeat_interval: sec(r.repeat_interval_ms),
    enabled: r.enabled,
    state,
    last_eval_at: isoOrNull(r.last_eval_at),
    next_eval_at: r.enabled ? isoOrNull(r.next_eval_at) : null,
    last_error: r.last_error,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

/** Runs a stored rule over history (rule-preview.ts). */
export interface RulePreviewer {
  /** `signal`: stop reading (the client went away); the preview then rejects. */
  preview(rule: RuleRow, startMs: number, endMs: number, signal?: AbortSignal): Promise<Preview>;
}

/**
 * A preview's cost bound: evaluations × the evaluation intervals one window spans (each
 * evaluation reads a whole window, so a 7-day window every minute reads each point ~10,000
 * times). At most this many per allowed evaluation: a 1 h window every minute passes at
 * alerts.preview_max_steps evaluations; longer windows get proportionally fewer.
 */
export const PREVIEW_WINDOW_INTERVALS_PER_STEP = 60;

/** The window (ms) one evaluation of the rule reads. */
const windowOf = (rule: RuleRow): number => (rule.query as { window_ms: number }).window_ms;

export interface AlertRulesDeps {
  repo: AlertRulesRepository;
  orgs: OrgAccess;
  audit: AuditSink;
  channels: ChannelDirectory;
  /** alerts.max_rules_per_org */
  maxRulesPerOrg: number;
  /** alerts.preview_max_steps */
  previewMaxSteps: number;
  previewer: RulePreviewer;
  /** Told about the groups of alerts resolved by disabling a rule, so their resolve is notified. */
  policy?: NotificationPolicy;
  clock?: Clock;
}

/**
 * Alert rules: CRUD (alert.read / alert.write, checked here so the CLI gets the same checks),
 * validation beyond the schema with the same error paths, and preview over stored history.
 */
export class AlertRulesService {
  private readonly clock: Clock;

  constructor(private readonly d: AlertRulesDeps) {
    this.clock = d.clock ?? systemClock;
  }

  async list(actor: Actor, orgSlug: string, page: PageRequest = {}): Promise<Page<Rule>> {
    const org = await this.d.orgs.require(actor, orgSlug, 'alert.read');
    const limit = pageLimit(page.limit);
    const after = uuidCursor(page.cursor);
    const p = toPage(await this.d.repo.list(org.id, limit + 1, after), limit, (r) => r.id);
    const states = await this.d.repo.states(org.id, p.items.map((r) => r.id));
    return { items: p.items.map((r) => toRule(r, states.get(r.id))), next_cursor: p.next_cursor };
  }

  async get(actor: Actor, orgSlug: string, id: string): Promise<Rule> {
    const org = await this.d.orgs.require(actor, orgSlug, 'alert.read');
    const row = await this.find(org.id, id);
    return this.present(org.id, row);
  }

  async create(actor: Actor, orgSlug: string, input: CreateRuleInput, meta: RequestMeta = {}): Promise<Rule> {
    const org = await this.d.orgs.require(actor, orgSlug, 'alert.write');
    input = validCreate(input);
    const cols = await this.check(org.id, { ...input });
    const now = this.clock.now();
    const row = await conflictOnUnique(
      () => this.d.repo.insertBounded(org.id, { ...cols, next_eval_at: this.spread(now, cols.interval_ms), created_by: actor.kind === 'user' ? actor.userId : null }, this.d.maxRulesPerOrg),
      duplicate(cols.name),
    );
    if (!row) throw new DomainError('limit_exceeded', `this organization has ${this.d.maxRulesPerOrg} alert rules, the most allowed (alerts.max_rules_per_org)`);
    await this.d.audit.record({ actor, action: 'alert_rule.create', orgId: org.id, targetType: 'alert_rule', targetId: row.id, details: { name: row.name, kind: row.kind }, ...meta });
    return toRule(row);
  }

  /**
   * Fields given replace the stored ones. A new interval, query or kind, or enabling, reschedules
   * (spread over one interval); disabling resolves the rule's firing alerts (notified once) and
   * returns the rest to ok.
   */
  async update(actor: Actor, orgSlug: string, id: string, input: UpdateRuleInput, meta: RequestMeta = {}): Promise<Rule> {
    const org = await this.d.orgs.require(actor, orgSlug, 'alert.write');
    input = validUpdate(input);
    const current = await this.find(org.id, id);
    const cols = await this.check(org.id, { ...ruleToDraft(current), ...input } as RuleDraft);
    const now = this.clock.now();
    const reschedule =
      cols.interval_ms !== current.interval_ms || cols.kind !== current.kind || JSON.stringify(cols.query) !== JSON.stringify(current.query) || (cols.enabled && !current.enabled);
    const row = await conflictOnUnique(
      () => this.d.repo.update(org.id, id, { ...cols, ...(reschedule ? { next_eval_at: this.spread(now, cols.interval_ms), last_error: null } : {}) }, now),
      duplicate(cols.name),
    );
    if (!row) throw notFound('alert rule');
    if (current.enabled && !row.enabled) await this.settle(row, now);
    // Existing groups keep a snapshot of channels, receiver and timers until a transition: a
    // firing group would keep paging a removed channel on every repeat.
    else if (this.d.policy && groupSettingsChanged(current, row)) {
      const { groupLabels: _labels, ...settings } = ruleGroupSettings(row, {});
      await this.d.policy.reconfigure(settings);
    }
    const changed = Object.keys(input).filter((k) => k !== 'name' || cols.name !== current.name);
    await this.d.audit.record({ actor, action: 'alert_rule.update', orgId: org.id, targetType: 'alert_rule', targetId: row.id, details: { name: row.name, changed }, ...meta });
    return this.present(org.id, row);
  }

  /**
   * Settles its alerts as disabling does (a firing one whose firing was notified is sent once as
   * resolved, at its group's next flush), then deletes it, in one transaction.
   */
  async delete(actor: Actor, orgSlug: string, id: string, meta: RequestMeta = {}): Promise<void> {
    const org = await this.d.orgs.require(actor, orgSlug, 'alert.write');
    const current = isUuid(id) ? await this.d.repo.get(org.id, id) : undefined;
    if (!current) throw notFound('alert rule');
    const now = this.clock.now();
    const row = await this.d.repo.delete(org.id, id, now, (resolved, db) => this.touchGroups(current, resolved, now, db));
    if (!row) throw notFound('alert rule');
    await this.d.audit.record({ actor, action: 'alert_rule.delete', orgId: org.id, targetType: 'alert_rule', targetId: row.id, details: { name: row.name, kind: row.kind }, ...meta });
  }

  /** alert.write: one call can run thousands of telemetry reads (bounded below), more than reading should allow. */
  async preview(actor: Actor, orgSlug: string, id: string, input: PreviewInput, signal?: AbortSignal): Promise<Preview> {
    const org = await this.d.orgs.require(actor, orgSlug, 'alert.write');
    input = validPreview(input);
    const rule = await this.find(org.id, id);
    const endMs = input.end === undefined ? this.clock.now().getTime() : parseTime('end', input.end);
    const startMs = input.start === undefined ? endMs - 3_600_000 : parseTime('start', input.start);
    if (startMs > endMs) throw validationError([{ path: 'query/start', message: 'must not be after end' }]);
    const steps = Math.floor((endMs - startMs) / rule.interval_ms) + 1;
    if (steps > this.d.previewMaxSteps) {
      throw validationError([{ path: 'query/end', message: `${steps} evaluations (one per interval of ${rule.interval_ms / 1000} s); at most ${this.d.previewMaxSteps} (alerts.preview_max_steps)` }]);
    }
    const perStep = Math.max(1, Math.ceil(windowOf(rule) / rule.interval_ms));
    const maxCost = this.d.previewMaxSteps * PREVIEW_WINDOW_INTERVALS_PER_STEP;
    // One evaluation is always allowed: it is what the evaluator itself runs every interval.
    if (steps > 1 && steps * perStep > maxCost) {
      const allowed = Math.max(1, Math.floor(maxCost / perStep));
      throw validationError([
        {
          path: 'query/end',
          message: `too costly: ${steps} evaluations each reading a window of ${perStep} intervals; with this window at most ${allowed} evaluations (a range of ${((allowed - 1) * rule.interval_ms) / 1000} s)`,
        },
      ]);
    }
    return this.d.previewer.preview(rule, startMs, endMs, signal);
  }

  private async find(orgId: string, id: string): Promise<RuleRow> {
    const row = isUuid(id) ? await this.d.repo.get(orgId, id) : undefined;
    if (!row) throw notFound('alert rule');
    return row;
  }

  private async present(orgId: string, row: RuleRow): Promise<Rule> {
    return toRule(row, (await this.d.repo.states(orgId, [row.id])).get(row.id));
  }

  /** The rules the schema cannot state, then the channels (a query, so last). */
  private async check(orgId: string, draft: RuleDraft): Promise<RuleColumns> {
    const errors: ErrorDetail[] = [];
    const cols = normalizeRule(draft, errors);
    if (errors.length === 0 && cols.channels.length > 0) {
      const missing = new Set(await this.d.channels.missing(orgId, cols.channels));
      cols.channels.forEach((c, i) => missing.has(c) && errors.push({ path: `body/channels/${i}`, message: 'is not a channel of this organization' }));
    }
    if (errors.length > 0) throw validationError(errors);
    return cols;
  }

  private async settle(rule: RuleRow, now: Date): Promise<void> {
    await this.d.repo.settleAlerts(rule.org_id, rule.id, now, async (resolved, db) => {
      await this.touchGroups(rule, resolved, now, db);
    });
  }

  /** Makes the groups of these resolved alerts due (in the caller's transaction); returns their keys. */
  private async touchGroups(rule: RuleRow, resolved: AlertRow[], now: Date, db: Knex): Promise<string[]> {
    const policy = this.d.policy;
    const keys = new Set<string>();
    if (!policy) return [];
    const seen = new Set<string>();
    for (const a of resolved) {
      const s = ruleGroupSettings(rule, groupLabelsOf(rule.group_by, a.labels));
      const key = JSON.stringify(s.groupLabels);
      if (seen.has(key)) continue;
      seen.add(key);
      keys.add(await policy.touch(s, now, db));
    }
    return [...keys];
  }

  /** First evaluation somewhere in the next interval, so rules created together do not all run in one tick. */
  private spread(now: Date, intervalMs: number): Date {
    return new Date(now.getTime() + Math.floor(Math.random() * intervalMs));
  }
}

const duplicate = (name: string): string => `an alert rule named '${name}' already exists`;

/** The settings an alert group snapshots from its rule (ruleGroupSettings) differ. */
function groupSettingsChanged(a: RuleRow, b: RuleRow): boolean {
  return (
    a.name !== b.name ||
    a.group_wait_ms !== b.group_wait_ms ||
    a.group_interval_ms !== b.group_interval_ms ||
    a.repeat_interval_ms !== b.repeat_interval_ms ||
    JSON.stringify(a.channels) !== JSON.stringify(b.channels)
  );
}

const EPOCH_MS = /^-?\d{1,16}$/;
/** Years 0001–9999, as telemetry's query times. */
const MIN_MS = -62_135_596_800_000;
const MAX_MS = 253_402_300_799_999;

function parseTime(param: 'start' | 'end', raw: string): number {
  const s = raw.trim();
  const ms = EPOCH_MS.test(s) ? Number(s) : parseRfc3339(s);
  if (ms === null || ms < MIN_MS || ms > MAX_MS) throw validationError([{ path: `query/${param}`, message: 'must be an RFC 3339 timestamp or Unix epoch milliseconds (years 0001–9999)' }]);
  return ms;
}
