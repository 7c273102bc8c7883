// Finds attached crabwatt boards, and boards waiting in the foboot bootloader.
//
// Exports (stable): listDevices(options?) → DiscoveredDevice[], classifyUsbId(vid, pid), DiscoveryOptions.
//
// serialport's list() spawns `udevadm` on Linux, and where udevadm is missing (containers, minimal
// systems) it rejects asynchronously; it also lists only serial ports, while a board in foboot is a
// DFU device with no tty at all. So: serialport's list when it works, sysfs when it does not, and
// always a sysfs scan of USB devices for the bootloader. The /sys and /dev roots are options so the
// tests can build a fake tree.

import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { USB_PID_BOOTLOADER, USB_PID_CRABWATT, USB_VID } from '../protocol/definition.ts';

export type DeviceMode = 'crabwatt' | 'bootloader' | 'unknown';

export interface DiscoveredDevice {
  /** Serial port to open, or null for a USB device without one (foboot is DFU, not a tty). */
  path: string | null;
  /** /dev/serial/by-id/… alias that survives re-enumeration (ttyACM0 may come back as ttyACM1). */
  stablePath: string | null;
  vid: number | null;
  pid: number | null;
  serialNumber: string | null;
  manufacturer: string | null;
  mode: DeviceMode;
  /** Where the entry came from, for diagnostics. */
  source: 'serialport' | 'sysfs';
}

/** What serialport's list() returns (PortInfo), reduced to what we read. */
export interface PortListing {
  path: string;
  vendorId?: string | undefined;
  productId?: string | undefined;
  serialNumber?: string | undefined;
  manufacturer?: string | undefined;
}

export interface DiscoveryOptions {
  /** Port lister; default serialport's SerialPort.list. */
  list?: () => Promise<PortListing[]>;
  /** Give up on the lister after this long and use sysfs (udevadm can hang). */
  listTimeoutMs?: number;
  sysRoot?: string;
  devRoot?: string;
  /** Called with the reason when the lister failed and sysfs was used instead. */
  onFallback?: (error: Error) => void;
}

export function classifyUsbId(vid: number | null, pid: number | null): DeviceMode {
  if (vid !== USB_VID) return 'unknown';
  if (pid === USB_PID_CRABWATT) return 'crabwatt';
  if (pid === USB_PID_BOOTLOADER) return 'bootloader';
  return 'unknown';
}

const parseHexId = (s: string | undefined | null): number | null => {
  if (!s) return null;
  const n = Number.parseInt(s.trim().replace(/^0x/i, ''), 16);
  return Number.isInteger(n) && n >= 0 && n <= 0xffff ? n : null;
};

async function readTrimmed(path: string): Promise<string | null> {
  try {
    return (await readFile(path, 'utf8')).trim() || null;
  } catch {
    return null;
  }
}

async function defaultList(): Promise<PortListing[]> {
  // Imported lazily: it loads serialport's native addon, which tests with a fake lister never need.
  const { SerialPort } = await import('serialport');
  return SerialPort.list();
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface UsbIdentity {
  vid: number | null;
  pid: number | null;
  serialNumber: string | null;
  manufacturer: string | null;
}

async function usbIdentity(dir: string): Promise<UsbIdentity> {
  const [vid, pid, serialNumber, manufacturer] = await Promise.all(
    ['idVendor', 'idProduct', 'serial', 'manufacturer'].map((f) => readTrimmed(join(dir, f))),
  );
  return { vid: parseHexId(vid), pid: parseHexId(pid), serialNumber: serialNumber ?? null, manufacturer: manufacturer ?? null };
}

/** The USB device directory above a tty's sysfs device (interface dir for ACM, one more for usb-serial). */
async function usbDeviceDirOf(ttyDeviceLink: string): Promise<string | null> {
  let dir: string;
  try {
    dir = await realpath(ttyDeviceLink);
  } catch {
    return null;
  }
  for (let up = 0; up < 4 && dir !== dirname(dir); up++, dir = dirname(dir)) {
    if ((await readTrimmed(join(dir, 'idVendor'))) !== null) return dir;
  }
  return null;
}

/** tty name → /dev/serial/by-id alias. */
async function byIdAliases(devRoot: string): Promise<Map<string, string>> {
  const dir = join(devRoot, 'serial', 'by-id');
  const out = new Map<string, string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      out.set(basename(resolve(dir, await readlink(join(dir, name)))), join(dir, name));
    } catch {
      // not a symlink: ignore
    }
  }
  return out;
}

async function listFromSysfs(sysRoot: string, devRoot: string, aliases: Map<string, string>): Promise<DiscoveredDevice[]> {
  const ttyDir = join(sysRoot, 'class', 'tty');
  let names: string[];
  try {
    names = await readdir(ttyDir);
  } catch {
    return [];
  }
  const out: DiscoveredDevice[] = [];
  for (const name of names.sort()) {
    const usbDir = await usbDeviceDirOf(join(ttyDir, name, 'device'));
    // Only USB-attached ports: the board and USB-serial cables. Legacy ttyS* and consoles are noise.
    if (!usbDir) continue;
    const id = await usbIdentity(usbDir);
    out.push({
      path: join(devRoot, name),
      stablePath: aliases.get(name) ?? null,
      ...id,
      mode: classifyUsbId(id.vid, id.pid),
      source: 'sysfs',
    });
  }
  return out;
}

/** foboot enumerates as a DFU device without a tty; find it among all USB devices. */
async function bootloadersFromSysfs(sysRoot: string): Promise<DiscoveredDevice[]> {
  const dir = join(sysRoot, 'bus', 'usb', 'devices');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: DiscoveredDevice[] = [];
  for (const name of names.sort()) {
    const id = await usbIdentity(join(dir, name));
    if (classifyUsbId(id.vid, id.pid) !== 'bootloader') continue;
    out.push({ path: null, stablePath: null, ...id, mode: 'bootloader', source: 'sysfs' });
  }
  return out;
}

export async function listDevices(options: DiscoveryOptions = {}): Promise<DiscoveredDevice[]> {
  const sysRoot = options.sysRoot ?? '/sys';
  const devRoot = options.devRoot ?? '/dev';
  const aliases = await byIdAliases(devRoot);
  let ports: DiscoveredDevice[];
  try {
    const listed = await withTimeout((options.list ?? defaultList)(), options.listTimeoutMs ?? 3000, 'serial port listing');
    ports = listed
      .filter((p) => p.vendorId || /tty(ACM|USB)/.test(p.path))
      .map((p) => {
        const vid = parseHexId(p.vendorId);
        const pid = parseHexId(p.productId);
        return {
          path: p.path,
          stablePath: aliases.get(basename(p.path)) ?? null,
          vid,
          pid,
          serialNumber: p.serialNumber ?? null,
          manufacturer: p.manufacturer ?? null,
          mode: classifyUsbId(vid, pid),
          source: 'serialport' as const,
        };
      });
  } catch (error) {
    options.onFallback?.(error instanceof Error ? error : new Error(String(error)));
    ports = await listFromSysfs(sysRoot, devRoot, aliases);
  }
  // A bootloader with a tty (should foboot ever grow one) is already listed; add the tty-less ones.
  const listedBootloaders = ports.filter((p) => p.mode === 'bootloader').length;
  const bootloaders = (await bootloadersFromSysfs(sysRoot)).slice(listedBootloaders);
  return [...ports, ...bootloaders];
}
