import { describe, expect, it } from 'vitest';
import { nwhToWhString } from '../../server/store/energy.ts';

describe('energy helpers', () => {
  it('formats exact watt-hours', () => {
    expect(nwhToWhString(0n)).toBe('0.000000000');
    expect(nwhToWhString(1_234_567_890_123n)).toBe('1234.567890123');
    expect(nwhToWhString(-5n)).toBe('-0.000000005');
  });
});
