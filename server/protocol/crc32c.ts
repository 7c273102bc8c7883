// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
// Check value: crc32c("123456789") = 0xE3069283. docs/protocol.md says why this CRC and not CRC-16.
// The host checks every frame, so it uses slicing-by-8 (eight 1 KiB tables, 8 bytes per step: the
// CRC is linear, so the contribution of each of 8 bytes can be looked up independently and XORed);
// the first table alone is the one-byte-per-step algorithm the rv32im firmware uses, and finishes the tail.
//
// Exports (stable): CRC32C_POLY_REFLECTED, CRC32C_CHECK, crc32c(data, previous?),
// crc32cRange(data, start, end, previous?) (the same over data[start, end), without a subarray).

export const CRC32C_POLY_REFLECTED = 0x82f63b78;
export const CRC32C_CHECK = 0xe3069283;

/** TABLES[256·k + b]: the CRC register after byte b followed by k zero bytes. */
const TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY_REFLECTED : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[256 * k + n] = c;
    }
  }
  return t;
})();

/**
 * CRC-32C of `data`. Pass the result of a previous call as `previous` to continue over a message
 * given in pieces: crc32c(b, crc32c(a)) === crc32c(a ‖ b).
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  return crc32cRange(data, 0, data.length, previous);
}

/** CRC-32C of data[start, end) (indices clamped to the array), continuing from `previous`. */
export function crc32cRange(data: Uint8Array, start: number, end: number, previous = 0): number {
  const t = TABLES;
  let i = Math.max(0, start | 0);
  const stop = Math.min(data.length, end | 0);
  let c = ~previous;
  for (; i + 8 <= stop; i += 8) {
    const lo = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    c =
      t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^ t[1280 + ((lo >>> 16) & 0xff)]! ^ t[1024 + (lo >>> 24)]! ^
      t[768 + data[i + 4]!]! ^ t[512 + data[i + 5]!]! ^ t[256 + data[i + 6]!]! ^ t[data[i + 7]!]!;
  }
  for (; i < stop; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
