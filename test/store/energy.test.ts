import { describe, expect, it } from 'vitest';
import { energyNanoWattHours } from '../../server/dsp/derive.ts';
import { NwhConverter, nwhToWhString } from '../../server/store/energy.ts';
import { rng } from './helpers.ts';

describe('NwhConverter', () => {
  it('agrees with derive.energyNanoWattHours on random, extreme and tie values', () => {
    const next = rng(11);
    const scales = [
      { kv: 400 / 8192, ki: 32 / 8192, fs: 4_000_000 },
      { kv: 0.05, ki: 0.004, fs: 1000 },
      { kv: 1e-3, ki: 7.3e-5, fs: 4_000_000 / 3 },
    ];
    for (const scale of scales) {
      const c = new NwhConverter(scale);
      const raws = [0n, 1n, -1n, (1n << 95n) - 1n, -(1n << 95n)];
      for (let k = 0; k < 2000; k++) {
        const magnitude = BigInt(Math.floor(next() * 2 ** 52)) << BigInt(Math.floor(next() * 40));
        raws.push(next() < 0.2 ? -magnitude : magnitude);
      }
      for (const raw of raws) expect(c.nwh(raw), `${raw}`).toBe(energyNanoWattHours(raw, scale));
    }
  });

  it('formats exact watt-hours', () => {
    expect(nwhToWhString(0n)).toBe('0.000000000');
    expect(nwhToWhString(1_234_567_890_123n)).toBe('1234.567890123');
    expect(nwhToWhString(-5n)).toBe('-0.000000005');
  });
});
