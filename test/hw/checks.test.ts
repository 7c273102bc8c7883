// The smoke test's judgement (test/hw/checks.ts) on synthetic runs: a healthy 10 s run passes every
// check, and each kind of fault fails the check meant to catch it (and only that one).
import { describe, expect, it } from 'vitest';

import type { Frame } from '../../server/protocol/codec.ts';
import { PROTOCOL_VERSION } from '../../server/protocol/definition.ts';
import { judge, type LinkErrors, type Observation } from './checks.ts';

const FS = 4_000_000;
const WINDOW_SAMPLES = 800_000; // 0.2 s
const CLEAN: LinkErrors = { crcErrors: 0, framingErrors: 0, protocolErrors: 0, seqGaps: 0 };
const SCALE = { kv: 0.05, ki: 0.01 };

function healthyRun(options: { rate?: number; energyError?: bigint } = {}): Observation[] {
  const rate = options.rate ?? FS;
  const obs: Observation[] = [];
  let seq = 0;
  const push = (atMs: number, frame: Omit<Frame, 'seq'>) => obs.push({ atMs, frame: { ...frame, seq: seq++ } as Frame });
  push(0, {
    name: 'identify', type: 0x01,
    fields: {
      device_id: 1n, boot_id: 7, board: 2, adc_part: 1, protocol_version: PROTOCOL_VERSION, gateware_version: 0x100,
      firmware_version: 0x100, sample_rate_num: FS, sample_rate_den: 1, capture_depth: 4096, config_seq: 0,
      mode: 0, cycles: 10, fixed_samples: 400_000, max_samples: 4_000_000, zc_hysteresis: 64,
      v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0,
    },
  });
  let energy = -5_000_000_000n;
  let end = 123_456n;
  for (let k = 0; k < 50; k++) {
    const atMs = (Number(end) / rate) * 1000;
    if (k % 5 === 0) {
      push(atMs, {
        name: 'status', type: 0x05,
        fields: { boot_id: 7, uptime_ms: Math.round(atMs), frames_dropped: 3, fifo_overflows: 0, samples_dropped: 0,
          adc_errors: 0, watchdog_resets: 0, config_seq: 0 },
      });
    }
    const sumVi = BigInt(k - 20) * 1_000_000n;
    end += BigInt(WINDOW_SAMPLES);
    energy += sumVi;
    push(atMs + 3, {
      name: 'window', type: 0x02,
      fields: { end_index: end, samples: WINDOW_SAMPLES, sum_v: 10n, sum_i: -4n, sum_vv: 6_000_000n * BigInt(WINDOW_SAMPLES),
        sum_ii: 40_000n * BigInt(WINDOW_SAMPLES), sum_vi: sumVi, min_v: -3400, max_v: 3400, min_i: -280, max_i: 290,
        zc_count: 10, zc_first_offset: 100, zc_first_prev: -5, zc_first_cur: 30, zc_last_offset: 720_100,
        zc_last_prev: -7, zc_last_cur: 20, flags: 0, config_seq: 0 },
    });
    push(atMs + 4, {
      name: 'energy', type: 0x03,
      fields: { end_index: end, energy: energy + (k === 30 ? (options.energyError ?? 0n) : 0n), boot_id: 7 },
    });
  }
  return obs;
}

const failing = (obs: Observation[], errors: LinkErrors = CLEAN) =>
  judge(obs, errors, SCALE).filter((r) => !r.ok).map((r) => r.name);

describe('hw smoke test checks', () => {
  it('pass a healthy run', () => {
    expect(failing(healthyRun())).toEqual([]);
  });

  it('catch link errors and sequence gaps', () => {
    expect(failing(healthyRun(), { ...CLEAN, crcErrors: 1 })).toEqual(['link']);
    expect(failing(healthyRun(), { ...CLEAN, framingErrors: 1 })).toEqual([]); // the torn first frame
    expect(failing(healthyRun(), { ...CLEAN, seqGaps: 2 })).toEqual(['sequence']);
  });

  it('catch frames the firmware dropped during the run', () => {
    const obs = healthyRun();
    const last = obs.filter((o) => o.frame.name === 'status').at(-1)!.frame;
    if (last.name === 'status') last.fields.frames_dropped += 1;
    expect(failing(obs)).toEqual(['sequence']);
  });

  it('catch energy that does not add up to the windows', () => {
    expect(failing(healthyRun({ energyError: 1n }))).toEqual(['energy']);
  });

  it('catch windows that do not tile the sample stream', () => {
    const obs = healthyRun().filter((o, k) => !(o.frame.name === 'window' && k > 40 && k < 45));
    expect(failing(obs)).toContain('windows');
  });

  it('catch a sample clock off by more than 2 %', () => {
    expect(failing(healthyRun({ rate: FS * 1.03 }))).toContain('sample-rate');
    expect(failing(healthyRun({ rate: FS * 1.01 }))).not.toContain('sample-rate');
  });

  it('catch a device that never identified', () => {
    expect(failing(healthyRun().slice(1))).toEqual(['identify', 'sample-rate', 'values']);
  });
});
