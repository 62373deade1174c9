import { expect } from 'chai';
import { startApp, stopApp, type LifecycleApp } from '../../src/app/lifecycle.js';
import { createLogger } from '../../src/app/logger.js';
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
    db: { knex: null as never, url: '', embedded: null, ping: async () => undefined, close: async () => void calls.push('database closed') },
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
  it('starts in order: migrate or check → start hooks in list order → signal handlers → listen → ready', async () => {
    const { app, calls, messages } = fakeApp({ pending: ['20260101000000_create_things.ts'] });
    // serve installs its signal handlers there: a supervisor may signal as soon as it sees "ready".
    const addr = await startApp(app, { migrate: true, beforeListen: () => calls.push('signal handlers') });
    expect(addr).to.deep.equal({ host: '127.0.0.1', port: 1234 });
    expect(calls).to.deep.equal(['migration status', 'migrations applied', 'feed started', 'partitions ahead', 'signal handlers', 'listen']);
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
