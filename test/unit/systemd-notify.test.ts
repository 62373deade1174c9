import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { expect } from 'chai';
import { createLogger } from '../../src/app/logger.js';
import { notifyReady, validNotifySocket, type SpawnFn } from '../../src/app/systemd-notify.js';
import { LogCapture } from '../support/capture.js';

/** A spawn stand-in that records its calls and ends each child as told. */
function fakeSpawn(end: { code?: number; error?: Error; stderr?: string; throws?: Error }) {
  const calls: { command: string; args: string[]; options: SpawnOptions }[] = [];
  const spawn: SpawnFn = (command, args, options) => {
    calls.push({ command, args, options });
    if (end.throws) throw end.throws;
    const child = new EventEmitter() as ChildProcess;
    const stderr = new PassThrough();
    (child as unknown as { stderr: PassThrough }).stderr = stderr;
    setImmediate(() => {
      if (end.error) return void child.emit('error', end.error);
      if (end.stderr) stderr.write(end.stderr);
      setImmediate(() => child.emit('close', end.code ?? 0, null));
    });
    return child;
  };
  return { spawn, calls };
}

function logs() {
  const out = new LogCapture();
  const logger = createLogger('debug', out);
  const records = () => out.lines.map((l) => JSON.parse(l) as { level: string; msg: string; exit_code?: number; stderr?: string });
  return { logger, records };
}

describe('systemd readiness (systemd-notify --ready)', () => {
  it('without NOTIFY_SOCKET (unset or empty) runs nothing', async () => {
    for (const notifySocket of [undefined, '']) {
      const { spawn, calls } = fakeSpawn({});
      const { logger, records } = logs();
      expect(await notifyReady({ notifySocket, path: '/usr/bin', pid: 42, logger, spawn })).to.equal(false);
      expect(calls).to.deep.equal([]);
      expect(records()).to.deep.equal([]);
    }
  });

  it('with NOTIFY_SOCKET runs systemd-notify --ready --pid=<pid> with the socket and PATH only in its environment', async () => {
    const { spawn, calls } = fakeSpawn({ code: 0 });
    const { logger } = logs();
    expect(await notifyReady({ notifySocket: '/run/systemd/notify', path: '/usr/local/bin:/usr/bin', pid: 4242, logger, spawn })).to.equal(true);
    expect(calls).to.have.length(1);
    expect(calls[0].command).to.equal('systemd-notify');
    expect(calls[0].args).to.deep.equal(['--ready', '--pid=4242']);
    expect(calls[0].options.env).to.deep.equal({ NOTIFY_SOCKET: '/run/systemd/notify', PATH: '/usr/local/bin:/usr/bin' });
  });

  it('accepts an abstract socket name (@…) and leaves PATH out when the daemon has none', async () => {
    const { spawn, calls } = fakeSpawn({ code: 0 });
    expect(await notifyReady({ notifySocket: '@/org/freedesktop/systemd1/notify/123', path: undefined, pid: 1, logger: logs().logger, spawn })).to.equal(true);
    expect(calls[0].options.env).to.deep.equal({ NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify/123' });
  });

  it('refuses a NOTIFY_SOCKET that is not a socket path (relative, NUL byte, longer than sun_path, newline-only): warns, runs nothing', async () => {
    for (const bad of ['notify', 'run/notify', '/run/no\0tify', `/${'a'.repeat(107)}`, '\n', ' /run/notify']) {
      const { spawn, calls } = fakeSpawn({});
      const { logger, records } = logs();
      expect(await notifyReady({ notifySocket: bad, path: '/usr/bin', pid: 1, logger, spawn }), JSON.stringify(bad)).to.equal(false);
      expect(calls, JSON.stringify(bad)).to.deep.equal([]);
      expect(records().map((r) => `${r.level}:${r.msg}`)).to.deep.equal(['warn:NOTIFY_SOCKET is not a socket path; readiness not notified']);
    }
    expect(validNotifySocket(`/${'a'.repeat(106)}`)).to.equal(true);
  });

  it('a failing systemd-notify is logged as an error with its exit code and stderr, never thrown', async () => {
    const { spawn } = fakeSpawn({ code: 1, stderr: 'Failed to notify init system: Permission denied\n' });
    const { logger, records } = logs();
    expect(await notifyReady({ notifySocket: '/run/notify', path: '/usr/bin', pid: 1, logger, spawn })).to.equal(false);
    const r = records().find((x) => x.level === 'error');
    expect(r?.exit_code).to.equal(1);
    expect(r?.stderr).to.equal('Failed to notify init system: Permission denied');
  });

  it('systemd-notify missing (spawn error or throw) is logged as an error, never thrown', async () => {
    for (const end of [{ error: Object.assign(new Error('spawn systemd-notify ENOENT'), { code: 'ENOENT' }) }, { throws: new Error('EAGAIN') }]) {
      const { spawn } = fakeSpawn(end);
      const { logger, records } = logs();
      expect(await notifyReady({ notifySocket: '/run/notify', path: '/nowhere', pid: 1, logger, spawn })).to.equal(false);
      expect(records().map((x) => `${x.level}:${x.msg}`)).to.deep.equal(['error:could not run systemd-notify; systemd was not told the daemon is ready']);
    }
  });
});
