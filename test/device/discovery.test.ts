import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classifyUsbId, listDevices } from '../../server/device/discovery.ts';

/**
 * A fake /sys and /dev: a crabwatt board on ttyACM0 (CDC-ACM: the tty's device is the USB
 * interface), an FTDI cable on ttyUSB0 (usb-serial: one level deeper), a legacy ttyS0 and a
 * console without USB parents, and foboot as a DFU device with no tty at all.
 */
function fakeTree(): { sysRoot: string; devRoot: string; root: string } {
  const root = mkdtempSync(join(tmpdir(), 'crabwatt-sysfs-'));
  const sysRoot = join(root, 'sys');
  const devRoot = join(root, 'dev');
  const usbDevice = (dir: string, ids: Record<string, string>) => {
    mkdirSync(dir, { recursive: true });
    for (const [file, value] of Object.entries(ids)) writeFileSync(join(dir, file), `${value}\n`);
  };
  const devices = join(sysRoot, 'devices', 'pci0000:00', '0000:00:14.0', 'usb1');
  usbDevice(join(devices, '1-1'), { idVendor: '1209', idProduct: '5af1', serial: 'CW0001', manufacturer: 'crabwatt' });
  mkdirSync(join(devices, '1-1', '1-1:1.0'), { recursive: true });
  usbDevice(join(devices, '1-2'), { idVendor: '0403', idProduct: '6001', serial: 'FT12345', manufacturer: 'FTDI' });
  mkdirSync(join(devices, '1-2', '1-2:1.0', 'ttyUSB0'), { recursive: true });
  usbDevice(join(devices, '1-3'), { idVendor: '1209', idProduct: '5af0', manufacturer: 'Foosn' });
  mkdirSync(join(sysRoot, 'devices', 'platform', 'serial8250'), { recursive: true });

  const tty = join(sysRoot, 'class', 'tty');
  const ttyEntry = (name: string, device?: string) => {
    mkdirSync(join(tty, name), { recursive: true });
    if (device) symlinkSync(device, join(tty, name, 'device'));
  };
  ttyEntry('ttyACM0', join(devices, '1-1', '1-1:1.0'));
  ttyEntry('ttyUSB0', join(devices, '1-2', '1-2:1.0', 'ttyUSB0'));
  ttyEntry('ttyS0', join(sysRoot, 'devices', 'platform', 'serial8250'));
  ttyEntry('tty0');

  const bus = join(sysRoot, 'bus', 'usb', 'devices');
  mkdirSync(bus, { recursive: true });
  for (const name of ['1-1', '1-2', '1-3']) symlinkSync(join(devices, name), join(bus, name));
  mkdirSync(join(bus, 'usb1'));

  const byId = join(devRoot, 'serial', 'by-id');
  mkdirSync(byId, { recursive: true });
  symlinkSync('../../ttyACM0', join(byId, 'usb-crabwatt_crabwatt_CW0001-if00'));
  return { sysRoot, devRoot, root };
}

const tree = fakeTree();
afterAll(() => rmSync(tree.root, { recursive: true, force: true }));

const expectedFromSysfs = [
  {
    path: join(tree.devRoot, 'ttyACM0'),
    stablePath: join(tree.devRoot, 'serial', 'by-id', 'usb-crabwatt_crabwatt_CW0001-if00'),
    vid: 0x1209, pid: 0x5af1, serialNumber: 'CW0001', manufacturer: 'crabwatt', mode: 'crabwatt', source: 'sysfs',
  },
  {
    path: join(tree.devRoot, 'ttyUSB0'), stablePath: null,
    vid: 0x0403, pid: 0x6001, serialNumber: 'FT12345', manufacturer: 'FTDI', mode: 'unknown', source: 'sysfs',
  },
  { path: null, stablePath: null, vid: 0x1209, pid: 0x5af0, serialNumber: null, manufacturer: 'Foosn', mode: 'bootloader', source: 'sysfs' },
];

describe('listDevices', () => {
  it('falls back to sysfs when the lister rejects (udevadm missing), and says so', async () => {
    const reasons: string[] = [];
    const devices = await listDevices({
      ...tree,
      list: () => Promise.reject(new Error('spawn udevadm ENOENT')),
      onFallback: (e) => reasons.push(e.message),
    });
    expect(devices).toEqual(expectedFromSysfs);
    expect(reasons).toEqual(['spawn udevadm ENOENT']);
  });

  it('falls back to sysfs when the lister hangs', async () => {
    const devices = await listDevices({ ...tree, list: () => new Promise(() => {}), listTimeoutMs: 20 });
    expect(devices).toEqual(expectedFromSysfs);
  });

  it("survives serialport's own lister failing for real when udevadm is not on PATH", async () => {
    const path = process.env.PATH;
    process.env.PATH = join(tree.root, 'empty-bin');
    const reasons: string[] = [];
    try {
      const devices = await listDevices({ ...tree, onFallback: (e) => reasons.push(e.message) });
      expect(devices).toEqual(expectedFromSysfs);
    } finally {
      process.env.PATH = path;
    }
    expect(reasons.join()).toMatch(/udevadm|ENOENT/);
  });

  it('uses the lister when it works, adds by-id aliases and the tty-less bootloader, skips ports without USB ids', async () => {
    const devices = await listDevices({
      ...tree,
      list: async () => [
        { path: '/dev/ttyACM0', vendorId: '1209', productId: '5AF1', serialNumber: 'CW0001', manufacturer: 'crabwatt' },
        { path: '/dev/ttyS0' },
      ],
    });
    expect(devices).toEqual([
      { ...expectedFromSysfs[0], path: '/dev/ttyACM0', source: 'serialport' },
      expectedFromSysfs[2],
    ]);
  });

  it('returns nothing, without throwing, on a machine with no sysfs at all', async () => {
    const empty = join(tree.root, 'nothing');
    expect(await listDevices({ sysRoot: empty, devRoot: empty, list: () => Promise.reject(new Error('x')) })).toEqual([]);
  });
});

describe('classifyUsbId', () => {
  it('knows our firmware, the bootloader and nothing else', () => {
    expect(classifyUsbId(0x1209, 0x5af1)).toBe('crabwatt');
    expect(classifyUsbId(0x1209, 0x5af0)).toBe('bootloader');
    expect(classifyUsbId(0x1209, 0x0001)).toBe('unknown');
    expect(classifyUsbId(0x0403, 0x5af1)).toBe('unknown');
    expect(classifyUsbId(null, null)).toBe('unknown');
  });
});
