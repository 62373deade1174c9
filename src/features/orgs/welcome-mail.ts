import type { Logger } from 'pino';
import type { Mailer } from '../../core/mail.js';

/**
 * The welcome email to an organization's first owner (issue 9), through the one mailer (the mail
 * feature, on the queue). Sent after the membership is committed: the email is a courtesy, so a
 * mailer that cannot take it is logged and the membership stands. Nothing secret goes in it.
 */
export class WelcomeMail {
  constructor(
    /** The mail feature's `mailer` (a later module: used only at run time). */
    private readonly mailer: Mailer,
    private readonly logger: Logger,
  ) {}

  async firstOwnerAdded(org: { id: string; slug: string; name: string }, user: { id: string; email: string }): Promise<void> {
    if (!this.mailer.configured) return;
    const text = [
      `Hello,`,
      ``,
      `you are now the owner of the organization "${org.name}" (${org.slug}) on Sentinel.`,
      ``,
      `As its owner you can add members and administrators, create API keys for the agents and`,
      `collectors that send telemetry to "${org.slug}", set its limits and retention, and read its`,
      `audit log. Sign in with ${user.email}.`,
      ``,
      `If you did not expect this, tell your Sentinel administrator.`,
      ``,
    ].join('\n');
    try {
      await this.mailer.send({ kind: 'welcome', orgId: org.id, to: [user.email], subject: `Welcome to Sentinel: you own ${org.name}`, text });
    } catch (err) {
      this.logger.warn({ err, org: org.slug, user: user.id }, 'the welcome email could not be queued');
    }
  }
}
