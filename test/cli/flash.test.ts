// `crabwatt flash` and `crabwatt reboot` with a fake dfu-util (a script that logs its arguments and
// prints dfu-util's progress lines) and a scripted device discovery: the image checks, the wait for
// the bootloader, the progress bar, the two dfu-util calls, and the errors that say what to do.

import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../server/cli.ts';
import type { Io } from '../../server/cli/common.ts';
import { FLASH_BITSTREAM_SLOT_BYTES, flashCommand, rebootCommand, type FlashDeps } from '../../server/cli/flash.ts';
import type { DiscoveredDevice } from '../../server/device/discovery.ts';
import { REPO_ROOT } from '../../server/twin/rtl.ts';
import { tempDir } from '../store/helpers.ts';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

function capture(): Io & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (t) => void (out += t), err: (t) => void (err += t), stdout: () => out, stderr: () => err };
}

/** A .dfu as crabwatt.soc.dfu writes it: image + suffix (bcdDevice, idProduct, idVendor, bcdDFU, "UFD", 16, CRC). */
function dfuImage(name: string, bytes: number, { pid = 0x5af0, damage = false } = {}): string {
  const body = Buffer.concat([Buffer.alloc(bytes, 0xa5), Buffer.alloc(12)]);
  const suffix = body.subarray(bytes);
  suffix.writeUInt16LE(0xffff, 0);
  suffix.writeUInt16LE(pid, 2);
  suffix.writeUInt16LE(0x1209, 4);
  suffix.writeUInt16LE(0x0100, 6);
  suffix.write('UFD', 8, 'latin1');
  suffix.writeUInt8(16, 11);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE((crc32(body) ^ 0xffffffff) >>> 0);
  const file = Buffer.concat([body, crc]);
  if (damage) file.writeUInt8(0x00, 10);
  const path = join(dir, name);
  writeFileSync(path, file);
  return path;
}

const LOG = join(dir, 'dfu-util.log');
/** dfu-util 0.11's download output: the bar redrawn with \r, then the manifest lines. */
function fakeDfuUtil(name: string, script = ''): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh
echo "$@" >> ${LOG}
${script}
case "$*" in
  *-D*) printf 'dfu-util 0.11\\nOpening DFU capable USB device...\\n'
        for p in 0 25 50 75 100; do printf '\\rDownload\\t[====      ] %3d%%        %d bytes' $p $((p * 4000)); done
        printf '\\nDownload done.\\n' ;;
esac
exit 0
`);
  chmodSync(path, 0o755);
  return path;
}

const device = (mode: DiscoveredDevice['mode']): DiscoveredDevice => ({
  path: mode === 'crabwatt' ? '/dev/ttyACM0' : null, stablePath: null, vid: 0x1209,
  pid: mode === 'crabwatt' ? 0x5af1 : 0x5af0, serialNumber: null, manufacturer: null, mode, source: 'sysfs',
});

/** Discovery that shows `seen[k]` on the k-th look (the last one from then on), and counts looks and pauses. */
function scripted(seen: DiscoveredDevice[][], extra: Partial<FlashDeps> = {}) {
  const counts = { looks: 0, pauses: 0, reboots: 0 };
  const deps: Partial<FlashDeps> = {
    discover: async () => seen[Math.min(counts.looks++, seen.length - 1)]!,
    pause: async () => void counts.pauses++,
    reboot: async () => void counts.reboots++,
    ...extra,
  };
  return { deps, counts };
}

const dfuLog = () => (existsSync(LOG) ? readFileSync(LOG, 'utf8').split('\n').filter((l) => l !== '') : []);

describe('crabwatt flash', () => {
  it('holds the slot size of the generated register map', () => {
    const header = readFileSync(join(REPO_ROOT, 'firmware/include/crabwatt_csr.h'), 'utf8');
    expect(header).toContain(`#define CW_FLASH_BITSTREAM_SLOT_BYTES ${FLASH_BITSTREAM_SLOT_BYTES}u`);
  });

  it('refuses a bitstream larger than the flash slot, a file without a DFU suffix, a damaged one, another device', async () => {
    const dfuUtil = fakeDfuUtil('never-dfu-util');
    const { deps } = scripted([[device('bootloader')]], { dfuUtil });
    const io = capture();
    await expect(flashCommand([dfuImage('big.dfu', FLASH_BITSTREAM_SLOT_BYTES + 1)], io, deps)).rejects.toThrow(/flash slot/);
    writeFileSync(join(dir, 'raw.dfu'), Buffer.alloc(4000, 0xff));
    await expect(flashCommand([join(dir, 'raw.dfu')], io, deps)).rejects.toThrow(/no DFU suffix/);
    await expect(flashCommand([dfuImage('bad.dfu', 4000, { damage: true })], io, deps)).rejects.toThrow(/damaged/);
    await expect(flashCommand([dfuImage('app.dfu', 4000, { pid: 0x5af1 })], io, deps)).rejects.toThrow(/not foboot/);
    await expect(flashCommand([join(dir, 'missing.dfu')], io, deps)).rejects.toThrow(/no such file/);
    expect(dfuLog()).toEqual([]);
    // A bitstream that fills the slot exactly is fine.
    await expect(flashCommand([dfuImage('full.dfu', FLASH_BITSTREAM_SLOT_BYTES)], io, deps)).resolves.toBe(0);
  });

  it('says how to reach DFU, waits for foboot, writes with -a 0 behind a progress bar, then starts it', async () => {
    writeFileSync(LOG, '');
    const image = dfuImage('ok.dfu', 400_000);
    const { deps, counts } = scripted([[device('crabwatt')], [], [], [device('bootloader')]], { dfuUtil: fakeDfuUtil('ok-dfu-util') });
    const io = capture();
    expect(await flashCommand([image], io, deps)).toBe(0);
    expect(counts.looks).toBe(4);
    expect(counts.pauses).toBe(3);
    const out = io.stdout();
    expect(out).toMatch(/the board runs crabwatt, not the bootloader/);
    expect(out).toMatch(/r0\.2: hold the button about 1 s/);
    expect(out).toMatch(/r0\.1: press the button/);
    expect(out).toMatch(/found foboot \(1209:5af0\)/);
    expect(out).toMatch(/writing \[#+\] 100%  400000 \/ 400000 bytes/);
    expect(out).toMatch(/writing \[#{8}\.{22}\]  25%/);
    expect(dfuLog()).toEqual([`-a 0 -D ${image}`, '-a 0 -e']);
  });

  it('--reboot asks the running board first; a board that never comes gets the instructions', async () => {
    writeFileSync(LOG, '');
    const { deps, counts } = scripted([[device('crabwatt')]], { dfuUtil: fakeDfuUtil('unused-dfu-util') });
    const io = capture();
    await expect(flashCommand([dfuImage('w.dfu', 1000), '--reboot', '--wait-s', '2'], io, deps))
      .rejects.toThrow(/no board appeared in DFU mode within 2 s[\s\S]*hold the button/);
    expect(counts.reboots).toBe(1);
    expect(counts.looks).toBe(4);             // every 500 ms for 2 s, counted, not timed
    expect(dfuLog()).toEqual([]);
  });

  it('explains a dfu-util failure and a missing dfu-util', async () => {
    const failing = fakeDfuUtil('failing-dfu-util', 'echo "No DFU capable USB device available" >&2; exit 74');
    const { deps } = scripted([[device('bootloader')]], { dfuUtil: failing });
    const io = capture();
    await expect(flashCommand([dfuImage('f.dfu', 1000)], io, deps)).rejects.toThrow(/went away[\s\S]*foboot's DFU mode/);
    await expect(flashCommand([dfuImage('g.dfu', 1000)], io, { ...deps, dfuUtil: join(dir, 'no-such-dfu-util') }))
      .rejects.toThrow(/apt-get install dfu-util/);
  });

  it('--help names -a 0, the slot and both boards; reboot reports the ack', async () => {
    const io = capture();
    expect(await main(['flash', '--help'], io)).toBe(0);
    expect(io.stdout()).toMatch(/dfu-util -a 0 -D FILE/);
    expect(io.stdout()).toMatch(/dfu-util -a 0 -e/);
    expect(io.stdout()).toMatch(new RegExp(`${FLASH_BITSTREAM_SLOT_BYTES} bytes`));
    expect(io.stdout()).toMatch(/r0\.1: press the button/);
    const asked: (string | undefined)[] = [];
    expect(await rebootCommand(['--device', '/dev/ttyACM3'], io, async (p) => void asked.push(p))).toBe(0);
    expect(asked).toEqual(['/dev/ttyACM3']);
  });
});
