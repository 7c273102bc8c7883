import { describe, expect, it } from 'vitest';
import { CRC32C_CHECK, CRC32C_POLY_REFLECTED, crc32c, crc32cRange } from '../../server/protocol/crc32c.ts';
import { randomBytes, seededRng } from './fixtures.ts';

describe('CRC-32C', () => {
  it('has the catalogue check value for "123456789"', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(CRC32C_CHECK).toBe(0xe3069283);
  });

  it('matches RFC 3720 (iSCSI) test vectors', () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, k) => k))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, k) => 31 - k))).toBe(0x113fdb5c);
  });

  it('continues across pieces', () => {
    const data = randomBytes(seededRng(3), 1000);
    for (const cut of [0, 1, 17, 999, 1000]) {
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(crc32c(data));
    }
  });

  it('detects every error of up to 4 bits over the length of a window frame (Hamming distance ≥ 5)', () => {
    // The CRC is affine: crc(m ⊕ e) = crc(m) ⊕ crc(e) ⊕ crc(0…0) for messages of one length, so an
    // error pattern e escapes exactly when its syndrome crc(e) ⊕ crc(0…0) is zero.
    const bytes = 88; // header + window body, what the CRC covers
    const zero = crc32c(new Uint8Array(bytes));
    const syndromes: number[] = [];
    for (let bit = 0; bit < bytes * 8; bit++) {
      const e = new Uint8Array(bytes);
      e[bit >> 3] = 1 << (bit & 7);
      syndromes.push((crc32c(e) ^ zero) >>> 0);
    }
    const single = new Set(syndromes);
    expect(single.has(0)).toBe(false); // every 1-bit error
    expect(single.size).toBe(syndromes.length); // every 2-bit error: no two syndromes equal
    let escapes = 0;
    const pairs = new Set<number>();
    for (let i = 0; i < syndromes.length; i++) {
      for (let j = i + 1; j < syndromes.length; j++) {
        const pair = (syndromes[i]! ^ syndromes[j]!) >>> 0;
        if (single.has(pair)) escapes++;
        pairs.add(pair);
      }
    }
    expect(escapes).toBe(0); // every 3-bit error: no syndrome is the sum of two others
    const n = syndromes.length;
    expect(pairs.size).toBe((n * (n - 1)) / 2); // every 4-bit error: no two pairs cancel
  });

  it('detects every single-bit error in a 1 KiB message', () => {
    const data = randomBytes(seededRng(4), 1024);
    const good = crc32c(data);
    for (let bit = 0; bit < data.length * 8; bit++) {
      data[bit >> 3]! ^= 1 << (bit & 7);
      expect(crc32c(data)).not.toBe(good);
      data[bit >> 3]! ^= 1 << (bit & 7);
    }
  });

  it('slicing-by-8 and the range form agree with the bitwise definition at every length and offset', () => {
    const bitwise = (d: Uint8Array, previous: number): number => {
      let c = ~previous >>> 0;
      for (const b of d) {
        c ^= b;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY_REFLECTED : c >>> 1;
      }
      return ~c >>> 0;
    };
    const data = randomBytes(seededRng(5), 80);
    for (let start = 0; start <= 20; start++) {
      for (let end = start; end <= data.length; end++) {
        const previous = (start * 0x9e3779b9 + end) >>> 0;
        expect(crc32cRange(data, start, end, previous)).toBe(bitwise(data.subarray(start, end), previous));
      }
    }
    expect(crc32cRange(data, -3, 1000)).toBe(crc32c(data)); // clamped to the array
  });
});
