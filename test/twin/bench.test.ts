// The twin bench reads the harness's closing report (hdl/twin/harness.cpp); a change of its wording
// must not silently turn the speed into null or NaN.
import { describe, expect, it } from 'vitest';
import { parseTwinReport } from '../../server/twin/bench.ts';

const REPORT = 'crabwatt-twin: 4000000 cycles (0.85 MHz simulated clock), 2000000 sample pairs, 28672 bytes out, ' +
  '0 bytes in, 4.700 s wall, 4.650 s CPU; clock 0.1064 of real time (0.1075 per CPU second), ' +
  'samples 0.1064 of real time; CPU cycles per sample pair 2 (the board: 12)';

describe('parseTwinReport', () => {
  it('reads the speeds and the cycles per sample pair', () => {
    expect(parseTwinReport(REPORT)).toEqual({
      cycles: 4_000_000, wallSeconds: 4.7, cpuSeconds: 4.65, realTimeFraction: 0.1064, realTimeFractionPerCpu: 0.1075,
      cyclesPerPair: 2, boardCyclesPerPair: 12, report: REPORT,
    });
  });

  it('takes a report without the cycles per pair (an older harness) and rejects other lines', () => {
    const older = REPORT.replace(/; CPU cycles per sample pair.*$/, '');
    expect(parseTwinReport(older)).toMatchObject({ realTimeFraction: 0.1064, cyclesPerPair: null, boardCyclesPerPair: null });
    expect(parseTwinReport('crabwatt-twin: the firmware asked for the bootloader; stopping')).toBeNull();
    expect(parseTwinReport('')).toBeNull();
  });
});
