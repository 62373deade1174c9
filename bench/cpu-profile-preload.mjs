// Preloaded into the daemon by bench/profile.ts (node refuses --cpu-prof in NODE_OPTIONS): starts
// the V8 profiler and writes the profile at exit. An in-thread inspector session answers
// synchronously, so the 'exit' handler can still stop the profiler and write the file.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir && process.argv.includes('serve')) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(join(dir, `daemon-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
