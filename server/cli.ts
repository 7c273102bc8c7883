// The `crabwatt` command line. server/bin/crabwatt.mjs runs main(argv) and exits with what it returns.
// Each subcommand lives in server/cli/ and prints its own `--help`; errors that tell the user what to do are
// CliErrors (printed without a stack trace), anything else is a bug and prints its stack.

import { CliError, processIo, type Io } from './cli/common.ts';
import { benchCommand } from './cli/bench.ts';
import { bringupCommand } from './cli/bringup.ts';
import { devicesCommand } from './cli/devices.ts';
import { exportCommand } from './cli/export.ts';
import { replayCommand } from './cli/replay.ts';
import { serveCommand } from './cli/serve.ts';
import { flashCommand, rebootCommand } from './cli/flash.ts';
import { genHeaderCommand, vectorsCommand } from './cli/tools.ts';

type Command = (argv: string[], io: Io) => Promise<number> | number;

const COMMANDS: Record<string, { run: Command; summary: string }> = {
  serve: { run: (a, io) => serveCommand(a, io), summary: 'run the host: device → database → API and dashboard (npm start)' },
  devices: { run: (a, io) => devicesCommand(a, io), summary: 'attached boards (and their mode) and stored devices' },
  export: { run: exportCommand, summary: 'stored measurements as CSV (--from --to --interval --tz)' },
  replay: { run: (a, io) => replayCommand(a, io), summary: 'a CSV of ADC codes through the exact model, JSON lines out' },
  vectors: { run: vectorsCommand, summary: 'regenerate the shared DSP test vectors' },
  'gen-header': { run: genHeaderCommand, summary: "write the firmware's C protocol header" },
  bench: { run: benchCommand, summary: 'measure ingest, model and simulator figures (--json)' },
  flash: { run: (a, io) => flashCommand(a, io), summary: 'write a .dfu image to the board over DFU (checks it, waits for the bootloader)' },
  bringup: { run: (a, io) => bringupCommand(a, io), summary: 'guided first power-up with the ADC wing: identity, link, ADC capture-point scan, codes, noise, rate, live' },
  reboot: { run: (a, io) => rebootCommand(a, io), summary: 'reload the board from flash (cmd_reboot: a restart; r0.1: into DFU)' },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: crabwatt COMMAND [options]   (crabwatt COMMAND --help for its options)\n\n${lines.join('\n')}\n`;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`crabwatt: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`crabwatt ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`crabwatt ${name}: unexpected error (a bug, please report it):\n${(err as Error).stack ?? String(err)}\n`);
    return 70;
  }
}
