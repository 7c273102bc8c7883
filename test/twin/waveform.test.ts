// The decimated waveform end to end through the RTL twin: a vector's ADC codes, looped, → gateware
// (calibrator → decimator → waveform FIFO) → the real firmware (firmware/src/waveform.c) → UART bytes →
// FrameDecoder → the same stream as the host model (DspCore's calibrated pairs → Decimator). The twin
// is built once (cached in build/twin/rtl), as in e2e.test.ts.

import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decimator } from '../../server/dsp/decimator.ts';
import { DspCore, RESET_CONFIG } from '../../server/dsp/model.ts';
import { FrameDecoder, type Frame } from '../../server/protocol/codec.ts';
import { WaveformGaps, waveformBlock, type WaveformBlock } from '../../server/protocol/waveform.ts';
import { readVector } from '../../server/twin/stimulus.ts';
import { buildRtlTwin, REPO_ROOT, startRtlTwin, type RtlTwin } from '../../server/twin/rtl.ts';

const VECTOR = `${REPO_ROOT}/test/vectors/harmonics-phase.json`;
const FRAMES_WANTED = 3;

let twin: RtlTwin | null = null;
let port: SerialPort | null = null;

beforeAll(async () => {
  await buildRtlTwin({ log: (line) => process.stderr.write(`${line}\n`) });
}, 20 * 60_000);

afterAll(async () => {
  if (port?.isOpen) await new Promise<void>((r) => port!.close(() => r()));
  await twin?.close();
});

describe('RTL twin waveform stream', () => {
  it('sends the model\'s decimated stream of the looped vector, bit for bit, without gaps', async () => {
    twin = await startRtlTwin({ vector: VECTOR, build: false, loop: true, hold: true });
    port = new SerialPort({ path: twin.path, baudRate: 115200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port!.open((e) => (e ? reject(e) : resolve())));
    const decoder = new FrameDecoder();
    const blocks: WaveformBlock[] = [];
    let wake: (() => void) | null = null;
    let ended = false;
    let booted = false;
    void twin.exited.then(() => { ended = true; wake?.(); });
    port.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.name === 'identify') booted = true;
        if (f.name === 'waveform') blocks.push(waveformBlock(f as Frame<'waveform'>));
      }
      wake?.();
    });
    // The samples start once the firmware has announced itself: by then the read clock's phase has
    // reached READ_DELAY. Pairs read while the PhaseStepper still walks the phase from 0 (the first
    // ~170 cycles after power-on) are garbled, and the model would not know them.
    while (!booted) {
      if (ended) throw new Error('the twin ended before its identify frame');
      await new Promise<void>((r) => { wake = r; });
    }
    twin.startSamples();
    // What the device sends decides when to stop; vitest's timeout only catches a hang.
    while (blocks.length < FRAMES_WANTED) {
      if (ended) throw new Error(`the twin ended after ${blocks.length} waveform frames`);
      await new Promise<void>((r) => { wake = r; });
    }

    const gaps = new WaveformGaps();
    for (const b of blocks) gaps.push(b);
    expect(gaps.lostSamples).toBe(0n);
    const got = blocks.slice(0, FRAMES_WANTED);
    const count = Number(got.at(-1)!.firstIndex) + 512 * got.at(-1)!.v.length + 20_000;

    const vector = readVector(VECTOR);
    const len = vector.cv.length;
    const cv = Uint16Array.from({ length: count }, (_, n) => vector.cv[n % len]!);
    const ci = Uint16Array.from({ length: count }, (_, n) => vector.ci[n % len]!);
    const cal = { v: new Int32Array(count), i: new Int32Array(count) };
    // The twin boots with the reset configuration (a blank flash: no saved calibration).
    new DspCore(RESET_CONFIG).process(cv, ci, count, cal);
    const want = new Decimator().push(cal.v, cal.i);
    expect(got[0]!.firstIndex).toBe(want.firstIndex);
    const n = got.reduce((a, b) => a + b.v.length, 0);
    expect(Int32Array.from(got.flatMap((b) => [...b.v]))).toEqual(want.v.subarray(0, n));
    expect(Int32Array.from(got.flatMap((b) => [...b.i]))).toEqual(want.i.subarray(0, n));
  }, 20 * 60_000);
});
