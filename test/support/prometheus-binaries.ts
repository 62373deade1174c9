import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface PrometheusBinaries {
  prometheus: string;
  promtool: string;
}

/** Where Debian's `prometheus` package is unpacked when neither PROMETHEUS_BIN_DIR nor PATH has it (.ci/run fills it too). */
export const PROMETHEUS_CACHE_DIR = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sentinel-prometheus');

function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

/**
 * prometheus and promtool, for the benchmark beside Prometheus and the `promtool check metrics`
 * test: PROMETHEUS_BIN_DIR, else PATH, else Debian's package downloaded with `apt-get download`
 * and unpacked with `dpkg -x` into PROMETHEUS_CACHE_DIR (nothing installed, no service). Throws,
 * saying what was tried, when none of them gives both binaries.
 */
export function findPrometheus(log: (line: string) => void = console.log): PrometheusBinaries {
  const dir = process.env.PROMETHEUS_BIN_DIR;
  if (dir) {
    const bins = { prometheus: join(dir, 'prometheus'), promtool: join(dir, 'promtool') };
    if (!existsSync(bins.promtool)) throw new Error(`PROMETHEUS_BIN_DIR=${dir} has no promtool`);
    return bins;
  }
  const p = onPath('prometheus');
  const t = onPath('promtool');
  if (p && t) return { prometheus: p, promtool: t };
  const cache = PROMETHEUS_CACHE_DIR;
  const bin = join(cache, 'x', 'usr', 'bin');
  if (!existsSync(join(bin, 'promtool'))) {
    mkdirSync(cache, { recursive: true });
    const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { cwd: cache, encoding: 'utf8', timeout: 300_000 });
    log(`prometheus/promtool not found: apt-get download prometheus into ${cache}`);
    let r = sh('apt-get', ['download', 'prometheus']);
    if (r.status !== 0) {
      sh('apt-get', ['update']);
      r = sh('apt-get', ['download', 'prometheus']);
    }
    const deb = existsSync(cache) ? readdirSync(cache).find((f) => /^prometheus_.*\.deb$/.test(f)) : undefined;
    if (r.status !== 0 || !deb) {
      throw new Error(
        `promtool is not available: not in PROMETHEUS_BIN_DIR or PATH, and \`apt-get download prometheus\` in ${cache} failed ` +
          `(${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}); install Debian's prometheus package or set PROMETHEUS_BIN_DIR`,
      );
    }
    const x = sh('dpkg', ['-x', deb, 'x']);
    if (x.status !== 0 || !existsSync(join(bin, 'promtool'))) throw new Error(`dpkg -x ${deb} into ${cache}/x failed: ${(x.stderr || x.error?.message || '').trim()}`);
  }
  return { prometheus: join(bin, 'prometheus'), promtool: join(bin, 'promtool') };
}
