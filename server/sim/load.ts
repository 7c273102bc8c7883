// A synthetic but physically plausible electrical load, sampled the way the AD7357 wing samples it:
// pairs of raw 14-bit codes (cv, ci) at fs = 4 Msps. It feeds the simulated device; nothing on the
// host's measurement path knows it exists.
//
// Why it is fast (about 150 M pairs/s on one core, a quarter of the simulated device's time; the
// exact DSP model takes the rest):
// - every waveform is one period stored in a small table indexed by a 32-bit phase accumulator, read
//   with linear interpolation (4096 entries: 3e-7 of the amplitude for the fundamental, 1e-5 of the
//   peak for the narrowest shape, the SMPS pulse: far below one LSB either way);
// - the current table is the sum of the active appliances' current shapes, rebuilt only when an
//   appliance switches or an inrush envelope moves, never per sample;
// - slow quantities (frequency drift, voltage wander and sag, inrush decay) are evaluated once per
//   segment of SEGMENT_SAMPLES and applied as a per-segment increment and gain;
// - noise comes from one xorshift32 step per pair; the sum of two uniform bytes gives triangular noise.
//
// Determinism: the output for sample n depends only on (scenario, seed, pins) and n, never on how a
// caller splits its fill() calls, because every slow quantity changes only on segment boundaries
// that are fixed multiples of SEGMENT_SAMPLES from sample 0, and the phase and noise generator
// advance exactly once per sample.

import { SupplyEvents, type SupplyEventSpec } from './supply-events.ts';
import { SCENARIO_SPECS, SCENARIOS, type ApplianceSpec, type ScenarioName, type ScenarioSpec } from './scenarios.ts';

export const SAMPLE_RATE_HZ = 4_000_000;
/** Samples between two updates of the slow quantities (1.024 ms at 4 Msps). */
export const SEGMENT_SAMPLES = 4096;
const ADC_MID_CODE = 8192;
const ADC_MAX_CODE = 16383;
const TABLE_BITS = 12;
const TABLE_SIZE = 1 << TABLE_BITS;
const FRACTION_BITS = 32 - TABLE_BITS;
const FRACTION_SCALE = 1 / (1 << FRACTION_BITS);
const TWO_PI = 2 * Math.PI;
/** Inrush and soft-start envelopes are re-evaluated this often (in segments), not every segment. */
const ENVELOPE_UPDATE_SEGMENTS = 4;

/** xorshift32 (Marsaglia): tiny state, full 2^32−1 period, fast in V8's int32 arithmetic. */
export class XorShift32 {
  /** Public so that a hot loop can keep it in a local variable and store it back. */
  state: number;
  constructor(seed: number) {
    // splitmix-style scramble so that nearby seeds give unrelated streams; the state must be non-zero.
    let s = (seed ^ 0x9e3779b9) | 0;
    s = Math.imul(s ^ (s >>> 16), 0x85ebca6b);
    s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35);
    s ^= s >>> 16;
    this.state = s === 0 ? 0x6d2b79f5 : s;
  }
  nextU32(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x;
    return x >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }
}

export interface LoadOptions {
  scenario: ScenarioName;
  seed: number;
  /** Pin appliances on (true) or off (false) by name; the others follow the seeded schedule. */
  pins?: Readonly<Record<string, boolean>>;
  /** The supply events instead of the scenario's (a test that needs one early: SupplyEventSpec.firstS). */
  supplyEvents?: readonly SupplyEventSpec[];
}

/** The on/off history of one appliance: switching times drawn lazily from its own PRNG stream. */
class Schedule {
  private readonly rng: XorShift32;
  private on: boolean;
  /** Time of the last switch (s); the state holds on [lastSwitchS, nextSwitchS). */
  private lastSwitchS: number;
  private nextSwitchS: number;

  constructor(private readonly spec: ApplianceSpec, seed: number, pin: boolean | undefined) {
    this.rng = new XorShift32(seed);
    if (pin !== undefined || spec.meanOffS === 0) {
      this.on = pin ?? true;
      this.lastSwitchS = Number.NEGATIVE_INFINITY;
      this.nextSwitchS = Number.POSITIVE_INFINITY;
      return;
    }
    this.on = this.rng.next() < spec.meanOnS / (spec.meanOnS + spec.meanOffS);
    // An appliance found running at t = 0 has been on for a while: no inrush at the start.
    this.lastSwitchS = Number.NEGATIVE_INFINITY;
    this.nextSwitchS = this.hold() * this.rng.next();
  }

  /** Exponential holding time with a floor, so a thermostat never chatters. */
  private hold(): number {
    const mean = this.on ? this.spec.meanOnS : this.spec.meanOffS;
    return 1 + -Math.log(1 - this.rng.next()) * mean;
  }

  /** State at time tS (time only moves forward) and the seconds since the last switch. */
  advance(tS: number): { on: boolean; sinceSwitchS: number } {
    while (tS >= this.nextSwitchS) {
      this.on = !this.on;
      this.lastSwitchS = this.nextSwitchS;
      this.nextSwitchS = this.lastSwitchS + this.hold();
    }
    return { on: this.on, sinceSwitchS: tS - this.lastSwitchS };
  }
}

/** A slow, seeded wander: the sum of two sinusoids with periods of minutes, in [−1, 1]. */
class Wander {
  private readonly p1: number;
  private readonly p2: number;
  constructor(rng: XorShift32, private readonly period1S: number, private readonly period2S: number) {
    this.p1 = rng.next() * TWO_PI;
    this.p2 = rng.next() * TWO_PI;
  }
  at(tS: number): number {
    return 0.6 * Math.sin(TWO_PI * tS / this.period1S + this.p1) + 0.4 * Math.sin(TWO_PI * tS / this.period2S + this.p2);
  }
}

export interface ApplianceState {
  readonly name: string;
  readonly on: boolean;
}

export class SyntheticLoad {
  readonly spec: ScenarioSpec;
  readonly fs = SAMPLE_RATE_HZ;
  /** Volts and amperes per ADC LSB of the centred code: the host's kv/ki (docs/dsp.md, "What the host derives"). */
  readonly kv: number;
  readonly ki: number;

  /** Index of the next sample fill() produces. */
  private nextIndex = 0;
  private phase = 0; // int32 phase accumulator, one period = 2^32
  private phaseInc = 0;
  private vGain = 1;
  private iGain = 1;
  private readonly noise: XorShift32;
  private readonly vNoiseHalfWidth: number;
  private readonly iNoiseHalfWidth: number;
  /** One period of the voltage at unit gain, in LSB, and of the total current, in LSB (TABLE_SIZE + 1 entries). */
  private readonly vTable = new Float64Array(TABLE_SIZE + 1);
  private readonly iTable = new Float64Array(TABLE_SIZE + 1);
  /** Per appliance: current shape (LSB at full draw, TABLE_SIZE + 1 entries) and schedule. */
  private readonly shapes: Float64Array[];
  private readonly schedules: Schedule[];
  /** Per appliance: the coefficient currently summed into iTable (0 when off). */
  private readonly coefficients: Float64Array;
  private readonly states: boolean[];
  private readonly freqWander: Wander;
  private readonly voltWander: Wander;
  private readonly supplyEvents: SupplyEvents[];
  /** Sample index at which updateSegment last ran (it must run once per segment, whoever calls fill). */
  private updatedAt = -1;

  constructor(options: LoadOptions) {
    const spec = SCENARIO_SPECS[options.scenario];
    if (!spec) {
      throw new Error(`unknown load scenario '${String(options.scenario)}' (expected one of ${SCENARIOS.join(', ')})`);
    }
    if (!Number.isInteger(options.seed)) throw new Error(`load seed must be an integer, got ${options.seed}`);
    const pins = options.pins ?? {};
    for (const name of Object.keys(pins)) {
      if (!spec.appliances.some((a) => a.name === name)) {
        throw new Error(`scenario ${spec.name} has no appliance '${name}' (it has ${spec.appliances.map((a) => a.name).join(', ')})`);
      }
    }
    this.spec = spec;
    this.kv = spec.vFullScaleV / ADC_MID_CODE;
    this.ki = spec.iFullScaleA / ADC_MID_CODE;
    const rng = new XorShift32(options.seed);
    this.noise = new XorShift32(rng.nextU32());
    // Triangular noise on [−h, h] has RMS h/√6.
    this.vNoiseHalfWidth = spec.vNoiseLsb * Math.sqrt(6);
    this.iNoiseHalfWidth = spec.iNoiseLsb * Math.sqrt(6);
    this.freqWander = new Wander(rng, 97, 23.3);
    this.voltWander = new Wander(rng, 311, 41.7);
    this.buildVoltageTable();
    this.shapes = spec.appliances.map((a) => this.buildCurrentShape(a));
    this.schedules = spec.appliances.map((a) => new Schedule(a, rng.nextU32() | 0, pins[a.name]));
    // Drawn after everything else from the seed, so the streams above are those of before the events.
    this.supplyEvents = (options.supplyEvents ?? spec.supplyEvents).map((e) => new SupplyEvents(e, new XorShift32(rng.nextU32() | 0)));
    this.coefficients = new Float64Array(spec.appliances.length);
    this.states = spec.appliances.map(() => false);
    this.updateSegment(0);
  }

  /** Sample index of the next pair fill() writes. */
  get sampleIndex(): number {
    return this.nextIndex;
  }

  /** Which appliances are drawing current at the current sample. */
  appliances(): ApplianceState[] {
    return this.spec.appliances.map((a, k) => ({ name: a.name, on: this.states[k] ?? false }));
  }

  /**
   * Write the next `count` sample pairs as raw 14-bit ADC codes (0 … 16383, mid-scale 8192) into
   * cv[offset …] and ci[offset …].
   */
  fill(cv: Uint16Array, ci: Uint16Array, count: number = cv.length, offset = 0): void {
    if (!Number.isInteger(count) || count < 0 || !Number.isInteger(offset) || offset < 0
      || offset + count > cv.length || offset + count > ci.length) {
      throw new RangeError(`fill(count=${count}, offset=${offset}) does not fit arrays of ${cv.length} and ${ci.length}`);
    }
    let done = 0;
    while (done < count) {
      const intoSegment = this.nextIndex % SEGMENT_SAMPLES;
      if (intoSegment === 0 && this.updatedAt !== this.nextIndex) this.updateSegment(this.nextIndex);
      const n = Math.min(count - done, SEGMENT_SAMPLES - intoSegment);
      this.render(cv, ci, offset + done, n);
      done += n;
      this.nextIndex += n;
    }
  }

  /** The hot loop: n samples with constant increment and gains. Kept free of calls and allocations. */
  private render(cv: Uint16Array, ci: Uint16Array, at: number, n: number): void {
    const vt = this.vTable;
    const it = this.iTable;
    const inc = this.phaseInc;
    const gv = this.vGain;
    const gi = this.iGain;
    // Two uniform bytes sum to 0 … 510; centring and scaling gives triangular noise on [−h, h].
    const vn = this.vNoiseHalfWidth / 255;
    const inoise = this.iNoiseHalfWidth / 255;
    // Module constants copied into locals: V8 does not always fold module-scope bindings in hot loops.
    const shift = FRACTION_BITS;
    const mask = (1 << FRACTION_BITS) - 1;
    const frScale = FRACTION_SCALE;
    const mid = ADC_MID_CODE + 0.5;
    const top = ADC_MAX_CODE;
    let ph = this.phase;
    let x = this.noise.state;
    const end = at + n;
    for (let k = at; k < end; k++) {
      ph = (ph + inc) | 0;
      const idx = ph >>> shift;
      const fr = (ph & mask) * frScale;
      const v0 = vt[idx]!;
      const i0 = it[idx]!;
      // One xorshift32 step per pair: each channel sums two of its four bytes (triangular noise).
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      const nv = ((x & 0xff) + ((x >>> 8) & 0xff) - 255) * vn;
      const ni = (((x >>> 16) & 0xff) + (x >>> 24) - 255) * inoise;
      // Adding mid-scale + 0.5 then truncating rounds to nearest; below the rail the clamp catches it.
      let c = (gv * (v0 + fr * (vt[idx + 1]! - v0)) + nv + mid) | 0;
      let d = (gi * (i0 + fr * (it[idx + 1]! - i0)) + ni + mid) | 0;
      if (c < 0) c = 0; else if (c > top) c = top;
      if (d < 0) d = 0; else if (d > top) d = top;
      cv[k] = c;
      ci[k] = d;
    }
    this.phase = ph;
    this.noise.state = x;
  }

  /** Slow quantities at a segment boundary: frequency, voltage gain, switching, inrush. */
  private updateSegment(index: number): void {
    const spec = this.spec;
    const tS = index / this.fs;
    const fHz = spec.fNominalHz * (1 + (spec.kind === 'mains' ? 0.001 : 0.01) * this.freqWander.at(tS));
    this.phaseInc = Math.round(fHz / this.fs * 4294967296) | 0;

    const envelopeDue = (index / SEGMENT_SAMPLES) % ENVELOPE_UPDATE_SEGMENTS === 0;
    let changed = false;
    let loadA = 0;
    for (let k = 0; k < spec.appliances.length; k++) {
      const a = spec.appliances[k]!;
      const { on, sinceSwitchS } = this.schedules[k]!.advance(tS);
      const switched = on !== this.states[k];
      this.states[k] = on;
      let target = 0;
      if (on) {
        target = 1;
        if (a.inrushFactor > 1 && sinceSwitchS < 8 * a.inrushTauS) {
          target = 1 + (a.inrushFactor - 1) * Math.exp(-sinceSwitchS / a.inrushTauS);
        }
      }
      // Switching takes effect at once; a decaying envelope moves the table only every few segments.
      if (target !== this.coefficients[k] && (switched || envelopeDue || target === 1)) {
        this.coefficients[k] = target;
        changed = true;
      }
      loadA += this.coefficients[k]! * (spec.kind === 'mains' ? a.powerW / spec.vNominal : a.currentA);
    }
    if (changed) this.rebuildCurrentTable();

    const wander = 1 + (spec.kind === 'mains' ? 0.012 : 0.003) * this.voltWander.at(tS);
    const sag = 1 - spec.sourceOhms * loadA / spec.vNominal;
    let supply = 1;
    for (const e of this.supplyEvents) supply = Math.min(supply, e.factorAt(tS));
    this.vGain = wander * sag * supply;
    // Mains loads are (roughly) constant impedance, so their current follows the voltage; the DC
    // loads are modelled as current sinks.
    this.iGain = spec.kind === 'mains' ? this.vGain : 1;
    this.updatedAt = index;
  }

  private rebuildCurrentTable(): void {
    const it = this.iTable;
    it.fill(0);
    for (let k = 0; k < this.shapes.length; k++) {
      const c = this.coefficients[k]!;
      if (c === 0) continue;
      const shape = this.shapes[k]!;
      for (let j = 0; j <= TABLE_SIZE; j++) it[j]! += c * shape[j]!;
    }
  }

  /** Sample j of a table covers phase j / TABLE_SIZE of a period; entry TABLE_SIZE repeats entry 0. */
  private tabulate(fn: (theta: number) => number): Float64Array {
    const t = new Float64Array(TABLE_SIZE + 1);
    for (let j = 0; j < TABLE_SIZE; j++) t[j] = fn(TWO_PI * j / TABLE_SIZE);
    t[TABLE_SIZE] = t[0]!;
    return t;
  }

  private voltageVolts(theta: number): number {
    const spec = this.spec;
    if (spec.kind === 'dc') {
      // Full-wave rectifier ripple: a sawtooth-like |cos| shape, mean-free.
      return spec.vNominal * (1 + spec.vRippleFraction * (Math.abs(Math.cos(theta / 2)) * 2 - 4 / Math.PI) / (2 - 4 / Math.PI));
    }
    let v = Math.sin(theta);
    for (const [order, fraction, phase] of spec.vHarmonics) v += fraction * Math.sin(order * theta + phase);
    return spec.vNominal * Math.SQRT2 * v;
  }

  private buildVoltageTable(): void {
    const t = this.tabulate((theta) => this.voltageVolts(theta) / this.kv);
    this.vTable.set(t);
  }

  /** One appliance's current over a period, in LSB, at nominal voltage and full (non-inrush) draw. */
  private buildCurrentShape(a: ApplianceSpec): Float64Array {
    const spec = this.spec;
    const ki = this.ki;
    if (spec.kind === 'dc') {
      if (a.kind === 'smps') {
        // A converter draws more while its input sits in the ripple's valleys: ±10 % at the ripple rate.
        return this.tabulate((theta) => a.currentA * (1 - 0.1 * Math.cos(theta)) / ki);
      }
      return this.tabulate(() => a.currentA / ki);
    }
    let shape: (theta: number) => number;
    switch (a.kind) {
      case 'resistive':
        shape = (theta) => this.voltageVolts(theta);
        break;
      case 'motor': {
        const phi = Math.acos(a.pf);
        shape = (theta) => Math.sin(theta - phi) + 0.04 * Math.sin(5 * (theta - phi));
        break;
      }
      case 'smps': {
        // Charging pulses of ±27° around a point 12° before each voltage peak (the capacitor
        // reaches the rising voltage before the crest); a raised-cosine pulse shape.
        const centre = Math.PI / 2 - 0.21;
        const halfWidth = 0.47;
        const pulse = (d: number) => (Math.abs(d) < halfWidth ? 0.5 * (1 + Math.cos(Math.PI * d / halfWidth)) : 0);
        shape = (theta) => pulse(theta - centre) - pulse(theta - centre - Math.PI);
        break;
      }
      case 'capacitive':
        shape = (theta) => Math.SQRT2 * a.currentA * Math.cos(theta);
        return this.tabulate((theta) => shape(theta) / ki);
      case 'dimmer':
        // Conducts from the firing angle (90°) to the end of each half cycle.
        shape = (theta) => ((theta % Math.PI) >= Math.PI / 2 ? this.voltageVolts(theta) : 0);
        break;
    }
    // Scale the shape so that its mean power against the nominal voltage is powerW.
    const raw = this.tabulate(shape);
    let meanPower = 0;
    for (let j = 0; j < TABLE_SIZE; j++) meanPower += this.voltageVolts(TWO_PI * j / TABLE_SIZE) * raw[j]!;
    meanPower /= TABLE_SIZE;
    const scale = a.powerW / meanPower / ki;
    for (let j = 0; j <= TABLE_SIZE; j++) raw[j]! *= scale;
    return raw;
  }
}
