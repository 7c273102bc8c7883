// The frame reference tables of docs/protocol.md, generated from definition.ts (via layout.ts).
// The doc keeps them between two marker lines; test/protocol/doc-tables.test.ts fails when they
// differ from generateFrameTables(), and writeProtocolDocTables() refreshes them in place.
//
// Exports (stable): generateFrameTables(), writeProtocolDocTables(path?), PROTOCOL_DOC_PATH,
// DOC_BEGIN_MARKER, DOC_END_MARKER.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cobsMaxEncodedBytes } from './cobs.ts';
import { HEADER_BYTES } from './definition.ts';
import { LAYOUTS, type FieldLayout } from './layout.ts';

export const PROTOCOL_DOC_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs/protocol.md');
export const DOC_BEGIN_MARKER = '<!-- BEGIN GENERATED FRAME TABLES (server/protocol/doc-tables.ts) -->';
export const DOC_END_MARKER = '<!-- END GENERATED FRAME TABLES -->';

const hex2 = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;
const cell = (s: string) => s.replace(/\|/g, '\\|');

function fieldTable(fields: readonly FieldLayout[], offsetBase: number): string[] {
  const rows = ['| offset | field | type | meaning |', '| ---: | --- | --- | --- |'];
  for (const f of fields) rows.push(`| ${offsetBase + f.offset} | \`${f.name}\` | ${f.type} | ${cell(f.doc)} |`);
  return rows;
}

export function generateFrameTables(): string {
  const layouts = [...LAYOUTS.values()];
  const out: string[] = [
    'Offsets count from the first byte of the frame (the version byte); the body starts at ' +
      `offset ${HEADER_BYTES}. Sizes are before COBS; "on the wire" is the worst case after COBS, ` +
      'delimiter included.',
    '',
    '| type | frame | direction | body bytes | frame bytes | on the wire |',
    '| --- | --- | --- | ---: | ---: | ---: |',
  ];
  for (const l of layouts) {
    const body = l.tail ? `${l.bodyBytes} + ${l.tail.recordBytes}·k (k ≤ ${l.tail.maxCount})` : `${l.bodyBytes}`;
    const frame = l.tail ? `${l.minFrameBytes} … ${l.maxFrameBytes}` : `${l.minFrameBytes}`;
    const wire = `${cobsMaxEncodedBytes(l.maxFrameBytes) + 1}`;
    out.push(`| ${hex2(l.type)} | [\`${l.name}\`](#${l.name}) | ${l.def.direction} | ${body} | ${frame} | ${wire} |`);
  }
  for (const l of layouts) {
    out.push('', `### ${l.name}`, '', `Type ${hex2(l.type)}, ${l.def.direction}. ${l.def.doc}`, '');
    if (l.fields.length === 0) out.push('No body: the header and the CRC are the whole frame.');
    else out.push(...fieldTable(l.fields, HEADER_BYTES));
    if (l.tail) {
      out.push(
        '',
        `Then \`${l.tail.def.name}\`: ${l.tail.def.doc}, up to ${l.tail.maxCount} records of ${l.tail.recordBytes} bytes ` +
          'until the CRC (their count is the remaining length divided by the record size). Offsets within a record:',
        '',
        ...fieldTable(l.tail.fields, 0),
      );
    }
  }
  return out.join('\n');
}

/** Replace the generated section of docs/protocol.md (or `path`) with fresh tables. */
export function writeProtocolDocTables(path: string = PROTOCOL_DOC_PATH): string {
  const text = readFileSync(path, 'utf8');
  const begin = text.indexOf(DOC_BEGIN_MARKER);
  const end = text.indexOf(DOC_END_MARKER);
  if (begin < 0 || end < begin) throw new Error(`${path}: the generated-table markers are missing or out of order`);
  const head = text.slice(0, begin + DOC_BEGIN_MARKER.length);
  writeFileSync(path, `${head}\n${generateFrameTables()}\n${text.slice(end)}`);
  return path;
}
