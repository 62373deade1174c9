import { randomBytes, randomInt } from 'node:crypto';
import { expect } from 'chai';
import { RowHasher } from '../../src/features/backups/backup-format.js';

const digest = (chunks: Buffer[]) => {
  const h = new RowHasher();
  for (const c of chunks) h.update(c);
  return h.digest();
};
/** Rows as COPY text writes them: any bytes but a newline (escaped as \n), multi-byte UTF-8 included. */
const randomRows = (): string[] =>
  Array.from({ length: randomInt(1, 40) }, () => `${randomBytes(randomInt(0, 30)).toString('base64')}\t\u00e9\u{1f600}\\n${randomInt(1000)}`);
const text = (rows: string[]) => Buffer.from(rows.map((r) => `${r}\n`).join(''));

/** The backup's content checksum must not depend on how the stream is cut, nor on row order. */
describe('RowHasher (content checksum of COPY text)', () => {
  it('is the same however the bytes are cut into chunks (also inside a multi-byte character)', () => {
    for (let round = 0; round < 200; round++) {
      const whole = text(randomRows());
      const cuts = [...new Set(Array.from({ length: randomInt(0, 8) }, () => randomInt(whole.length + 1)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let prev = 0;
      for (const c of [...cuts, whole.length]) {
        chunks.push(whole.subarray(prev, c));
        prev = c;
      }
      expect(digest(chunks), `cuts ${cuts.join(',')}`).to.equal(digest([whole]));
    }
  });

  it('is the same in any row order, and changes when one row changes, goes or is added', () => {
    for (let round = 0; round < 200; round++) {
      const rows = randomRows();
      const base = digest([text(rows)]);
      expect(digest([text([...rows].reverse())])).to.equal(base);
      const i = randomInt(rows.length);
      const changed = [...rows];
      changed[i] = `${changed[i]}x`;
      expect(digest([text(changed)])).to.not.equal(base);
      expect(digest([text(rows.filter((_, j) => j !== i))])).to.not.equal(base);
      expect(digest([text([...rows, rows[i]])])).to.not.equal(base);
    }
  });
});
