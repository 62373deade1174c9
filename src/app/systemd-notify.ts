import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Logger } from 'pino';

/*
 * Readiness for systemd's Type=notify without a native module: Node has no unix datagram
 * sockets, so once the daemon is ready it runs `systemd-notify --ready --pid=<its pid>`.
 * The helper is a process of its own, so the unit needs NotifyAccess=all (the daemon's
 * PostgreSQL children are not built with systemd support and never see NOTIFY_SOCKET: main
 * takes it out of the environment children inherit). systemd-notify (systemd ≥ 246) waits until
 * the manager has processed the message (BARRIER=1) before it exits, so the message is not lost
 * to the race where the helper exits before systemd has found its control group.
 */

export type SpawnFn = (command: string, args: string[], options: SpawnOptions) => ChildProcess;

export interface NotifyReadyOptions {
  /** NOTIFY_SOCKET as systemd set it (undefined outside a Type=notify unit: nothing is run). */
  notifySocket: string | undefined;
  /** PATH to find systemd-notify on (the daemon's own). */
  path: string | undefined;
  pid: number;
  logger: Logger;
  spawn?: SpawnFn;
}

/** A path (at most sun_path's 107 bytes) or an abstract socket name (`@…`), as systemd passes it. */
export function validNotifySocket(value: string): boolean {
  return /^[/@]/.test(value) && !value.includes('\0') && Buffer.byteLength(value) <= 107;
}

/**
 * Tell systemd the daemon is ready. Resolves true when systemd-notify reported success, false
 * when it failed or could not run (logged: systemd will then time out the start), and at once
 * with false (running nothing) when NOTIFY_SOCKET is not set.
 */
export function notifyReady(o: NotifyReadyOptions): Promise<boolean> {
  const socket = o.notifySocket;
  if (socket === undefined || socket === '') return Promise.resolve(false);
  if (!validNotifySocket(socket)) {
    o.logger.warn({ notify_socket: JSON.stringify(socket).slice(0, 200) }, 'NOTIFY_SOCKET is not a socket path; readiness not notified');
    return Promise.resolve(false);
  }
  const env: Record<string, string> = { NOTIFY_SOCKET: socket };
  if (o.path) env.PATH = o.path;
  return new Promise((resolve) => {
    let stderr = '';
    let child: ChildProcess;
    try {
      child = (o.spawn ?? nodeSpawn)('systemd-notify', ['--ready', `--pid=${o.pid}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      o.logger.error({ err: (err as Error).message }, 'could not run systemd-notify; systemd was not told the daemon is ready');
      resolve(false);
      return;
    }
    child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-2000)));
    child.once('error', (err) => {
      o.logger.error({ err: err.message }, 'could not run systemd-notify; systemd was not told the daemon is ready');
      resolve(false);
    });
    child.once('close', (code) => {
      if (code === 0) {
        o.logger.debug('systemd notified: ready');
        resolve(true);
      } else {
        o.logger.error({ exit_code: code, stderr: stderr.trim() }, 'systemd-notify --ready failed; systemd was not told the daemon is ready');
        resolve(false);
      }
    });
  });
}
