import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { packageRoot } from '../../src/config/paths.js';

export const BIN = join(packageRoot(), 'bin', 'sentinel');

export interface Daemon {
  proc: ChildProcess;
  port: number;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Run the real `bin/sentinel serve` as a child process and wait for its "ready" log line. */
export async function startDaemon(env: Record<string, string>, args: string[] = ['serve', '--migrate'], timeoutMs = 60_000): Promise<Daemon> {
  const proc = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not ready in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      const m = /"port":(\d+)[^\n]*"msg":"ready"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${code}) before ready:\n${out}`));
    });
  });
  return { proc, port, stdout: () => out, exited };
}

/** Run `bin/sentinel ARGS` to completion. */
export function runBin(args: string[], env: Record<string, string>, input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env }, input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** PIDs of PostgreSQL servers running on the cluster in `pgdata`. */
export function postgresPids(pgdata: string): number[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout;
  return ps
    .split('\n')
    .filter((l) => l.includes(`postgres -D ${pgdata} `))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The daemon's logs go to a file (as to journald in production, not through a pipe this process
 * must drain; for benchmarks, and to give it a stdout whose device:inode is known before it
 * starts), and readiness is polled on a fixed port. `stdout()` reads the file.
 */
export async function startDaemonLoggingTo(
  logFile: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
  opts: { args?: string[]; port?: number } = {},
): Promise<Daemon> {
  const port = opts.port ?? (await freePort());
  const fd = openSync(logFile, 'a');
  const proc = spawn(process.execPath, [BIN, ...(opts.args ?? ['serve', '--migrate'])], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env, SENTINEL_HTTP_PORT: String(port) },
    stdio: ['ignore', fd, fd],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`daemon exited (${proc.exitCode}); see ${logFile}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/api/v1/health/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`daemon not ready in ${timeoutMs} ms; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, port, stdout: () => readFileSync(logFile, 'utf8'), exited };
}
