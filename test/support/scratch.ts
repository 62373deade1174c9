import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the run's scratch directory is (made on first use, removed with everything in it by global-setup.ts's teardown). */
export const SCRATCH_ENV = 'SENTINEL_TEST_SCRATCH_DIR';

/** The run's scratch directory, made on first use (spec files may ask while they load, before the global setup). */
export function runScratchDir(): string {
  let dir = process.env[SCRATCH_ENV];
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), 'sentinel-tests-'));
    // Traversable by the unprivileged user the embedded PostgreSQL of a daemon under test runs as.
    chmodSync(dir, 0o755);
    process.env[SCRATCH_ENV] = dir;
  }
  return dir;
}

/** A new empty directory for a test's files (`prefix` + random) in the run's scratch directory. */
export function scratchDir(prefix: string): string {
  return mkdtempSync(join(runScratchDir(), prefix));
}
