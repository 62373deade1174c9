import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { runCli } from '../../src/cli/program.js';
import { testEnv } from '../support/config.js';
import { cloneDatabase, dropDatabase } from '../support/db.js';

type Sig = 'SIGTERM' | 'SIGINT' | 'SIGHUP';

/**
 * `sentinel serve` in process, on a real database, with signals from an emitter (process in
 * production) and its log lines watched as they are written, so a test can signal at an exact
 * point of startup.
 */
async function serve(env: Record<string, string>, onLine: (msg: string, fire: (s: Sig) => void) => void = () => undefined) {
  const signals = new EventEmitter();
  const fire = (s: Sig) => signals.emit(s);
  const msgs: string[] = [];
  let stderr = '';
  const logs = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) {
        const msg = (JSON.parse(l) as { msg: string }).msg;
        msgs.push(msg);
        onLine(msg, fire);
      }
      cb();
    },
  });
  const code = await runCli(['serve'], { stdout: () => undefined, stderr: (s) => (stderr += s), readStdin: async () => '', env, logStdout: logs, logStderr: logs, signals: signals as never });
  const installed = (['SIGTERM', 'SIGINT', 'SIGHUP'] as const).reduce((n, s) => n + signals.listenerCount(s), 0);
  return { code, msgs, stderr, installed };
}

describe('sentinel serve: signals during startup', function () {
  this.timeout(60_000);
  let url: string;
  before(async () => {
    url = await cloneDatabase();
  });
  after(() => dropDatabase(url));

  it('a SIGTERM during a start hook ends startup there: exit 0, no listen, no "ready", everything stopped, no handler left', async () => {
    const r = await serve(testEnv(url), (msg, fire) => {
      // The retention module's start hook logs this; the HTTP server has not listened yet.
      if (msg === 'partition maintenance finished') fire('SIGTERM');
      // Without handling during startup it would get here: end it so the test fails, not hangs.
      if (msg === 'ready') fire('SIGTERM');
    });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.msgs).to.include('shutdown requested during startup; stopping once the phase under way has finished');
    expect(r.msgs).to.not.include('HTTP server listening');
    expect(r.msgs).to.not.include('ready');
    expect(r.msgs[r.msgs.length - 1]).to.equal('stopped before ready');
    expect(r.installed).to.equal(0);
  });

  it('a listen that fails (port taken) exits 1 and leaves no signal handler installed', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as { port: number }).port;
      const r = await serve(testEnv(url, { SENTINEL_HTTP_PORT: String(port) }));
      expect(r.code).to.equal(1);
      expect(r.msgs).to.not.include('ready');
      expect(r.installed).to.equal(0);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
