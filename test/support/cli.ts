import { EventEmitter } from 'node:events';
import { runCli } from '../../src/cli/program.js';
import { LogCapture } from './capture.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  logs: LogCapture;
}

/** Drive the commander program in process with captured output. */
export async function cli(argv: string[], env: Record<string, string>, stdin = ''): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const logs = new LogCapture();
  const code = await runCli(argv, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    readStdin: async () => stdin,
    env,
    logStdout: logs,
    logStderr: logs,
    signals: new EventEmitter() as never,
  });
  return { code, stdout, stderr, logs };
}
