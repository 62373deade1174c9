import type { Knex } from 'knex';

/*
 * The alerts feature's rows as its parts share them (rules, evaluation, state machine,
 * notification policy). Columns: migrations/20261207000001_create_alerting_tables.ts.
 */

export const RULE_KINDS = ['threshold', 'no_data', 'log_count', 'rate_of_change'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export const COMPARISONS = ['>', '>=', '<', '<=', '==', '!='] as const;
export type Comparison = (typeof COMPARISONS)[number];

export const ALERT_STATES = ['ok', 'pending', 'firing', 'resolved', 'no_data', 'error'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/** threshold, no_data, rate_of_change: a metric query; `window` in ms after validation. */
export interface MetricRuleQuery {
  name: string;
  filter: Record<string, string>;
  agg: 'avg' | 'min' | 'max' | 'sum' | 'count' | 'p50' | 'p90' | 'p95' | 'p99' | 'increase' | 'rate';
  window_ms: number;
  by: string[];
}

/** log_count. */
export interface LogRuleQuery {
  level?: string;
  q?: string;
  attributes: Record<string, string>;
  window_ms: number;
}

/** An alert_rules row as the repository returns it (jsonb parsed, arrays as arrays). */
export interface RuleRow {
  org_id: string;
  id: string;
  name: string;
  kind: RuleKind;
  query: MetricRuleQuery | LogRuleQuery;
  op: Comparison | null;
  threshold: number | null;
  recovery_threshold: number | null;
  interval_ms: number;
  for_ms: number;
  keep_firing_for_ms: number;
  severity: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  channels: string[];
  group_by: string[];
  group_wait_ms: number;
  group_interval_ms: number;
  repeat_interval_ms: number;
  enabled: boolean;
  next_eval_at: Date;
  last_eval_at: Date | null;
  last_error: string | null;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/** An alerts row (one alert instance). */
export interface AlertRow {
  id: string;
  org_id: string | null;
  source: 'rule' | 'heartbeat' | 'instance';
  source_id: string;
  rule_id: string | null;
  fingerprint: string;
  /** groupKeyOf(source, source_id, its group_by labels): set by whoever writes the row; the notification policy reads a group's alerts by it. */
  group_key: string | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: AlertState;
  value: number | null;
  error: string | null;
  active_at: Date | null;
  fired_at: Date | null;
  resolved_at: Date | null;
  last_breach_at: Date | null;
  last_eval_at: Date | null;
  firing_notified_at: Date | null;
  resolved_notified_at: Date | null;
  ack_by: string | null;
  ack_at: Date | null;
  ack_comment: string | null;
  ack_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * How a group is notified, snapshotted onto alert_groups whenever its source touches it (a rule's
 * settings, a heartbeat's, or the instance checks' from config), so the notification policy
 * needs no other feature's tables.
 */
export interface GroupSettings {
  orgId: string | null;
  source: AlertRow['source'];
  sourceId: string;
  /** v4 `receiver`: the rule's or heartbeat's name. */
  receiver: string;
  channels: string[];
  groupLabels: Record<string, string>;
  groupWaitMs: number;
  groupIntervalMs: number;
  repeatIntervalMs: number;
}

/**
 * The notification policy (grouping, silences, maintenance windows, acks, repeat), as the
 * evaluator and the alert sink call it after they have committed alert state changes.
 */
export interface NotificationPolicy {
  /**
   * The alerts of this group changed (or may have): make sure the group exists with these
   * settings and is due for a flush when its timers say so (group_wait for a new group,
   * group_interval after the last notification). Returns the group key. `db`: the transaction
   * that wrote the alert state (pass it, so a failed touch rolls the state back and the next
   * evaluation retries the transition; a touch after the commit can be lost for good).
   */
  touch(settings: GroupSettings, now: Date, db?: Knex): Promise<string>;
  /** Flush every group whose time has come (claimed with SKIP LOCKED: one instance per group); stops between groups once `signal` aborts. */
  flushDue(now: Date, signal?: AbortSignal): Promise<number>;
  /**
   * A silence or maintenance window of the org changed (created, updated, expired, deleted):
   * every group of the org that has firing alerts or a pending flush is due at `now`, so alerts
   * a suppression held go out at once (the flush decides what is sent; timers still apply).
   */
  wakeOrg(orgId: string, now: Date): Promise<void>;
  /** A source's settings changed (rule or heartbeat PATCH): every existing group of that source takes the new receiver, channels and timers. */
  reconfigure(settings: Omit<GroupSettings, 'groupLabels'>): Promise<void>;
}

/** The group key of an alert: its source and the values of its rule's group_by labels. */
export function groupKeyOf(source: AlertRow['source'], sourceId: string, groupLabels: Record<string, string>): string {
  const parts = Object.keys(groupLabels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(groupLabels[k])}`);
  return `${source}:${sourceId}:{${parts.join(',')}}`;
}
