// Home Assistant MQTT discovery: what a crabwatt board looks like to HA. Pure functions from the identify
// frame and a live window to topics and payloads; home-assistant.ts publishes them.
//
// One HA device per board (identifiers from device_id), six sensors reading one JSON state topic, and an
// availability list: the host's topic (its MQTT last will says offline when serve dies) and the board's own
// (offline while its link is down); availability_mode `all` needs both online. The energy sensor is what HA's
// Energy dashboard takes: device_class energy, state_class total_increasing, unit kWh, its value the ledger's
// exact nWh counter as a decimal string (12 decimals: 1 nWh), never a rounded float.

import { BOARD } from '../protocol/definition.ts';
import type { FrameFields } from '../protocol/codec.ts';
import { nwhToKwhString } from '../store/energy.ts';
import type { LiveWindow } from '../ingest/ingest.ts';

export const DISCOVERY_PREFIX = 'homeassistant';
export const PAYLOAD_ONLINE = 'online';
export const PAYLOAD_OFFLINE = 'offline';

interface SensorSpec {
  key: string;
  name: string;
  device_class: string;
  state_class: 'measurement' | 'total_increasing';
  unit: string | undefined;
  precision: number;
}

/** The sensors of one board, in the order HA lists them. */
export const SENSORS: readonly SensorSpec[] = [
  { key: 'energy', name: 'Energy', device_class: 'energy', state_class: 'total_increasing', unit: 'kWh', precision: 3 },
  { key: 'power', name: 'Power', device_class: 'power', state_class: 'measurement', unit: 'W', precision: 1 },
  { key: 'voltage', name: 'Voltage', device_class: 'voltage', state_class: 'measurement', unit: 'V', precision: 1 },
  { key: 'current', name: 'Current', device_class: 'current', state_class: 'measurement', unit: 'A', precision: 3 },
  { key: 'power_factor', name: 'Power factor', device_class: 'power_factor', state_class: 'measurement', unit: undefined, precision: 3 },
  { key: 'frequency', name: 'Frequency', device_class: 'frequency', state_class: 'measurement', unit: 'Hz', precision: 3 },
];

/** Topics of the host (one MQTT connection, one last will) and of each board. */
export function hostAvailabilityTopic(hostId: string): string {
  return `crabwatt/hosts/${hostId}/availability`;
}
export function deviceTopics(deviceHex: string): { state: string; availability: string } {
  return { state: `crabwatt/${deviceHex}/state`, availability: `crabwatt/${deviceHex}/availability` };
}
export function configTopic(deviceHex: string, key: string): string {
  return `${DISCOVERY_PREFIX}/sensor/crabwatt_${deviceHex}/${key}/config`;
}

/** MQTT topic levels may not hold `+`, `#` or `/`; HA ids keep to [a-zA-Z0-9_-]. */
export function topicId(text: string): string {
  return text.replace(/[^a-zA-Z0-9_-]/g, '_') || 'host';
}

function version(v: number): string {
  return `${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

function boardName(board: number): string {
  const name = Object.entries(BOARD).find(([, value]) => value === board)?.[0];
  return name ? `crabwatt ${name.toLowerCase().replace(/_/g, ' ').replace(/ r(\d) (\d)$/, ' r$1.$2')}` : `crabwatt board ${board}`;
}

export type Identify = Pick<FrameFields<'identify'>, 'device_id' | 'board' | 'firmware_version' | 'gateware_version'>;

/** The retained config messages announcing one board to HA: [topic, JSON payload]. */
export function discoveryConfigs(identify: Identify, hostId: string): [string, string][] {
  const hex = identify.device_id.toString(16).padStart(16, '0');
  const topics = deviceTopics(hex);
  const device = {
    identifiers: [`crabwatt_${hex}`],
    name: `crabwatt ${hex}`,
    manufacturer: 'crabwatt',
    model: boardName(identify.board),
    sw_version: version(identify.firmware_version),
    hw_version: version(identify.gateware_version),
  };
  return SENSORS.map((s) => {
    const config: Record<string, unknown> = {
      name: s.name,
      unique_id: `crabwatt_${hex}_${s.key}`,
      state_topic: topics.state,
      value_template: `{{ value_json.${s.key} }}`,
      device_class: s.device_class,
      state_class: s.state_class,
      suggested_display_precision: s.precision,
      availability: [{ topic: hostAvailabilityTopic(hostId) }, { topic: topics.availability }],
      availability_mode: 'all',
      payload_available: PAYLOAD_ONLINE,
      payload_not_available: PAYLOAD_OFFLINE,
      device,
    };
    if (s.unit !== undefined) config['unit_of_measurement'] = s.unit;
    return [configTopic(hex, s.key), JSON.stringify(config)];
  });
}

/**
 * The state of a board: window `w` and the device's counter (`totalNwh`, which a gap booked after the window
 * may have moved). Energy is a string, the exact ledger; the measurements are numbers
 * rounded to what the instrument resolves (null, shown as unknown, where the window has none: no zero
 * crossings, no frequency).
 */
export function statePayload(w: LiveWindow, totalNwh: bigint): string {
  const round = (x: number | null, digits: number): number | null => (x === null || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));
  return JSON.stringify({
    energy: nwhToKwhString(totalNwh),
    power: round(w.p, 3),
    voltage: round(w.vrms, 3),
    current: round(w.irms, 5),
    power_factor: round(w.pf, 4),
    frequency: round(w.freq_hz, 4),
  });
}
