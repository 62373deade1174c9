import { expect } from 'chai';
import { checkModuleList, composeModules, jobCatalog } from '../../src/app/compose.js';
import { declaredJobs, FEATURE_MODULES } from '../../src/app/build-app.js';
import { defineModule, type Hook, type Kits } from '../../src/features/feature-module.js';

const kits = {} as Kits;

interface Greeter {
  greet(name: string): string;
}
interface Counter {
  count(): number;
}

/** Two modules that need each other (like users ↔ auth): each calls the other only when used. */
const first = defineModule({
  name: 'first',
  requires: ['counter'],
  provides: ['greeter'],
  build(_kits, needs: { counter: Counter }) {
    const greeter: Greeter = { greet: (name) => `hello ${name} (${needs.counter.count()})` };
    return { provides: { greeter }, services: { greeter }, stop: [{ name: 'close', timeoutMs: 10, run: async () => undefined }] };
  },
});
const second = defineModule({
  name: 'second',
  requires: ['greeter'],
  provides: ['counter'],
  jobs: [{ name: 'tally', description: 'counts', run: async (s: { tally: () => number }) => s.tally() }],
  build(_kits, needs: { greeter: Greeter }) {
    let n = 0;
    const counter: Counter = { count: () => ++n };
    return { provides: { counter }, services: { tally: () => n, welcome: () => needs.greeter.greet('ada') }, start: [{ name: 'open', timeoutMs: 10, run: async () => undefined }] };
  },
});

describe('composing feature modules', () => {
  it('wires needs in both directions of the list and merges services, hooks and jobs', async () => {
    const stops: Hook[] = [];
    const c = composeModules([first, second], kits, stops);
    const services = c.services as { greeter: Greeter; welcome: () => string; tally: () => number };
    expect(services.welcome()).to.equal('hello ada (1)');
    expect(services.greeter.greet('bob')).to.equal('hello bob (2)');
    expect(stops.map((h) => h.name)).to.deep.equal(['first: close']);
    expect(c.startHooks.map((h) => h.name)).to.deep.equal(['second: open']);
    expect(c.jobs.list().map((j) => [j.name, j.module])).to.deep.equal([['tally', 'second']]);
    expect(await c.jobs.get('tally')!.run(new AbortController().signal)).to.equal(2);
  });

  it('a need provided later in the list cannot be used while the modules are being built', () => {
    const eager = defineModule({
      name: 'eager',
      requires: ['counter'],
      provides: [],
      build(_kits, needs: { counter: Counter }) {
        needs.counter.count();
        return { provides: {}, services: {} };
      },
    });
    expect(() => composeModules([eager, second, first], kits, [])).to.throw("module 'eager' used 'counter' while the modules were still being built");
  });

  it('refuses, before building anything, a need nobody provides, a second provider, a name or job twice', () => {
    let built = 0;
    const spy = (name: string, provides: string[], requires: string[] = [], jobs: string[] = []) =>
      defineModule<Record<string, unknown>, Record<string, unknown>, object>({
        name,
        requires,
        provides,
        jobs: jobs.map((j) => ({ name: j, description: j, run: async () => undefined })),
        build: () => {
          built++;
          return { provides: Object.fromEntries(provides.map((p) => [p, {}])), services: {} };
        },
      });
    expect(() => composeModules([spy('a', []), spy('b', [], ['ghost'])], kits, [])).to.throw("module 'b' requires 'ghost', which no module in the list provides");
    expect(() => checkModuleList([spy('a', ['x']), spy('b', ['x'])])).to.throw("'x' is provided by both module 'a' and module 'b'");
    expect(() => checkModuleList([spy('a', []), spy('a', [])])).to.throw("module 'a' is in the list twice");
    expect(() => checkModuleList([spy('a', [], [], ['j']), spy('b', [], [], ['j'])])).to.throw("job 'j' is declared by both module 'a' and module 'b'");
    expect(built).to.equal(0);
  });

  it("the app's list: jobs are known without building it, in the order `jobs run` names them", () => {
    expect(declaredJobs().map((j) => [j.name, j.module])).to.deep.equal([
      ['compaction', 'telemetry'],
      ['retention', 'retention'],
      ['partitions', 'retention'],
      ['analyze', 'retention'],
      ['backup', 'backups'],
      ['restore-drill', 'backups'],
      ['instance-checks', 'heartbeats'],
      ['daily-report', 'reports'],
    ]);
    expect(jobCatalog(FEATURE_MODULES)).to.deep.equal(declaredJobs());
    expect(() => checkModuleList(FEATURE_MODULES)).to.not.throw();
  });
});
