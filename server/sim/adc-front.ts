// The simulated device's ADC read path, for the bring-up scan (`crabwatt bringup`): the capture point
// ADC.READ_DELAY, and what a read outside the eye gives, as hdl/crabwatt/adc_timing.py describes it:
// one bit early reads LZ1, LZ1, LZ2, D13..D1 (codes halved, no frame error), one bit late reads LZ2,
// D13..D0, 0 (codes doubled; a leading-zero error whenever D13 is 1). The PLL settles at once.

import { ADC_DELAY } from '../protocol/definition.ts';
import { CODE_MID } from '../dsp/model.ts';
import { XorShift32 } from './load.ts';

/** ADC.READ_DELAY after a reset (the gateware's DEFAULT_READ_DELAY, hdl/crabwatt/adc.py). */
export const DEFAULT_READ_DELAY = 43;
const CODE_MASK = 0x3fff;
const D13 = 0x2000;

export interface SimAdcOptions {
  /** Both inputs shorted: mid-scale codes with ±`shortedNoiseLsb` of noise instead of the load's. */
  shorted?: boolean;
  shortedNoiseLsb?: number;
  /** The READ_DELAY settings that read right, inclusive. Default: all of them (an ideal read path). */
  eye?: { first: number; last: number };
  seed?: number;
}

export class SimAdcFront {
  readDelay = DEFAULT_READ_DELAY;
  private readonly shorted: boolean;
  private readonly noiseLsb: number;
  private readonly eye: { first: number; last: number };
  private readonly rng: XorShift32;

  constructor(options: SimAdcOptions = {}) {
    this.shorted = options.shorted ?? false;
    this.noiseLsb = options.shortedNoiseLsb ?? 2;
    this.eye = options.eye ?? { first: 0, last: ADC_DELAY.MAX };
    if (!(this.eye.first >= 0 && this.eye.first <= this.eye.last && this.eye.last <= ADC_DELAY.MAX)) {
      throw new RangeError(`eye must satisfy 0 <= first <= last <= ${ADC_DELAY.MAX}, got ${JSON.stringify(options.eye)}`);
    }
    this.rng = new XorShift32((options.seed ?? 1) ^ 0xadc);
  }

  /** Rewrites the block's codes as the read path delivers them; returns the leading-zero errors. */
  apply(cv: Uint16Array, ci: Uint16Array, count: number): number {
    if (this.shorted) {
      const span = 2 * this.noiseLsb + 1;
      for (let n = 0; n < count; n++) {
        cv[n] = CODE_MID - this.noiseLsb + (this.rng.nextU32() % span);
        ci[n] = CODE_MID - this.noiseLsb + (this.rng.nextU32() % span);
      }
    }
    if (this.readDelay < this.eye.first) {
      for (let n = 0; n < count; n++) {
        cv[n] = cv[n]! >> 1;
        ci[n] = ci[n]! >> 1;
      }
      return 0;
    }
    let errors = 0;
    if (this.readDelay > this.eye.last) {
      for (let n = 0; n < count; n++) {
        if ((cv[n]! | ci[n]!) & D13) errors++;
        cv[n] = (cv[n]! << 1) & CODE_MASK;
        ci[n] = (ci[n]! << 1) & CODE_MASK;
      }
    }
    return errors;
  }
}
