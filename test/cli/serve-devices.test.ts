// The `--device` specs of serve: several sims get distinct seeds (their device ids), and what cannot be meant
// is refused with a usage error before anything opens.

import { describe, expect, it } from 'vitest';
import { parseDeviceSpecs } from '../../server/cli/serve-devices.ts';
import { UsageError } from '../../server/cli/common.ts';

describe('parseDeviceSpecs', () => {
  it('gives a lone sim seed 1 (the id it always had) and further sims the free seeds from 1 up', () => {
    expect(parseDeviceSpecs(['sim'], 'dc')).toEqual([{ kind: 'sim', scenario: 'dc', seed: 1 }]);
    expect(parseDeviceSpecs(['sim:mains-120-60', 'sim:dc:1', 'sim', '/dev/ttyACM0', 'auto'], 'mains-230-50')).toEqual([
      { kind: 'sim', scenario: 'mains-120-60', seed: 2 },
      { kind: 'sim', scenario: 'dc', seed: 1 },
      { kind: 'sim', scenario: 'mains-230-50', seed: 3 },
      { kind: 'port', path: '/dev/ttyACM0' },
      { kind: 'auto' },
    ]);
  });

  it.each([
    [['sim:dc:5', 'sim:mains-230-50:5'], /seed 5 is given twice/],
    [['sim:nope'], /scenario 'nope': choose one of/],
    [['sim:dc:0'], /seed must be a whole number from 1/],
    [['sim:dc:1.5'], /seed must be a whole number from 1/],
    [['sim:dc:1:2'], /write sim, sim:SCENARIO or sim:SCENARIO:SEED/],
    [['rtl', 'rtl'], /one RTL twin per serve/],
    [['auto', 'auto'], /give it once/],
  ])('refuses %j', (texts, message) => {
    expect(() => parseDeviceSpecs(texts, 'mains-230-50')).toThrow(UsageError);
    expect(() => parseDeviceSpecs(texts, 'mains-230-50')).toThrow(message);
  });
});
