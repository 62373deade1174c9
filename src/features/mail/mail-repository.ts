import type { Knex } from 'knex';

export type MailOutcome = 'queued' | 'sent' | 'retrying' | 'failed';

export interface MailLogRow {
  id: string;
  org_id: string | null;
  kind: string;
  to: string[];
  subject: string;
  outcome: MailOutcome;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  sent_at: Date | null;
}

/** The longest error text kept per message (an SMTP server's answer can be long). */
const MAX_ERROR_CHARS = 1000;

/**
 * mail_log: one row per message, updated on every delivery attempt. Rows are addressed by their
 * own id (the queued task carries it): mail_log may hold rows of no org (test mail), and is, like
 * audit_log, an exception to org_id leading every key (see its migration).
 */
export class MailLogRepository {
  constructor(private readonly knex: Knex) {}

  async insert(entry: { orgId: string | null; kind: string; to: string[]; subject: string }): Promise<string> {
    const [row] = await this.knex('mail_log')
      .insert({ org_id: entry.orgId, kind: entry.kind, to: entry.to, subject: entry.subject, outcome: 'queued' })
      .returning('id');
    return (row as { id: string }).id;
  }

  /**
   * Record an attempt before it is made, so a crash during it still shows up: `attempt` is the
   * queue's own count (a claim that failed before this ran still counted there). Returns the row
   * as it now is, or undefined when it is gone (its org was deleted while the message waited).
   */
  async beginAttempt(id: string, attempt: number): Promise<MailLogRow | undefined> {
    const [row] = await this.knex<MailLogRow>('mail_log')
      .where({ id })
      .whereNot({ outcome: 'sent' })
      .update({ attempts: attempt })
      .returning('*');
    return row ?? (await this.knex<MailLogRow>('mail_log').where({ id }).first());
  }

  async markSent(id: string): Promise<void> {
    await this.knex('mail_log').where({ id }).update({ outcome: 'sent', sent_at: this.knex.fn.now(), last_error: null });
  }

  async markFailed(id: string, error: string, final: boolean): Promise<void> {
    await this.knex('mail_log')
      .where({ id })
      .update({ outcome: final ? 'failed' : 'retrying', last_error: error.slice(0, MAX_ERROR_CHARS) });
  }

  async findById(id: string): Promise<MailLogRow | undefined> {
    return this.knex<MailLogRow>('mail_log').where({ id }).first();
  }
}
