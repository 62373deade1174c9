import type { Knex } from 'knex';

export interface TotpRow {
  user_id: string;
  /** SecretBox-sealed base32 seed; never the seed itself. */
  secret_enc: string;
  enabled_at: Date | null;
  last_step: number | null;
  created_at: Date;
}

// pg returns bigint as a string; time steps (~5.9e7 today) fit a JS number comfortably.
function toRow(r: Omit<TotpRow, 'last_step'> & { last_step: string | number | null }): TotpRow {
  return { ...r, last_step: r.last_step === null ? null : Number(r.last_step) };
}

/** TOTP enrolments and recovery codes. The checks that must not race are single SQL statements. */
export class TotpRepository {
  constructor(private readonly knex: Knex) {}

  async find(userId: string): Promise<TotpRow | undefined> {
    const row = await this.knex('user_totp').where({ user_id: userId }).first();
    return row ? toRow(row) : undefined;
  }

  /**
   * Store a new pending seed, replacing a pending one; leaves an enabled enrolment alone.
   * Returns false when 2FA is already enabled (nothing written).
   */
  async savePending(userId: string, secretEnc: string): Promise<boolean> {
    const { rowCount } = await this.knex.raw(
      `insert into user_totp (user_id, secret_enc, enabled_at, last_step, created_at)
       values (?, ?, null, null, now())
       on conflict (user_id) do update
         set secret_enc = excluded.secret_enc, last_step = null, created_at = now()
         where user_totp.enabled_at is null`,
      [userId, secretEnc],
    );
    return rowCount === 1;
  }

  /**
   * Turn a pending enrolment on, recording the step of the code that proved it, and replace the
   * recovery codes. False when it was not pending any more (enabled concurrently, or removed).
   */
  async enable(userId: string, step: number, recoveryHashes: string[]): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const updated = await trx('user_totp')
        .where({ user_id: userId })
        .whereNull('enabled_at')
        .update({ enabled_at: trx.fn.now(), last_step: step });
      if (updated !== 1) return false;
      await trx('recovery_codes').where({ user_id: userId }).delete();
      await trx('recovery_codes').insert(recoveryHashes.map((code_hash) => ({ user_id: userId, code_hash })));
      return true;
    });
  }

  /**
   * Compare-and-set of the last accepted time step: true for exactly one caller per step, so two
   * concurrent logins presenting the same code cannot both pass.
   */
  async claimStep(userId: string, step: number): Promise<boolean> {
    const updated = await this.knex('user_totp')
      .where({ user_id: userId })
      .whereNotNull('enabled_at')
      .andWhere((q) => q.whereNull('last_step').orWhere('last_step', '<', step))
      .update({ last_step: step });
    return updated === 1;
  }

  /** Spend an unused recovery code; true for exactly one caller. */
  async useRecoveryCode(userId: string, codeHash: string): Promise<boolean> {
    const updated = await this.knex('recovery_codes')
      .where({ user_id: userId, code_hash: codeHash })
      .whereNull('used_at')
      .update({ used_at: this.knex.fn.now() });
    return updated === 1;
  }

  async remainingRecoveryCodes(userId: string): Promise<number> {
    const row = await this.knex('recovery_codes').where({ user_id: userId }).whereNull('used_at').count<{ n: string }[]>({ n: '*' }).first();
    return Number(row?.n ?? 0);
  }

  /** Remove the enrolment (pending or enabled) and every recovery code. */
  async remove(userId: string): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx('recovery_codes').where({ user_id: userId }).delete();
      await trx('user_totp').where({ user_id: userId }).delete();
    });
  }
}
