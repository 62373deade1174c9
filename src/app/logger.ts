import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/schema.js';

/**
 * Paths pino censors wherever they appear in a log object. Code must not log secrets in the
 * first place; this is the second line of defence.
 */
export const REDACT_PATHS = [
  'password', '*.password', 'password_hash', '*.password_hash',
  'token', '*.token', 'access_token', '*.access_token', 'refresh_token', '*.refresh_token',
  'secret', '*.secret', 'api_key', '*.api_key', 'totp_code', '*.totp_code', 'authorization', '*.authorization',
  'headers.authorization', 'req.headers.authorization', 'req.headers.cookie', 'url', '*.url', 'database.url',
];

export interface LoggerOptions {
  /** Prefix each line with its syslog priority (`<N>`), which systemd reads from a service's stdout/stderr. */
  journald?: boolean;
}

/**
 * True when a stream is connected to the journal: systemd sets JOURNAL_STREAM to the
 * `<device>:<inode>` of the stream it connected to a service's stdout/stderr, and processes the
 * service starts inherit the variable whatever their own output is (`sentinel … > file` run from
 * a unit). So the value counts only when it names the stream the log is written to: main passes
 * the fstat of that file descriptor; nothing is looked up here.
 */
export function journalStreamIs(journalStream: string | undefined, stream: { dev: number | bigint; ino: number | bigint } | undefined): boolean {
  if (typeof journalStream !== 'string' || stream === undefined) return false;
  const m = /^([0-9]{1,20}):([0-9]{1,20})$/.exec(journalStream);
  return m !== null && BigInt(m[1]) === BigInt(stream.dev) && BigInt(m[2]) === BigInt(stream.ino);
}

/** pino's numeric level → syslog priority: fatal 2 (crit), error 3, warn 4, info 6, debug/trace 7. */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

const PREFIXES = ['<0>', '<1>', '<2>', '<3>', '<4>', '<5>', '<6>', '<7>'];

/**
 * A destination that writes `<N>` before each line into another one (the same asynchronous
 * SonicBoom: no worker thread). pino hands destinations marked with its metadata symbol the
 * numeric level of the line it is about to write, so nothing is parsed.
 */
export function journaldDestination(inner: DestinationStream): DestinationStream {
  const dest = {
    [pino.symbols.needsMetadataGsym]: true,
    lastLevel: 30,
    write(line: string) {
      return inner.write(PREFIXES[syslogPriority(dest.lastLevel)] + line);
    },
    flush(cb?: (err?: Error) => void) {
      const f = (inner as { flush?: (cb?: (err?: Error) => void) => void }).flush;
      if (typeof f === 'function') f.call(inner, cb);
      else cb?.();
    },
  };
  return dest as DestinationStream;
}

export function createLogger(level: LogLevel, destination?: DestinationStream, opts: LoggerOptions = {}): Logger {
  const out = destination ?? pino.destination({ fd: 1, sync: false });
  return pino(
    {
      level,
      base: { service: 'sentinel' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.journald ? journaldDestination(out) : out,
  );
}
