// What a --device PATH is, found out before serve touches its database: a missing path, a regular file or a
// device that is not a terminal (/dev/null) gets a plain sentence, not serialport's "Inappropriate ioctl for
// device … custom baud rate". The check opens the device and keeps it open until the link has its own
// descriptor: closing the last descriptor of a pseudo-terminal's slave hangs it up for the program on the
// master side, and of a real tty drops DTR.
//
// Exports (stable): holdSerialPath(path) → { release() }, notSerialMessage(path, what).

import { closeSync, constants, fstatSync, openSync, statSync, type Stats } from 'node:fs';
import { isatty } from 'node:tty';
import { DeviceLinkError } from './link.ts';

/** "PATH is not a serial device (WHAT)" with what to give instead; the one wording for the check and the link. */
export function notSerialMessage(path: string, what: string): string {
  return `${path} is not a serial device (${what}): give the board's port, such as /dev/ttyACM0, or --device sim`;
}

function kindOf(stats: Stats): string {
  if (stats.isFile()) return 'it is a regular file';
  if (stats.isDirectory()) return 'it is a directory';
  if (stats.isFIFO()) return 'it is a named pipe';
  if (stats.isSocket()) return 'it is a socket';
  if (stats.isBlockDevice()) return 'it is a block device';
  return 'a character device that is not a terminal';
}

/** Opens PATH as a terminal or throws DeviceLinkError('open-failed') saying why not; release() closes it. */
export function holdSerialPath(path: string): { release: () => void } {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new DeviceLinkError('open-failed', `${path} does not exist (unplugged?)`);
    throw new DeviceLinkError('open-failed', `cannot look at ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!stats.isCharacterDevice()) throw new DeviceLinkError('open-failed', notSerialMessage(path, kindOf(stats)));
  let fd: number;
  try {
    // Non-blocking: a modem-control tty would otherwise wait for carrier; no controlling terminal for serve.
    fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new DeviceLinkError('open-failed', `no permission to open ${path}: add your user to the dialout group or install the udev rule`);
    }
    if (code === 'EBUSY') throw new DeviceLinkError('open-failed', `${path} is in use by another process (another crabwatt serve?)`);
    throw new DeviceLinkError('open-failed', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!isatty(fd) || !fstatSync(fd).isCharacterDevice()) {
    closeSync(fd);
    throw new DeviceLinkError('open-failed', notSerialMessage(path, kindOf(stats)));
  }
  let open = true;
  return {
    release: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
