import { describe, expect, it } from 'vitest';
import { FrameDecoder, type Frame } from '../../server/protocol/codec.ts';
import { Decimator, DECIMATED_FIRST_INDEX } from '../../server/dsp/decimator.ts';
import { DspCore, RESET_CONFIG } from '../../server/dsp/model.ts';
import { WaveformGaps, waveformBlock } from '../../server/protocol/waveform.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { WAVEFORM_FRAME_SAMPLES } from '../../server/sim/waveform.ts';
import { SyntheticLoad } from '../../server/sim/load.ts';

describe('SimulatedDevice waveform stream', () => {
  it('sends the bit-exact decimated stream of its calibrated samples in consecutive frames of 32', () => {
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    const calibration = { v_gain: 17000, i_gain: 15000, v_offset: 12, i_offset: -7, phase: 3 * 65536 + 777 };
    const sim = new SimulatedDevice({ seed: 9, bootConfig: calibration, output: (b) => { frames.push(...decoder.push(b)); return true; } });
    const count = 300_000;
    sim.advance(count);
    const blocks = frames.filter((f): f is Frame<'waveform'> => f.name === 'waveform').map(waveformBlock);
    const gaps = new WaveformGaps();
    for (const b of blocks) {
      expect(gaps.push(b)).toBe(0n);
      expect(b.v.length).toBe(WAVEFORM_FRAME_SAMPLES);
    }
    expect(blocks[0]!.firstIndex).toBe(BigInt(DECIMATED_FIRST_INDEX));

    // The same samples through the model: raw codes → calibrated pairs → decimator.
    const load = new SyntheticLoad({ scenario: 'mains-230-50', seed: 9 });
    const cv = new Uint16Array(count);
    const ci = new Uint16Array(count);
    load.fill(cv, ci);
    const cal = { v: new Int32Array(count), i: new Int32Array(count) };
    new DspCore({ ...RESET_CONFIG, ...calibration }).process(cv, ci, count, cal);
    const want = new Decimator().push(cal.v, cal.i);
    const whole = Math.floor(want.v.length / WAVEFORM_FRAME_SAMPLES) * WAVEFORM_FRAME_SAMPLES;
    expect(whole).toBeGreaterThan(0);
    expect(blocks.length * WAVEFORM_FRAME_SAMPLES).toBe(whole);
    expect(Int32Array.from(blocks.flatMap((b) => [...b.v]))).toEqual(want.v.subarray(0, whole));
    expect(Int32Array.from(blocks.flatMap((b) => [...b.i]))).toEqual(want.i.subarray(0, whole));
    // The stream is not trivially zero: mains at 230 V reaches far into the 18-bit range.
    expect(Math.max(...want.v.subarray(0, whole))).toBeGreaterThan(10_000);
  });
});
