import type { AppEnv } from '../app/with-app.js';
import { DomainError } from '../core/errors.js';
import type { CliIO } from './io.js';

/*
 * What every command file shares. program.ts imports the command files and hands them a
 * CliContext; command files import this module, never program.ts (no import cycle).
 */

export type { CliIO } from './io.js';

export interface CliContext {
  io: CliIO;
  /** The global options, read when a command runs. */
  appEnv(daemon?: boolean): AppEnv;
}

/** A usage mistake: exit code 2, the message on stderr. */
export const usage = (message: string): DomainError => new DomainError('bad_request', message);
