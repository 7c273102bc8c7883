// `crabwatt bench [--json]`: the figures of issue 2, measured on this machine in one run.

import { measureModelAccuracy, measureModelSpeed } from '../dsp/bench-accuracy.ts';
import { measureIngestThroughput } from '../ingest/bench.ts';
import { measureSimSpeed } from '../sim/bench.ts';
import { parseCommandArgs, parseNumber, str, toJson, type Io } from './common.ts';

export const BENCH_HELP = `crabwatt bench [--json] [--windows N]

Measures, on one core:
  ingest   frames/s through decoder → ingest → store with rollups, against the USB full-speed limit for
           that frame size (goal ≥ 10×) and a bare better-sqlite3 insert loop of the same rows (goal ≥ 0.5×)
  model    Vrms/Irms/P of the exact model against float64 on full-scale sines with harmonics (goal ≤ 1 ppm),
           and DspCore samples/s
  sim      the simulated device (load + model + encoding) against real time at 4 Msps (goal ≥ 10×)
--json prints one object with every figure and which goals are met. --windows sets the ingest stream length
(default 50000 windows, each with its energy frame).
`;

export interface BenchReport {
  ingest: ReturnType<typeof measureIngestThroughput>;
  model_accuracy: ReturnType<typeof measureModelAccuracy>;
  model_speed: ReturnType<typeof measureModelSpeed>;
  sim_speed: ReturnType<typeof measureSimSpeed>;
  goals: Record<string, { goal: string; value: number; met: boolean }>;
  all_goals_met: boolean;
  machine: { node: string; platform: string; cpus: number; loadavg_1m: number };
}

export async function benchCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseCommandArgs('bench', argv, { json: { type: 'boolean' }, windows: { type: 'string' } });
  if (values['help']) {
    io.out(BENCH_HELP);
    return 0;
  }
  const windows = parseNumber('windows', str(values, 'windows'), 50_000, (n) => Number.isInteger(n) && n >= 100, 'an integer ≥ 100');
  const json = values['json'] === true;
  const say = (text: string): void => {
    if (!json) io.err(text);
  };
  say('ingest throughput … ');
  const ingest = measureIngestThroughput({ windows });
  say('done\nmodel accuracy … ');
  const accuracy = measureModelAccuracy();
  say('done\nmodel speed … ');
  const modelSpeed = measureModelSpeed();
  say('done\nsimulated device speed … ');
  const simSpeed = measureSimSpeed();
  say('done\n');
  const goals: BenchReport['goals'] = {
    ingest_vs_wire: { goal: '≥ 10× the USB full-speed frame limit', value: ingest.vs_wire, met: ingest.vs_wire >= 10 },
    ingest_vs_bare: { goal: '≥ 0.5× a bare insert loop', value: ingest.vs_bare, met: ingest.vs_bare >= 0.5 },
    model_vrms_ppm: { goal: '≤ 1 ppm', value: accuracy.vrms_ppm, met: accuracy.vrms_ppm <= 1 },
    model_irms_ppm: { goal: '≤ 1 ppm', value: accuracy.irms_ppm, met: accuracy.irms_ppm <= 1 },
    model_p_ppm: { goal: '≤ 1 ppm', value: accuracy.p_ppm, met: accuracy.p_ppm <= 1 },
    sim_realtime_factor: { goal: '≥ 10× real time', value: simSpeed.realtime_factor, met: simSpeed.realtime_factor >= 10 },
  };
  const os = await import('node:os');
  const report: BenchReport = {
    ingest,
    model_accuracy: accuracy,
    model_speed: modelSpeed,
    sim_speed: simSpeed,
    goals,
    all_goals_met: Object.values(goals).every((g) => g.met),
    machine: { node: process.version, platform: `${os.platform()} ${os.arch()}`, cpus: os.cpus().length, loadavg_1m: os.loadavg()[0]! },
  };
  if (json) {
    io.out(`${toJson(report)}\n`);
    return 0;
  }
  const n = (x: number): string => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));
  io.out(
    [
      `ingest: ${n(ingest.frames_per_s)} frames/s (${n(ingest.windows_per_s)} windows/s, ${n(ingest.mean_frame_bytes)} B/frame)`,
      `  USB full-speed limit ${n(ingest.usb_fs_frame_limit_per_s)} frames/s → ${n(ingest.vs_wire)}×`,
      `  bare insert loop ${n(ingest.bare_rows_per_s)} rows/s → ${n(ingest.vs_bare)}×`,
      `model: Vrms ${n(accuracy.vrms_ppm)} ppm, Irms ${n(accuracy.irms_ppm)} ppm, P ${n(accuracy.p_ppm)} ppm; ${n(modelSpeed.samples_per_s)} samples/s`,
      `sim: ${n(simSpeed.samples_per_s)} samples/s = ${n(simSpeed.realtime_factor)}× real time`,
      ...Object.entries(goals).map(([k, g]) => `${g.met ? 'met  ' : 'UNMET'} ${k}: ${n(g.value)} (${g.goal})`),
      `(load average ${report.machine.loadavg_1m.toFixed(1)} on ${report.machine.cpus} cores: figures scale down on a busy machine)`,
      '',
    ].join('\n'),
  );
  return 0;
}
