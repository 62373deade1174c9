import { expect } from 'chai';
import { pino } from 'pino';
import { createLogger, journalStreamIs, syslogPriority } from '../../src/app/logger.js';
import { loggerFor } from '../../src/app/with-app.js';
import { journaldStreams } from '../../src/cli/io.js';
import { loadConfig } from '../../src/config/loader.js';
import { LogCapture } from '../support/capture.js';
import { scratchDir } from '../support/scratch.js';

const flushed = (logger: { flush(cb: (err?: Error) => void): void }) => new Promise<void>((r) => logger.flush(() => r()));

describe('logs for journald (<N> syslog priority prefix)', () => {
  it('prefixes each line with the priority of its level: fatal 2, error 3, warn 4, info 6, debug/trace 7', async () => {
    const out = new LogCapture();
    const logger = createLogger('trace', out, { journald: true });
    logger.fatal('f');
    logger.error({ err: 'boom' }, 'e');
    logger.warn('w');
    logger.info('i');
    logger.debug('d');
    logger.trace('t');
    logger.child({ module: 'x' }).error('child error');
    await flushed(logger);
    expect(out.lines.map((l) => l.slice(0, 4))).to.deep.equal(['<2>{', '<3>{', '<4>{', '<6>{', '<7>{', '<7>{', '<3>{']);
    // After the prefix, the JSON line is the one pino writes without it.
    const parsed = out.lines.map((l) => JSON.parse(l.slice(3)) as { level: string; msg: string });
    expect(parsed.map((p) => `${p.level}:${p.msg}`)).to.deep.equal(['fatal:f', 'error:e', 'warn:w', 'info:i', 'debug:d', 'trace:t', 'error:child error']);
  });

  it('leaves lines unchanged without journald (JSON from the first byte)', async () => {
    const out = new LogCapture();
    const logger = createLogger('info', out);
    logger.error('e');
    logger.info('i');
    await flushed(logger);
    expect(out.lines.map((l) => l[0])).to.deep.equal(['{', '{']);
  });

  it('keeps the level filter: lines below the level are not written at all', async () => {
    const out = new LogCapture();
    const logger = createLogger('warn', out, { journald: true });
    logger.info('dropped');
    logger.warn('kept');
    await flushed(logger);
    expect(out.lines).to.have.length(1);
    expect(out.lines[0].startsWith('<4>{')).to.equal(true);
  });

  it('writes into an asynchronous pino destination (SonicBoom) and flushes through it', async () => {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const file = join(scratchDir('sentinel-journald-'), 'out.log');
    const dest = pino.destination({ dest: file, sync: false, minLength: 4096, mkdir: true });
    await new Promise((r) => dest.once('ready', r));
    const logger = createLogger('info', dest, { journald: true });
    logger.info('one');
    logger.error('two');
    await flushed(logger);
    dest.flushSync();
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines.map((l) => l.slice(0, 4))).to.deep.equal(['<6>{', '<3>{']);
    dest.end();
  });

  it('maps numeric levels at and between the boundaries', () => {
    expect([0, 10, 20, 29, 30, 39, 40, 49, 50, 59, 60, 100].map(syslogPriority)).to.deep.equal([7, 7, 7, 7, 6, 6, 4, 4, 3, 3, 2, 2]);
  });

  it('JOURNAL_STREAM counts only when its <device>:<inode> is the one of the stream the log goes to', () => {
    const stream = { dev: 8n, ino: 1234n };
    expect(journalStreamIs('8:1234', stream)).to.equal(true);
    expect(journalStreamIs('8:1234', { dev: 8, ino: 1234 })).to.equal(true);
    expect(journalStreamIs('0:0', { dev: 0n, ino: 0n })).to.equal(true);
    // Inodes past 2^53 compare exactly (fstat with bigint: true).
    expect(journalStreamIs('8:18446744073709551615', { dev: 8n, ino: 18446744073709551615n })).to.equal(true);
    expect(journalStreamIs('8:18446744073709551614', { dev: 8n, ino: 18446744073709551615n })).to.equal(false);
    // Well formed, but another stream (inherited from the unit, output redirected elsewhere).
    for (const other of ['8:1235', '9:1234', '1234:8', '0:0']) expect(journalStreamIs(other, stream), other).to.equal(false);
    // No stream to compare with (the descriptor could not be examined).
    expect(journalStreamIs('8:1234', undefined)).to.equal(false);
    for (const bad of [undefined, '', '8', ':', '8:', ':12', 'a:b', '8:12\0', '\0', '8:1234 ', ' 8:1234', '8:1234:3', '-8:1234', '9'.repeat(21) + ':1', '8:1234\n', '1e3:2']) {
      expect(journalStreamIs(bad, stream), JSON.stringify(bad)).to.equal(false);
    }
  });

  it('journaldStreams: stdout and stderr each count only if JOURNAL_STREAM names that descriptor', () => {
    const stats = { 1: { dev: 8n, ino: 1n }, 2: { dev: 8n, ino: 2n } };
    expect(journaldStreams('8:1', (fd) => stats[fd])).to.deep.equal({ stdout: true, stderr: false });
    expect(journaldStreams('8:2', (fd) => stats[fd])).to.deep.equal({ stdout: false, stderr: true });
    expect(journaldStreams('8:3', (fd) => stats[fd])).to.deep.equal({ stdout: false, stderr: false });
    expect(journaldStreams(undefined, (fd) => stats[fd])).to.deep.equal({ stdout: false, stderr: false });
    expect(journaldStreams('8:1', () => undefined)).to.deep.equal({ stdout: false, stderr: false });
  });

  it('loggerFor (every command) prefixes when told its destination is the journal, whatever the environment says', async () => {
    const cases = [
      [{ JOURNAL_STREAM: '8:1234' }, true, '<3>{'],
      [{}, true, '<3>{'],
      // JOURNAL_STREAM inherited, but the log goes elsewhere: bare JSON.
      [{ JOURNAL_STREAM: '8:1234' }, false, '{"le'],
      [{ JOURNAL_STREAM: '8:1234' }, undefined, '{"le'],
      [{}, undefined, '{"le'],
    ] as const;
    for (const [env, journald, first] of cases) {
      const out = new LogCapture();
      const appEnv = { env: { ...env }, logDestination: out, journald };
      const logger = loggerFor(appEnv, loadConfig({ env: {} }), 'info');
      logger.error('e');
      await flushed(logger);
      expect(out.lines[0].slice(0, 4), JSON.stringify([env, journald])).to.equal(first);
    }
  });
});
