// The CPU cost of the live power-quality analysis per second of device time: the simulated device's frames
// (230 V / 50 Hz, 4 Msps, its waveform stream at 7812.5 samples/s) are recorded once, then ingested into a
// fresh store twice, with the analysis and without; the difference is what the analysis adds to `serve`.
//
//   npx tsx server/pq/bench-live.ts [--seconds 20] [--json]
//
// CPU time (user + system) of this process: on a shared machine wall time measures the neighbours.

import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ingest } from '../ingest/ingest.ts';
import { encodeFrame, FrameDecoder, type Frame } from '../protocol/codec.ts';
import { SimulatedDevice } from '../sim/device.ts';
import { databaseLockPath } from '../store/lock.ts';
import { Store } from '../store/store.ts';
import { DEFAULT_PQ_SETTINGS } from './settings.ts';

export interface LivePqCost {
  device_seconds: number;
  frames: number;
  /** ingest CPU seconds per device second, without and with the analysis */
  ingest_cpu_s_per_device_s: number;
  ingest_pq_cpu_s_per_device_s: number;
  /** what the analysis adds, CPU seconds per device second (a share of one core) */
  pq_cpu_s_per_device_s: number;
  windows_analysed: number;
}

function record(seconds: number): { frames: Frame[]; kv: number; ki: number } {
  const sim = new SimulatedDevice({ seed: 21, speed: Infinity });
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  sim.setOutput((bytes) => {
    frames.push(...decoder.push(bytes));
    return true;
  });
  sim.receive(encodeFrame('cmd_identify', 0, {}));
  for (let k = 0; k < seconds * 5; k++) sim.advance(sim.fs / 5);
  return { frames, kv: sim.kv, ki: sim.ki };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function ingestAll(rec: ReturnType<typeof record>, pq: boolean): { cpuS: number; analysed: number } {
  const path = join(tmpdir(), `crabwatt-bench-pq-${process.pid}-${pq ? 'on' : 'off'}.sqlite`);
  const store = Store.open(path);
  let clock = Date.UTC(2026, 0, 1);
  const ingest = new Ingest({ store, kind: 'simulated', defaultScale: { kv: rec.kv, ki: rec.ki }, now: () => clock });
  if (pq) ingest.startPq(DEFAULT_PQ_SETTINGS);
  const t0 = cpuSeconds();
  for (const f of rec.frames) {
    if (f.name === 'window') clock += 200;
    ingest.handleFrame(f, clock);
  }
  store.flush();
  const cpuS = cpuSeconds() - t0;
  const analysed = ingest.pq?.counters.pqWindows ?? 0;
  store.close();
  for (const file of [databaseLockPath(path), path, `${path}-wal`, `${path}-shm`]) rmSync(file, { force: true });
  return { cpuS, analysed };
}

export function measureLivePq(seconds: number): LivePqCost {
  const rec = record(seconds);
  ingestAll(rec, true); // warm-up: the JIT, the FFT's tables
  const off = ingestAll(rec, false);
  const on = ingestAll(rec, true);
  return {
    device_seconds: seconds,
    frames: rec.frames.length,
    ingest_cpu_s_per_device_s: off.cpuS / seconds,
    ingest_pq_cpu_s_per_device_s: on.cpuS / seconds,
    pq_cpu_s_per_device_s: (on.cpuS - off.cpuS) / seconds,
    windows_analysed: on.analysed,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' }, json: { type: 'boolean' } } });
  const seconds = Number(values.seconds);
  if (!(Number.isInteger(seconds) && seconds >= 2)) throw new RangeError(`--seconds must be a whole number ≥ 2, got ${values.seconds}`);
  const r = measureLivePq(seconds);
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(`${r.device_seconds} s of one simulated device (${r.frames} frames, ${r.windows_analysed} windows analysed)`);
    console.log(`ingest without the analysis: ${(r.ingest_cpu_s_per_device_s * 1000).toFixed(1)} ms CPU per device second`);
    console.log(`ingest with the analysis:    ${(r.ingest_pq_cpu_s_per_device_s * 1000).toFixed(1)} ms CPU per device second`);
    console.log(`the analysis:                ${(r.pq_cpu_s_per_device_s * 1000).toFixed(1)} ms CPU per device second (${(r.pq_cpu_s_per_device_s * 100).toFixed(1)} % of a core)`);
  }
}
