import { pino } from 'pino';
import { runCli } from './cli/program.js';

// Log lines are buffered up to 4 KiB and flushed at least every second (and at exit): under load
// that turns one write system call per request into one per few dozen requests.
const logStdout = pino.destination({ fd: 1, sync: false, minLength: 4096 });
setInterval(() => logStdout.flush(), 1000).unref();
// The daemon's own copy of the environment; NOTIFY_SOCKET (systemd readiness) is for the daemon
// alone, so the processes it starts (PostgreSQL, pg_dump) do not inherit it.
const env = { ...process.env };
delete process.env.NOTIFY_SOCKET;
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
  signals: process,
});
logStdout.flushSync();
process.exit(exitCode);
