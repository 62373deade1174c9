import type { Command } from 'commander';
import { buildApp, ensureMigrated } from '../app/build-app.js';
import { lockDataDir } from '../app/data-dir-lock.js';
import { runUntilSignal } from '../app/lifecycle.js';
import { loadFor, loggerFor } from '../app/with-app.js';
import { VERSION } from '../app/version.js';
import type { CliContext } from './program.js';

export function registerServeCommand(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the daemon: HTTP API, scheduler, workers')
    .option('--migrate', 'apply pending migrations before serving')
    .action(async (o: { migrate?: boolean }) => {
      const appEnv = ctx.appEnv(true);
      const loaded = loadFor(appEnv);
      const logger = loggerFor(appEnv, loaded, loaded.config.log.level);
      // One daemon per data directory, whatever the database: a second one would take over the
      // first one's embedded PostgreSQL (and stop it on exit). Taken before anything is touched.
      const lock = await lockDataDir(loaded.config.data_dir);
      try {
        logger.info({ version: VERSION, config_file: loaded.file, data_dir: loaded.config.data_dir, pid: process.pid }, 'starting');
        const app = await buildApp(loaded.config, logger, { role: 'daemon', http: true });
        try {
          // Migrations first: the start hooks need the schema.
          await ensureMigrated(app, o.migrate === true);
          await app.start();
        } catch (err) {
          await app.stop();
          throw err;
        }
        // Signal handlers go in before anyone can see "ready" (a SIGHUP right after it must not kill us).
        const stopped = runUntilSignal(app, ctx.io.signals, () => loadFor(appEnv));
        try {
          const addr = await app.http!.listen();
          logger.info({ host: addr.host, port: addr.port, embedded_db: app.db.embedded !== null }, 'ready');
          // Daemon logs are buffered; the ready line is what supervisors and operators wait for.
          logger.flush();
        } catch (err) {
          await app.stop();
          throw err;
        }
        await stopped;
      } finally {
        // After app.stop(): the embedded PostgreSQL is down before another daemon may start.
        await lock.release();
      }
    });
}
