// The simulated-device speed figure for `crabwatt bench --json`: the whole device (load generation,
// the exact DSP model, frame encoding) run flat out on this thread, against the 4 Msps it simulates.
//
// "On one core" is measured as the process's CPU time (user + system) during the run, which is what
// the device costs whatever else the machine is doing; it also charges V8's GC threads, so it errs
// on the slow side. The wall-clock rate is reported beside it and only equals it on an idle machine.

import { SimulatedDevice } from './device.ts';
import { SAMPLE_RATE_HZ } from './load.ts';
import type { ScenarioName } from './scenarios.ts';

export interface SimSpeed {
  /** Sample pairs per second of process CPU time, load + model + encoding. */
  samples_per_s: number;
  /** samples_per_s / 4 Msps: how many times faster than the real device. The goal is ≥ 10. */
  realtime_factor: number;
  /** Sample pairs per second of wall-clock time (lower when other processes share the cores). */
  wall_samples_per_s: number;
  /** Device time simulated in the measurement, s. */
  simulated_s: number;
  /** Process CPU time and wall-clock time the measurement took, s. */
  cpu_s: number;
  wall_s: number;
  /** Frames the device produced in the measurement (they were encoded, then discarded). */
  frames: number;
  scenario: ScenarioName;
}

export interface SimSpeedOptions {
  scenario?: ScenarioName;
  /** Device seconds to measure after the warm-up (default 10 s). */
  simulatedSeconds?: number;
  /** Device seconds run first so the JIT has compiled the hot loops (default 1 s). */
  warmupSeconds?: number;
  seed?: number;
}

export function measureSimSpeed(options: SimSpeedOptions = {}): SimSpeed {
  const scenario = options.scenario ?? 'mains-230-50';
  const simulatedSeconds = options.simulatedSeconds ?? 10;
  const warmupSeconds = options.warmupSeconds ?? 1;
  if (!(simulatedSeconds > 0) || !(warmupSeconds >= 0)) {
    throw new RangeError(`measureSimSpeed: simulatedSeconds must be > 0 and warmupSeconds ≥ 0`);
  }
  const sim = new SimulatedDevice({ scenario, seed: options.seed ?? 1, speed: Infinity });
  let frames = 0;
  let bytes = 0;
  sim.setOutput((buf) => {
    frames++;
    bytes += buf.length;
    return true;
  });
  sim.advance(Math.round(warmupSeconds * SAMPLE_RATE_HZ));
  frames = 0;
  const samples = Math.round(simulatedSeconds * SAMPLE_RATE_HZ);
  const cpuBefore = process.cpuUsage();
  const began = process.hrtime.bigint();
  sim.advance(samples);
  const wallS = Number(process.hrtime.bigint() - began) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  if (bytes === 0) throw new Error('measureSimSpeed: the simulated device produced no output');
  const samplesPerS = samples / cpuS;
  return {
    samples_per_s: samplesPerS,
    realtime_factor: samplesPerS / SAMPLE_RATE_HZ,
    wall_samples_per_s: samples / wallS,
    simulated_s: simulatedSeconds,
    cpu_s: cpuS,
    wall_s: wallS,
    frames,
    scenario,
  };
}
