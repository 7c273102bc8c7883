// `crabwatt bringup`'s command line: how the inputs are given, and the errors that say what to do.
import { describe, expect, it } from 'vitest';
import { bringupCommand, parseInputs } from '../../server/cli/bringup.ts';
import { UsageError } from '../../server/cli/common.ts';

describe('crabwatt bringup arguments', () => {
  it('takes shorted inputs or a known DC in volts and amperes', () => {
    expect(parseInputs('shorted')).toEqual({ kind: 'shorted' });
    expect(parseInputs('dc:12,0.5')).toEqual({ kind: 'dc', volts: 12, amps: 0.5 });
    expect(parseInputs('dc:-48,-2')).toEqual({ kind: 'dc', volts: -48, amps: -2 });
  });

  it('refuses a missing or unreadable --inputs with what to write instead', () => {
    expect(() => parseInputs(undefined)).toThrow(/--inputs is required: .*`shorted`.*`dc:V,I`/);
    expect(() => parseInputs('open')).toThrow(UsageError);
    expect(() => parseInputs('dc:12')).toThrow(/neither/);
    expect(() => parseInputs('dc:x,1')).toThrow(/two numbers/);
  });

  it('refuses a scan range outside READ_DELAY before opening any device', async () => {
    const io = { out: () => {}, err: () => {} };
    await expect(bringupCommand(['--inputs', 'shorted', '--to', '300'], io)).rejects.toThrow(/--to '300'/);
    await expect(bringupCommand(['--inputs', 'shorted', '--from', '10', '--to', '5'], io)).rejects.toThrow(/above --from/);
  });
});
