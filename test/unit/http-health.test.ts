import { expect } from 'chai';
import { registerHealthRoutes } from '../../src/features/health/health-routes.js';
import type { ReadinessCheck } from '../../src/http/registry.js';
import { startServer, type RunningServer } from './http-fixtures.js';

describe('health routes', () => {
  const state = { migrationsPending: 0, queueThrowsSync: false };
  const checks: ReadinessCheck[] = [
    { name: 'database', check: async () => {} },
    {
      name: 'migrations',
      check: async () => {
        if (state.migrationsPending > 0) throw new Error(`${state.migrationsPending} pending migrations`);
      },
    },
    {
      name: 'queue',
      check: () => {
        if (state.queueThrowsSync) throw new Error('queue stopped');
        return Promise.resolve();
      },
    },
  ];
  let srv: RunningServer;
  let hanging: RunningServer;

  before(async () => {
    srv = await startServer({ routes: (r) => registerHealthRoutes(r, { checks, version: '1.2.3' }) });
    hanging = await startServer({
      routes: (r) =>
        registerHealthRoutes(r, {
          version: '1.2.3',
          timeoutMs: 100,
          checks: [{ name: 'database', check: () => new Promise<void>(() => {}) }],
        }),
    });
  });
  after(async () => {
    await srv.close();
    await hanging.close();
  });
  afterEach(() => {
    state.migrationsPending = 0;
    state.queueThrowsSync = false;
  });

  it('GET /health answers ok with the version, without credentials', async () => {
    const res = await fetch(`${srv.url}/api/v1/health`);
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: 'ok', version: '1.2.3' });
    expect(srv.registry.routes().every((r) => r.auth === 'none')).to.equal(true);
  });

  it('GET /health/ready answers 200 when every check passes', async () => {
    const res = await fetch(`${srv.url}/api/v1/health/ready`);
    expect(res.status).to.equal(200);
    expect(res.headers.has('retry-after')).to.equal(false);
    expect(await res.json()).to.deep.equal({
      status: 'ready',
      checks: [
        { name: 'database', ok: true },
        { name: 'migrations', ok: true },
        { name: 'queue', ok: true },
      ],
    });
  });

  it('GET /health/ready answers 503 naming the failing check, with Retry-After', async () => {
    state.migrationsPending = 2;
    state.queueThrowsSync = true;
    const res = await fetch(`${srv.url}/api/v1/health/ready`);
    expect(res.status).to.equal(503);
    expect(res.headers.get('retry-after')).to.equal('5');
    expect(await res.json()).to.deep.equal({
      status: 'not_ready',
      checks: [
        { name: 'database', ok: true },
        { name: 'migrations', ok: false, error: '2 pending migrations' },
        { name: 'queue', ok: false, error: 'queue stopped' },
      ],
    });
  });

  it('bounds each check by a timeout so readiness never hangs', async () => {
    const t0 = Date.now();
    const res = await fetch(`${hanging.url}/api/v1/health/ready`);
    expect(Date.now() - t0).to.be.below(1000);
    expect(res.status).to.equal(503);
    expect(await res.json()).to.deep.equal({
      status: 'not_ready',
      checks: [{ name: 'database', ok: false, error: 'timed out after 100 ms' }],
    });
  });
});
