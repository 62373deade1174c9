import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { serveUntilSignal, startApp, stopApp, watchSignals, type LifecycleApp, type Signals } from '../../src/app/lifecycle.js';
import { createLogger } from '../../src/app/logger.js';
import { PoolRegistry } from '../../src/db/pool-stats.js';
import type { Config } from '../../src/config/schema.js';
import type { Hook } from '../../src/features/feature-module.js';
import { LogCapture } from '../support/capture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The lifecycle's phases on stand-ins that record what ran, in which order: the phases and the
 * hooks are the lifecycle's; the database, migrations and HTTP server are stubs.
 */
function fakeApp(o: { pending?: string[]; startHooks?: Hook[]; stopHooks?: Hook[]; graceMs?: number } = {}) {
  const calls: string[] = [];
  const logs = new LogCapture();
  const hook = (name: string, extra: Partial<Hook> = {}): Hook => ({ name, timeoutMs: 1000, run: async () => void calls.push(name), ...extra });
  let pending = o.pending ?? [];
  const app: LifecycleApp = {
    config: { shutdown: { grace_ms: o.graceMs ?? 100 } } as Config,
    logger: createLogger('debug', logs),
    db: { knex: null as never, url: '', embedded: null, pools: new PoolRegistry(), ping: async () => undefined, close: async () => void calls.push('database closed') },
    migrations: {
      status: async () => {
        calls.push('migration status');
        return { applied: [], pending };
      },
      latest: async () => {
        calls.push('migrations applied');
        const done = pending;
        pending = [];
        return done;
      },
      rollback: async () => [],
      rollbackPlan: async () => ({ migrations: [], tables: [], firstBatch: false }) as never,
    },
    http: {
      app: null as never,
      callback: () => null as never,
      listen: async () => {
        calls.push('listen');
        return { host: '127.0.0.1', port: 1234 };
      },
      close: async () => void calls.push('http closed'),
    },
    startHooks: o.startHooks ?? [hook('feed started'), hook('partitions ahead')],
    stopHooks: o.stopHooks ?? [hook('feed stopped'), hook('writer stopped'), hook('query pool closed')],
  };
  const messages = () => logs.lines.map((l) => JSON.parse(l) as { msg: string; hook?: string; timeout_ms?: number; level: string });
  return { app, calls, hook, messages };
}

describe('lifecycle: start and stop phases', () => {
  it('starts in order: migrate or check → start hooks in list order → listen → ready', async () => {
    const { app, calls, messages } = fakeApp({ pending: ['20260101000000_create_things.ts'] });
    const addr = await startApp(app, { migrate: true });
    expect(addr).to.deep.equal({ host: '127.0.0.1', port: 1234 });
    expect(calls).to.deep.equal(['migration status', 'migrations applied', 'feed started', 'partitions ahead', 'listen']);
    expect(messages().map((m) => m.msg).filter((m) => m === 'migrations applied' || m === 'ready')).to.deep.equal(['migrations applied', 'ready']);
  });

  it('refuses pending migrations without --migrate, before any start hook, and stops what was opened', async () => {
    const { app, calls } = fakeApp({ pending: ['20260101000000_create_things.ts'] });
    let error: unknown;
    await startApp(app, { migrate: false }).catch((err: unknown) => (error = err));
    expect((error as Error).message).to.contain("run 'sentinel migrate latest'");
    expect(calls).to.deep.equal(['migration status', 'http closed', 'query pool closed', 'writer stopped', 'feed stopped', 'database closed']);
  });

  it('stops in reverse: HTTP server first, then the stop hooks in reverse list order, the database last; once', async () => {
    const { app, calls } = fakeApp();
    await startApp(app, { migrate: false });
    calls.length = 0;
    await Promise.all([stopApp(app), stopApp(app)]);
    await stopApp(app);
    expect(calls).to.deep.equal(['http closed', 'query pool closed', 'writer stopped', 'feed stopped', 'database closed']);
  });

  it('a stop hook that overruns its timeout is logged and left behind; a failing one too; the rest still stop', async () => {
    const { calls, hook } = fakeApp();
    const { app, messages } = fakeApp({
      stopHooks: [
        hook('feed stopped'),
        { name: 'stuck writer', timeoutMs: 50, run: () => new Promise<void>(() => undefined) },
        { name: 'broken pool', timeoutMs: 1000, run: async () => Promise.reject(new Error('pool already gone')) },
      ],
    });
    // The other fake's hooks record into `calls`; this app's stubs record into its own list.
    const started = Date.now();
    await stopApp(app);
    const elapsed = Date.now() - started;
    expect(elapsed).to.be.below(1000);
    expect(calls).to.deep.equal(['feed stopped']);
    const errors = messages().filter((m) => m.level === 'error');
    expect(errors.map((m) => [m.msg, m.hook])).to.deep.equal([
      ['error while stopping', 'broken pool'],
      ['stop hook overran its timeout; left behind, stopping the rest', 'stuck writer'],
    ]);
    expect(errors[1].timeout_ms).to.equal(50);
  });

  it('a start hook that overruns fails the start naming it, and what had started is stopped', async () => {
    const { app, calls, hook } = fakeApp();
    app.startHooks = [hook('feed started'), { name: 'retention: partitions ahead', timeoutMs: 50, run: () => sleep(5000).then(() => undefined) }, hook('never reached')];
    let error: unknown;
    await startApp(app, { migrate: false }).catch((err: unknown) => (error = err));
    expect((error as Error).message).to.equal("'retention: partitions ahead' did not finish within 50 ms");
    expect(calls).to.deep.equal(['migration status', 'feed started', 'http closed', 'query pool closed', 'writer stopped', 'feed stopped', 'database closed']);
  });
});

/** Signals as `serve` sees them (process in production): an emitter the test fires. */
function fakeSignals() {
  const emitter = new EventEmitter();
  const signals = emitter as unknown as Signals;
  const installed = () => ['SIGTERM', 'SIGINT', 'SIGHUP'].reduce((n, s) => n + emitter.listenerCount(s), 0);
  return { signals, fire: (s: 'SIGTERM' | 'SIGINT' | 'SIGHUP') => emitter.emit(s), installed };
}

describe('lifecycle: signals during startup (serve)', () => {
  const load = () => {
    throw new Error('no reload in these tests');
  };

  it('a SIGTERM during a start hook: that hook finishes, no later phase runs, what started is stopped in reverse, no "ready"; handlers removed', async () => {
    const { app, calls, hook, messages } = fakeApp({ pending: ['20260101000000_create_things.ts'] });
    const sig = fakeSignals();
    app.startHooks = [
      hook('feed started'),
      hook('partitions ahead', {
        run: async () => {
          sig.fire('SIGTERM');
          calls.push('partitions ahead');
        },
      }),
      hook('never reached'),
    ];
    const watch = watchSignals(sig.signals, app.logger);
    expect(sig.installed()).to.equal(3);
    try {
      await serveUntilSignal(app, { migrate: true, watch, load });
    } finally {
      watch.dispose();
    }
    expect(calls).to.deep.equal([
      'migration status', 'migrations applied', 'feed started', 'partitions ahead',
      'http closed', 'query pool closed', 'writer stopped', 'feed stopped', 'database closed',
    ]);
    const msgs = messages().map((m) => m.msg);
    expect(msgs).to.not.include('ready');
    expect(msgs).to.include('shutdown requested during startup; stopping once the phase under way has finished');
    expect(msgs[msgs.length - 1]).to.equal('stopped before ready');
    expect(sig.installed()).to.equal(0);
  });

  it('a SIGTERM before startApp (while the database was being opened): nothing more starts, the database is closed', async () => {
    const { app, calls } = fakeApp({ pending: ['20260101000000_create_things.ts'] });
    const sig = fakeSignals();
    const watch = watchSignals(sig.signals, app.logger);
    sig.fire('SIGINT');
    await serveUntilSignal(app, { migrate: true, watch, load });
    watch.dispose();
    expect(calls).to.deep.equal(['http closed', 'query pool closed', 'writer stopped', 'feed stopped', 'database closed']);
  });

  it('a SIGTERM during listen: no "ready" (not after "stopped" either), the server is closed', async () => {
    const { app, calls, messages } = fakeApp();
    const sig = fakeSignals();
    const listen = app.http!.listen;
    app.http = { ...app.http!, listen: async () => (sig.fire('SIGTERM'), listen()) };
    const watch = watchSignals(sig.signals, app.logger);
    await serveUntilSignal(app, { migrate: false, watch, load });
    watch.dispose();
    expect(calls.slice(-6)).to.deep.equal(['listen', 'http closed', 'query pool closed', 'writer stopped', 'feed stopped', 'database closed']);
    expect(messages().map((m) => m.msg)).to.not.include('ready');
  });

  it('a failed start throws, stops what started; the watch (disposed by serve in a finally) leaves no handler', async () => {
    const { app, calls, hook } = fakeApp();
    app.startHooks = [hook('feed started'), hook('broken', { run: async () => Promise.reject(new Error('no')) })];
    const sig = fakeSignals();
    const watch = watchSignals(sig.signals, app.logger);
    let error: unknown;
    try {
      await serveUntilSignal(app, { migrate: false, watch, load }).catch((err: unknown) => (error = err));
    } finally {
      watch.dispose();
    }
    expect((error as Error).message).to.equal('no');
    expect(calls).to.include('database closed');
    expect(sig.installed()).to.equal(0);
  });

  it('once ready: SIGHUP reloads, SIGTERM stops ("shutting down" then "stopped"), a second one only warns', async () => {
    const { app, calls, messages } = fakeApp();
    const sig = fakeSignals();
    const watch = watchSignals(sig.signals, app.logger);
    sig.fire('SIGHUP'); // during startup: logged and ignored
    let reloads = 0;
    const serving = serveUntilSignal(app, {
      migrate: false,
      watch,
      load: () => {
        reloads++;
        throw new Error('invalid file');
      },
    });
    // "ready" is logged once listen has answered.
    while (!messages().some((m) => m.msg === 'ready')) await new Promise((r) => setImmediate(r));
    sig.fire('SIGHUP');
    expect(reloads).to.equal(1);
    sig.fire('SIGTERM');
    sig.fire('SIGTERM');
    await serving;
    watch.dispose();
    expect(calls[calls.length - 1]).to.equal('database closed');
    const msgs = messages().map((m) => m.msg);
    expect(msgs).to.include('SIGHUP during startup: ignored (send it again once ready)');
    expect(msgs.indexOf('ready')).to.be.below(msgs.indexOf('shutting down'));
    expect(msgs).to.include('already shutting down');
    expect(msgs[msgs.length - 1]).to.equal('stopped');
  });
});
