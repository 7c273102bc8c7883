// The USB twin enumerated by Linux: the Verilator model of the SoC with its USB CDC-ACM device
// (hdl/usbredir, real gateware and firmware) served over usbredir to QEMU, whose guest is Debian's
// own kernel (server/twin/linux-usb-guest.ts): usbcore and cdc_acm are the host. The guest copies
// /dev/ttyACM0 both ways to a virtio port; the frames are decoded here with the host's decoder.
//
//   bash hdl/run.sh linux-usb [--seconds S] [--pcap FILE]   (S simulated seconds of frames, default 0.02;
//                                                           the guest's usbmon capture, default build/linux-usb/usbmon.pcap)
//
// Prints the guest's kernel log lines about the device, then one JSON line; exits non-zero with the
// reason on any failure. KVM when /dev/kvm works, otherwise TCG.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeFrame, FrameDecoder, type AnyFrame } from '../protocol/codec.ts';
import { buildGuest } from './linux-usb-guest.ts';
import { REPO_ROOT } from './rtl.ts';
import { readVector, stimulusBytes, type TwinVector } from './stimulus.ts';
import { pcapFile, UsbmonStream, type UsbmonEvent } from './usbmon-pcap.ts';

export class LinuxUsbError extends Error {
  override name = 'LinuxUsbError';
}

export interface LinuxUsbOptions {
  /** Simulated seconds of frames to collect once the bridge is up (default 0.02). */
  seconds?: number;
  vector?: string;
  /** Also unbind and rebind cdc_acm from the guest, then check that frames flow again. */
  rebind?: boolean;
  /** Also reset the device from the guest (USBDEVFS_RESET), then check that frames flow again. */
  reset?: boolean;
  /** Write the guest's usbmon capture of the run here, as a pcap (server/twin/usbmon-pcap.ts). */
  pcap?: string;
  log?: (line: string) => void;
}

export interface DeviceInfo {
  [key: string]: string | string[][];
  interfaces: string[][];
  endpoints: string[][];
}

export interface LinuxUsbResult {
  enumerated: boolean;
  vid_pid: string;
  driver: string;
  tty: string;
  descriptors_ok: boolean;
  frames_decoded: number;
  crc_errors: number;
  seq_gaps: number;
  bytes_in: number;
  bytes_out: number;
  kernel: string;
  wall_s: number;
  command_answered: boolean;
  rebind_ok: boolean | null;
  reset_ok: boolean | null;
  /** usbmon events the guest captured (all buses), and where their pcap went ('' without opts.pcap) */
  usbmon_events: number;
  pcap: string;
  /** frames[0, frames_before_marker) are those the usbmon capture is known to be complete for */
  frames_before_marker: number;
  enumeration_wall_s: number;
  sim_per_wall: number;
  descriptor_problems: string[];
  /** Differences between the first pass's windows and the vector's (config_seq aside). */
  vector_mismatches: string[];
  /** Departures from USB 2.0 the harness's host saw in the device's packets (and the last one). */
  usb_violations: number;
  usb_last_violation: string;
  kernel_log: string[];
  info: DeviceInfo;
  frames: AnyFrame[];
}

function exec(cmd: string, args: string[], what: string): Promise<void> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
    child.on('error', (e) => fail(new LinuxUsbError(`${what}: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? ok() : fail(new LinuxUsbError(`${what} failed (exit ${code}):\n${err}`))));
  });
}

/** A frame as the capture check names it. */
export const frameKey = (f: AnyFrame): string => `${f.name} ${f.seq}`;

/** A completed bulk IN transfer with data: on this bus, the device's frames. */
export const isBulkInData = (e: UsbmonEvent): boolean => e.type === 'C' && e.xfer === 'bulk' && (e.endpoint & 0x80) !== 0 && e.data.length > 0;

/** Lines of a child's stream, to a callback. */
function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void) {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
}

async function connect(path: string, alive: () => boolean): Promise<Socket> {
  for (;;) {
    if (!alive()) throw new LinuxUsbError(`QEMU ended before its socket ${path} accepted a connection`);
    const socket = await new Promise<Socket | null>((ok) => {
      const s = createConnection(path);
      s.once('connect', () => ok(s));
      s.once('error', () => ok(null));
    });
    if (socket) return socket;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The descriptor facts the spec asks for (docs/protocol.md "USB identity"); the problems found. */
export function checkDescriptors(info: DeviceInfo): string[] {
  const problems: string[] = [];
  const expect = (key: string, want: string) => {
    if (info[key] !== want) problems.push(`${key} is ${String(info[key])}, expected ${want}`);
  };
  expect('idVendor', '1209');
  expect('idProduct', '5af1');
  expect('bDeviceClass', 'ef');
  expect('bDeviceSubClass', '02');
  expect('bDeviceProtocol', '01');
  expect('manufacturer', 'crabwatt');
  expect('product', 'crabwatt energy monitor');
  expect('bNumInterfaces', ' 2');
  if (!/^[0-9A-F]{16}$/.test(String(info.serial))) problems.push(`serial ${String(info.serial)} is not 16 upper-case hex digits`);
  const raw = Buffer.from(String(info.descriptors ?? ''), 'hex');
  // The configuration descriptor follows the 18-byte device descriptor; its IAD (type 0x0B) groups
  // interfaces 0 and 1 as CDC (02/02).
  let iad = false;
  for (let n = 18; n + 2 <= raw.length && raw[n]! >= 2; n += raw[n]!) {
    if (raw[n + 1] === 0x0b && raw[n + 2] === 0 && raw[n + 3] === 2 && raw[n + 4] === 2 && raw[n + 5] === 2) iad = true;
  }
  if (!iad) problems.push('no interface association descriptor grouping interfaces 0-1 as CDC 02/02');
  const classes = info.interfaces.map((i) => `${i[0]!.split(':')[1]} ${i[1]}/${i[2]}`).sort();
  if (classes.join(',') !== '1.0 02/02,1.1 0a/00') problems.push(`interfaces ${classes.join(',')}, expected 1.0 02/02 and 1.1 0a/00`);
  const bulk = info.endpoints.filter((e) => e[1] === 'Bulk').map((e) => `${e[0]} ${e[2]}`).sort();
  if (bulk.length !== 2 || !bulk.every((e) => e.endsWith(' 0040'))) problems.push(`bulk endpoints ${bulk.join(',')}, expected an IN and an OUT of 64 bytes`);
  return problems;
}

/** The first windows against the vector's expected integers (docs/dsp.md), as test/twin/e2e does. */
export function vectorMismatches(frames: readonly AnyFrame[], vector: TwinVector): string[] {
  const windows = frames.filter((f) => f.name === 'window').map((f) => f.fields as Record<string, unknown>);
  const out: string[] = [];
  vector.expected.windows.forEach((want, k) => {
    const got = windows[k];
    if (!got) return void out.push(`window ${k} missing`);
    for (const [key, value] of Object.entries(want)) {
      if (key !== 'config_seq' && String(got[key]) !== String(value)) out.push(`window ${k} ${key}: ${String(got[key])}, expected ${String(value)}`);
    }
  });
  return out;
}

let kvmUsable: boolean | undefined;

/**
 * Whether KVM runs this kernel: /dev/kvm can exist and still fail (nested virtualisation without the
 * MSRs QEMU sets: the guest never prints). The kernel's first console line within 20 s says it works;
 * otherwise TCG, slower but correct. CRABWATT_QEMU_ACCEL=kvm|tcg skips the probe.
 */
async function kvmBoots(kernel: string, log: (line: string) => void): Promise<boolean> {
  const forced = process.env.CRABWATT_QEMU_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return forced === 'kvm';
  if (kvmUsable !== undefined) return kvmUsable;
  if (!existsSync('/dev/kvm')) return (kvmUsable = false);
  kvmUsable = await new Promise<boolean>((ok) => {
    const probe = spawn('qemu-system-x86_64', ['-accel', 'kvm', '-m', '128', '-nodefaults', '-display', 'none', '-no-reboot',
      '-monitor', 'none', '-serial', 'stdio', '-kernel', kernel, '-append', 'console=ttyS0 panic=-1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let done = false;
    const finish = (works: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      probe.kill('SIGKILL');
      ok(works);
    };
    const timer = setTimeout(() => finish(false), 20_000);
    probe.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('Linux version')) finish(true); });
    probe.on('close', () => finish(false));
  });
  log(`linux-usb: QEMU accelerator ${kvmUsable ? 'KVM' : 'TCG (KVM does not boot the kernel here)'}`);
  return kvmUsable;
}

export async function runLinuxUsb(opts: LinuxUsbOptions = {}): Promise<LinuxUsbResult> {
  const log = opts.log ?? (() => {});
  const seconds = opts.seconds ?? 0.02;
  const t0 = Date.now();
  await exec('make', ['-C', 'firmware', '--no-print-directory'], 'building the firmware');
  await exec('bash', ['hdl/usbredir/build.sh', 'firmware/build/firmware.bin', 'build/usbtwin'], 'building the USB twin');
  const guest = buildGuest(REPO_ROOT, resolve(REPO_ROOT, 'build/linux-usb'));
  const dir = mkdtempSync(join(tmpdir(), 'crabwatt-linux-usb-'));
  const children: ChildProcess[] = [];
  try {
    const vector = readVector(opts.vector ?? join(REPO_ROOT, 'test/vectors/pure-sine.json'));
    writeFileSync(join(dir, 'stim.bin'), stimulusBytes(vector.cv, vector.ci));
    const harness = spawn(join(REPO_ROOT, 'build/usbtwin/crabwatt-usbtwin'),
      ['--stimulus', join(dir, 'stim.bin'), '--socket', join(dir, 'redir.sock'), '--hold'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(harness);
    let simS = 0;
    let report: Record<string, unknown> | null = null;
    let listening!: () => void;
    const ready = new Promise<void>((r) => { listening = r; });
    lines(harness.stdout!, (line) => {
      if (line.startsWith('usbredir: ')) listening();
      else if (line.startsWith('usbtwin-time: ')) simS = Number(line.slice(14));
      else if (line.startsWith('usbtwin-report: ')) report = JSON.parse(line.slice(16)) as Record<string, unknown>;
    });
    lines(harness.stderr!, (line) => log(`twin: ${line}`));
    const harnessExit = new Promise<number | null>((r) => harness.on('close', (code) => r(code)));
    await ready;

    const kvm = await kvmBoots(guest.kernel, log);
    const qemu = spawn('qemu-system-x86_64', [
      '-accel', kvm ? 'kvm' : 'tcg', '-m', '256', '-nodefaults', '-display', 'none', '-no-reboot', '-monitor', 'none',
      '-kernel', guest.kernel, '-initrd', guest.initramfs, '-append', 'console=ttyS0 panic=-1 loglevel=7 no_timer_check',
      '-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con',
      '-device', 'virtio-serial',
      '-chardev', `socket,id=ctl,path=${join(dir, 'ctl.sock')},server=on,wait=off`, '-device', 'virtserialport,chardev=ctl,name=crabwatt.ctl',
      '-chardev', `socket,id=data,path=${join(dir, 'data.sock')},server=on,wait=off`, '-device', 'virtserialport,chardev=data,name=crabwatt.data',
      '-chardev', `socket,id=mon,path=${join(dir, 'mon.sock')},server=on,wait=off`, '-device', 'virtserialport,chardev=mon,name=crabwatt.usbmon',
      '-device', 'qemu-xhci', '-chardev', `socket,id=r,path=${join(dir, 'redir.sock')}`, '-device', 'usb-redir,chardev=r',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(qemu);
    let qemuAlive = true;
    const console: string[] = [];
    qemu.on('close', () => { qemuAlive = false; });
    lines(qemu.stdout!, (line) => { console.push(line); if (/usb|acm|xhci/i.test(line)) log(`guest: ${line.trim()}`); });
    lines(qemu.stderr!, (line) => log(`qemu: ${line}`));

    const ctl = await connect(join(dir, 'ctl.sock'), () => qemuAlive);
    const data = await connect(join(dir, 'data.sock'), () => qemuAlive);
    const mon = await connect(join(dir, 'mon.sock'), () => qemuAlive);
    const usbmon = new UsbmonStream();
    const usbmonEvents: UsbmonEvent[] = [];
    let usbmonError = '';
    let wake: (() => void) | null = null;
    // The frames in the capture's bulk IN completions (the device's only bulk IN endpoint), as they come.
    const usbmonFrames = new FrameDecoder();
    const inCapture = new Set<string>();
    mon.on('data', (d: Buffer) => {
      if (usbmonError) return;
      try {
        for (const e of usbmon.push(d)) {
          usbmonEvents.push(e);
          if (isBulkInData(e)) for (const f of usbmonFrames.push(e.data)) inCapture.add(frameKey(f));
        }
      } catch (e) {
        usbmonError = (e as Error).message;
      }
      wake?.();
    });
    const replies: string[] = [];
    lines(ctl, (line) => { replies.push(line); wake?.(); });
    const frames: AnyFrame[] = [];
    // One decoder per bridge: frames the device sends while no tty is open are lost (its seq jumps)
    // and a reopened stream may start inside a frame (restart() counts that apart from CRC errors).
    const decoders = [new FrameDecoder()];
    let bytesIn = 0;
    data.on('data', (d: Buffer) => { bytesIn += d.length; frames.push(...decoders.at(-1)!.push(d)); wake?.(); });
    const newBridge = () => {
      const d = new FrameDecoder();
      d.restart();
      decoders.push(d);
    };
    const until = async (what: string, ok: () => boolean) => {
      while (!ok()) {
        if (!qemuAlive) throw new LinuxUsbError(`QEMU ended while waiting for ${what}:\n${console.slice(-20).join('\n')}`);
        if (report) throw new LinuxUsbError(`the USB twin ended while waiting for ${what}: ${JSON.stringify(report)}`);
        await new Promise<void>((r) => { wake = r; setTimeout(r, 250); });
      }
    };
    const command = async (cmd: string) => {
      const from = replies.length;
      ctl.write(`${cmd}\n`);
      let end = -1;
      await until(`the guest's answer to ${cmd}`, () => {
        end = replies.findIndex((l, n) => n >= from && (l === `cw done ${cmd}` || l.startsWith(`cw fail ${cmd}`)));
        return end >= 0;
      });
      const out = replies.slice(from, end + 1);
      if (out.at(-1)!.startsWith('cw fail')) throw new LinuxUsbError(`the guest failed ${cmd}: ${out.at(-1)}`);
      return out.slice(0, -1).map((l) => l.replace(/^cw /, ''));
    };
    const parseInfo = (out: string[]): DeviceInfo => {
      const info: DeviceInfo = { interfaces: [], endpoints: [] };
      for (const l of out) {
        const [key, ...rest] = l.split(' ');
        if (key === 'interface') info.interfaces.push(rest);
        else if (key === 'endpoint') info.endpoints.push(rest);
        else info[key!] = rest.join(' ');
      }
      return info;
    };
    const framesFor = async (what: string) => {
      const start = frames.length, from = simS;
      await until(`${seconds} simulated s of frames ${what}`, () => simS - from >= seconds && frames.length > start);
    };

    const info = parseInfo(await command('enumerated'));
    const enumerationWallS = (Date.now() - t0) / 1000;
    await command('bridge');
    // The vector's configuration while the samples are held (as test/twin/e2e does): each command
    // sent when the previous one is acked.
    const c = vector.config;
    const acked = (seq: number) => frames.some((f) => f.name === 'ack' && (f.fields as { command_seq: number }).command_seq === seq);
    for (const [seq, frame] of [
      [2, encodeFrame('cmd_configure', 2, { mode: c.mode!, cycles: c.cycles!, fixed_samples: c.fixed_samples!,
        max_samples: c.max_samples!, zc_hysteresis: c.zc_hysteresis! })],
      [3, encodeFrame('cmd_calibrate', 3, { v_offset: c.v_offset!, i_offset: c.i_offset!, v_gain: c.v_gain!,
        i_gain: c.i_gain!, phase: c.phase! })],
    ] as const) {
      data.write(frame);
      await until(`the ack of command ${seq}`, () => acked(seq));
    }
    harness.kill('SIGUSR1');      // the samples start now, at sample 0: the vector's windows come first
    await until('a pass over the vector', () => frames.filter((f) => f.name === 'window').length > vector.expected.windows.length);
    await framesFor('after the bridge started');
    data.write(encodeFrame('cmd_identify', 7, {}));
    let answered = false;
    await until('the answer to cmd_identify', () => (answered = frames.some((f) => f.name === 'identify')));
    let rebind: boolean | null = null, reset: boolean | null = null;
    if (opts.rebind) {
      await command('unbind');
      await command('bind');
      newBridge();
      await command('bridge');
      await framesFor('after unbind/bind');
      rebind = true;
    }
    if (opts.reset) {
      await command('reset');
      newBridge();
      await command('bridge');
      await framesFor('after the bus reset');
      reset = true;
    }
    const kernelLog = (await command('dmesg')).map((l) => l.replace(/^kernel-log /, ''));
    // The capture reaches us on its own virtio port, behind the tty's bytes, and frames keep coming until
    // the guest powers off. Once the capture holds any frame the tty brought after this point (usbmon
    // keeps order, and the device's windows keep coming), it holds every frame before it.
    const upToMarker = frames.length;
    log(`linux-usb: waiting for the usbmon capture to pass frame ${upToMarker} of the tty`);
    await until('the usbmon capture to catch up with the tty', () => usbmonError !== '' || frames.slice(upToMarker).some((f) => inCapture.has(frameKey(f))));
    if (usbmonError) throw new LinuxUsbError(`the guest's usbmon capture: ${usbmonError}`);
    const captured = usbmonEvents.slice();      // the capture runs on until the guest powers off
    if (opts.pcap) writeFileSync(opts.pcap, pcapFile(captured));
    await command('poweroff').catch(() => undefined);
    harness.kill('SIGTERM');
    await harnessExit;
    const r = (report ?? {}) as Record<string, number>;
    const problems = checkDescriptors(info);
    const sum = (f: (c: FrameDecoder['counters']) => number) => decoders.reduce((n, d) => n + f(d.counters), 0);
    const acm = info.interfaces.find((i) => i[0]!.endsWith(':1.0'));
    return {
      enumerated: true, vid_pid: `${String(info.idVendor)}:${String(info.idProduct)}`, driver: acm?.[3] ?? '',
      tty: acm?.[4] ? `/dev/${acm[4]}` : '', descriptors_ok: problems.length === 0,
      frames_decoded: sum((c) => c.frames), crc_errors: sum((c) => c.crcErrors), seq_gaps: sum((c) => c.seqGaps),
      vector_mismatches: vectorMismatches(frames, vector),
      usb_violations: r.violations ?? -1, usb_last_violation: String((report as Record<string, unknown> | null)?.failure ?? ''),
      bytes_in: bytesIn, bytes_out: r.bytes_out ?? 0, kernel: String(info.kernel ?? guest.release),
      wall_s: (Date.now() - t0) / 1000, command_answered: answered, rebind_ok: rebind, reset_ok: reset,
      usbmon_events: captured.length, pcap: opts.pcap ?? '', frames_before_marker: upToMarker,
      enumeration_wall_s: enumerationWallS, sim_per_wall: r.sim_per_wall ?? 0, descriptor_problems: problems,
      kernel_log: kernelLog, info, frames,
    };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<number> {
  let seconds: number | undefined;
  let checks = true;    // --no-checks: enumeration and frames only
  let pcap = resolve(REPO_ROOT, 'build/linux-usb/usbmon.pcap');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seconds') seconds = Number(argv[++i]);
    else if (argv[i] === '--no-checks') checks = false;
    else if (argv[i] === '--pcap' && argv[i + 1]) pcap = resolve(argv[++i]!);
    else {
      process.stderr.write('usage: bash hdl/run.sh linux-usb [--seconds S] [--no-checks] [--pcap FILE]\n');
      return 2;
    }
  }
  if (seconds !== undefined && !(seconds > 0)) {
    process.stderr.write('linux-usb: --seconds must be a positive number of simulated seconds\n');
    return 2;
  }
  try {
    const r = await runLinuxUsb({ seconds, rebind: checks, reset: checks, pcap, log: (l) => process.stderr.write(`${l}\n`) });
    for (const l of r.kernel_log) process.stdout.write(`${l}\n`);
    const { kernel_log: _log, info: _info, frames: _frames, ...summary } = r;
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    const ok = r.descriptors_ok && r.usb_violations === 0 && r.vector_mismatches.length === 0 && r.crc_errors === 0 && r.seq_gaps === 0 && r.frames_decoded > 0 && r.command_answered &&
      r.driver === 'cdc_acm';
    if (!ok) process.stderr.write(`linux-usb: failed: ${[...r.descriptor_problems, ...r.vector_mismatches].join('; ') || 'see the JSON line'}\n`);
    return ok ? 0 : 1;
  } catch (e) {
    process.stderr.write(`linux-usb: ${(e as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(REPO_ROOT, 'server/twin/linux-usb.ts')) {
  process.exitCode = await main(process.argv.slice(2));
}
