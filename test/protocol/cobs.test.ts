import { describe, expect, it } from 'vitest';
import { cobsDecode, cobsDecodeRange, cobsEncode, cobsMaxEncodedBytes } from '../../server/protocol/cobs.ts';
import { randomBytes, randomInt, seededRng } from './fixtures.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('COBS', () => {
  // Examples from Cheshire & Baker's paper and the usual reference set.
  const vectors: [string, string][] = [
    ['', '01'],
    ['00', '0101'],
    ['0000', '010101'],
    ['11220033', '03112202 33'.replace(' ', '')],
    ['11223344', '0511223344'],
    ['11000000', '02110101 01'.replace(' ', '')],
  ];
  it.each(vectors)('encodes %s as %s and back', (plain, encoded) => {
    const data = Buffer.from(plain, 'hex');
    expect(hex(cobsEncode(data))).toBe(encoded);
    const back = cobsDecode(Buffer.from(encoded, 'hex'));
    expect(back.ok && hex(back.data)).toBe(plain);
  });

  it('splits runs of 254 non-zero bytes with a 0xFF code', () => {
    const run = new Uint8Array(254).fill(7);
    const enc = cobsEncode(run);
    expect(enc[0]).toBe(0xff);
    expect(enc.length).toBe(256); // 0xFF, 254 bytes, trailing 0x01 group
    const run255 = new Uint8Array(255).fill(9);
    const enc255 = cobsEncode(run255);
    expect([enc255[0], enc255[255], enc255.length]).toEqual([0xff, 0x02, 257]);
  });

  it('round-trips random data of every length up to 1200, never emitting 0x00, within the bound', () => {
    const rng = seededRng(1);
    for (let n = 0; n <= 1200; n++) {
      // Mix dense-zero and zero-free data: both stress different branches.
      const data = randomBytes(rng, n).map((b) => (n % 3 === 0 ? b : b % 4 === 0 ? 0 : b | 1));
      const enc = cobsEncode(data);
      expect(enc.includes(0)).toBe(false);
      expect(enc.length).toBeLessThanOrEqual(cobsMaxEncodedBytes(n));
      const dec = cobsDecode(enc);
      expect(dec.ok).toBe(true);
      if (dec.ok) expect(hex(dec.data)).toBe(hex(data));
    }
  });

  it('rejects malformed input with a reason instead of throwing', () => {
    expect(cobsDecode(new Uint8Array([])).ok).toBe(false);
    expect(cobsDecode(new Uint8Array([0x05, 1, 2])).ok).toBe(false); // run past end
    expect(cobsDecode(new Uint8Array([0x03, 1, 0, 2])).ok).toBe(false); // zero inside
    const r = cobsDecode(new Uint8Array([0x00]));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.detail).toMatch(/0x00/);
  });

  it('decodes into a caller buffer when given one, and refuses one too small', () => {
    const into = new Uint8Array(8).fill(0xee);
    const r = cobsDecode(Buffer.from('0311220233', 'hex'), into);
    expect(r.ok && hex(r.data)).toBe('11220033');
    expect(r.ok && r.data.buffer).toBe(into.buffer);
    expect(() => cobsDecode(Buffer.from('0311220233', 'hex'), new Uint8Array(2))).toThrow(RangeError);
  });

  it('never throws on random bytes', () => {
    const rng = seededRng(2);
    for (let k = 0; k < 5000; k++) cobsDecode(randomBytes(rng, randomInt(rng, 0, 64)));
  });

  it('decodes a range in place exactly as cobsDecode decodes the copy, and fails where it fails', () => {
    const rng = seededRng(6);
    const out = new Uint8Array(300);
    for (let k = 0; k < 3000; k++) {
      // Half valid encodings (with random bytes around them), half garbage.
      const body = k % 2 === 0 ? cobsEncode(randomBytes(rng, randomInt(rng, 0, 260))) : randomBytes(rng, randomInt(rng, 0, 40));
      const pre = randomBytes(rng, randomInt(rng, 0, 5));
      const data = new Uint8Array([...pre, ...body, ...randomBytes(rng, randomInt(rng, 0, 5))]);
      const start = pre.length;
      const end = start + body.length;
      const copy = cobsDecode(data.slice(start, end));
      const length = cobsDecodeRange(data, start, end, out);
      expect(length >= 0).toBe(copy.ok);
      if (copy.ok) expect(hex(out.subarray(0, length))).toBe(hex(copy.data));
    }
    expect(() => cobsDecodeRange(Buffer.from('0311220233', 'hex'), 0, 5, new Uint8Array(2))).toThrow(RangeError);
  });
});
