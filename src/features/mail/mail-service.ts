import type { Logger } from 'pino';
import { DomainError } from '../../core/errors.js';
import type { MailMessage, Mailer } from '../../core/mail.js';
import { compile, EMAIL_PATTERN } from '../../core/validation.js';
import { Type } from '@sinclair/typebox';
import type { MailLogRepository, MailLogRow } from './mail-repository.js';
import { describeSmtpError, type Envelope, type SmtpSender } from './smtp-sender.js';

/** Which attempt of the `mail.send` task this is, as the queue counts them. */
export interface TaskAttempt {
  attempt: number;
  maxAttempts: number;
}

/** The payload of a `mail.send` task: the mail_log row and the message (stored while it waits). */
export type MailTaskPayload = Envelope & { logId: string };

/** Puts a `mail.send` task on the durable queue; resolves once it is stored. */
export type MailEnqueue = (payload: MailTaskPayload) => Promise<void>;

const validTestInput = compile(Type.Object({ to: Type.String({ minLength: 3, maxLength: 254, pattern: EMAIL_PATTERN }) }, { additionalProperties: false }));

/**
 * The one mailer (DESIGN §7). `send` records the message in mail_log and enqueues it; the queue's
 * `mail.send` task calls `deliver`, one attempt per call, retried with backoff by the queue until
 * its `maxAttempts`. Every attempt updates the message's row: attempts (the queue's count, so the
 * row and the task agree on which attempt is the last), outcome, the SMTP error.
 */
export class MailService implements Mailer {
  constructor(
    private readonly repo: MailLogRepository,
    /** null when notifications.smtp.host is empty. */
    private readonly sender: SmtpSender | null,
    private readonly enqueue: MailEnqueue,
    private readonly logger: Logger,
  ) {}

  get configured(): boolean {
    return this.sender !== null;
  }

  async send(message: MailMessage): Promise<void> {
    if (!this.sender) throw notConfigured();
    if (message.to.length === 0) throw new DomainError('bad_request', 'a message needs at least one recipient');
    const logId = await this.repo.insert({ orgId: message.orgId ?? null, kind: message.kind, to: message.to, subject: message.subject });
    try {
      await this.enqueue({ logId, to: message.to, subject: message.subject, text: message.text, html: message.html, attachments: message.attachments });
    } catch (err) {
      // Two commits: the row is stored but no task will ever deliver it. Say so in the row
      // (not 'queued' forever), then fail the caller as before.
      const error = `not queued: ${err instanceof Error ? err.message : String(err)}`;
      await this.repo.markFailed(logId, error, true).catch((e: unknown) => this.logger.error({ mail: logId, err: e }, 'mail not queued, and its mail_log row could not be marked failed'));
      this.logger.warn({ mail: logId, kind: message.kind, error }, 'mail not queued');
      throw err;
    }
  }

  /**
   * One attempt now, not queued (Mailer.sendNow): its own mail_log row, sent or failed (final:
   * the caller retries with a new message). Rejects with an Error whose message is the SMTP
   * error as recorded (the original is its cause).
   */
  async sendNow(message: MailMessage, signal?: AbortSignal): Promise<void> {
    if (!this.sender) throw notConfigured();
    if (message.to.length === 0) throw new DomainError('bad_request', 'a message needs at least one recipient');
    signal?.throwIfAborted();
    const logId = await this.repo.insert({ orgId: message.orgId ?? null, kind: message.kind, to: message.to, subject: message.subject });
    const row = (await this.repo.beginAttempt(logId, 1))!;
    try {
      await this.attempt(row, { to: message.to, subject: message.subject, text: message.text, html: message.html, attachments: message.attachments }, true, signal);
    } catch (err) {
      throw new Error(describeSmtpError(err), { cause: err });
    }
  }

  /**
   * One delivery attempt of a queued message (the `mail.send` task). Throws the SMTP error so the
   * queue retries; a message already sent (a task run again after a crash) or whose row is gone
   * (its org was deleted) is not sent. `attempt` is the queue's: the row mirrors it, and the
   * attempt that reaches `maxAttempts` marks the row failed when it fails.
   */
  async deliver(payload: MailTaskPayload, attempt: TaskAttempt, signal?: AbortSignal): Promise<void> {
    const row = await this.repo.beginAttempt(payload.logId, attempt.attempt);
    if (!row || row.outcome === 'sent') {
      this.logger.info({ mail: payload.logId }, row ? 'mail already sent; not sending again' : 'mail record gone (its organization was deleted); not sent');
      return;
    }
    if (!this.sender) {
      // Queued while SMTP was configured, and the daemon restarted without it: retrying cannot help.
      await this.repo.markFailed(row.id, notConfigured().message, true);
      this.logger.warn({ mail: row.id, kind: row.kind }, 'mail not sent: mail is no longer configured');
      return;
    }
    await this.attempt(row, payload, attempt.attempt >= attempt.maxAttempts, signal);
  }

  /**
   * `sentinel mail test`: one message through the same recording and sending as every other,
   * but one attempt, now, so the operator sees the SMTP server's answer instead of a retry later.
   */
  async sendTest(to: string, signal?: AbortSignal): Promise<MailLogRow> {
    if (!this.sender) throw notConfigured();
    const address = validTestInput({ to }).to.trim();
    const message = {
      to: [address],
      subject: 'Sentinel test message',
      text: `This is a test message from Sentinel (sentinel mail test), sent at ${new Date().toISOString()}.\nIf you can read it, outgoing mail works.\n`,
    };
    const logId = await this.repo.insert({ orgId: null, kind: 'test', to: message.to, subject: message.subject });
    const row = (await this.repo.beginAttempt(logId, 1))!;
    try {
      await this.attempt(row, message, true, signal);
    } catch (err) {
      throw new DomainError('unavailable', `mail to ${address} was not delivered: ${describeSmtpError(err)}`);
    }
    return (await this.repo.findById(logId))!;
  }

  private async attempt(row: MailLogRow, mail: Envelope, final: boolean, signal?: AbortSignal): Promise<void> {
    try {
      await this.sender!.send(mail, signal);
    } catch (err) {
      const error = describeSmtpError(err);
      await this.repo.markFailed(row.id, error, final);
      this.logger.warn({ mail: row.id, kind: row.kind, attempt: row.attempts, final, error }, final ? 'mail delivery failed; giving up' : 'mail delivery failed; will retry');
      throw err;
    }
    await this.repo.markSent(row.id);
    this.logger.info({ mail: row.id, kind: row.kind, attempt: row.attempts }, 'mail sent');
  }
}

const notConfigured = () => new DomainError('invalid_config', 'mail is not configured: set notifications.smtp.host (and notifications.smtp.from)');
