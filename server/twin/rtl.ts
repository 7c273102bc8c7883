// The RTL digital twin as a device: builds the Verilator model of the whole SoC with the real firmware
// (hdl/twin/build.sh, cached in build/twin/rtl), starts it on a stimulus, and hands back the
// pseudo-terminal its UART is wired to, so the host ingests it through the normal serial path.
//
//   const twin = await startRtlTwin({ vector: 'test/vectors/pure-sine.json' });
//   // open twin.path like /dev/ttyACM0 …
//   await twin.close();

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { readVector, stimulusBytes } from './stimulus.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_VECTOR = join(REPO_ROOT, 'test/vectors/pure-sine.json');

export class RtlTwinError extends Error {
  override name = 'RtlTwinError';
}

export interface RtlTwinOptions {
  /** Test vector whose ADC codes feed the twin (default test/vectors/pure-sine.json). */
  vector?: string;
  /**
   * Copies of the vector's last pair fed after it (default 0). A commit at the end of the stimulus
   * (at_sample = sample_count, test/vectors/README.md) needs one more sample to make its boundary, as
   * in the gateware's own vector test; pause there (pauseAt) and commit, then the extra pair closes
   * the open window with CONFIG.
   */
  tailPairs?: number;
  /** Repeat the stimulus forever (default true); otherwise the twin stops after it, see drainMs. */
  loop?: boolean;
  /** Hold the samples until startSamples() (default false), e.g. to configure the DSP first. */
  hold?: boolean;
  /** Stop before each of these sample indices until the next startSamples() (see waitPaused). */
  pauseAt?: readonly number[];
  /** Cycles of the twin's system clock between sample pairs (default: the harness's, i.e. 4 Msps). */
  samplePeriodCycles?: number;
  /**
   * Cycles of the twin's system clock between two host-to-device bytes (default: the harness's, the
   * board's 3 Mbaud line in CPU cycles). Fewer makes the line faster than the board's, to test what the
   * firmware does with bytes it cannot keep up with.
   */
  rxByteCycles?: number;
  /** Simulated milliseconds to run after the last pair when not looping (default 50). */
  drainMs?: number;
  /** Build (or check) the twin first (default true). */
  build?: boolean;
  /** Where build and run progress lines go (default: dropped). */
  log?: (line: string) => void;
  /** Build directory (default build/twin/rtl). */
  buildDir?: string;
  /**
   * File holding the configuration flash's contents across runs (read at start when it exists, written
   * when the twin ends, e.g. at a cmd_reboot), so a calibration saved in one run is found by the next.
   * Default: a blank flash each run.
   */
  flashFile?: string;
  /** The flash's 64-bit unique ID, the device_id the firmware reports (default: the harness's). */
  flashUid?: bigint;
  /** ADC codes fed instead of the vector's (both the same length), e.g. shorted inputs for `crabwatt bringup`. */
  codes?: { cv: readonly number[]; ci: readonly number[] };
  /**
   * The AD7357 read timing the harness models (hdl/twin/adc_read.h), ns: the I/O round trip (default 2,
   * where the reset READ_DELAY reads right), t4 (default 11, the datasheet's maximum), t7 (default 3.5).
   */
  adc?: { roundTripNs?: number; t4Ns?: number; t7Ns?: number };
}

export interface TwinExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The harness's closing report (cycles, bytes, speed), when it printed one. */
  report: string | null;
}

export interface RtlTwin {
  /** The pseudo-terminal to open as the device's serial port. */
  readonly path: string;
  /** Let the samples flow: opens the hold, or the pause the twin is waiting at. */
  startSamples(): void;
  /** Resolves when the twin has stopped before sample `index` (one of pauseAt, or 0 with hold). */
  waitPaused(index: number): Promise<void>;
  /** Resolves when the harness has ended. */
  readonly exited: Promise<TwinExit>;
  /** Stops the twin (if it still runs) and resolves with how it ended. */
  close(): Promise<TwinExit>;
}

function run(cmd: string, args: string[], log: (line: string) => void, what: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      reject(new RtlTwinError(`${what}: cannot start ${cmd}: ${(e as Error).message}`));
      return;
    }
    const tail: string[] = [];
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        log(line);
        tail.push(line);
        if (tail.length > 30) tail.shift();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (e) => reject(new RtlTwinError(`${what}: cannot start ${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolvePromise();
      else reject(new RtlTwinError(`${what} failed (exit ${code}):\n${tail.join('\n')}`));
    });
  });
}

/**
 * Builds the firmware and the Verilator model if they are stale; returns the harness binary. With
 * `dsp: false` the model is the SoC alone (a quarter of the build time): enough for the firmware's
 * commands, identity and flash, not for windows.
 */
export async function buildRtlTwin(opts: Pick<RtlTwinOptions, 'log' | 'buildDir'> & { dsp?: boolean } = {}): Promise<string> {
  const log = opts.log ?? (() => {});
  const dir = resolve(REPO_ROOT, opts.buildDir ?? 'build/twin/rtl');
  await run('make', ['-C', 'firmware', '--no-print-directory'], log,
    'building the firmware (needs Debian gcc-riscv64-unknown-elf and picolibc-riscv64-unknown-elf)');
  await run('bash', ['hdl/twin/build.sh', 'firmware/build/firmware.bin', dir, ...(opts.dsp === false ? ['--no-dsp'] : [])], log,
    'building the RTL twin (needs Debian verilator and build/venv from hdl/venv.sh)');
  return join(dir, 'crabwatt-twin');
}

let stimulusFiles = 0;

/** Starts the twin; resolves once its pseudo-terminal exists. */
export async function startRtlTwin(opts: RtlTwinOptions = {}): Promise<RtlTwin> {
  const log = opts.log ?? (() => {});
  const dir = resolve(REPO_ROOT, opts.buildDir ?? 'build/twin/rtl');
  const binary = opts.build === false ? join(dir, 'crabwatt-twin') : await buildRtlTwin({ log, buildDir: dir });
  if (!existsSync(binary)) throw new RtlTwinError(`no twin at ${binary}: build it with buildRtlTwin() first`);
  const period = opts.samplePeriodCycles;
  if (period !== undefined && (!Number.isInteger(period) || period < 1)) {
    throw new RtlTwinError('samplePeriodCycles must be an integer >= 1');
  }
  const rxByteCycles = opts.rxByteCycles;
  if (rxByteCycles !== undefined && (!Number.isInteger(rxByteCycles) || rxByteCycles < 1)) {
    throw new RtlTwinError('rxByteCycles must be an integer >= 1');
  }
  const drainMs = opts.drainMs ?? 50;
  if (!(drainMs >= 0)) throw new RtlTwinError('drainMs must be >= 0');

  const tailPairs = opts.tailPairs ?? 0;
  if (!Number.isInteger(tailPairs) || tailPairs < 0) throw new RtlTwinError('tailPairs must be an integer >= 0');

  if (opts.codes && opts.vector) throw new RtlTwinError('give either codes or vector');
  const vector = opts.codes ?? readVector(opts.vector ?? DEFAULT_VECTOR);
  if (vector.cv.length === 0 || vector.cv.length !== vector.ci.length) throw new RtlTwinError('codes: cv and ci must be the same, non-zero length');
  const cv = [...vector.cv, ...Array<number>(tailPairs).fill(vector.cv.at(-1)!)];
  const ci = [...vector.ci, ...Array<number>(tailPairs).fill(vector.ci.at(-1)!)];
  mkdirSync(dir, { recursive: true });
  const stimulusPath = join(dir, `stimulus-${process.pid}-${++stimulusFiles}-${Date.now()}.bin`);
  writeFileSync(stimulusPath, stimulusBytes(cv, ci));

  const args = ['--stimulus', stimulusPath, '--drain-ms', String(drainMs)];
  if (period !== undefined) args.push('--sample-period-cycles', String(period));
  if (rxByteCycles !== undefined) args.push('--rx-byte-cycles', String(rxByteCycles));
  if (opts.loop ?? true) args.push('--loop');
  if (opts.hold) args.push('--hold');
  if (opts.flashFile !== undefined) args.push('--flash-file', opts.flashFile);
  if (opts.flashUid !== undefined) {
    if (opts.flashUid < 0n || opts.flashUid >= 1n << 64n) throw new RtlTwinError('flashUid must fit 64 bits');
    args.push('--flash-uid', opts.flashUid.toString(16));
  }
  for (const [flag, ns] of [['--adc-round-trip-ns', opts.adc?.roundTripNs], ['--adc-t4-ns', opts.adc?.t4Ns],
    ['--adc-t7-ns', opts.adc?.t7Ns]] as const) {
    if (ns === undefined) continue;
    if (!(ns >= 0)) throw new RtlTwinError(`adc: ${flag.slice(6)} must be >= 0 ns`);
    args.push(flag, String(ns));
  }
  for (const n of opts.pauseAt ?? []) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RtlTwinError(`pauseAt: ${n} is not a sample index`);
    args.push('--pause-at', String(n));
  }
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });

  let report: string | null = null;
  child.stderr!.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      if (line.startsWith('crabwatt-twin: ') && line.includes('cycles')) report = line;
      log(line);
    }
  });
  const exited = new Promise<TwinExit>((resolveExit) => {
    child.on('close', (code, signal) => {
      rmSync(stimulusPath, { force: true });
      resolveExit({ code, signal, report });
    });
  });

  // stdout carries "pty: PATH" once, then "paused: N" at each pause.
  const pausedAt = new Set<number>();
  const pauseWaiters: (() => void)[] = [];
  let onPty: ((path: string) => void) | null = null;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const pty = /^pty: (\S+)$/.exec(line);
    const paused = /^paused: (\d+)$/.exec(line);
    if (pty) onPty?.(pty[1]!);
    if (paused) {
      pausedAt.add(Number(paused[1]));
      pauseWaiters.splice(0).forEach((w) => w());
    }
  });
  const path = await new Promise<string>((resolvePath, reject) => {
    onPty = resolvePath;
    child.on('error', (e) => reject(new RtlTwinError(`cannot start the twin ${binary}: ${e.message}`)));
    void exited.then((e) => reject(new RtlTwinError(`the twin ended before opening its pty (exit ${e.code}, ${e.signal})`)));
  });

  return {
    path,
    exited,
    startSamples() {
      if (!opts.hold && !opts.pauseAt?.length) {
        throw new RtlTwinError('startSamples() is only for a twin started with hold or pauseAt');
      }
      child.kill('SIGUSR1');
    },
    async waitPaused(index: number) {
      while (!pausedAt.has(index)) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new RtlTwinError(`the twin ended without pausing at sample ${index}`);
        }
        await new Promise<void>((r) => { pauseWaiters.push(r); setTimeout(r, 250); });
      }
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
