import { render } from 'ink';
import { StatusApp } from './dashboard.js';
import type { FetchResult } from './status-client.js';

/*
 * Full screen: the dashboard draws on the terminal's alternate screen, and whatever way it ends
 * (q, Ctrl+C, a signal, an error) the main screen comes back as it was, cursor shown.
 */

const ENTER_ALT_SCREEN = '\x1b[?1049h\x1b[H';
const LEAVE_ALT_SCREEN = '\x1b[?25h\x1b[?1049l';

export interface RunDashboardOptions {
  url: string;
  fetchStatus: () => Promise<FetchResult>;
  deniedHint?: string;
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  /** Aborting it closes the dashboard (SIGTERM, SIGHUP). */
  signal?: AbortSignal;
  intervalMs?: number;
}

export async function runDashboard(o: RunDashboardOptions): Promise<void> {
  o.stdout.write(ENTER_ALT_SCREEN);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    o.stdout.write(LEAVE_ALT_SCREEN);
  };
  // Even when something ends the process without unwinding this function.
  process.once('exit', restore);
  const app = render(<StatusApp url={o.url} fetchStatus={o.fetchStatus} deniedHint={o.deniedHint} intervalMs={o.intervalMs} />, {
    stdout: o.stdout,
    stdin: o.stdin,
    exitOnCtrlC: true,
    patchConsole: true,
  });
  const onAbort = () => app.unmount();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await app.waitUntilExit();
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    app.cleanup();
    restore();
    process.off('exit', restore);
  }
}
