// Small commands: vectors, gen-header.

import { join, resolve } from 'node:path';
import { writeDecimatorVectors } from '../dsp/decimator-vectors.ts';
import { writeVectors } from '../dsp/vectors.ts';
import { C_HEADER_PATH, writeCHeader } from '../protocol/c-header.ts';
import { parseCommandArgs, str, type Io } from './common.ts';

export const VECTORS_HELP = `crabwatt vectors [--dir DIR]

Regenerates the shared DSP test vectors (stimulus + expected integer window sums) from the exact model
into DIR (default test/vectors), and the decimated-stream vectors into DIR/decimator. A test fails when the committed files differ from what this writes.
`;

export function vectorsCommand(argv: string[], io: Io): number {
  const { values } = parseCommandArgs('vectors', argv, { dir: { type: 'string' } });
  if (values['help']) {
    io.out(VECTORS_HELP);
    return 0;
  }
  const dir = resolve(str(values, 'dir') ?? 'test/vectors');
  for (const name of writeVectors(dir)) io.out(`${join(dir, name)}\n`);
  const decimatorDir = join(dir, 'decimator');
  for (const name of writeDecimatorVectors(decimatorDir)) io.out(`${join(decimatorDir, name)}\n`);
  return 0;
}

export const GEN_HEADER_HELP = `crabwatt gen-header [--output FILE]

Writes the firmware's C protocol header generated from server/protocol/definition.ts
(default ${C_HEADER_PATH}).
`;

export function genHeaderCommand(argv: string[], io: Io): number {
  const { values } = parseCommandArgs('gen-header', argv, { output: { type: 'string', short: 'o' } });
  if (values['help']) {
    io.out(GEN_HEADER_HELP);
    return 0;
  }
  const path = writeCHeader(str(values, 'output') ? resolve(str(values, 'output')!) : undefined);
  io.out(`${path}\n`);
  return 0;
}
