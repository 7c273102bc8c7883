// The simulated device's ADC read path (server/sim/adc-front.ts) and its cmd_adc_delay.
import { describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrame, type Frame } from '../../server/protocol/codec.ts';
import { ACK_STATUS, ADC_DELAY } from '../../server/protocol/definition.ts';
import { SimAdcFront } from '../../server/sim/adc-front.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';

describe('SimAdcFront', () => {
  const block = (v: number, i: number) => ({ cv: new Uint16Array([v, v]), ci: new Uint16Array([i, i]) });

  it('reads right inside the eye, halves one bit early and doubles with leading-zero errors one bit late', () => {
    const adc = new SimAdcFront({ eye: { first: 30, last: 50 } });
    let b = block(8192, 1000);
    adc.readDelay = 40;
    expect(adc.apply(b.cv, b.ci, 2)).toBe(0);
    expect([...b.cv, ...b.ci]).toEqual([8192, 8192, 1000, 1000]);
    b = block(8192, 1000);
    adc.readDelay = 29;
    expect(adc.apply(b.cv, b.ci, 2)).toBe(0);
    expect([...b.cv, ...b.ci]).toEqual([4096, 4096, 500, 500]);
    b = block(8192, 1000);
    adc.readDelay = 51;
    expect(adc.apply(b.cv, b.ci, 2)).toBe(2);
    expect([...b.cv, ...b.ci]).toEqual([0, 0, 2000, 2000]);
  });

  it('gives mid-scale codes with the inputs shorted', () => {
    const adc = new SimAdcFront({ shorted: true, shortedNoiseLsb: 2 });
    const cv = new Uint16Array(1000).fill(123);
    const ci = new Uint16Array(1000).fill(456);
    adc.apply(cv, ci, 1000);
    expect(Math.min(...cv, ...ci)).toBeGreaterThanOrEqual(8190);
    expect(Math.max(...cv, ...ci)).toBeLessThanOrEqual(8194);
  });
});

describe('SimulatedDevice cmd_adc_delay', () => {
  it('sets and reports READ_DELAY, SETTLED and the adc_errors counter, and refuses settings past 255', () => {
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    const sim = new SimulatedDevice({ seed: 3, adc: { shorted: true, shortedNoiseLsb: 0, eye: { first: 0, last: 10 } }, output: (bytes) => {
      frames.push(...decoder.push(bytes));
      return true;
    } });
    const ask = (seq: number, readDelay: number) => {
      sim.receive(encodeFrame('cmd_adc_delay', seq, { read_delay: readDelay }));
      sim.advance(1000);
      return frames.find((f): f is Frame<'ack'> => f.name === 'ack' && f.fields.command_seq === seq)!.fields;
    };
    expect(ask(1, ADC_DELAY.KEEP)).toMatchObject({ status: ACK_STATUS.OK, value: 43 | ADC_DELAY.SETTLED_BIT });
    // 43 is past this eye: mid-scale has D13 set, so every sample so far was a leading-zero error.
    const errors = ask(2, 5).value >>> ADC_DELAY.ERRORS_SHIFT;
    expect(errors).toBe(1000);
    expect(ask(3, ADC_DELAY.KEEP).value).toBe(5 | ADC_DELAY.SETTLED_BIT | (1000 << ADC_DELAY.ERRORS_SHIFT));
    expect(ask(4, 256).status).toBe(ACK_STATUS.BAD_ARGS);
    expect(ask(5, ADC_DELAY.KEEP).value & ADC_DELAY.VALUE_MASK).toBe(5);
  });
});
