// Small commands: vectors, gen-header, flash.

import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeVectors } from '../dsp/vectors.ts';
import { C_HEADER_PATH, writeCHeader } from '../protocol/c-header.ts';
import { USB_PID_BOOTLOADER, USB_VID } from '../protocol/definition.ts';
import { CliError, parseCommandArgs, str, UsageError, type Io } from './common.ts';

const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

export const VECTORS_HELP = `crabwatt vectors [--dir DIR]

Regenerates the shared DSP test vectors (stimulus + expected integer window sums) from the exact model
into DIR (default test/vectors). A test fails when the committed files differ from what this writes.
`;

export function vectorsCommand(argv: string[], io: Io): number {
  const { values } = parseCommandArgs('vectors', argv, { dir: { type: 'string' } });
  if (values['help']) {
    io.out(VECTORS_HELP);
    return 0;
  }
  const dir = resolve(str(values, 'dir') ?? 'test/vectors');
  const written = writeVectors(dir);
  for (const name of written) io.out(`${join(dir, name)}\n`);
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

export const FLASH_HELP = `crabwatt flash FILE.dfu

Writes a bitstream/firmware image to the OrangeCrab over USB DFU (\`dfu-util -a 0 -D FILE\`).
The board must be in its bootloader (foboot, USB ${hex4(USB_VID)}:${hex4(USB_PID_BOOTLOADER)}): hold the button
while plugging the board in; the LED then fades in and out.
`;

/** Runs dfu-util; the command is injectable for tests. */
export async function flashCommand(argv: string[], io: Io, dfuUtil = 'dfu-util'): Promise<number> {
  const { values, positionals } = parseCommandArgs('flash', argv, {}, true);
  if (values['help']) {
    io.out(FLASH_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('flash needs exactly one FILE.dfu (see `crabwatt flash --help`)');
  const file = positionals[0]!;
  if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`no such file '${file}'`);
  if (!file.endsWith('.dfu')) throw new UsageError(`'${file}' is not a .dfu image (build one with \`npm run gateware\`)`);
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolvePromise, reject) => {
    let output = '';
    const child = spawn(dfuUtil, ['-a', '0', '-D', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (b: Buffer) => {
      output += b.toString();
      io.out(b.toString());
    });
    child.stderr.on('data', (b: Buffer) => {
      output += b.toString();
      io.err(b.toString());
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new CliError('dfu-util is not installed: `apt-get install dfu-util`'));
      else reject(err);
    });
    child.on('close', (code) => resolvePromise({ code, output }));
  });
  if (code === 0) return 0;
  if (/No DFU capable USB device/i.test(output)) {
    throw new CliError(
      `no board in DFU mode was found. Enter the bootloader: unplug the OrangeCrab, hold its button, plug it in ` +
        `(the LED fades in and out; \`lsusb\` shows ${hex4(USB_VID)}:${hex4(USB_PID_BOOTLOADER)}), then run this again.`,
    );
  }
  throw new CliError(`dfu-util failed (exit code ${code}); see its output above`);
}
