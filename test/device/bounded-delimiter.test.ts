import { describe, expect, it } from 'vitest';
import { BoundedDelimiterParser } from '../../server/device/bounded-delimiter.ts';

/** Feed writes through a parser (max 8 bytes per chunk) and collect what it emits and drops. */
function run(writes: string[]): { chunks: string[]; oversize: number[] } {
  const chunks: string[] = [];
  const oversize: number[] = [];
  const parser = new BoundedDelimiterParser({ delimiter: [0], maxChunkBytes: 8, onOversize: (n) => oversize.push(n) });
  parser.on('data', (c: Buffer) => chunks.push(c.toString('latin1')));
  for (const w of writes) parser.write(Buffer.from(w.replace(/\|/g, '\0'), 'latin1'));
  return { chunks, oversize };
}

describe('BoundedDelimiterParser', () => {
  it('splits on the delimiter like DelimiterParser (an empty chunk emits nothing)', () => {
    expect(run(['ab|cd', 'e|', '|f|'])).toEqual({ chunks: ['ab', 'cde', 'f'], oversize: [] });
  });

  it('drops a run longer than the limit up to its delimiter, reports it once, keeps what follows', () => {
    expect(run(['0123456', '789abcdef', 'ghij|ok|'])).toEqual({ chunks: ['ok'], oversize: [16] });
  });

  it('bounds what it keeps between writes; a long run inside one write goes on to the decoder', () => {
    // Memory stays bounded by one read; FrameDecoder rejects such a chunk as oversize.
    expect(run(['0123456789|', 'abcdefghij|12345678|'])).toEqual({ chunks: ['0123456789', 'abcdefghij', '12345678'], oversize: [] });
    expect(run(['0123456789', '|abcdefghij', '|x|'])).toEqual({ chunks: ['x'], oversize: [10, 10] });
  });
});
