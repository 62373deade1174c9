import { createHmac } from 'node:crypto';
import type { NotificationRequest, NotifiedAlert } from '../../core/alerting.js';

/** Alertmanager webhook v4 (what existing receivers understand), as POSTed to webhook channels. */
export interface WebhookPayload {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: NotifiedAlert[];
}

/** The payload of a notification request, in v4's key order (the stored JSONB does not keep it). */
export function v4Payload(n: Pick<NotificationRequest, 'groupKey' | 'status' | 'receiver' | 'groupLabels' | 'commonLabels' | 'commonAnnotations' | 'alerts'>, externalURL: string): WebhookPayload {
  return {
    version: '4',
    groupKey: n.groupKey,
    truncatedAlerts: 0,
    status: n.status,
    receiver: n.receiver,
    groupLabels: n.groupLabels,
    commonLabels: n.commonLabels,
    commonAnnotations: n.commonAnnotations,
    externalURL,
    alerts: n.alerts,
  };
}

/** Re-reads a stored payload into v4's key order. */
export const storedPayload = (p: Record<string, unknown>): WebhookPayload => v4Payload(p as unknown as WebhookPayload, String(p.externalURL ?? ''));

/**
 * The signature headers of a webhook with a secret: `X-Sentinel-Signature: sha256=<hex>` is the
 * HMAC-SHA256 of `<timestamp>.<body>` with the secret, so a receiver checks both the body and
 * its age (a replayed old request has an old timestamp).
 */
export function signatureHeaders(secret: string, body: string, unixSeconds: number): Record<string, string> {
  const ts = String(unixSeconds);
  const mac = createHmac('sha256', secret).update(`${ts}.${body}`, 'utf8').digest('hex');
  return { 'X-Sentinel-Timestamp': ts, 'X-Sentinel-Signature': `sha256=${mac}` };
}

const firingCount = (p: WebhookPayload) => p.alerts.filter((a) => a.status === 'firing').length;

/** `[FIRING:2] receiver` / `[RESOLVED] receiver`, as Alertmanager titles its notifications. */
export function title(p: WebhookPayload): string {
  return p.status === 'firing' ? `[FIRING:${firingCount(p)}] ${p.receiver}` : `[RESOLVED] ${p.receiver}`;
}

const pairs = (o: Record<string, string>) =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

function alertLines(a: NotifiedAlert): string[] {
  const lines = [`- ${a.status.toUpperCase()} ${a.labels.alertname ?? ''}`.trimEnd(), `  Labels: ${pairs(a.labels) || '(none)'}`];
  for (const [k, v] of Object.entries(a.annotations)) lines.push(`  ${k}: ${v}`);
  if (a.value !== undefined && a.value !== null) lines.push(`  Value: ${a.value}`);
  lines.push(`  Started: ${a.startsAt}`);
  if (a.status === 'resolved') lines.push(`  Ended: ${a.endsAt}`);
  if (a.generatorURL) lines.push(`  Source: ${a.generatorURL}`);
  return lines;
}

/** The plain-text email of a notification: every alert with its labels, annotations, value and start. */
export function emailText(p: WebhookPayload): string {
  const out = [title(p), ''];
  if (Object.keys(p.groupLabels).length > 0) out.push(`Group: ${pairs(p.groupLabels)}`, '');
  for (const a of p.alerts) out.push(...alertLines(a), '');
  out.push(`Sentinel: ${p.externalURL}`, '');
  return out.join('\n');
}

/** Slack's `text`: a title line and one line per alert (at most 20, then a count). */
export function slackText(p: WebhookPayload): string {
  const shown = p.alerts.slice(0, 20).map((a) => {
    const summary = a.annotations.summary ?? a.annotations.description ?? '';
    const value = a.value !== undefined && a.value !== null ? ` (value ${a.value})` : '';
    return `• ${a.status === 'firing' ? ':red_circle:' : ':large_green_circle:'} ${pairs(a.labels)}${value}${summary ? ` — ${summary}` : ''}`;
  });
  if (p.alerts.length > shown.length) shown.push(`… and ${p.alerts.length - shown.length} more`);
  return [`*${title(p)}*`, ...shown].join('\n');
}

/** The message a channel test sends: one firing alert named SentinelTest. */
export function testPayload(channelName: string, externalURL: string, at: Date): WebhookPayload {
  return v4Payload(
    {
      groupKey: 'test',
      status: 'firing',
      receiver: channelName,
      groupLabels: {},
      commonLabels: { alertname: 'SentinelTest' },
      commonAnnotations: { summary: 'Test notification from Sentinel' },
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'SentinelTest' },
          annotations: { summary: 'Test notification from Sentinel' },
          startsAt: at.toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: externalURL,
          fingerprint: '0000000000000000',
        },
      ],
    },
    externalURL,
  );
}
