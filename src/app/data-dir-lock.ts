import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { DomainError } from '../core/errors.js';

/** Held by `sentinel serve` for its whole life: one daemon per data directory. */
export interface DataDirLock {
  /** `<data_dir>/sentinel.pid`: for people and scripts only; the lock is the socket. */
  readonly pidFile: string;
  release(): Promise<void>;
}

const ASK_TIMEOUT_MS = 2000;

/**
 * The lock is a Linux abstract unix socket named after the data directory's real path. Node has
 * no flock(), and a lock file would outlive a SIGKILLed daemon (or, with "remove it if stale",
 * let two racing starters both win); the kernel frees an abstract socket when its process dies,
 * however it dies, and binding is atomic. The holder answers its pid on the socket, so the
 * refusal can name it. Abstract names are per network namespace: daemons in different network
 * namespaces (containers sharing a volume) do not see each other's lock.
 */
export function lockAddress(dataDir: string): string {
  if (process.platform !== 'linux') {
    // Other systems have no abstract namespace; a socket file works there, without the kernel
    // cleanup (a stale file after a crash is detected by a refused connection and replaced).
    return join(dataDir, 'sentinel.sock');
  }
  return `\0sentinel-${createHash('sha256').update(realpathSync(dataDir)).digest('hex')}`;
}

function listen(server: Server, address: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException) => resolve(err);
    server.once('error', onError);
    server.listen(address, () => {
      server.off('error', onError);
      resolve(null);
    });
  });
}

/** The pid the holder answers, 0 when it answers nothing usable, null when nobody listens. */
function askHolder(address: string): Promise<number | null> {
  return new Promise((resolve) => {
    let answer = '';
    const sock = createConnection(address);
    sock.setTimeout(ASK_TIMEOUT_MS, () => sock.destroy());
    sock.on('data', (c: Buffer) => (answer += c.toString('utf8')));
    sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? null : 0));
    sock.once('close', () => {
      const pid = Number(answer.trim());
      resolve(Number.isInteger(pid) && pid > 0 ? pid : 0);
    });
  });
}

/**
 * Take the data directory for this process, or throw (exit 1) naming the daemon that has it.
 * Call before anything touches the embedded PostgreSQL or the secrets.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const address = lockAddress(dataDir);
  const server = createServer((sock) => {
    sock.on('error', () => undefined);
    sock.end(`${process.pid}\n`);
  });
  for (let attempt = 0; ; attempt++) {
    const err = await listen(server, address);
    if (!err) break;
    if (err.code !== 'EADDRINUSE') throw err;
    const holder = await askHolder(address);
    if (holder === null && attempt < 3) {
      // The holder exited between our bind and our question (or, off Linux, left a stale file).
      if (!address.startsWith('\0')) rmSync(address, { force: true });
      continue;
    }
    throw new DomainError(
      'unavailable',
      holder
        ? `data directory in use by pid ${holder} (${dataDir}): another 'sentinel serve' runs on it; stop it first`
        : `data directory in use by another process (${dataDir}): its lock ${address.startsWith('\0') ? 'socket' : address} is held`,
    );
  }
  // The lock never keeps the process alive by itself; it lasts as long as the process does.
  server.unref();
  const pidFile = join(dataDir, 'sentinel.pid');
  writeFileSync(pidFile, `${process.pid}\n`);
  let released = false;
  return {
    pidFile,
    async release() {
      if (released) return;
      released = true;
      try {
        if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile, { force: true });
      } catch {
        // already gone: nothing to tidy
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
