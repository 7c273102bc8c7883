// `crabwatt flash FILE.dfu`: checks the image, gets the board into foboot's DFU mode (saying how, and
// waiting for the DFU device to appear), writes it with dfu-util behind a progress bar, and starts it.
// `crabwatt reboot`: cmd_reboot to a running board (PROGRAMN: foboot starts again).

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { listDevices, type DiscoveredDevice } from '../device/discovery.ts';
import { DeviceLink } from '../device/link.ts';
import { ACK_STATUS, USB_PID_BOOTLOADER, USB_PID_CRABWATT, USB_VID } from '../protocol/definition.ts';
import { CliError, parseCommandArgs, parseNumber, str, UsageError, type Io } from './common.ts';

/**
 * Bytes a bitstream may take in the flash from foboot's 0x80000: regmap.FLASH_BITSTREAM_SLOT_BYTES
 * (hdl/crabwatt/soc/regmap.py; test/cli/flash.test.ts holds this copy to the generated C header).
 */
export const FLASH_BITSTREAM_SLOT_BYTES = 516_096;
const DFU_SUFFIX_BYTES = 16;
const POLL_MS = 500;

const hex4 = (n: number): string => n.toString(16).padStart(4, '0');
const BOOTLOADER = `${hex4(USB_VID)}:${hex4(USB_PID_BOOTLOADER)}`;

const HOW_TO_DFU = `Put the board in foboot's DFU mode:
  r0.2: hold the button about 1 s (or hold it while plugging the board in); keep holding until the LED fades
        in and out: the FPGA reloads foboot, which stays in DFU while the button is held.
  r0.1: press the button once (it is wired to PROGRAMN): foboot reloads and stays in DFU until dfu-util -e.
  either: \`crabwatt reboot\` (or --reboot here) asks a running board to reload foboot (r0.1: into DFU).
\`lsusb\` then shows ${BOOTLOADER}.`;

export const FLASH_HELP = `crabwatt flash FILE.dfu [--reboot] [--wait-s S]

Writes a bitstream (\`npm run gateware\` makes build/gateware/<board>/crabwatt.dfu) to the OrangeCrab over
USB DFU: checks that the file is a DFU image for foboot (${BOOTLOADER}) and that its bitstream fits the flash
slot (${FLASH_BITSTREAM_SLOT_BYTES} bytes from 0x80000), waits up to S seconds (default 120) for the board to
appear in DFU mode, writes it with \`dfu-util -a 0 -D FILE\` (foboot has two alt settings: without -a 0
dfu-util refuses) behind a progress bar, then starts it with \`dfu-util -a 0 -e\`.

${HOW_TO_DFU}
--reboot sends cmd_reboot to the board running crabwatt first.
`;

export const REBOOT_HELP = `crabwatt reboot [--device PATH]

Sends cmd_reboot to a running board (default: the first ${hex4(USB_VID)}:${hex4(USB_PID_CRABWATT)}) and waits for its ack: the
firmware finishes any calibration save, then pulls PROGRAMN low and the FPGA reloads foboot. On r0.2 foboot
starts the installed bitstream again (a restart: a new boot_id), or stays in DFU while the button is held;
on r0.1 it stays in DFU until \`dfu-util -e\`.
`;

export interface FlashDeps {
  dfuUtil: string;
  discover: () => Promise<DiscoveredDevice[]>;
  /** Waits between two looks for the DFU device. */
  pause: (ms: number) => Promise<void>;
  /** Sends cmd_reboot to the board at path (or the first crabwatt board). */
  reboot: (path: string | undefined) => Promise<void>;
}

const defaultDeps: FlashDeps = {
  dfuUtil: 'dfu-util',
  discover: () => listDevices(),
  pause: (ms) => new Promise((r) => setTimeout(r, ms)),
  reboot: (path) => sendReboot(path),
};

/** The bitstream's size, after checking the DFU suffix (USB DFU 1.1 appendix B) the way dfu-util does. */
export function checkDfuImage(file: string): number {
  const data = readFileSync(file);
  if (data.length < DFU_SUFFIX_BYTES + 1) throw new UsageError(`'${file}' is too short to be a .dfu image`);
  const suffix = data.subarray(data.length - DFU_SUFFIX_BYTES);
  const pid = suffix.readUInt16LE(2);
  const vid = suffix.readUInt16LE(4);
  if (suffix.toString('latin1', 8, 11) !== 'UFD' || suffix.readUInt8(11) !== DFU_SUFFIX_BYTES || suffix.readUInt16LE(6) !== 0x0100) {
    throw new UsageError(`'${file}' has no DFU suffix: build it with \`npm run gateware\` (crabwatt.dfu, not crabwatt.bit)`);
  }
  // dfu-util's CRC: CRC-32 without the final inversion, over everything but the CRC itself.
  if ((crc32(data.subarray(0, data.length - 4)) ^ 0xffffffff) >>> 0 !== suffix.readUInt32LE(12)) {
    throw new UsageError(`'${file}' is damaged: its DFU suffix CRC does not match (copy or build it again)`);
  }
  if (vid !== USB_VID || pid !== USB_PID_BOOTLOADER) {
    throw new UsageError(`'${file}' is for USB ${hex4(vid)}:${hex4(pid)}, not foboot (${BOOTLOADER})`);
  }
  const bytes = data.length - DFU_SUFFIX_BYTES;
  if (bytes > FLASH_BITSTREAM_SLOT_BYTES) {
    throw new UsageError(
      `'${file}' holds a ${bytes}-byte bitstream; the flash slot from 0x80000 holds ${FLASH_BITSTREAM_SLOT_BYTES} ` +
        `(past it lie foboot's second slot and the calibration record). Was it packed with ecppack --compress?`,
    );
  }
  return bytes;
}

/** Runs dfu-util; `onLine` gets each line or progress update (dfu-util redraws its bar with \r). */
function runDfuUtil(dfuUtil: string, args: string[], onLine: (line: string) => void): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    let output = '';
    let partial = '';
    const child = spawn(dfuUtil, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (b: Buffer) => {
      output += b.toString();
      const parts = (partial + b.toString()).split(/[\r\n]/);
      partial = parts.pop()!;
      for (const p of parts) if (p.trim()) onLine(p);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new CliError('dfu-util is not installed: `apt-get install dfu-util`'));
      else reject(err);
    });
    child.on('close', (code) => {
      if (partial.trim()) onLine(partial);
      resolvePromise({ code, output });
    });
  });
}

export function progressBar(fraction: number, doneBytes: number, totalBytes: number, width = 30): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  const pct = String(Math.round(fraction * 100)).padStart(3);
  return `\rwriting [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}%  ${doneBytes} / ${totalBytes} bytes`;
}

async function waitForBootloader(deps: FlashDeps, waitS: number, io: Io): Promise<void> {
  const looks = Math.max(1, Math.ceil((waitS * 1000) / POLL_MS));
  let told = false;
  for (let k = 0; k < looks; k++) {
    const devices = await deps.discover();
    if (devices.some((d) => d.mode === 'bootloader')) {
      if (told) io.out('\n');
      io.out(`found foboot (${BOOTLOADER})\n`);
      return;
    }
    if (!told) {
      const running = devices.some((d) => d.mode === 'crabwatt');
      io.out(`${running ? 'the board runs crabwatt, not the bootloader. ' : 'no board in DFU mode yet. '}${HOW_TO_DFU}\n`);
      io.out(`waiting for ${BOOTLOADER} (up to ${waitS} s)`);
      told = true;
    } else {
      io.out('.');
    }
    await deps.pause(POLL_MS);
  }
  io.out('\n');
  throw new CliError(`no board appeared in DFU mode within ${waitS} s. ${HOW_TO_DFU}\nThen run this again.`);
}

export async function flashCommand(argv: string[], io: Io, overrides: Partial<FlashDeps> = {}): Promise<number> {
  const deps = { ...defaultDeps, ...overrides };
  const { values, positionals } = parseCommandArgs('flash', argv, {
    reboot: { type: 'boolean' }, 'wait-s': { type: 'string' },
  }, true);
  if (values['help']) {
    io.out(FLASH_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('flash needs exactly one FILE.dfu (see `crabwatt flash --help`)');
  const file = positionals[0]!;
  if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`no such file '${file}'`);
  if (!file.endsWith('.dfu')) throw new UsageError(`'${file}' is not a .dfu image (build one with \`npm run gateware\`)`);
  const waitS = parseNumber('wait-s', str(values, 'wait-s'), 120, (n) => n > 0 && n <= 3600, 'seconds, 1..3600');
  const bytes = checkDfuImage(file);
  io.out(`${file}: a ${bytes}-byte bitstream for foboot, ${Math.round((100 * bytes) / FLASH_BITSTREAM_SLOT_BYTES)} % of the flash slot\n`);

  if (values['reboot']) {
    await deps.reboot(undefined);
    io.out('cmd_reboot acked: the board reloads foboot\n');
  }
  await waitForBootloader(deps, waitS, io);

  let drawn = false;
  const download = await runDfuUtil(deps.dfuUtil, ['-a', '0', '-D', file], (line) => {
    const progress = /(\d+)%\s+(\d+) bytes/.exec(line);
    if (progress && /Download/i.test(line)) {
      io.out(progressBar(Number(progress[1]) / 100, Number(progress[2]), bytes));
      drawn = true;
    }
  });
  if (drawn) io.out('\n');
  if (download.code !== 0) {
    io.err(download.output);
    if (/No DFU capable USB device/i.test(download.output)) {
      throw new CliError(`the DFU device went away before dfu-util found it. ${HOW_TO_DFU}`);
    }
    throw new CliError(`dfu-util failed (exit code ${download.code}); its output is above. The old bitstream may be ` +
      `half overwritten: foboot still starts, so run this again.`);
  }
  const start = await runDfuUtil(deps.dfuUtil, ['-a', '0', '-e'], () => {});
  if (start.code !== 0) {
    io.err(start.output);
    throw new CliError('written, but `dfu-util -a 0 -e` did not start it: run `dfu-util -a 0 -e` again (r0.2: or replug the board without the button; r0.1 stays in DFU until -e)');
  }
  io.out('written and started: the board comes back as crabwatt (`crabwatt devices`)\n');
  return 0;
}

/** cmd_reboot to the board at `path` (default: the first crabwatt board); resolves on its OK ack. */
export async function sendReboot(path: string | undefined): Promise<void> {
  const link = new DeviceLink({ path: path ?? 'auto', reconnect: false, identifyOnConnect: false });
  try {
    await link.open();
    const ack = await link.request('cmd_reboot', {}, { timeoutMs: 2000 });
    if (ack.fields.status === ACK_STATUS.UNKNOWN_COMMAND) {
      throw new CliError('the board\'s firmware is older than cmd_reboot: use the button instead (crabwatt flash --help)');
    }
    if (ack.fields.status !== ACK_STATUS.OK) throw new CliError(`the board refused cmd_reboot (ack status ${ack.fields.status})`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot reboot ${path ?? 'the board'}: ${(err as Error).message}`);
  } finally {
    await link.close();
  }
}

export async function rebootCommand(argv: string[], io: Io, reboot: FlashDeps['reboot'] = sendReboot): Promise<number> {
  const { values } = parseCommandArgs('reboot', argv, { device: { type: 'string' } });
  if (values['help']) {
    io.out(REBOOT_HELP);
    return 0;
  }
  await reboot(str(values, 'device'));
  io.out('cmd_reboot acked: the board reloads foboot (r0.2: and restarts; r0.1: into DFU)\n');
  return 0;
}
