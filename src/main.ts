import { fstatSync } from 'node:fs';
import { pino } from 'pino';
import { journaldStreams } from './cli/io.js';
import { runCli } from './cli/program.js';

// Log lines are buffered up to 4 KiB and flushed at least every second (and at exit): under load
// that turns one write system call per request into one per few dozen requests.
const logStdout = pino.destination({ fd: 1, sync: false, minLength: 4096 });
setInterval(() => logStdout.flush(), 1000).unref();
// The daemon's own copy of the environment; NOTIFY_SOCKET (systemd readiness) is for the daemon
// alone, so the processes it starts (PostgreSQL, pg_dump) do not inherit it.
const env = { ...process.env };
delete process.env.NOTIFY_SOCKET;
// systemd sets JOURNAL_STREAM to the device:inode of the journal stream it gave the service; what
// the service starts inherits the variable, so it counts for a stream only if it names that stream.
const journald = journaldStreams(env.JOURNAL_STREAM, (fd) => {
  try {
    return fstatSync(fd, { bigint: true });
  } catch {
    return undefined;
  }
});
const exitCode = await runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
  env,
  logStdout,
  logStderr: pino.destination({ fd: 2, sync: true }),
  journald,
  signals: process,
});
logStdout.flushSync();
process.exit(exitCode);
