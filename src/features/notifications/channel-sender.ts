import type { Clock } from '../../core/clock.js';
import type { Mailer } from '../../core/mail.js';
import type { SecretBox } from '../../core/secrets.js';
import type { ChannelRow } from './channels-repository.js';
import { emailText, signatureHeaders, slackText, title, type WebhookPayload } from './notification-render.js';
import { postWithGuard } from './outbound-http.js';

/** One attempt's result: sent, worth retrying, or failed for good. */
export interface SendResult {
  outcome: 'sent' | 'retry' | 'fail';
  statusCode: number | null;
  error: string | null;
}

export interface SenderOptions {
  allowPrivate: boolean;
  timeoutMs: number;
  /** `Sentinel/<version>`. */
  userAgent: string;
  mailer: Mailer;
  box: SecretBox;
  clock: Clock;
}

/** The write-only settings of a channel, opened (webhook `secret`, Slack `webhook_url`). */
export function openSecrets(box: SecretBox, row: Pick<ChannelRow, 'secrets_sealed'>): Record<string, string> {
  return row.secrets_sealed ? (JSON.parse(box.open(row.secrets_sealed)) as Record<string, string>) : {};
}

/**
 * 2xx: sent. 408 (timeout) and 429 (rate limited) and 5xx: the receiver may take it later.
 * Any other 4xx: the receiver refuses this request, and would refuse it again.
 */
function byStatus(status: number, body: string): SendResult {
  if (status >= 200 && status < 300) return { outcome: 'sent', statusCode: status, error: null };
  const text = body.replace(/\s+/g, ' ').trim().slice(0, 200);
  const error = `HTTP ${status}${text ? `: ${text}` : ''}`;
  const retry = status === 408 || status === 429 || status >= 500 || status < 200;
  return { outcome: retry ? 'retry' : 'fail', statusCode: status, error };
}

async function post(url: string, body: string, headers: Record<string, string>, o: SenderOptions, signal?: AbortSignal): Promise<SendResult> {
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const outcome = await postWithGuard(url, body, {
    headers: { 'Content-Type': 'application/json', 'User-Agent': o.userAgent, ...headers },
    allowPrivate: o.allowPrivate,
    signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
  });
  switch (outcome.kind) {
    case 'answer':
      return byStatus(outcome.status, outcome.body);
    case 'refused':
      return { outcome: 'fail', statusCode: null, error: outcome.error };
    case 'error':
      return { outcome: 'retry', statusCode: null, error: timeout.aborted ? `timed out after ${o.timeoutMs} ms` : outcome.error };
  }
}

/** An email channel's attempt when the instance has no SMTP server configured. */
export const SMTP_NOT_CONFIGURED = 'SMTP is not configured (notifications.smtp.host)';

/**
 * One delivery attempt of `payload` through `channel`. Never throws for the receiver's sake: the
 * result says what happened. Email goes over SMTP within the attempt (the mailer's sendNow,
 * bounded by the same per-attempt timeout), so its outcome, latency and retries are recorded
 * like a webhook's.
 */
export async function sendThrough(channel: ChannelRow, payload: WebhookPayload, orgId: string, o: SenderOptions, signal?: AbortSignal): Promise<SendResult> {
  const secrets = openSecrets(o.box, channel);
  switch (channel.type) {
    case 'webhook': {
      const body = JSON.stringify(payload);
      const headers = secrets.secret ? signatureHeaders(secrets.secret, body, Math.floor(o.clock.now().getTime() / 1000)) : {};
      return post(String(channel.config.url), body, headers, o, signal);
    }
    case 'slack': {
      if (!secrets.webhook_url) return { outcome: 'fail', statusCode: null, error: 'the channel has no webhook_url' };
      return post(secrets.webhook_url, JSON.stringify({ text: slackText(payload) }), {}, o, signal);
    }
    case 'email': {
      if (!o.mailer.configured) return { outcome: 'fail', statusCode: null, error: SMTP_NOT_CONFIGURED };
      const timeout = AbortSignal.timeout(o.timeoutMs);
      try {
        const message = { to: channel.config.to as string[], subject: title(payload), text: emailText(payload), kind: 'alert', orgId };
        await o.mailer.sendNow(message, signal ? AbortSignal.any([timeout, signal]) : timeout);
        return { outcome: 'sent', statusCode: null, error: null };
      } catch (err) {
        // Any SMTP refusal is retried: a full mailbox or a greylisting server may take it later.
        return { outcome: 'retry', statusCode: null, error: timeout.aborted ? `timed out after ${o.timeoutMs} ms` : err instanceof Error ? err.message : String(err) };
      }
    }
  }
}
