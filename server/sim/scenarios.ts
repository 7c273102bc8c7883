// The simulated device's scenarios: the supply (nominal voltage and frequency, harmonics, source
// impedance, events) and the appliances on it, from which sim/load.ts synthesises the samples.

import { MAINS_EVENTS, type SupplyEventSpec } from './supply-events.ts';

export type ScenarioName = 'mains-230-50' | 'mains-120-60' | 'dc';
export const SCENARIOS: readonly ScenarioName[] = ['mains-230-50', 'mains-120-60', 'dc'];

/**
 * How an appliance draws current, as a function of the supply's phase.
 * - resistive: current proportional to voltage (same harmonics, in phase);
 * - motor: lagging fundamental (power factor `pf`) with a little 5th harmonic, inrush at switch-on;
 * - smps: a capacitor-input rectifier: current pulses just before the voltage peaks;
 * - capacitive: a small leading reactive current (EMI filter capacitors); `powerW` is ignored and
 *   `currentA` sets its RMS;
 * - dimmer: a leading-edge phase-cut (triac) dimmer on a resistive lamp, firing 90° into each half
 *   cycle: odd harmonics of tens of percent of its fundamental.
 * For `dc`, every kind draws a constant current `currentA` (a motor with inrush; smps with a ripple
 * current at the supply's ripple frequency).
 */
export type ApplianceKind = 'resistive' | 'motor' | 'smps' | 'capacitive' | 'dimmer';

export interface ApplianceSpec {
  readonly name: string;
  readonly kind: ApplianceKind;
  /** Active power at nominal voltage, W (mains). */
  readonly powerW: number;
  /** RMS (mains capacitive) or DC current (dc scenario), A. */
  readonly currentA: number;
  /** Displacement power factor of a motor (lagging). */
  readonly pf: number;
  /** Peak of the switch-on current relative to steady state (1 = none), and its decay time. */
  readonly inrushFactor: number;
  readonly inrushTauS: number;
  /** Mean on and off times of the seeded on/off schedule; meanOffS = 0 means always on. */
  readonly meanOnS: number;
  readonly meanOffS: number;
}

export interface ScenarioSpec {
  readonly name: ScenarioName;
  readonly kind: 'mains' | 'dc';
  /** Mains: nominal RMS voltage. DC: nominal voltage. */
  readonly vNominal: number;
  /** Mains: line frequency. DC: ripple frequency (a rectifier-fed supply ripples at 2× mains). */
  readonly fNominalHz: number;
  /** Analog front end: ±vFullScaleV and ±iFullScaleA map onto the ADC's full code range. */
  readonly vFullScaleV: number;
  readonly iFullScaleA: number;
  /** Voltage harmonics (mains) as [order, fraction of fundamental, phase rad]. */
  readonly vHarmonics: readonly (readonly [number, number, number])[];
  /** DC: peak ripple as a fraction of vNominal. */
  readonly vRippleFraction: number;
  /** Source impedance (resistive part): the supply sags by this many ohms × the load current. */
  readonly sourceOhms: number;
  /** Occasional events on the supply itself (a neighbour's motor start, a recloser's interruption). */
  readonly supplyEvents: readonly SupplyEventSpec[];
  /** Noise at the ADC input, RMS in LSB. */
  readonly vNoiseLsb: number;
  readonly iNoiseLsb: number;
  readonly appliances: readonly ApplianceSpec[];
}

const appliance = (a: Partial<ApplianceSpec> & Pick<ApplianceSpec, 'name' | 'kind'>): ApplianceSpec => ({
  powerW: 0, currentA: 0, pf: 1, inrushFactor: 1, inrushTauS: 0.1, meanOnS: 60, meanOffS: 60, ...a,
});

/** Mains loads of a household branch; the powers are those of the 230 V variant. */
function householdAppliances(powerScale: number): ApplianceSpec[] {
  return [
    appliance({ name: 'heater', kind: 'resistive', powerW: 2000 * powerScale, meanOnS: 40, meanOffS: 60 }),
    appliance({
      name: 'motor', kind: 'motor', powerW: 700 * powerScale, pf: 0.78,
      inrushFactor: 3, inrushTauS: 0.15, meanOnS: 30, meanOffS: 45,
    }),
    appliance({ name: 'smps', kind: 'smps', powerW: 150 * powerScale, meanOnS: 90, meanOffS: 30 }),
    appliance({ name: 'standby', kind: 'resistive', powerW: 12 * powerScale, meanOffS: 0 }),
    appliance({ name: 'emi-filter', kind: 'capacitive', currentA: 0.05, meanOffS: 0 }),
    appliance({ name: 'dimmer', kind: 'dimmer', powerW: 100 * powerScale, meanOnS: 120, meanOffS: 90 }),
  ];
}

export const SCENARIO_SPECS: Readonly<Record<ScenarioName, ScenarioSpec>> = {
  'mains-230-50': {
    name: 'mains-230-50', kind: 'mains', vNominal: 230, fNominalHz: 50,
    vFullScaleV: 400, iFullScaleA: 40,
    // A typical flat-topped distribution voltage: the 5th in anti-phase with the fundamental's peak.
    vHarmonics: [[3, 0.012, 0.3], [5, 0.025, Math.PI], [7, 0.008, 0.5]],
    vRippleFraction: 0, sourceOhms: 0.25, vNoiseLsb: 1.5, iNoiseLsb: 1.2, supplyEvents: MAINS_EVENTS,
    appliances: householdAppliances(1),
  },
  'mains-120-60': {
    name: 'mains-120-60', kind: 'mains', vNominal: 120, fNominalHz: 60,
    vFullScaleV: 200, iFullScaleA: 50,
    vHarmonics: [[3, 0.015, 0.2], [5, 0.02, Math.PI], [7, 0.007, 0.4]],
    vRippleFraction: 0, sourceOhms: 0.1, vNoiseLsb: 1.5, iNoiseLsb: 1.2, supplyEvents: MAINS_EVENTS,
    appliances: householdAppliances(0.75),
  },
  dc: {
    name: 'dc', kind: 'dc', vNominal: 12, fNominalHz: 100,
    vFullScaleV: 20, iFullScaleA: 8,
    vHarmonics: [], vRippleFraction: 0.004, sourceOhms: 0.02, vNoiseLsb: 1.5, iNoiseLsb: 1.2, supplyEvents: [],
    appliances: [
      appliance({ name: 'base', kind: 'resistive', currentA: 0.25, meanOffS: 0 }),
      appliance({ name: 'heater', kind: 'resistive', currentA: 2, meanOnS: 8, meanOffS: 12 }),
      appliance({ name: 'motor', kind: 'motor', currentA: 1.5, inrushFactor: 3, inrushTauS: 0.05, meanOnS: 6, meanOffS: 9 }),
      appliance({ name: 'converter', kind: 'smps', currentA: 1, meanOnS: 15, meanOffS: 10 }),
    ],
  },
};
