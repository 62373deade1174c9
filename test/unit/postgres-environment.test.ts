import { expect } from 'chai';
import { POSTGRES_MALLOC_TUNABLES, postgresTunables } from '../../src/config/postgres-environment.js';

describe('postgresTunables: GLIBC_TUNABLES for the embedded PostgreSQL', () => {
  it('is the thresholds alone when the environment has no GLIBC_TUNABLES (or an empty one)', () => {
    expect(postgresTunables({}, 'x64')).to.equal(POSTGRES_MALLOC_TUNABLES);
    expect(postgresTunables({ GLIBC_TUNABLES: '' }, 'arm64')).to.equal(POSTGRES_MALLOC_TUNABLES);
  });

  it("adds them to the environment's other tunables", () => {
    expect(postgresTunables({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, 'x64')).to.equal(`glibc.malloc.arena_max=2:${POSTGRES_MALLOC_TUNABLES}`);
    // A key that only ends like one of the two is not one of them.
    expect(postgresTunables({ GLIBC_TUNABLES: 'glibc.malloc.xmmap_threshold=1' }, 'x64')).to.equal(`glibc.malloc.xmmap_threshold=1:${POSTGRES_MALLOC_TUNABLES}`);
  });

  it("leaves an operator's own threshold tuning alone, by GLIBC_TUNABLES or glibc's older variables", () => {
    expect(postgresTunables({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1048576' }, 'x64')).to.equal('glibc.malloc.trim_threshold=1048576');
    expect(postgresTunables({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536' }, 'x64')).to.equal('glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536');
    expect(postgresTunables({ MALLOC_MMAP_THRESHOLD_: '65536' }, 'x64')).to.equal(undefined);
    expect(postgresTunables({ MALLOC_TRIM_THRESHOLD_: '0', GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, 'x64')).to.equal('glibc.malloc.arena_max=2');
  });

  it('adds nothing on 32-bit architectures, whose glibc refuses a 4 MiB mmap threshold', () => {
    expect(postgresTunables({}, 'ia32')).to.equal(undefined);
    expect(postgresTunables({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, 'arm')).to.equal('glibc.malloc.arena_max=2');
  });
});
