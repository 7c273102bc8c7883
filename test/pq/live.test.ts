import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ingest } from '../../server/ingest/ingest.ts';
import type { PqBatch } from '../../server/pq/live.ts';
import { encodeFrame, FrameDecoder, type Frame } from '../../server/protocol/codec.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { Store } from '../../server/store/store.ts';
import { tempDir } from '../store/helpers.ts';

describe('live power-quality analysis in ingest', () => {
  let cleanup: () => void;
  let store: Store;
  let clock: number;
  beforeEach(() => {
    let dir: string;
    ({ dir, cleanup } = tempDir('crabwatt-pqlive-'));
    store = Store.open(join(dir, 'pq.sqlite'));
    clock = Date.UTC(2026, 5, 1);
  });
  afterEach(() => {
    store.close();
    cleanup();
  });

  /** A simulated device → FrameDecoder → Ingest with the analysis on; `keep` may lose frames. */
  function setup(seed: number, keep: (f: Frame) => boolean = () => true) {
    const sim = new SimulatedDevice({ seed, speed: Infinity });
    const ingest = new Ingest({ store, kind: 'simulated', defaultScale: { kv: sim.kv, ki: sim.ki }, now: () => clock });
    ingest.startPq({ declaredV: 230, nominalHz: 50 });
    const batches: PqBatch[] = [];
    ingest.on('pq', (b: PqBatch) => batches.push(b));
    const decoder = new FrameDecoder();
    sim.setOutput((bytes) => {
      for (const frame of decoder.push(bytes)) if (keep(frame)) ingest.handleFrame(frame);
      return true;
    });
    sim.receive(encodeFrame('cmd_identify', 0, {}));
    const run = (seconds: number): void => {
      for (let k = 0; k < seconds * 5; k++) {
        sim.advance(sim.fs / 5);
        clock += 200;
      }
    };
    return { sim, ingest, batches, run };
  }

  it('analyses the waveform frames against the booked windows, counting nothing lost', () => {
    const { ingest, run } = setup(11);
    run(3);
    const c = ingest.pq!.counters;
    expect(ingest.pq!.error).toBe(null);
    expect(c.waveformFrames).toBeGreaterThan(100);
    // 15 windows in 3 s; the first lacks the resampling margin before it, the last may still wait for its.
    expect(c.pqWindows).toBeGreaterThanOrEqual(12);
    expect(c.pqGapWindows).toBeLessThanOrEqual(1);
    expect(c.waveformLostSamples).toBe(0);
    expect(c.waveformGaps).toBe(0);
  });

  it('counts lost waveform frames as lost stream samples and gaps, and analyses no window across them', () => {
    let waveforms = 0;
    const { ingest, run } = setup(12, (f) => f.name !== 'waveform' || ++waveforms % 40 !== 0);
    run(3);
    const c = ingest.pq!.counters;
    expect(c.waveformGaps).toBeGreaterThan(0);
    expect(c.waveformLostSamples).toBeGreaterThan(0);
    expect(c.waveformLostSamples % 1).toBe(0);
    expect(c.pqGapWindows).toBeGreaterThan(1);
    expect(c.pqWindows + c.pqGapWindows).toBeGreaterThanOrEqual(13);
  });

  it('restarts the stream at a device reset: no analysis across it, and the old boot is released', () => {
    const { sim, ingest, run } = setup(13);
    run(2);
    const before = { ...ingest.pq!.counters };
    sim.reset();
    run(2);
    const c = ingest.pq!.counters;
    expect(c.waveformGaps).toBe(before.waveformGaps + 1);
    // The new boot's first window again lacks margin: it is a gap window, not one analysed across the reset.
    expect(c.pqGapWindows).toBeGreaterThan(before.pqGapWindows);
    expect(c.waveformLostSamples).toBe(0);
  });
});
