import nodemailer from 'nodemailer';

/** One message as it goes over SMTP (the From address is the sender's). */
// A type, not an interface: the queue's payload is a Record<string, unknown>.
export type Envelope = {
  to: string[];
  subject: string;
  text: string;
  html?: string;
  attachments?: { filename: string; content: string; contentType: string }[];
};

export interface SmtpSender {
  /** Resolves once the SMTP server accepted the message; rejects with its error otherwise. */
  send(mail: Envelope, signal?: AbortSignal): Promise<void>;
  close(): void;
}

/** notifications.smtp, as the module hands it over. */
export interface SmtpOptions {
  host: string;
  port: number;
  secure: boolean;
  starttls: boolean;
  user: string;
  password: string;
  from: string;
}

/**
 * An attempt must end well within a task's time: nodemailer's defaults wait two minutes for a
 * connection and ten for a silent socket.
 */
const CONNECT_TIMEOUT_MS = 15_000;
const SOCKET_TIMEOUT_MS = 60_000;

/** nodemailer over the configured server; one transport (not pooled: mail is occasional). */
export function smtpSender(smtp: SmtpOptions): SmtpSender {
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    // starttls: insist on the upgrade (a server that does not offer it gets no message);
    // without it, never upgrade: a local relay's self-signed certificate would fail the check.
    requireTLS: !smtp.secure && smtp.starttls,
    ignoreTLS: !smtp.secure && !smtp.starttls,
    auth: smtp.user ? { user: smtp.user, pass: smtp.password } : undefined,
    connectionTimeout: CONNECT_TIMEOUT_MS,
    greetingTimeout: CONNECT_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
  });
  return {
    async send(mail, signal) {
      signal?.throwIfAborted();
      const sending = transport.sendMail({ from: smtp.from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html, attachments: mail.attachments });
      if (!signal) {
        await sending;
        return;
      }
      // nodemailer takes no signal: an aborted attempt stops waiting (the socket times out on its own).
      let onAbort: () => void = () => {};
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('mail delivery aborted'));
        signal.addEventListener('abort', onAbort, { once: true });
      });
      try {
        await Promise.race([sending, aborted]);
      } finally {
        signal.removeEventListener('abort', onAbort);
        sending.catch(() => {});
      }
    },
    close: () => transport.close(),
  };
}

/** What to record of a failed attempt: nodemailer's code and message (the server's answer included). */
export function describeSmtpError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
