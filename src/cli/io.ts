import type { DestinationStream } from 'pino';

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
  /** Resolves when the daemon should stop; production wires SIGTERM/SIGINT here. */
  signals: SignalSource;
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
