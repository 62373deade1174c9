import type { DestinationStream } from 'pino';
import { journalStreamIs } from '../app/logger.js';

/** Everything a command touches outside the database, injected so tests drive the CLI in process. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
  env: Record<string, string | undefined>;
  /** Daemon logs (stdout in production). */
  logStdout: DestinationStream;
  /** Logs of short commands (stderr in production, keeping stdout clean for --json). */
  logStderr: DestinationStream;
  /**
   * Whether each of those streams is connected to the journal (JOURNAL_STREAM names its
   * device:inode); its lines then carry their syslog priority. Absent: neither is.
   */
  journald?: { stdout: boolean; stderr: boolean };
  /** Resolves when the daemon should stop; production wires SIGTERM/SIGINT here. */
  signals: SignalSource;
}

/**
 * CliIO.journald from JOURNAL_STREAM and the device:inode of file descriptors 1 and 2 (`stat`
 * returns undefined for one that cannot be examined).
 */
export function journaldStreams(
  journalStream: string | undefined,
  stat: (fd: 1 | 2) => { dev: number | bigint; ino: number | bigint } | undefined,
): { stdout: boolean; stderr: boolean } {
  return { stdout: journalStreamIs(journalStream, stat(1)), stderr: journalStreamIs(journalStream, stat(2)) };
}

export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', handler: () => void): void;
  off(signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', handler: () => void): void;
}

export function printTable(io: CliIO, headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  io.stdout(`${line(headers)}\n`);
  for (const r of rows) io.stdout(`${line(r)}\n`);
}

export function printJson(io: CliIO, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}
