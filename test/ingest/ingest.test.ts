import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { energyNanoWattHours } from '../../server/dsp/derive.ts';
import { DUPLICATE_BLOCK_WINDOWS, Ingest, type LiveWindow } from '../../server/ingest/ingest.ts';
import { encodeFrame, FrameDecoder, type Frame } from '../../server/protocol/codec.ts';
import { WINDOW_MODE } from '../../server/protocol/definition.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { Store } from '../../server/store/store.ts';
import { tempDir } from '../store/helpers.ts';

/** Device bytes → the real FrameDecoder → ingest, with an optional filter that loses frames. */
function connect(sim: SimulatedDevice, ingest: Ingest, keep: (f: Frame) => boolean = () => true) {
  const decoder = new FrameDecoder();
  const seen: Frame[] = [];
  sim.setOutput((bytes) => {
    for (const frame of decoder.push(bytes)) {
      seen.push(frame);
      if (keep(frame)) ingest.handleFrame(frame);
    }
    return true;
  });
  const lastEnergy = (): bigint => {
    for (let k = seen.length - 1; k >= 0; k--) {
      const f = seen[k]!;
      if (f.name === 'energy') return f.fields.energy;
    }
    throw new Error('no energy frame yet');
  };
  return { decoder, seen, lastEnergy };
}

const identify = (sim: SimulatedDevice, seq = 0) => sim.receive(encodeFrame('cmd_identify', seq, {}));

describe('Ingest', () => {
  let dir: string;
  let cleanup: () => void;
  let store: Store;
  let clock: number;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir('crabwatt-ingest-'));
    store = Store.open(join(dir, 'i.sqlite'));
    clock = Date.UTC(2026, 5, 1);
  });
  afterEach(() => {
    store.close();
    cleanup();
  });

  function makeIngest(sim: SimulatedDevice, requestIdentify?: () => void): Ingest {
    return new Ingest({
      store,
      kind: 'simulated',
      defaultScale: { kv: sim.kv, ki: sim.ki },
      now: () => clock,
      ...(requestIdentify ? { requestIdentify } : {}),
    });
  }

  /** Advance the device in 0.2 s steps with the host clock following. */
  function run(sim: SimulatedDevice, seconds: number): void {
    for (let k = 0; k < seconds * 5; k++) {
      sim.advance(sim.fs / 5);
      clock += 200;
    }
  }

  it('books exactly the device accumulator, with plausible live windows', () => {
    const sim = new SimulatedDevice({ seed: 3, speed: Infinity });
    const ingest = makeIngest(sim);
    const live: LiveWindow[] = [];
    ingest.on('window', (w: LiveWindow) => live.push(w));
    const link = connect(sim, ingest);
    identify(sim);
    run(sim, 3);
    store.flush();
    const scale = { kv: sim.kv, ki: sim.ki, fs: sim.fs };
    expect(store.totalNwh(ingest.deviceRef!)).toBe(energyNanoWattHours(link.lastEnergy(), scale));
    expect(ingest.counters.windows).toBeGreaterThan(10);
    expect(ingest.counters.gaps).toBe(0);
    const w = live.at(-1)!;
    expect(w.vrms).toBeGreaterThan(200);
    expect(w.vrms).toBeLessThan(260);
    expect(w.freq_hz!).toBeCloseTo(50, 0);
    const stored = store.db.prepare('SELECT count(*) FROM windows').pluck().get();
    expect(stored).toBe(ingest.counters.windows);
  });

  it('books the energy of lost window frames as gaps: the counter still equals the accumulator', () => {
    const sim = new SimulatedDevice({ seed: 4, speed: Infinity });
    const ingest = makeIngest(sim);
    let windows = 0;
    const link = connect(sim, ingest, (f) => f.name !== 'window' || ++windows % 4 !== 0);
    identify(sim);
    run(sim, 3);
    store.flush();
    expect(ingest.counters.gaps).toBeGreaterThan(0);
    expect(store.totalNwh(ingest.deviceRef!)).toBe(energyNanoWattHours(link.lastEnergy(), { kv: sim.kv, ki: sim.ki, fs: sim.fs }));
  });

  it('opens an epoch at a device reset and keeps the total monotone', () => {
    const sim = new SimulatedDevice({ seed: 5, speed: Infinity });
    const ingest = makeIngest(sim);
    const totals: bigint[] = [];
    ingest.on('window', (w: LiveWindow) => totals.push(w.total_nwh));
    const link = connect(sim, ingest);
    identify(sim);
    run(sim, 2);
    const firstBoot = link.lastEnergy();
    sim.reset(); // sends identify with the new boot_id
    run(sim, 2);
    store.flush();
    const scale = { kv: sim.kv, ki: sim.ki, fs: sim.fs };
    expect(ingest.counters.epochs).toBe(1);
    expect(store.totalNwh(ingest.deviceRef!)).toBe(energyNanoWattHours(firstBoot, scale) + energyNanoWattHours(link.lastEnergy(), scale));
    for (let k = 1; k < totals.length; k++) expect(totals[k]! >= totals[k - 1]!).toBe(true);
    const epochs = store.db.prepare('SELECT reason FROM epochs ORDER BY id').pluck().all();
    expect(epochs).toEqual(['first', 'boot_id']);
  });

  it('asks for identify when frames arrive before it, and books from then on', () => {
    const sim = new SimulatedDevice({ seed: 6, speed: Infinity });
    let asked = 0;
    const ingest = makeIngest(sim, () => {
      asked++;
      identify(sim, asked);
    });
    connect(sim, ingest);
    run(sim, 1);
    expect(asked).toBe(1);
    expect(ingest.counters.beforeIdentify).toBeGreaterThan(0);
    expect(ingest.deviceId).toBe(sim.deviceId.toString(16).padStart(16, '0'));
    run(sim, 1);
    expect(ingest.counters.windows).toBeGreaterThan(0);
  });

  it('counts a window the store refuses and goes on', () => {
    const sim = new SimulatedDevice({ seed: 7, speed: Infinity });
    const ingest = makeIngest(sim);
    connect(sim, ingest);
    identify(sim);
    const errors: Error[] = [];
    ingest.on('ingest-error', (e: Error) => errors.push(e));
    const bad = {
      end_index: 1n << 63n, samples: 0, sum_v: 0n, sum_i: 0n, sum_vv: 0n, sum_ii: 0n, sum_vi: 0n,
      min_v: 0, max_v: 0, min_i: 0, max_i: 0, zc_count: 0, zc_first_offset: 0, zc_first_prev: 0, zc_first_cur: 0,
      zc_last_offset: 0, zc_last_prev: 0, zc_last_cur: 0, flags: 0, config_seq: 0,
    };
    ingest.handleFrame({ name: 'window', type: 0x02, seq: 99, fields: bad } as Frame);
    expect(ingest.counters.errors).toBe(1);
    expect(errors).toHaveLength(1);
    run(sim, 1);
    expect(ingest.counters.windows).toBeGreaterThan(0);
  });

  it('warns once when duplicates dominate (a replayed boot), and once when new windows come again', () => {
    // 100 windows per second of device time: a few blocks of windows cost little simulation.
    const sim = new SimulatedDevice({ seed: 8, speed: Infinity, bootConfig: { mode: WINDOW_MODE.FIXED, fixed_samples: 40_000 } });
    const recorded: Frame[] = [];
    const decoder = new FrameDecoder();
    sim.setOutput((bytes) => {
      recorded.push(...decoder.push(bytes));
      return true;
    });
    identify(sim);
    sim.advance(sim.fs); // 100 windows
    const windowFrames = recorded.filter((f) => f.name === 'window').length;
    expect(windowFrames).toBeGreaterThan(DUPLICATE_BLOCK_WINDOWS);

    const first = makeIngest(sim);
    for (const f of recorded) first.handleFrame(f);
    expect(first.duplicateWarning).toBeNull();
    // A second run of the same boot on the same database: nothing new.
    const second = makeIngest(sim);
    const changes: (string | null)[] = [];
    second.on('duplicates', (e: { warning: string | null }) => changes.push(e.warning));
    for (const f of recorded) second.handleFrame(f);
    expect(second.counters.duplicates).toBe(windowFrames);
    expect(second.counters.windows).toBe(0);
    expect(changes).toHaveLength(1);
    expect(second.duplicateWarning).toMatch(/already stored/);
    // The device goes on past what is stored: new windows, and the warning goes (once).
    connect(sim, second);
    run(sim, 2); // 200 new windows
    expect(second.counters.windows).toBeGreaterThan(DUPLICATE_BLOCK_WINDOWS);
    expect(changes).toHaveLength(2);
    expect(changes[1]).toBeNull();
    expect(second.duplicateWarning).toBeNull();
  });
});
