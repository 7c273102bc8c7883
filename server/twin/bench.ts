// Speed of the RTL twin as a fraction of real time:
//   npx tsx server/twin/bench.ts [--seconds S] [--vector FILE]
// Builds the twin if needed, runs S simulated seconds (default 0.5) of a looping vector with no host
// attached (the firmware's output is discarded), and prints the harness's report: simulated clock in
// MHz, and the fraction of real time per wall second and per CPU second (the repeatable figure on a
// shared machine), and how many clock cycles the twin's CPU gets per sample pair against the board's.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildRtlTwin, DEFAULT_VECTOR } from './rtl.ts';
import { readVector, stimulusBytes } from './stimulus.ts';

export interface TwinSpeed {
  cycles: number;
  wallSeconds: number;
  cpuSeconds: number;
  /** Simulated time per wall second. */
  realTimeFraction: number;
  /** Simulated time per CPU second. */
  realTimeFractionPerCpu: number;
  /** System clock cycles per sample pair in the twin, and on the board (null: an older report). */
  cyclesPerPair: number | null;
  boardCyclesPerPair: number | null;
  report: string;
}

/** Parses the harness's closing report line. */
export function parseTwinReport(line: string): TwinSpeed | null {
  const m = /crabwatt-twin: (\d+) cycles .* ([\d.]+) s wall, ([\d.]+) s CPU; clock ([\d.]+) of real time \(([\d.]+) per CPU second\)/.exec(line);
  if (!m) return null;
  const pairs = /CPU cycles per sample pair (\d+) \(the board: (\d+)\)/.exec(line);
  return {
    cycles: Number(m[1]), wallSeconds: Number(m[2]), cpuSeconds: Number(m[3]),
    realTimeFraction: Number(m[4]), realTimeFractionPerCpu: Number(m[5]),
    cyclesPerPair: pairs ? Number(pairs[1]) : null, boardCyclesPerPair: pairs ? Number(pairs[2]) : null,
    report: line,
  };
}

export async function benchRtlTwin(seconds: number, vectorPath = DEFAULT_VECTOR): Promise<TwinSpeed> {
  if (!(seconds > 0 && seconds <= 60)) throw new RangeError('seconds must be in (0, 60]');
  const binary = await buildRtlTwin({ log: (line) => process.stderr.write(`${line}\n`) });
  const dir = mkdtempSync(join(tmpdir(), 'crabwatt-twin-bench-'));
  try {
    const vector = readVector(vectorPath);
    const stimulus = join(dir, 'stimulus.bin');
    writeFileSync(stimulus, stimulusBytes(vector.cv, vector.ci));
    const run = spawnSync(binary, ['--stimulus', stimulus, '--no-pty', '--loop', '--max-seconds', String(seconds)],
      { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`the twin failed (exit ${run.status}): ${run.stderr}`);
    const line = run.stderr.trim().split('\n').at(-1) ?? '';
    const speed = parseTwinReport(line);
    if (!speed) throw new Error(`unexpected twin report: ${line}`);
    return speed;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, vector: { type: 'string' } } });
  const speed = await benchRtlTwin(Number(values.seconds ?? '0.5'), values.vector ?? DEFAULT_VECTOR);
  console.log(speed.report);
  console.log(`real-time fraction: ${speed.realTimeFraction.toFixed(4)} per wall second, ` +
    `${speed.realTimeFractionPerCpu.toFixed(4)} per CPU second (goal >= 0.1)`);
  if (speed.cyclesPerPair !== null && speed.boardCyclesPerPair !== null) {
    // The twin buys its speed with a slower clock at the same sample rate.
    console.log(`caveat: the twin's CPU gets ${speed.cyclesPerPair} clock cycles per sample pair, the board's ` +
      `${speed.boardCyclesPerPair}: per sample the firmware has ${(speed.boardCyclesPerPair / speed.cyclesPerPair).toFixed(0)}x ` +
      'less time here than on the board');
  }
}
