import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DOC_BEGIN_MARKER,
  DOC_END_MARKER,
  PROTOCOL_DOC_PATH,
  generateFrameTables,
  writeProtocolDocTables,
} from '../../server/protocol/doc-tables.ts';
import { ACK_STATUS } from '../../server/protocol/definition.ts';
import { LAYOUTS } from '../../server/protocol/layout.ts';

const work = mkdtempSync(join(tmpdir(), 'crabwatt-doc-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const doc = readFileSync(PROTOCOL_DOC_PATH, 'utf8');

describe('docs/protocol.md', () => {
  it('holds the frame tables generated from the definition (refresh with writeProtocolDocTables)', () => {
    const section = doc.slice(doc.indexOf(DOC_BEGIN_MARKER) + DOC_BEGIN_MARKER.length, doc.indexOf(DOC_END_MARKER));
    expect(section.trim()).toBe(generateFrameTables().trim());
  });

  it('documents every frame and every field, with its offset', () => {
    for (const l of LAYOUTS.values()) {
      expect(doc).toContain(`### ${l.name}\n`);
      for (const f of l.fields) expect(doc).toContain(`| ${6 + f.offset} | \`${f.name}\` | ${f.type} |`);
      for (const f of l.tail?.fields ?? []) expect(doc).toContain(`| ${f.offset} | \`${f.name}\` | ${f.type} |`);
    }
  });

  it('explains every ack status and both USB ids', () => {
    for (const [key, value] of Object.entries(ACK_STATUS)) expect(doc).toContain(`| ${value} \`${key}\` |`);
    expect(doc).toContain('1209:5af1');
    expect(doc).toContain('1209:5af0');
    expect(doc).toContain('0xE3069283');
  });

  it('writeProtocolDocTables refreshes only the generated section', () => {
    const path = join(work, 'protocol.md');
    writeFileSync(path, `intro\n${DOC_BEGIN_MARKER}\nstale\n${DOC_END_MARKER}\noutro\n`);
    writeProtocolDocTables(path);
    expect(readFileSync(path, 'utf8')).toBe(`intro\n${DOC_BEGIN_MARKER}\n${generateFrameTables()}\n${DOC_END_MARKER}\noutro\n`);
    writeFileSync(path, 'no markers');
    expect(() => writeProtocolDocTables(path)).toThrow(/markers/);
  });
});
