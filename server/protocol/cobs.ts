// Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999): removes every 0x00 from a frame so
// that 0x00 can delimit frames on the wire. Overhead is one byte per 254 bytes plus one, so a
// receiver that lost sync finds the next frame boundary at the next 0x00, whatever the bytes were.
//
// Exports (stable, used by codec.ts and the simulated device):
//   cobsMaxEncodedBytes(n)   worst-case encoded length of n bytes (without the delimiter)
//   cobsEncode(data)         encoded bytes, no 0x00 inside, delimiter NOT appended
//   cobsDecode(data, out?)   { ok: true, data } or { ok: false, detail } for a delimiter-stripped chunk;
//                            decodes into `out` (at least data.length bytes) when given, to spare an allocation
//   cobsDecodeRange(data, start, end, out)   the hot-path form: decodes data[start, end) into `out`
//                            (at least end − start bytes) and returns the decoded length, or −1 when the
//                            range is not valid COBS (cobsDecode on it says why); allocates nothing

/** Longest run of non-zero bytes one code byte can describe. */
const MAX_RUN = 254;

export function cobsMaxEncodedBytes(decodedBytes: number): number {
  return decodedBytes + Math.floor(decodedBytes / MAX_RUN) + 1;
}

export function cobsEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(cobsMaxEncodedBytes(data.length));
  let codeIndex = 0;
  let code = 1;
  let o = 1;
  for (const byte of data) {
    if (byte === 0) {
      out[codeIndex] = code;
      codeIndex = o++;
      code = 1;
    } else {
      out[o++] = byte;
      code++;
      if (code === MAX_RUN + 1) {
        out[codeIndex] = code;
        codeIndex = o++;
        code = 1;
      }
    }
  }
  out[codeIndex] = code;
  return out.subarray(0, o);
}

export function cobsDecodeRange(data: Uint8Array, start: number, end: number, out: Uint8Array): number {
  if (start < 0 || end > data.length || start >= end) return -1;
  if (out.length < end - start) throw new RangeError(`cobsDecodeRange: output of ${out.length} bytes for ${end - start}`);
  let i = start;
  let o = 0;
  while (i < end) {
    const code = data[i]!;
    const runEnd = i + code;
    if (code === 0 || runEnd > end) return -1;
    for (i++; i < runEnd; i++) {
      const byte = data[i]!;
      if (byte === 0) return -1;
      out[o++] = byte;
    }
    // A full run (0xFF) carries no implied zero; nor does the last group of the chunk.
    if (code !== MAX_RUN + 1 && i < end) out[o++] = 0;
  }
  return o;
}

export type CobsResult = { ok: true; data: Uint8Array } | { ok: false; detail: string };

export function cobsDecode(data: Uint8Array, into?: Uint8Array): CobsResult {
  if (data.length === 0) return { ok: false, detail: 'empty chunk' };
  // Decoded output is never longer than the input.
  if (into && into.length < data.length) throw new RangeError(`cobsDecode: output of ${into.length} bytes for ${data.length}`);
  const out = into ?? new Uint8Array(data.length);
  let i = 0;
  let o = 0;
  while (i < data.length) {
    const code = data[i]!;
    if (code === 0) return { ok: false, detail: `0x00 inside an encoded chunk at byte ${i}` };
    const runEnd = i + code;
    if (runEnd > data.length) {
      return { ok: false, detail: `code byte ${code} at ${i} runs past the chunk end (${data.length} bytes)` };
    }
    for (i++; i < runEnd; i++) {
      const byte = data[i]!;
      if (byte === 0) return { ok: false, detail: `0x00 inside an encoded chunk at byte ${i}` };
      out[o++] = byte;
    }
    // A full run (0xFF) carries no implied zero; nor does the last group of the chunk.
    if (code !== MAX_RUN + 1 && i < data.length) out[o++] = 0;
  }
  return { ok: true, data: out.subarray(0, o) };
}
