import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The run's scratch directory once made (by this process: removeRunScratchDir removes only it). */
let made: string | null = null;

/** The run's scratch directory, made on first use (spec files may ask while they load, before the global setup). */
function runScratchDir(): string {
  if (!made) {
    made = mkdtempSync(join(tmpdir(), 'sentinel-tests-'));
    // Traversable by the unprivileged user the embedded PostgreSQL of a daemon under test runs as.
    chmodSync(made, 0o755);
  }
  return made;
}

/** A new empty directory for a test's files (`prefix` + random) in the run's scratch directory, traversable as the run's is. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(runScratchDir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** Removes the run's scratch directory and everything in it, if this process made one (global-setup.ts's teardown). */
export function removeRunScratchDir(): void {
  if (!made) return;
  try {
    rmSync(made, { recursive: true, force: true });
  } catch (err) {
    // (E.g. a file system a test mounted in it and could not unmount.) A directory left behind fails no test.
    console.warn(`  could not remove the test run's scratch directory ${made}: ${(err as Error).message}`);
  }
  made = null;
}
