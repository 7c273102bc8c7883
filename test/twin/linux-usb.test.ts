// The real USB stack: Debian's kernel in QEMU enumerates the USB twin (the SoC's gateware with LUNA's
// CDC-ACM device and the real firmware, in Verilator) over usbredir, cdc_acm binds /dev/ttyACM0, and
// the guest copies it to a virtio port that the host decodes (server/twin/linux-usb.ts). One run
// (slow: a Verilator model at a few thousandths of real time behind a QEMU guest), several checks.

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FrameDecoder } from '../../server/protocol/codec.ts';
import { frameKey, isBulkInData, runLinuxUsb, type LinuxUsbResult } from '../../server/twin/linux-usb.ts';
import { readPcap } from '../../server/twin/usbmon-pcap.ts';

// The guest's usbmon capture of the run, kept for Wireshark (git-ignored like the screenshots).
const PCAP = join(import.meta.dirname, '..', 'artifacts', 'linux-usb-usbmon.pcap');

let run: LinuxUsbResult;

beforeAll(async () => {
  mkdirSync(join(PCAP, '..'), { recursive: true });
  run = await runLinuxUsb({ seconds: 0.005, rebind: true, reset: true, pcap: PCAP, log: (l) => process.stderr.write(`${l}\n`) });
  const { wall_s, enumeration_wall_s, sim_per_wall, frames_decoded, bytes_in, bytes_out } = run;
  process.stderr.write(`linux-usb: ${JSON.stringify({ wall_s, enumeration_wall_s, sim_per_wall, frames_decoded, bytes_in, bytes_out })}\n`);
}, 60 * 60_000);

describe('the USB twin under Linux', () => {
  it('enumerates with the descriptors the spec gives, and cdc_acm binds ttyACM0', () => {
    expect(run).toMatchObject({ enumerated: true, vid_pid: '1209:5af1', driver: 'cdc_acm', tty: '/dev/ttyACM0' });
    expect(run.descriptor_problems).toEqual([]);
    // The serial number is the flash's unique ID (the harness's default), set by the firmware.
    expect(run.info.serial).toBe('C0FFEE0000000001');
  });

  it('carries frames that decode to the DSP vector\'s integers', () => {
    expect(run.vector_mismatches).toEqual([]);
    expect(run).toMatchObject({ crc_errors: 0, seq_gaps: 0, usb_violations: 0 });
    expect(run.frames_decoded).toBeGreaterThan(0);
  });

  it('answers a command sent through the guest', () => {
    expect(run.command_answered).toBe(true);
    expect(run.bytes_out).toBeGreaterThan(0);
  });

  it('survives unbind/bind of cdc_acm from the guest', () => {
    expect(run.rebind_ok).toBe(true);
  });

  it('re-enumerates after a bus reset from the guest (USBDEVFS_RESET), and frames flow again', () => {
    // The harness's host re-reads the device descriptor at address 0 after the reset; a device that
    // answers from a stale control transfer shows up as a violation here and a failed reset there.
    expect(run.reset_ok).toBe(true);
    expect(run.kernel_log.some((l) => /reset full-speed USB device/.test(l))).toBe(true);
    expect(run.usb_violations).toBe(0);
  });

  it('leaves a usbmon pcap of the run whose bulk IN data holds every frame the host decoded', () => {
    const events = readPcap(readFileSync(PCAP));
    expect(events.length).toBe(run.usbmon_events);
    // Linux read the device descriptor (GET_DESCRIPTOR, wValue 0x0100) at address 0 and at its own ...
    const getDevice = events.filter((e) => e.type === 'S' && e.xfer === 'control' && e.setup?.subarray(0, 4).equals(Buffer.from([0x80, 6, 0, 1])));
    const device = Number(run.info.devnum);
    expect(getDevice.some((e) => e.device === 0) && getDevice.some((e) => e.device === device)).toBe(true);
    // ... and its bulk IN completions carry the frames: decoded from the capture alone, they include
    // every frame that reached the host through the guest's tty.
    // (The capture is known complete up to frames_before_marker; the last few frames may not be in yet.)
    const bulkIn = events.filter((e) => isBulkInData(e) && e.device === device);
    expect(bulkIn.length).toBeGreaterThan(0);
    const decoder = new FrameDecoder();
    const captured = new Set(bulkIn.flatMap((e) => decoder.push(e.data)).map(frameKey));
    expect(run.frames_before_marker).toBeGreaterThan(run.frames.length / 2);
    const missing = run.frames.slice(0, run.frames_before_marker).map(frameKey).filter((k) => !captured.has(k));
    expect(missing).toEqual([]);
  });
});
