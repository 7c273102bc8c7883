// The simulated-device speed figure for `crabwatt bench --json`: the whole device (load generation,
// the exact DSP model, frame encoding) run flat out on this thread, against the 4 Msps it simulates.

import { SimulatedDevice } from './device.ts';
import { SAMPLE_RATE_HZ, type ScenarioName } from './load.ts';

export interface SimSpeed {
  /** Sample pairs per second of host time, load + model + encoding. */
  samples_per_s: number;
  /** samples_per_s / 4 Msps: how many times faster than the real device. The goal is ≥ 10. */
  realtime_factor: number;
  /** Device time simulated in the measurement, s. */
  simulated_s: number;
  /** Host time it took, s. */
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
  const began = process.hrtime.bigint();
  sim.advance(samples);
  const wallS = Number(process.hrtime.bigint() - began) / 1e9;
  if (bytes === 0) throw new Error('measureSimSpeed: the simulated device produced no output');
  const samplesPerS = samples / wallS;
  return {
    samples_per_s: samplesPerS,
    realtime_factor: samplesPerS / SAMPLE_RATE_HZ,
    simulated_s: simulatedSeconds,
    wall_s: wallS,
    frames,
    scenario,
  };
}
