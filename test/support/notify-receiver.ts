import { spawn, type ChildProcess } from 'node:child_process';

/**
 * A stand-in for systemd's notification socket: a unix datagram socket (Node has none, so a
 * python3 child owns it; mode 0666 so a daemon running as another user can send). Each datagram
 * is printed as one JSON line, with whether the daemon's HTTP port accepted a connection at the
 * moment READY=1 arrived. Passed file descriptors (systemd-notify's BARRIER=1 pipe) are dropped
 * unread, which closes them, as systemd does once it has processed a message.
 */
const RECEIVER = `
import json, os, socket, sys
path, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
print(json.dumps({"bound": True}), flush=True)
while True:
    text = s.recv(65536).decode("utf-8", "replace")
    listening = None
    if "READY=1" in text.split("\\n"):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            listening = True
        except OSError:
            listening = False
    print(json.dumps({"message": text, "listening": listening}), flush=True)
`;

export interface NotifyMessage {
  message: string;
  /** For a READY=1 message: whether the daemon's port accepted a connection then; null otherwise. */
  listening: boolean | null;
}

export interface NotifyReceiver {
  proc: ChildProcess;
  received(): NotifyMessage[];
  stop(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startNotifyReceiver(path: string, port: number): Promise<NotifyReceiver> {
  const proc = spawn('python3', ['-c', RECEIVER, path, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const deadline = Date.now() + 10_000;
  while (!out.includes('"bound"')) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`the notify receiver (python3) did not start: ${out}`);
    await sleep(20);
  }
  return {
    proc,
    received: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{"message"'))
        .map((l) => JSON.parse(l) as NotifyMessage),
    stop: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    },
  };
}
