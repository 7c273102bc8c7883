import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { C_HEADER_PATH, generateCHeader, writeCHeader } from '../../server/protocol/c-header.ts';
import { USB_PID_BOOTLOADER, USB_PID_CRABWATT, USB_VID } from '../../server/protocol/definition.ts';
import { LAYOUTS } from '../../server/protocol/layout.ts';

const work = mkdtempSync(join(tmpdir(), 'crabwatt-cheader-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every struct, field and type id as (struct, member, offset, size) lines, from the TS layouts. */
function expectedLines(): string[] {
  const lines: string[] = [];
  for (const l of LAYOUTS.values()) {
    lines.push(`type ${l.name} ${l.type}`);
    const structs: [string, typeof l.fields, number][] = [];
    if (l.fields.length) structs.push([`cw_${l.name}`, l.fields, l.bodyBytes]);
    if (l.tail) structs.push([`cw_${l.name}_${l.tail.def.name.replace(/s$/, '')}`, l.tail.fields, l.tail.recordBytes]);
    for (const [tag, fields, bytes] of structs) {
      lines.push(`sizeof ${tag} ${bytes}`);
      for (const f of fields) lines.push(`field ${tag}.${f.name} ${f.offset} ${f.bytes}`);
    }
  }
  lines.push(`usb ${USB_VID} ${USB_PID_CRABWATT} ${USB_PID_BOOTLOADER}`);
  return lines;
}

/** The same lines, printed by a C program compiled against the committed header. */
function cProgram(): string {
  const body: string[] = [];
  for (const l of LAYOUTS.values()) {
    body.push(`printf("type ${l.name} %u\\n", (unsigned)CW_TYPE_${l.name.toUpperCase()});`);
    const structs: [string, typeof l.fields][] = [];
    if (l.fields.length) structs.push([`cw_${l.name}`, l.fields]);
    if (l.tail) structs.push([`cw_${l.name}_${l.tail.def.name.replace(/s$/, '')}`, l.tail.fields]);
    for (const [tag, fields] of structs) {
      body.push(`printf("sizeof ${tag} %zu\\n", sizeof(struct ${tag}));`);
      for (const f of fields) {
        body.push(
          `printf("field ${tag}.${f.name} %zu %zu\\n", offsetof(struct ${tag}, ${f.name}), sizeof(((struct ${tag} *)0)->${f.name}));`,
        );
      }
    }
  }
  body.push('printf("usb %u %u %u\\n", (unsigned)CW_USB_VID, (unsigned)CW_USB_PID_CRABWATT, (unsigned)CW_USB_PID_BOOTLOADER);');
  return ['#include <stdio.h>', '#include "crabwatt_protocol.h"', 'int main(void) {', ...body, 'return 0;', '}', ''].join('\n');
}

describe('firmware/include/crabwatt_protocol.h', () => {
  it('is exactly what generateCHeader() produces (regenerate with `crabwatt gen-header`)', () => {
    expect(readFileSync(C_HEADER_PATH, 'utf8')).toBe(generateCHeader());
  });

  it('compiled with cc, has the struct sizes, offsets and ids of the TypeScript layout', () => {
    const src = join(work, 'layout.c');
    const exe = join(work, 'layout');
    writeFileSync(src, cProgram());
    execFileSync('cc', ['-std=c11', '-Wall', '-Wextra', '-Werror', '-I', dirname(C_HEADER_PATH), src, '-o', exe]);
    const printed = execFileSync(exe, { encoding: 'utf8' }).trim().split('\n');
    expect(printed).toEqual(expectedLines());
  });

  it.skipIf(!existsSync('/usr/bin/riscv64-unknown-elf-gcc'))('passes its static asserts for the rv32im target', () => {
    const src = join(work, 'rv.c');
    writeFileSync(src, '#include "crabwatt_protocol.h"\nstruct cw_window w;\n');
    execFileSync('riscv64-unknown-elf-gcc', [
      '-march=rv32im', '-mabi=ilp32', '-ffreestanding', '-std=c11', '-Wall', '-Wextra', '-Werror',
      '-I', dirname(C_HEADER_PATH), '-c', src, '-o', join(work, 'rv.o'),
    ]);
  });

  it('writeCHeader writes the generated text where it is told', () => {
    const path = join(work, 'out.h');
    expect(writeCHeader(path)).toBe(path);
    expect(readFileSync(path, 'utf8')).toBe(generateCHeader());
  });
});
