/**
 * The one mail service (DESIGN §7: welcome emails, reports and alert notifications all go
 * through it). Provided by the mail feature as `mailer`; other features depend on this interface
 * only. `send` puts the message on the durable queue and resolves once it is stored: delivery,
 * retries with backoff and the record of every attempt are the mail feature's.
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
}
