import { expect } from 'chai';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { lockDataDir } from '../../src/app/data-dir-lock.js';
import { DomainError, EXIT_CODE } from '../../src/core/errors.js';
import { scratchDir } from '../support/scratch.js';

async function refusal(dataDir: string): Promise<DomainError> {
  try {
    const lock = await lockDataDir(dataDir);
    await lock.release();
  } catch (err) {
    expect(err).to.be.instanceOf(DomainError);
    return err as DomainError;
  }
  throw new Error('expected the data directory to be locked');
}

describe('lockDataDir (one daemon per data directory)', () => {
  it('refuses a second holder, naming the pid (exit 1), until the first releases; the pid file follows the holder', async () => {
    const dir = scratchDir('sentinel-lock-');
    const lock = await lockDataDir(dir);
    expect(readFileSync(lock.pidFile, 'utf8')).to.equal(`${process.pid}\n`);
    const err = await refusal(dir);
    expect(err.message).to.contain(`data directory in use by pid ${process.pid} (${dir})`);
    expect(EXIT_CODE[err.code]).to.equal(1);

    await lock.release();
    expect(existsSync(lock.pidFile)).to.equal(false);
    const again = await lockDataDir(dir);
    await again.release();
  });

  it('names the directory by its real path: a symlink to a locked directory is the same directory', async () => {
    const dir = scratchDir('sentinel-lock-');
    const link = join(scratchDir('sentinel-lock-link-'), 'data');
    symlinkSync(dir, link);
    const lock = await lockDataDir(dir);
    try {
      expect((await refusal(link)).message).to.contain(`in use by pid ${process.pid}`);
      // Another directory is another lock.
      const other = await lockDataDir(scratchDir('sentinel-lock-'));
      await other.release();
    } finally {
      await lock.release();
    }
  });

  it('creates a missing data directory (the lock comes before anything else does)', async () => {
    const dir = join(scratchDir('sentinel-lock-'), 'new', 'data');
    const lock = await lockDataDir(dir);
    expect(existsSync(dir)).to.equal(true);
    await lock.release();
  });
});
