// The ADC capture point a board was brought up with (`crabwatt bringup` prints it; `serve --adc-read-delay N`),
// set again at every identify. ADC.READ_DELAY is not saved on the board: a reset (watchdog, reboot, power-up)
// returns the gateware's default (43), which suits a wing on the header but not every board's round trip
// (hdl/README.md "Capture point"). So the host, which has to be there to read the measurements anyway,
// puts the chosen point back each time the device announces a new boot.

import type { EventEmitter } from 'node:events';
import type { FrameFields } from '../protocol/codec.ts';
import { ADC_DELAY } from '../protocol/definition.ts';

/** Sends cmd_adc_delay; resolves with the ack's value (ADC_DELAY layout), rejects with the reason. */
export type SendAdcDelay = (readDelay: number) => Promise<number>;

export class AdcDelayKeeper {
  private bootId: number | undefined;

  constructor(
    private readonly ingest: EventEmitter,
    readonly readDelay: number,
    private readonly send: SendAdcDelay,
    private readonly log: (message: string) => void,
  ) {
    if (!Number.isInteger(readDelay) || readDelay < 0 || readDelay > ADC_DELAY.MAX) {
      throw new RangeError(`ADC read delay ${readDelay}: a whole number from 0 to ${ADC_DELAY.MAX}`);
    }
    ingest.on('identify', this.onIdentify);
  }

  close(): void {
    this.ingest.off('identify', this.onIdentify);
  }

  private readonly onIdentify = ({ frame }: { frame: FrameFields<'identify'> }): void => {
    // Once per boot: an identify asked for by a host of the same boot changes nothing on the board.
    if (frame.boot_id === this.bootId) return;
    this.bootId = frame.boot_id;
    this.send(this.readDelay).then(
      (value) => {
        const settled = (value & ADC_DELAY.SETTLED_BIT) !== 0;
        this.log(`adc: capture point READ_DELAY ${value & ADC_DELAY.VALUE_MASK} set for boot ${frame.boot_id}` +
          (settled ? '' : ' (the read clock is still moving there)'));
      },
      (err: Error) => {
        // Forget the boot so that the next identify tries again.
        this.bootId = undefined;
        this.log(`adc: could not set the capture point READ_DELAY ${this.readDelay}: ${err.message}; codes may be ` +
          'wrong until it is set (run `crabwatt bringup`)');
      },
    );
  };
}
