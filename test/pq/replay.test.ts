import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { replayCommand } from '../../server/cli/replay.ts';
import { UsageError } from '../../server/cli/common.ts';
import { replay, ReplayInputError, type ReplayLine } from '../../server/dsp/replay.ts';
import { CODE_MID, DspCore, RESET_CONFIG } from '../../server/dsp/model.ts';
import { PqReplay, type PqEventLine, type PqLine } from '../../server/pq/replay.ts';
import { sampleTones } from '../../server/pq/synth.ts';

const RATE = 4_000_000;
const KV = 400 / 8192;
const KI = 32 / 8192;

/** 0.55 s of 50 Hz with a 10 % 3rd harmonic and a 40 ms interruption from 0.45 s, as raw codes. */
function codes(): { v: Uint16Array; i: Uint16Array } {
  const n = 0.55 * RATE;
  const steps = [{ tStartS: 0.45, tEndS: 0.49, factor: 0 }];
  const v = sampleTones([{ hz: 50, rms: 230, phase: 0.2 }, { hz: 150, rms: 23, phase: 1 }], n, 0, 1, RATE, steps);
  const i = sampleTones([{ hz: 50, rms: 5, phase: -0.4 }], n, 0, 1, RATE);
  const cv = new Uint16Array(n);
  const ci = new Uint16Array(n);
  for (let k = 0; k < n; k++) {
    cv[k] = Math.round(v[k]! / KV) + CODE_MID;
    ci[k] = Math.round(i[k]! / KI) + CODE_MID;
  }
  return { v: cv, i: ci };
}

/** What replayLines does per block, without the CSV (4 Msps CSV text would take most of a minute). */
function runPq(): (PqLine | PqEventLine)[] {
  const { v, i } = codes();
  const core = new DspCore({ ...RESET_CONFIG, max_samples: RATE });
  const pq = new PqReplay({ declaredV: 230, nominalHz: 50 }, RATE, KV, KI, 10);
  const lines: (PqLine | PqEventLine)[] = [];
  const block = 1 << 16;
  for (let k = 0; k < v.length; k += block) {
    const n = Math.min(block, v.length - k);
    pq.samples(v.subarray(k, k + n), i.subarray(k, k + n), n);
    for (const w of core.process(v.subarray(k, k + n), i.subarray(k, k + n))) pq.window(w);
    lines.push(...pq.lines());
  }
  lines.push(...pq.lines(true));
  return lines;
}

async function run(over: { input: string; mode?: string; declaredV?: number; rate?: number }): Promise<ReplayLine[]> {
  const lines: ReplayLine[] = [];
  await replay({
    input: Readable.from([over.input]),
    rate: over.rate ?? RATE,
    vScale: KV,
    iScale: KI,
    ...(over.mode ? { mode: over.mode } : {}),
    pq: { declaredV: over.declaredV ?? 230, nominalHz: 50 },
    write: (line) => lines.push(JSON.parse(line) as ReplayLine),
  });
  return lines;
}

describe('replay --pq', () => {
  it('gives pq lines per 10-cycle window and the interruption as an event', () => {
    const lines = runPq();
    const pq = lines.filter((l): l is PqLine => l.type === 'pq');
    const events = lines.filter((l): l is PqEventLine => l.type === 'event');
    // The two whole windows before the interruption (the DSP's first window is partial: no pq line).
    const clean = pq.filter((l) => l.t_s + 0.2 < 0.45);
    expect(clean.length).toBe(2);
    for (const l of clean) {
      expect(l.h_v).toHaveLength(50);
      expect(l.h_v[0]).toBeCloseTo(230, 0);
      expect(l.h_v[2]).toBeCloseTo(23, 0);
      expect(l.thd_v).toBeCloseTo(0.1, 2);
      expect(l.h_i[0]).toBeCloseTo(5, 1);
      expect(l.p_h[0]).toBeCloseTo(230 * 5 * Math.cos(0.6), -1);
    }
    const interruption = events.find((e) => e.kind === 'interruption');
    expect(interruption).toBeDefined();
    expect(interruption!.start_s).toBeCloseTo(0.45, 2);
    expect(interruption!.duration_s).toBeCloseTo(0.04, 2);
    expect(interruption!.extreme_v).toBeLessThan(5);
  });

  it('refuses fixed windows, a bad declared voltage and a rate too low for order 50, with a clear error', async () => {
    const input = 'v,i\n0,0\n';
    const lines = await run({ input });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toHaveProperty('type');
    await expect(run({ input, mode: 'fixed:1000' })).rejects.toThrow(ReplayInputError);
    await expect(run({ input, declaredV: -1 })).rejects.toThrow(/declared voltage/);
    await expect(run({ input, rate: 1_000_000 })).rejects.toThrow(/record at ≥ 3200000 samples\/s/);
  });
});

describe('crabwatt replay --pq options', () => {
  const io = { out: () => {}, err: () => {} };
  const base = ['--input', '-', '--rate', '4000000', '--v-scale', '0.05', '--i-scale', '0.004'];

  it('refuses --declared-v without --pq and a nominal frequency other than 50 or 60', async () => {
    await expect(replayCommand([...base, '--declared-v', '230'], io, Readable.from(['v,i\n']))).rejects.toThrow(/--declared-v goes with --pq/);
    await expect(replayCommand([...base, '--pq', '--nominal-hz', '55'], io, Readable.from(['v,i\n']))).rejects.toThrow(UsageError);
  });
});
