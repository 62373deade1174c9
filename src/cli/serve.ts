import type { Command } from 'commander';
import { buildApp } from '../app/build-app.js';
import { lockDataDir } from '../app/data-dir-lock.js';
import { serveUntilSignal, watchSignals } from '../app/lifecycle.js';
import { notifyReady } from '../app/systemd-notify.js';
import { loadFor, loggerFor } from '../app/with-app.js';
import { VERSION } from '../app/version.js';
import type { CliContext } from './context.js';

export function registerServeCommand(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the daemon: HTTP API, scheduler, workers')
    .option('--migrate', 'apply pending migrations before serving')
    .action(async (o: { migrate?: boolean }) => {
      const appEnv = ctx.appEnv(true);
      const loaded = loadFor(appEnv);
      const logger = loggerFor(appEnv, loaded, loaded.config.log.level);
      // First: from here on a SIGTERM/SIGINT ends startup at a phase boundary instead of killing
      // the process mid-phase; removed whatever happens.
      const watch = watchSignals(ctx.io.signals, logger);
      try {
        // One daemon per data directory, whatever the database: a second one would take over the
        // first one's embedded PostgreSQL (and stop it on exit). Taken before anything is touched.
        const lock = await lockDataDir(loaded.config.data_dir);
        try {
          logger.info({ version: VERSION, config_file: loaded.file, data_dir: loaded.config.data_dir, pid: process.pid }, 'starting');
          if (watch.requested()) {
            logger.info('stopped before ready');
            return;
          }
          // Lifecycle phase 1 (open the database), then 2–5 (migrations, start hooks, listen, ready);
          // a failed phase stops what had started.
          const app = await buildApp(loaded.config, logger, { role: 'daemon', http: true });
          await serveUntilSignal(app, {
            migrate: o.migrate === true,
            watch,
            load: () => loadFor(appEnv),
            // Type=notify: systemd learns the daemon is listening (nothing runs without NOTIFY_SOCKET).
            onReady: () => notifyReady({ notifySocket: appEnv.env.NOTIFY_SOCKET, path: appEnv.env.PATH, pid: process.pid, logger }),
          });
        } finally {
          // After the app has stopped: the embedded PostgreSQL is down before another daemon may start.
          await lock.release();
        }
      } finally {
        watch.dispose();
      }
    });
}
