/**
 * The one mail service (DESIGN §7: welcome emails, reports and alert notifications all go
 * through it). Provided by the mail feature as `mailer`; other features depend on this interface
 * only. `send` puts the message on the durable queue and resolves once it is stored: delivery,
 * retries with backoff and the record of every attempt are the mail feature's. `sendNow` is one
 * attempt, now, for callers that retry themselves.
 */
export interface MailMessage {
  to: string[];
  subject: string;
  text: string;
  html?: string;
  attachments?: { filename: string; content: string; contentType: string }[];
  /** What sent it, for the delivery record: 'welcome', 'report', 'test', 'alert' … */
  kind: string;
  orgId?: string | null;
}

export interface Mailer {
  /** False when notifications.smtp.host is empty: callers skip optional mail then. */
  readonly configured: boolean;
  send(message: MailMessage): Promise<void>;
  /**
   * One attempt over SMTP now, not queued (alert notifications: their own task makes the
   * attempts, each recorded with its outcome and latency). Recorded in mail_log as sent or
   * failed like a queued message; rejects with the SMTP error (its text is what to record),
   * when `signal` aborts (the caller's timeout), or when SMTP is not configured.
   */
  sendNow(message: MailMessage, signal?: AbortSignal): Promise<void>;
}
