import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { expect } from 'chai';
import { serveUntilSignal, watchSignals, type LifecycleApp, type Signals } from '../../src/app/lifecycle.js';
import { createLogger } from '../../src/app/logger.js';
import type { LoadedConfig } from '../../src/config/loader.js';
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

/** The lifecycle's own phases on stand-ins, recording when onReady (systemd's notification) runs. */
function lifecycleStandIn(o: { onListen?: () => void } = {}) {
  const calls: string[] = [];
  const out = new LogCapture();
  const logger = createLogger('info', out);
  // Whether the ready line had been written when onReady ran.
  const readyLogged = () => out.lines.some((l) => l.includes('"msg":"ready"'));
  const app = {
    config: { shutdown: { grace_ms: 50 } },
    logger,
    db: { embedded: null, close: async () => void calls.push('database closed') },
    migrations: { status: async () => ({ applied: [], pending: [] }) },
    http: {
      listen: async () => {
        calls.push('listen');
        o.onListen?.();
        return { host: '127.0.0.1', port: 1 };
      },
      close: async () => void calls.push('http closed'),
    },
    startHooks: [],
    stopHooks: [],
  } as unknown as LifecycleApp;
  const emitter = new EventEmitter();
  const signals: Signals = { on: (s, h) => void emitter.on(s, h), off: (s, h) => void emitter.off(s, h) };
  const watch = watchSignals(signals, logger);
  return { app, calls, watch, emitter, readyLogged };
}

describe('serve: readiness is notified after the ready line, and only then', () => {
  const load = () => ({}) as LoadedConfig;

  it('onReady runs once, after listen and the ready line, before any stop', async () => {
    const { app, calls, watch, emitter, readyLogged } = lifecycleStandIn();
    const serving = serveUntilSignal(app, { migrate: false, watch, load, onReady: () => calls.push(`onReady (ready logged: ${readyLogged()})`) });
    await new Promise((r) => setTimeout(r, 20));
    emitter.emit('SIGTERM');
    await serving;
    watch.dispose();
    expect(calls).to.deep.equal(['listen', 'onReady (ready logged: true)', 'http closed', 'database closed']);
  });

  it('a stop signal during startup: no ready, so onReady never runs', async () => {
    let emit: () => void = () => undefined;
    const { app, calls, watch, emitter } = lifecycleStandIn({ onListen: () => emit() });
    emit = () => emitter.emit('SIGTERM');
    await serveUntilSignal(app, { migrate: false, watch, load, onReady: () => calls.push('onReady') });
    watch.dispose();
    expect(calls).to.deep.equal(['listen', 'http closed', 'database closed']);
  });

  it('a failed startup (listen throws): onReady never runs', async () => {
    const { app, calls, watch } = lifecycleStandIn({
      onListen: () => {
        throw new Error('EADDRINUSE');
      },
    });
    let err: Error | null = null;
    try {
      await serveUntilSignal(app, { migrate: false, watch, load, onReady: () => calls.push('onReady') });
    } catch (e) {
      err = e as Error;
    }
    watch.dispose();
    expect(err?.message).to.equal('EADDRINUSE');
    expect(calls).to.deep.equal(['listen', 'http closed', 'database closed']);
  });
});
