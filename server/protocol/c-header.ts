// Generates firmware/include/crabwatt_protocol.h from definition.ts, so the firmware and the host
// read one definition. test/protocol/c-header.test.ts fails when the committed header differs from
// generateCHeader(), and compiles it to compare every struct size and field offset with layout.ts.
//
// Exports (stable): generateCHeader(): string, writeCHeader(path?): string (the path written),
// C_HEADER_PATH. The CLI command `crabwatt gen-header` calls writeCHeader().
//
// C names: CW_TYPE_<FRAME>, struct cw_<frame> (fixed body only; a trailing array is a separate
// struct cw_<frame>_<record>), CW_<FRAME>_<FIELD>_OFFSET/_SIZE (offsets from the body start),
// CW_<FRAME>_BODY_BYTES, and CW_<ENUM>_<KEY> for the enums.

import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRC32C_CHECK, CRC32C_POLY_REFLECTED } from './crc32c.ts';
import {
  ACK_STATUS,
  ADC_DELAY,
  ADC_PART,
  BOARD,
  CALIBRATION_SOURCE,
  CAPTURE_TRIGGER,
  CRC_BYTES,
  HEADER_BYTES,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  TX_RESERVE,
  TX_RING,
  USB_PID_BOOTLOADER,
  USB_PID_CRABWATT,
  USB_VID,
  WINDOW_FLAG,
  WINDOW_MODE,
  type ScalarType,
} from './definition.ts';
import { LAYOUTS, MAX_ENCODED_FRAME_BYTES, type FieldLayout } from './layout.ts';

export const C_HEADER_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../firmware/include/crabwatt_protocol.h');

const C_TYPE: Record<ScalarType, string> = {
  u8: 'uint8_t', u16: 'uint16_t', u32: 'uint32_t', u64: 'uint64_t',
  i16: 'int16_t', i32: 'int32_t', i64: 'int64_t', i128: 'uint8_t',
};

/** C prefix of each enum; ACK_STATUS reads better as CW_ACK_OK than CW_ACK_STATUS_OK. */
const ENUMS: readonly [string, string, Readonly<Record<string, number>>][] = [
  ['CW_WINDOW_MODE', 'window_mode: how windows close (docs/dsp.md)', WINDOW_MODE],
  ['CW_ADC_PART', 'identify.adc_part', ADC_PART],
  ['CW_BOARD', 'identify.board', BOARD],
  ['CW_CAPTURE_TRIGGER', 'cmd_capture.trigger', CAPTURE_TRIGGER],
  ['CW_ACK', 'ack.status', ACK_STATUS],
  ['CW_CALIBRATION_SOURCE', 'identify.calibration_source', CALIBRATION_SOURCE],
  ['CW_ADC_DELAY', 'cmd_adc_delay.read_delay and its ack\'s value', ADC_DELAY],
  ['CW_TX_RESERVE', 'transmit ring room the waveform stream and capture chunks leave to every other frame', TX_RESERVE],
  ['CW_TX_RING', "the device's transmit ring", TX_RING],
];

const upper = (s: string) => s.toUpperCase();
const hex = (n: number, digits: number) => `0x${n.toString(16).toUpperCase().padStart(digits, '0')}u`;

function structLines(tag: string, fields: readonly FieldLayout[]): string[] {
  const width = Math.max(...fields.map((f) => C_TYPE[f.type].length));
  const lines = [`struct ${tag} {`];
  for (const field of fields) {
    const decl = field.type === 'i128' ? `${field.name}[16]` : field.name;
    const note = field.type === 'i128' ? `${field.doc}; i128, little-endian two's complement` : field.doc;
    lines.push(`    ${C_TYPE[field.type].padEnd(width)} ${decl}; /* ${note} */`);
  }
  const bytes = fields.reduce((sum, f) => sum + f.bytes, 0);
  lines.push('} __attribute__((packed));');
  lines.push(`_Static_assert(sizeof(struct ${tag}) == ${bytes}, "struct ${tag} must match the wire layout");`);
  for (const field of fields) {
    lines.push(`_Static_assert(offsetof(struct ${tag}, ${field.name}) == ${field.offset}, "${tag}.${field.name} offset");`);
  }
  return lines;
}

function fieldDefines(prefix: string, fields: readonly FieldLayout[]): string[] {
  return fields.flatMap((f) => [
    `#define ${prefix}_${upper(f.name)}_OFFSET ${f.offset}u`,
    `#define ${prefix}_${upper(f.name)}_SIZE ${f.bytes}u`,
  ]);
}

export function generateCHeader(): string {
  const layouts = [...LAYOUTS.values()];
  const maxOf = (dir: string) => Math.max(...layouts.filter((l) => l.def.direction === dir).map((l) => l.maxFrameBytes));
  const out: string[] = [
    '/* crabwatt wire protocol. GENERATED from server/protocol/definition.ts: do not edit by hand;',
    ' * regenerate with `node server/bin/crabwatt.mjs gen-header` (a host test fails while it differs).',
    ' *',
    ' * Frame on the wire:  COBS( header ‖ body ‖ crc32c(header ‖ body) ) ‖ 0x00   (docs/protocol.md)',
    ' * header: version u8, type u8, seq u32. Every multi-byte value is little-endian; the structs below',
    ' * are packed and assume a little-endian target (rv32im is). i128 values are uint8_t[16] holding the',
    ' * two\'s complement, least significant byte first. Struct sizes and field offsets are checked by',
    ' * _Static_assert, so a compiler that lays them out differently fails the build. */',
    '#ifndef CRABWATT_PROTOCOL_H',
    '#define CRABWATT_PROTOCOL_H',
    '',
    '#include <stddef.h>',
    '#include <stdint.h>',
    '',
    `#define CW_PROTOCOL_VERSION ${PROTOCOL_VERSION}u`,
    `#define CW_HEADER_BYTES ${HEADER_BYTES}u`,
    `#define CW_CRC_BYTES ${CRC_BYTES}u`,
    '/* Largest decoded frame (header + body + CRC); longer runs between delimiters are garbage. */',
    `#define CW_MAX_FRAME_BYTES ${MAX_FRAME_BYTES}u`,
    '/* Largest COBS-encoded frame, without the delimiter. */',
    `#define CW_MAX_ENCODED_FRAME_BYTES ${MAX_ENCODED_FRAME_BYTES}u`,
    '/* Largest frames each way, so the device can size its command receiver. */',
    `#define CW_MAX_DEVICE_FRAME_BYTES ${maxOf('device-to-host')}u`,
    `#define CW_MAX_COMMAND_FRAME_BYTES ${maxOf('host-to-device')}u`,
    '',
    '/* CRC-32C (Castagnoli), reflected; init and final XOR 0xFFFFFFFF; crc of "123456789" is the check. */',
    `#define CW_CRC32C_POLY_REFLECTED ${hex(CRC32C_POLY_REFLECTED, 8)}`,
    `#define CW_CRC32C_CHECK ${hex(CRC32C_CHECK, 8)}`,
    '',
    '/* USB ids: ours from the pid.codes open-source range; the bootloader is foboot. */',
    `#define CW_USB_VID ${hex(USB_VID, 4)}`,
    `#define CW_USB_PID_CRABWATT ${hex(USB_PID_CRABWATT, 4)}`,
    `#define CW_USB_PID_BOOTLOADER ${hex(USB_PID_BOOTLOADER, 4)}`,
    '',
    '/* Frame types; bit 7 set for host-to-device commands. */',
    ...layouts.map((l) => `#define CW_TYPE_${upper(l.name)} ${hex(l.type, 2)}`),
    '',
  ];
  for (const [prefix, doc, values] of ENUMS) {
    out.push(`/* ${doc} */`);
    for (const [key, value] of Object.entries(values)) out.push(`#define ${prefix}_${key} ${value}u`);
    out.push('');
  }
  out.push('/* window.flags bits (docs/dsp.md) */');
  for (const [key, value] of Object.entries(WINDOW_FLAG)) out.push(`#define CW_WINDOW_FLAG_${key} ${hex(value, 4)}`);
  out.push('');
  for (const l of layouts) {
    const prefix = `CW_${upper(l.name)}`;
    out.push(`/* ${l.name} (${l.def.direction}): ${l.def.doc} */`);
    out.push(`#define ${prefix}_BODY_BYTES ${l.bodyBytes}u`);
    if (l.fields.length > 0) {
      out.push(...structLines(`cw_${l.name}`, l.fields));
      out.push(...fieldDefines(prefix, l.fields));
    } else {
      out.push('/* no body: the frame is the header and the CRC */');
    }
    if (l.tail) {
      const recordName = l.tail.def.name.replace(/s$/, '');
      const tp = `${prefix}_${upper(l.tail.def.name)}`;
      out.push(`/* ${l.tail.def.doc}: up to ${l.tail.maxCount} records follow the body, to the CRC */`);
      out.push(`#define ${tp}_MAX_COUNT ${l.tail.maxCount}u`);
      out.push(`#define ${prefix}_${upper(recordName)}_BYTES ${l.tail.recordBytes}u`);
      out.push(...structLines(`cw_${l.name}_${recordName}`, l.tail.fields));
      out.push(...fieldDefines(`${prefix}_${upper(recordName)}`, l.tail.fields));
    }
    out.push('');
  }
  out.push('#endif /* CRABWATT_PROTOCOL_H */', '');
  return out.join('\n');
}

/** Writes the header (by default to firmware/include/crabwatt_protocol.h); returns the path written. */
export function writeCHeader(path: string = C_HEADER_PATH): string {
  writeFileSync(path, generateCHeader());
  return path;
}
