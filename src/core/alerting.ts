/*
 * The interfaces that cross the alerting features' boundaries (DESIGN §2: a feature never imports
 * another's files). telemetry provides `alertQuery`; notifications provides `notifier` and
 * `channelDirectory`; alerts provides `alertSink` (heartbeats and Sentinel's own checks raise
 * alerts through it, so they are grouped, silenced, acknowledged and delivered like any other).
 */

/** One answer series of a metric read: its labels and its [epoch ms, value] buckets (null: no points in the bucket). */
export interface AlertSeries {
  labels: Record<string, string>;
  points: [number, number | null][];
}

export interface AlertMetricQuery {
  name: string;
  /** Exact label matches. */
  filter: Record<string, string>;
  /** increase and rate: per series, the growth of a counter (counter resets handled; a delta series' values summed); rate per second of step. */
  agg: 'avg' | 'min' | 'max' | 'sum' | 'count' | 'p50' | 'p90' | 'p95' | 'p99' | 'increase' | 'rate';
  /** Group by these labels (one answer series per group); empty: one answer series per stored series. */
  by: string[];
  startMs: number;
  endMs: number;
  /** Bucket width; buckets are aligned to startMs. */
  stepMs: number;
}

export interface AlertLogQuery {
  /** At least this level (debug < info < warn < error < fatal). */
  level?: string;
  /** Substring of the message. */
  q?: string;
  /** Exact attribute matches. */
  attributes?: Record<string, string>;
  startMs: number;
  endMs: number;
}

/**
 * How alert rules read telemetry: by org id (the rule's own org, fixed when it was stored), with
 * no actor; the telemetry feature's query limits and statement timeout apply. A failing read
 * throws (the rule goes to `error`). Rules never touch telemetry tables themselves, so the
 * storage engine can change under them.
 */
export interface AlertQuerySource {
  metric(orgId: string, q: AlertMetricQuery): Promise<AlertSeries[]>;
  countLogs(orgId: string, q: AlertLogQuery): Promise<number>;
}

/** One alert in a notification, Alertmanager webhook v4's `alerts[]` item. */
export interface NotifiedAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** RFC 3339. */
  startsAt: string;
  /** RFC 3339; '0001-01-01T00:00:00Z' while firing (as Alertmanager sends). */
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
  /** Sentinel's alert id (for the ack link); not part of the v4 shape, receivers ignore it. */
  id?: string;
  /** The value that made it fire (or resolve). */
  value?: number | null;
}

/** One notification of one alert group to its channels (one delivery per channel). */
export interface NotificationRequest {
  /** The alerts' org; null for Sentinel's own (instance-level) alerts. */
  orgId: string | null;
  /** Channel ids; for an org's alerts only that org's channels are used (others are skipped and logged). */
  channelIds: string[];
  /** Stable per group: rule id + the group_by labels' values. */
  groupKey: string;
  /** Dedup key of this notification: dispatching the same key twice stores and sends it once per channel. */
  dedupKey: string;
  ruleId: string | null;
  /** v4 `status`: firing when any alert in it fires. */
  status: 'firing' | 'resolved';
  /** v4 `receiver`: the rule's (or heartbeat's) name. */
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  alerts: NotifiedAlert[];
}

/** Provided by notifications: the outbox. */
export interface Notifier {
  /**
   * Stores one notification per channel (the outbox, committed before it resolves) and queues
   * its delivery on the durable queue; returns the stored notification ids (existing ones for a
   * dedupKey seen before).
   */
  dispatch(n: NotificationRequest): Promise<string[]>;
}

/**
 * Provided by notifications as `deliveryStats`: an org's delivery attempts in [startMs, endMs)
 * (by the attempt's time; channel tests left out), for the alerting section of its daily report.
 * A delivery is an attempt that succeeded, a failure one that did not (a notification retried
 * twice and then sent is two failures and one delivery). The shape is the report's (reports
 * AlertingSection.notifications), by_channel ordered by channel name.
 */
export interface DeliveryStats {
  daily(orgId: string, startMs: number, endMs: number): Promise<AlertingSummary['notifications']>;
}

/** Provided by notifications: which channel ids exist in an org (rules and heartbeats name them). */
export interface ChannelDirectory {
  /** The ids among `ids` that are not channels of this org (a bad reference, reported with its path). */
  missing(orgId: string, ids: string[]): Promise<string[]>;
}

/** An alert raised by something other than a rule (a heartbeat, Sentinel's own checks). */
export interface ExternalAlert {
  /** null: an instance-level alert (delivered to alerts.instance_channels). */
  orgId: string | null;
  source: 'heartbeat' | 'instance';
  /** The heartbeat's id, or the instance check's name ('backup', 'restore-drill'). */
  sourceId: string;
  /** alertname and receiver. */
  name: string;
  severity: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  channelIds: string[];
  at: Date;
}

/** Provided by alerts. */
export interface AlertSink {
  /** Fires (idempotent while firing): grouped and notified like a rule's alert with group_wait 0. */
  raise(a: ExternalAlert): Promise<void>;
  /** Resolves it if it fires (a resolved notification is sent once); nothing otherwise. */
  resolve(a: Pick<ExternalAlert, 'orgId' | 'source' | 'sourceId' | 'at'>): Promise<void>;
  /** The source's name or channels changed (e.g. a heartbeat PATCH): its existing notification group uses them from now on. */
  reconfigure(a: Pick<ExternalAlert, 'orgId' | 'source' | 'sourceId' | 'name' | 'channelIds'>): Promise<void>;
  /** Instance level: the names of Sentinel's own checks whose alert fires now (the sentinel_alerts gauge; every instance answers the same). */
  firingInstanceChecks(): Promise<string[]>;
}

/**
 * One organization's alerting figures for one UTC day, the alerting section of its daily report.
 * Provided by alerts as `alertingSummary`; the reports feature (which may not read alerting's
 * tables) depends on this interface only, and its report schema has the same shape.
 */
export interface AlertingSummary {
  /** False when the org has neither alert rules nor notification channels (the figures are then zero). */
  configured: boolean;
  /** Why a section is empty, e.g. "alerting not configured". */
  note: string | null;
  alerts: {
    /** Alerts that started firing that day. */
    fired: number;
    /** Alerts resolved that day. */
    resolved: number;
    items: { rule: string; severity: string; fired_at: string; resolved_at: string | null; duration_seconds: number | null }[];
  };
  response: { acknowledged: number; mean_time_to_acknowledge_seconds: number | null; mean_time_to_resolve_seconds: number | null };
  notifications: {
    /** Delivery attempts that succeeded. */
    deliveries: number;
    /** Delivery attempts that failed. */
    failures: number;
    by_channel: { channel: string; type: string; deliveries: number; failures: number }[];
  };
}

export interface AlertingSummarySource {
  /** `date` is YYYY-MM-DD (UTC). */
  daily(orgId: string, date: string): Promise<AlertingSummary>;
}
