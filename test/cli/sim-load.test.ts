// `serve --sim-load APPLIANCE=on|off`: the simulated devices' appliances held on or off (a steady load, e.g. to
// calibrate against); a malformed value or an appliance the scenario lacks is refused naming what exists.

import { describe, expect, it } from 'vitest';
import type { Io } from '../../server/cli/common.ts';
import { parseSimLoad, prepareDevices } from '../../server/cli/serve-devices.ts';

const io: Io = { out: () => undefined, err: () => undefined };

describe('serve --sim-load', () => {
  it('reads APPLIANCE=on|off, repeated', () => {
    expect(parseSimLoad([])).toEqual({});
    expect(parseSimLoad(['motor=on', 'heater=off'])).toEqual({ motor: true, heater: false });
    for (const bad of ['motor', 'motor=1', '=on', 'Motor=on']) expect(() => parseSimLoad([bad])).toThrow(/write APPLIANCE=on or APPLIANCE=off/);
  });

  it('refuses an appliance the scenario does not have, naming those it has', async () => {
    const sim = { kind: 'sim', scenario: 'mains-230-50', seed: 1 } as const;
    await expect(prepareDevices([sim], io, 'mains-230-50', 1, { kettle: true })).rejects.toThrow(
      /--sim-load kettle: scenario mains-230-50 has the appliances heater, motor, smps, standby, emi-filter, dimmer/,
    );
    const ok = await prepareDevices([sim], io, 'mains-230-50', 1, { motor: true });
    expect(ok).toHaveLength(1);
    for (const p of ok) p.release();
  });
});
