// Frame codec: typed frames ⇄ wire bytes, for both directions, with no I/O.
//
// Wire format (docs/protocol.md):  COBS( version u8 ‖ type u8 ‖ seq u32 ‖ body ‖ crc32c u32 ) ‖ 0x00
// All multi-byte values are little-endian; i128 is two's complement, least significant byte first.
//
// Stable exports, other modules code against these:
//   Frame<N>, FrameFields<N>, TailRecord<N>, CapturePair, AnyFrame      the decoded shapes
//   encodeFrame(name, seq, fields, pairs?) → Buffer   COBS-encoded, trailing 0x00; throws RangeError/TypeError
//   encodeFrameBytes(name, seq, fields, pairs?)       header ‖ body ‖ CRC, before COBS (tests, fault injection)
//   decodePayload(chunk) → DecodeResult               one delimiter-stripped chunk as read from the wire
//   decodeFrameBytes(bytes) → DecodeResult            header ‖ body ‖ CRC (already COBS-decoded)
//   decodeChunkRange(data, start, end) → Frame | DecodeFailure   decodePayload of data[start, end), unwrapped
//   FrameDecoder (re-exported from decoder.ts)        streaming decoder with link counters
//
// A decoded frame is { name, type, seq, fields } (+ `pairs` for capture_chunk); u64/i64/i128 fields
// are bigint, all narrower ones number.

import { cobsDecode, cobsDecodeRange, cobsEncode } from './cobs.ts';
import { crc32c, crc32cRange } from './crc32c.ts';
import {
  CRC_BYTES,
  FRAMES,
  HEADER_BYTES,
  PROTOCOL_VERSION,
  type FieldDef,
  type FrameName,
  type ScalarType,
  type TailDef,
} from './definition.ts';
import { LAYOUT_BY_TYPE, MAX_ENCODED_FRAME_BYTES, layoutOf, scalarRange, type FieldLayout } from './layout.ts';

export { FrameDecoder, type DecoderCounters, type FrameDecoderOptions, type SeqGap, type DeviceReset } from './decoder.ts';

// ---------------------------------------------------------------------------------------------
// Types derived from the FRAMES table

type FrameDefs = (typeof FRAMES)[number];
type DefOf<N extends FrameName> = Extract<FrameDefs, { name: N }>;

/** The JavaScript type that carries a scalar: bigint from 64 bits up, so no value loses precision. */
export type ScalarValue<T extends ScalarType> = T extends 'u64' | 'i64' | 'i128' ? bigint : number;

type FieldsFrom<L extends readonly FieldDef[]> = {
  -readonly [F in L[number] as F['name']]: ScalarValue<F['type']>;
};

export type FrameFields<N extends FrameName> = FieldsFrom<DefOf<N>['fields']>;

type TailOf<N extends FrameName> = DefOf<N> extends { readonly tail: infer T extends TailDef } ? T : never;

/** One record of a frame's trailing array (capture_chunk: a {v, i} pair). */
export type TailRecord<N extends FrameName> = FieldsFrom<TailOf<N>['fields']>;
export type CapturePair = TailRecord<'capture_chunk'>;

type TailProps<N extends FrameName> = [TailOf<N>] extends [never]
  ? unknown
  : { [K in TailOf<N>['name']]: TailRecord<N>[] };

/** A decoded frame. `Frame` alone is the union over all names, discriminated by `name`. */
export type Frame<N extends FrameName = FrameName> = N extends FrameName
  ? { name: N; type: DefOf<N>['type']; seq: number; fields: FrameFields<N> } & TailProps<N>
  : never;
export type AnyFrame = Frame;

export type DecodeErrorKind =
  | 'oversize' // chunk longer than any valid frame can be
  | 'cobs' // not valid COBS
  | 'short' // shorter than header + CRC
  | 'crc' // CRC mismatch: corrupted or not a frame at all
  | 'version' // intact frame of another protocol version
  | 'type' // intact frame of a type this host does not know
  | 'length'; // intact frame whose body length does not fit its type

export interface DecodeFailure {
  ok: false;
  error: DecodeErrorKind;
  detail: string;
}
export type DecodeResult = { ok: true; frame: Frame } | DecodeFailure;

/** Loosely typed tail record accepted by the encoder; validated at run time. */
export type TailRecordInput = Readonly<Record<string, number | bigint>>;

// ---------------------------------------------------------------------------------------------
// Scalar access

function writeScalar(view: DataView, at: number, type: ScalarType, value: number | bigint): void {
  switch (type) {
    case 'u8':
      return view.setUint8(at, value as number);
    case 'u16':
      return view.setUint16(at, value as number, true);
    case 'u32':
      return view.setUint32(at, value as number, true);
    case 'i16':
      return view.setInt16(at, value as number, true);
    case 'i32':
      return view.setInt32(at, value as number, true);
    case 'u64':
      return view.setBigUint64(at, value as bigint, true);
    case 'i64':
      return view.setBigInt64(at, value as bigint, true);
    case 'i128':
      view.setBigUint64(at, BigInt.asUintN(64, value as bigint), true);
      return view.setBigInt64(at + 8, BigInt.asIntN(64, (value as bigint) >> 64n), true);
  }
}

const RANGES = new Map<ScalarType, { min: bigint; max: bigint }>(
  (['u8', 'u16', 'u32', 'u64', 'i16', 'i32', 'i64', 'i128'] as const).map((t) => [t, scalarRange(t)]),
);

function checkScalar(where: string, type: ScalarType, value: unknown): void {
  const range = RANGES.get(type)!;
  const wide = type === 'u64' || type === 'i64' || type === 'i128';
  if (wide) {
    if (typeof value !== 'bigint') throw new TypeError(`${where}: ${type} needs a bigint, got ${typeof value}`);
    if (value < range.min || value > range.max) {
      throw new RangeError(`${where}: ${value} is outside ${type} (${range.min} … ${range.max})`);
    }
    return;
  }
  if (typeof value !== 'number') throw new TypeError(`${where}: ${type} needs a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < Number(range.min) || value > Number(range.max)) {
    throw new RangeError(`${where}: ${value} is not an integer in ${type} (${range.min} … ${range.max})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Header ‖ body ‖ CRC of one frame, before COBS. Validates every value (RangeError names the field). */
export function encodeFrameBytes<N extends FrameName>(
  name: N,
  seq: number,
  fields: FrameFields<N>,
  pairs?: readonly TailRecordInput[],
): Uint8Array {
  const layout = layoutOf(name);
  checkScalar(`${name}.seq`, 'u32', seq);
  const values = fields as unknown as Record<string, unknown>;
  if (typeof values !== 'object' || values === null) throw new TypeError(`${name}: fields must be an object`);
  for (const key of Object.keys(values)) {
    if (!layout.fields.some((field) => field.name === key)) throw new TypeError(`${name}: unknown field ${key}`);
  }
  const tail = layout.tail;
  const count = pairs?.length ?? 0;
  if (!tail && pairs !== undefined && count > 0) throw new TypeError(`${name} has no trailing records`);
  if (tail && count > tail.maxCount) {
    throw new RangeError(`${name}.${tail.def.name}: ${count} records, at most ${tail.maxCount}`);
  }
  const bytes = new Uint8Array(layout.minFrameBytes + (tail ? tail.recordBytes * count : 0));
  const view = new DataView(bytes.buffer);
  view.setUint8(0, PROTOCOL_VERSION);
  view.setUint8(1, layout.type);
  view.setUint32(2, seq, true);
  for (const field of layout.fields) {
    const value = values[field.name];
    if (value === undefined) throw new TypeError(`${name}.${field.name} is missing`);
    checkScalar(`${name}.${field.name}`, field.type, value);
    writeScalar(view, HEADER_BYTES + field.offset, field.type, value as number | bigint);
  }
  if (tail && pairs) {
    let at = HEADER_BYTES + layout.bodyBytes;
    for (let r = 0; r < count; r++, at += tail.recordBytes) {
      const record = pairs[r] as Record<string, unknown> | undefined;
      if (typeof record !== 'object' || record === null) throw new TypeError(`${name}.${tail.def.name}[${r}] is not an object`);
      for (const field of tail.fields) {
        const where = `${name}.${tail.def.name}[${r}].${field.name}`;
        const value = record[field.name];
        if (value === undefined) throw new TypeError(`${where} is missing`);
        checkScalar(where, field.type, value);
        writeScalar(view, at + field.offset, field.type, value as number | bigint);
      }
    }
  }
  const crcAt = bytes.length - CRC_BYTES;
  view.setUint32(crcAt, crc32c(bytes.subarray(0, crcAt)), true);
  return bytes;
}

/** One frame as sent on the wire: COBS-encoded, followed by the 0x00 delimiter. */
export function encodeFrame<N extends FrameName>(
  name: N,
  seq: number,
  fields: FrameFields<N>,
  pairs?: readonly TailRecordInput[],
): Buffer {
  const encoded = cobsEncode(encodeFrameBytes(name, seq, fields, pairs));
  const out = Buffer.allocUnsafe(encoded.length + 1);
  out.set(encoded, 0);
  out[encoded.length] = 0;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

type RecordReader = (view: DataView, at: number) => Record<string, number | bigint>;

const READ_EXPRESSION: Record<ScalarType, (at: string) => string> = {
  u8: (at) => `v.getUint8(${at})`,
  u16: (at) => `v.getUint16(${at}, true)`,
  u32: (at) => `v.getUint32(${at}, true)`,
  i16: (at) => `v.getInt16(${at}, true)`,
  i32: (at) => `v.getInt32(${at}, true)`,
  u64: (at) => `v.getBigUint64(${at}, true)`,
  i64: (at) => `v.getBigInt64(${at}, true)`,
  // Most i128 values (the energy accumulator) fit in 64 bits: one BigInt then, instead of four.
  i128: (at) =>
    `(v.getUint32(${at} + 8, true) === 0 && v.getUint32(${at} + 12, true) === 0 ? v.getBigUint64(${at}, true)` +
    ` : v.getInt32(${at} + 8, true) === -1 && v.getInt32(${at} + 12, true) === -1 && v.getInt32(${at} + 4, true) < 0` +
    ` ? v.getBigInt64(${at}, true) : ((v.getBigInt64(${at} + 8, true) << 64n) | v.getBigUint64(${at}, true)))`,
};

/**
 * A reader for one record layout, generated once from the definition table (as fastify's
 * serialisers are): an object literal of fixed shape builds several times faster than properties
 * added one by one in a loop, and decoding is the host's hot path. Keys are JSON-quoted and come
 * from our own const table, never from input. The round-trip tests check every type against the encoder.
 */
function compileReader(fields: readonly FieldLayout[]): RecordReader {
  const entries = fields.map((f) => `${JSON.stringify(f.name)}: ${READ_EXPRESSION[f.type](`at + ${f.offset}`)}`);
  return new Function('v', 'at', `return {${entries.join(', ')}};`) as RecordReader;
}

const READERS = new Map(
  [...LAYOUT_BY_TYPE.values()].map((l) => [
    l.type,
    { fields: compileReader(l.fields), tail: l.tail ? compileReader(l.tail.fields) : undefined },
  ]),
);

const fail = (error: DecodeErrorKind, detail: string): DecodeFailure => ({ ok: false, error, detail });

/** Decode header ‖ body ‖ CRC (the COBS-decoded content of one chunk). Never throws. */
export function decodeFrameBytes(bytes: Uint8Array): DecodeResult {
  return wrap(decodeDecoded(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.length));
}

const wrap = (r: Frame | DecodeFailure): DecodeResult => ((r as DecodeFailure).ok === false ? (r as DecodeFailure) : { ok: true, frame: r as Frame });

/** The first `length` bytes of `bytes` (seen also through `view`, at the same offset) as a frame. */
function decodeDecoded(bytes: Uint8Array, view: DataView, length: number): Frame | DecodeFailure {
  if (length < HEADER_BYTES + CRC_BYTES) {
    return fail('short', `${length} bytes, a frame has at least ${HEADER_BYTES + CRC_BYTES}`);
  }
  const crcAt = length - CRC_BYTES;
  const expected = view.getUint32(crcAt, true);
  const actual = crc32cRange(bytes, 0, crcAt);
  if (actual !== expected) {
    return fail('crc', `CRC-32C 0x${actual.toString(16).padStart(8, '0')}, frame says 0x${expected.toString(16).padStart(8, '0')}`);
  }
  const version = view.getUint8(0);
  const type = view.getUint8(1);
  const seq = view.getUint32(2, true);
  if (version !== PROTOCOL_VERSION) {
    return fail(
      'version',
      `frame of protocol version ${version}, this host speaks ${PROTOCOL_VERSION}: ` +
        'update the host or reflash the firmware so that both match',
    );
  }
  const layout = LAYOUT_BY_TYPE.get(type);
  if (!layout) return fail('type', `unknown frame type 0x${type.toString(16).padStart(2, '0')} (seq ${seq})`);
  const bodyBytes = crcAt - HEADER_BYTES;
  const tail = layout.tail;
  const tailBytes = bodyBytes - layout.bodyBytes;
  if (
    tailBytes < 0 ||
    (!tail && tailBytes !== 0) ||
    (tail && (tailBytes % tail.recordBytes !== 0 || tailBytes / tail.recordBytes > tail.maxCount))
  ) {
    const want = tail
      ? `${layout.bodyBytes} + k·${tail.recordBytes} (k ≤ ${tail.maxCount})`
      : `${layout.bodyBytes}`;
    return fail('length', `${layout.name} body of ${bodyBytes} bytes, expected ${want}`);
  }
  const readers = READERS.get(type)!;
  if (!tail) return { name: layout.name, type, seq, fields: readers.fields(view, HEADER_BYTES) } as unknown as Frame;
  const frame: Record<string, unknown> = { name: layout.name, type, seq, fields: readers.fields(view, HEADER_BYTES) };
  const records: Record<string, number | bigint>[] = [];
  for (let at = HEADER_BYTES + layout.bodyBytes; at < crcAt; at += tail.recordBytes) records.push(readers.tail!(view, at));
  frame[tail.def.name] = records;
  return frame as unknown as Frame;
}

/** Decode one chunk as read from the wire between two 0x00 delimiters. Never throws. */
export function decodePayload(chunk: Uint8Array): DecodeResult {
  return wrap(decodeChunkRange(chunk, 0, chunk.length));
}

/**
 * decodePayload for data[start, end), returning the frame itself or the failure (which has ok: false; a frame
 * has no `ok`): the streaming decoder's hot path, which allocates nothing but the frame.
 */
export function decodeChunkRange(data: Uint8Array, start: number, end: number): Frame | DecodeFailure {
  if (end - start > MAX_ENCODED_FRAME_BYTES) {
    return fail('oversize', `${end - start} bytes between delimiters, a frame has at most ${MAX_ENCODED_FRAME_BYTES}`);
  }
  // Decoded into one reusable buffer: the frame returned holds copies of the values, never the bytes.
  const length = cobsDecodeRange(data, start, end, SCRATCH);
  if (length < 0) {
    const cobs = cobsDecode(data.subarray(start, end));
    return fail('cobs', cobs.ok ? 'not valid COBS' : cobs.detail);
  }
  return decodeDecoded(SCRATCH, SCRATCH_VIEW, length);
}

const SCRATCH = new Uint8Array(MAX_ENCODED_FRAME_BYTES);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);
