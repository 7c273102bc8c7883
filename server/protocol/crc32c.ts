// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
// Check value: crc32c("123456789") = 0xE3069283. docs/protocol.md says why this CRC and not CRC-16.
// Table-driven, one byte per step: a 1 KiB table, the same algorithm the rv32im firmware uses.
//
// Exports (stable): CRC32C_POLY_REFLECTED, CRC32C_CHECK, crc32c(data, previous?)

export const CRC32C_POLY_REFLECTED = 0x82f63b78;
export const CRC32C_CHECK = 0xe3069283;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY_REFLECTED : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32C of `data`. Pass the result of a previous call as `previous` to continue over a message
 * given in pieces: crc32c(b, crc32c(a)) === crc32c(a ‖ b).
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  let c = ~previous >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
