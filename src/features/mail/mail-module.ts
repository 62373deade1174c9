import { DomainError } from '../../core/errors.js';
import type { Mailer } from '../../core/mail.js';
import { defineModule, type TaskSpec } from '../feature-module.js';
import { MailLogRepository } from './mail-repository.js';
import { MailService, type MailEnqueue, type MailTaskPayload } from './mail-service.js';
import { smtpSender } from './smtp-sender.js';

interface MailServices {
  mail: MailService;
}

/*
 * Retries: 1 s, 2 s, 4 s … (doubling) up to 10 min between attempts, then every 10 min, over 24
 * attempts: about 2 h 27 min in all, long enough to ride out an SMTP server's outage of a couple
 * of hours (the first retries stay quick for a restart); a longer one ends 'failed' in mail_log,
 * where the operator sees it (and `sentinel mail test` shows the server's answer).
 */
export const MAIL_MAX_ATTEMPTS = 24;

export const mailSendTask: TaskSpec<MailServices, MailTaskPayload> = {
  name: 'mail.send',
  maxAttempts: MAIL_MAX_ATTEMPTS,
  backoffMs: 1000,
  maxBackoffMs: 10 * 60_000,
  timeoutMs: 90_000,
  run: (s, payload, signal, attempt) => s.mail.deliver(payload, attempt, signal),
};

/** The one mailer (nodemailer over notifications.smtp), provided to other features as `mailer`. */
export const mailModule = defineModule({
  name: 'mail',
  requires: [],
  provides: ['mailer'],
  tasks: [mailSendTask],
  build(kits) {
    const smtp = kits.config.notifications.smtp;
    if (smtp.host && !smtp.from.trim()) {
      throw new DomainError('invalid_config', 'invalid configuration:\n  notifications.smtp.from: required when notifications.smtp.host is set', {
        errors: [{ path: 'notifications.smtp.from', message: 'required when notifications.smtp.host is set' }],
      });
    }
    const sender = smtp.host ? smtpSender(smtp) : null;
    // Stored in PostgreSQL before send() resolves, in the daemon and in a CLI command alike; the
    // daemon's queue workers deliver it (a CLI command's mail waits for the daemon).
    const enqueue: MailEnqueue = (payload) => kits.queue.enqueue(mailSendTask.name, payload);
    const mail = new MailService(new MailLogRepository(kits.db.knex), sender, enqueue, kits.logger);
    return {
      provides: { mailer: mail as Mailer },
      services: { mail },
      stop: sender ? [{ name: 'smtp transport', timeoutMs: 1000, run: async () => sender.close() }] : [],
    };
  },
});
