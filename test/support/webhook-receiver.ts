import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** Alertmanager webhook v4, as receivers read it (what a Sentinel webhook channel posts). */
export interface AlertmanagerV4 {
  version: string;
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: { status: string; labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string; generatorURL: string; fingerprint: string; value?: number | null }[];
}

export interface WebhookHit {
  at: number;
  headers: IncomingHttpHeaders;
  /** The request body as sent. */
  raw: string;
  /** raw parsed; `{ receiver: '<not JSON>' }` when it is not JSON. */
  body: AlertmanagerV4;
}

/** A webhook receiver on 127.0.0.1 that records every request (answering 200). */
export class WebhookReceiver {
  readonly hits: WebhookHit[] = [];
  /** TCP connections accepted so far. */
  connections = 0;
  port = 0;
  #server: Server | null = null;
  #sockets = new Set<Socket>();

  async start(port = 0): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: AlertmanagerV4;
        try {
          body = JSON.parse(raw) as AlertmanagerV4;
        } catch {
          body = { receiver: '<not JSON>' } as AlertmanagerV4;
        }
        this.hits.push({ at: Date.now(), headers: req.headers, raw, body });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    server.on('connection', (s: Socket) => {
      this.connections++;
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** The notifications of one receiver (an alert rule's name), of one status or all. */
  of(receiver: string, status?: 'firing' | 'resolved'): WebhookHit[] {
    return this.hits.filter((h) => h.body.receiver === receiver && (!status || h.body.status === status));
  }

  /** The first notification of that receiver with that status, waiting for it up to timeoutMs. */
  async waitFor(receiver: string, status: 'firing' | 'resolved', timeoutMs = 15_000): Promise<WebhookHit> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.of(receiver, status)[0];
      if (hit) return hit;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for a ${status} notification of ${receiver} at ${this.url} (got: ${JSON.stringify(this.hits.map((h) => [h.body.receiver, h.body.status]))})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Closes the server and the connections still open (keep-alive). */
  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = null;
    if (!s) return;
    for (const sock of this.#sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
