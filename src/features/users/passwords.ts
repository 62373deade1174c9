import bcrypt from 'bcrypt';
import { DomainError } from '../../core/errors.js';

export const MIN_PASSWORD_CHARS = 8;
/** bcrypt only reads the first 72 bytes; longer passwords are refused rather than silently truncated. */
export const MAX_PASSWORD_BYTES = 72;

/**
 * The rules every new password meets, whoever sets it (the schemas say the same in characters for
 * the document; bytes are what bcrypt reads). `field` is the input's name in the error path:
 * `body/password`, `body/new_password`.
 */
export function checkPassword(password: string, field = 'password'): void {
  const path = `body/${field}`;
  const bytes = Buffer.byteLength(password, 'utf8');
  if (bytes > MAX_PASSWORD_BYTES) {
    throw new DomainError('validation_failed', `password is ${bytes} bytes long; the limit is ${MAX_PASSWORD_BYTES} bytes (bcrypt ignores anything beyond)`, {
      errors: [{ path, message: `must be at most ${MAX_PASSWORD_BYTES} bytes` }],
    });
  }
  if ([...password].length < MIN_PASSWORD_CHARS) {
    throw new DomainError('validation_failed', `password must be at least ${MIN_PASSWORD_CHARS} characters`, {
      errors: [{ path, message: `must be at least ${MIN_PASSWORD_CHARS} characters` }],
    });
  }
}

/** bcrypt's async API runs on the libuv thread pool, keeping the event loop free. */
export class PasswordHasher {
  constructor(private readonly rounds: number) {}

  hash(password: string, field?: string): Promise<string> {
    checkPassword(password, field);
    return bcrypt.hash(password, this.rounds);
  }

  verify(password: string, hash: string): Promise<boolean> {
    return bcrypt.compare(password, hash);
  }
}
