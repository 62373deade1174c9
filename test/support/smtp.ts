import { createServer } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** A message as the test SMTP server received it. */
export interface Received {
  from: string;
  to: string[];
  /** The raw message (headers unfolded, quoted-printable soft breaks joined) for string checks. */
  raw: string;
  subject: string;
}

/** A port that was free a moment ago (the "server down" tests start a server on it later). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * A real SMTP server (smtp-server) on 127.0.0.1, plain text (no STARTTLS: Sentinel is configured
 * with starttls false for it). With `auth`, AUTH with exactly those credentials is required.
 */
export class TestSmtp {
  readonly received: Received[] = [];
  /** RCPT TO of these addresses is refused with this error (smtp-server answers 550 and its message). */
  readonly rejectRecipients = new Map<string, string>();
  #server: SMTPServer | null = null;

  constructor(
    readonly port: number,
    private readonly auth?: { user: string; password: string },
  ) {}

  async start(): Promise<this> {
    const auth = this.auth;
    const server = new SMTPServer({
      disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !auth,
      allowInsecureAuth: true,
      logger: false,
      onAuth(a, _session, callback) {
        if (auth && a.username === auth.user && a.password === auth.password) callback(null, { user: a.username });
        else callback(new Error('Invalid username or password'));
      },
      onRcptTo: (address, _session, callback) => {
        const refusal = this.rejectRecipients.get(address.address);
        callback(refusal ? new Error(refusal) : undefined);
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8').replace(/\r\n[ \t]+/g, ' ').replace(/=\r\n/g, '');
          const subject = /^Subject: (.*)$/m.exec(raw)?.[1] ?? '';
          this.received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw, subject });
          callback();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Waits until a message matching `pred` has arrived. */
  async waitFor(pred: (m: Received) => boolean, timeoutMs = 10_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.received.find(pred);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no such message within ${timeoutMs} ms; received: ${JSON.stringify(this.received.map((r) => ({ to: r.to, subject: r.subject })))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The env that points Sentinel's mailer at a test server. */
export function smtpEnv(port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SENTINEL_NOTIFICATIONS_SMTP_HOST: '127.0.0.1',
    SENTINEL_NOTIFICATIONS_SMTP_PORT: String(port),
    SENTINEL_NOTIFICATIONS_SMTP_STARTTLS: 'false',
    SENTINEL_NOTIFICATIONS_SMTP_FROM: 'Sentinel <sentinel@example.test>',
    ...extra,
  };
}
