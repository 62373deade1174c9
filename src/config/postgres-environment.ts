/**
 * glibc malloc settings for the embedded PostgreSQL (its backends are forked from the server and
 * keep them): blocks under 4 MiB come from the heap rather than a mapping of their own, and freed
 * memory at the top of the heap goes back to the kernel only past 16 MiB. With glibc's adaptive
 * defaults a backend that has run a few large statements (the reads connections' metric statements)
 * could give back and fault in again ~0.7 MB of planner and executor memory on every statement:
 * ~180 page faults per execution, which made a one-series read's statement take 2.9–4.3 ms instead
 * of 1.0–1.1 ms on a VM (docs/benchmarks.md, "Page faults in PostgreSQL's backends"). The cost is
 * memory a backend keeps after a statement that needed it: up to 16 MiB of freed heap per process.
 */
export const POSTGRES_MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=16777216';

/** Architectures whose glibc accepts a 4 MiB mmap threshold (at most half its 64 MiB heap size; 512 KiB on 32-bit). */
const SIXTY_FOUR_BIT = new Set(['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el']);

/**
 * GLIBC_TUNABLES for the embedded server: the environment's own value with
 * POSTGRES_MALLOC_TUNABLES added; the environment's value alone (undefined: none) when it already
 * tunes either threshold, by GLIBC_TUNABLES or by glibc's older MALLOC_MMAP_THRESHOLD_ /
 * MALLOC_TRIM_THRESHOLD_ (an operator's own malloc tuning wins; setting only one of the two would
 * turn off glibc's adaptive mmap threshold), and on 32-bit architectures. Other C libraries ignore
 * the variable.
 */
export function postgresTunables(env: Readonly<Record<string, string | undefined>>, arch: string): string | undefined {
  const existing = env.GLIBC_TUNABLES;
  const tuned =
    (existing !== undefined && /(^|:)glibc\.malloc\.(mmap|trim)_threshold=/.test(existing)) ||
    env.MALLOC_MMAP_THRESHOLD_ !== undefined ||
    env.MALLOC_TRIM_THRESHOLD_ !== undefined;
  if (tuned || !SIXTY_FOUR_BIT.has(arch)) return existing;
  return existing ? `${existing}:${POSTGRES_MALLOC_TUNABLES}` : POSTGRES_MALLOC_TUNABLES;
}

/** The environment the embedded server starts with: Sentinel's own (as it would inherit it), GLIBC_TUNABLES from postgresTunables. */
export function embeddedPostgresEnvironment(): NodeJS.ProcessEnv {
  const tunables = postgresTunables(process.env, process.arch);
  return tunables === undefined ? { ...process.env } : { ...process.env, GLIBC_TUNABLES: tunables };
}
