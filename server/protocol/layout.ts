// Byte layout of every frame, computed once from definition.ts. codec.ts, the C header generator and
// the protocol documentation all read these tables, so none of them can disagree about an offset.
//
// Exports (stable): FieldLayout, TailLayout, FrameLayout, LAYOUTS (by name), LAYOUT_BY_TYPE,
// MAX_ENCODED_FRAME_BYTES, scalarRange().

import { cobsMaxEncodedBytes } from './cobs.ts';
import {
  CRC_BYTES,
  FRAMES,
  HEADER_BYTES,
  MAX_FRAME_BYTES,
  SCALAR_BYTES,
  type FieldDef,
  type FrameDef,
  type FrameName,
  type ScalarType,
  type TailDef,
} from './definition.ts';

export interface FieldLayout {
  readonly name: string;
  readonly type: ScalarType;
  readonly doc: string;
  /** Byte offset from the start of the body (the first byte after the header). */
  readonly offset: number;
  readonly bytes: number;
}

export interface TailLayout {
  readonly def: TailDef;
  /** Offsets within one record. */
  readonly fields: readonly FieldLayout[];
  readonly recordBytes: number;
  readonly maxCount: number;
}

export interface FrameLayout {
  readonly def: FrameDef;
  readonly name: FrameName;
  readonly type: number;
  readonly fields: readonly FieldLayout[];
  /** Bytes of the fixed fields (the tail, if any, follows them). */
  readonly bodyBytes: number;
  readonly tail: TailLayout | undefined;
  /** header + fixed body + CRC: the decoded length with an empty tail. */
  readonly minFrameBytes: number;
  /** header + fixed body + full tail + CRC. */
  readonly maxFrameBytes: number;
}

/** Longest delimiter-stripped chunk a valid frame can produce on the wire. */
export const MAX_ENCODED_FRAME_BYTES = cobsMaxEncodedBytes(MAX_FRAME_BYTES);

/** Inclusive range of a scalar type, as bigint so that 64- and 128-bit bounds are exact. */
export function scalarRange(type: ScalarType): { min: bigint; max: bigint } {
  const bits = BigInt(SCALAR_BYTES[type] * 8);
  return type.startsWith('u')
    ? { min: 0n, max: (1n << bits) - 1n }
    : { min: -(1n << (bits - 1n)), max: (1n << (bits - 1n)) - 1n };
}

function layoutFields(fields: readonly FieldDef[], where: string): { fields: FieldLayout[]; bytes: number } {
  const names = new Set<string>();
  let offset = 0;
  const out: FieldLayout[] = [];
  for (const field of fields) {
    if (names.has(field.name)) throw new Error(`protocol definition: ${where} has two fields named ${field.name}`);
    names.add(field.name);
    const bytes = SCALAR_BYTES[field.type];
    out.push({ name: field.name, type: field.type, doc: field.doc, offset, bytes });
    offset += bytes;
  }
  return { fields: out, bytes: offset };
}

function buildLayouts(): { byName: Map<FrameName, FrameLayout>; byType: Map<number, FrameLayout> } {
  const byName = new Map<FrameName, FrameLayout>();
  const byType = new Map<number, FrameLayout>();
  for (const def of FRAMES as readonly FrameDef[]) {
    const name = def.name as FrameName;
    if (byName.has(name)) throw new Error(`protocol definition: two frames named ${name}`);
    if (byType.has(def.type)) throw new Error(`protocol definition: two frames with type 0x${def.type.toString(16)}`);
    if (!Number.isInteger(def.type) || def.type < 1 || def.type > 0xff) {
      throw new Error(`protocol definition: frame ${name} type ${def.type} is not a u8 in 1..255`);
    }
    // Bit 7 of the type tells the direction, so a misrouted frame is recognisable on sight.
    if ((def.type >= 0x80) !== (def.direction === 'host-to-device')) {
      throw new Error(`protocol definition: frame ${name} type 0x${def.type.toString(16)} contradicts its direction`);
    }
    const body = layoutFields(def.fields, name);
    let tail: TailLayout | undefined;
    if (def.tail) {
      const rec = layoutFields(def.tail.fields, `${name}.${def.tail.name}`);
      if (body.fields.some((field) => field.name === def.tail!.name)) {
        throw new Error(`protocol definition: ${name}.${def.tail.name} collides with a field`);
      }
      tail = { def: def.tail, fields: rec.fields, recordBytes: rec.bytes, maxCount: def.tail.maxCount };
      if (rec.bytes === 0) throw new Error(`protocol definition: ${name}.${def.tail.name} has empty records`);
    }
    const minFrameBytes = HEADER_BYTES + body.bytes + CRC_BYTES;
    const maxFrameBytes = minFrameBytes + (tail ? tail.recordBytes * tail.maxCount : 0);
    if (maxFrameBytes > MAX_FRAME_BYTES) {
      throw new Error(`protocol definition: ${name} can be ${maxFrameBytes} bytes, more than MAX_FRAME_BYTES`);
    }
    const layout: FrameLayout = {
      def, name, type: def.type, fields: body.fields, bodyBytes: body.bytes, tail, minFrameBytes, maxFrameBytes,
    };
    byName.set(name, layout);
    byType.set(def.type, layout);
  }
  return { byName, byType };
}

const built = buildLayouts();
export const LAYOUTS: ReadonlyMap<FrameName, FrameLayout> = built.byName;
export const LAYOUT_BY_TYPE: ReadonlyMap<number, FrameLayout> = built.byType;

export function layoutOf(name: FrameName): FrameLayout {
  const layout = LAYOUTS.get(name);
  if (!layout) throw new RangeError(`unknown frame name ${String(name)}`);
  return layout;
}
