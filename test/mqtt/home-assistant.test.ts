// Home Assistant over MQTT: the discovery payloads against HA's documented schema for MQTT sensors (and the
// Energy dashboard's rules for an energy sensor), then a real `crabwatt serve --mqtt` against a real Debian
// mosquitto: retained configs, availability with the last will on kill -9, and the energy state equal to the
// ledger to the nWh.

import Database from 'better-sqlite3';
import { Type, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import mqtt, { type MqttClient } from 'mqtt';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOARD } from '../../server/protocol/definition.ts';
import { discoveryConfigs, SENSORS } from '../../server/mqtt/ha-discovery.ts';
import { nwhToKwhString } from '../../server/store/energy.ts';
import { scratchDir, startServe, until } from '../faults/serve-process.ts';
import { startMosquitto, type Mosquitto } from './mosquitto.ts';

// https://www.home-assistant.io/integrations/sensor.mqtt/ (configuration variables) and
// https://www.home-assistant.io/integrations/mqtt/#discovery-messages: the keys crabwatt uses, typed as
// documented; no other key is allowed, so a misspelt one fails here instead of being ignored by HA.
const Availability = Type.Object(
  { topic: Type.String({ minLength: 1 }), payload_available: Type.Optional(Type.String()), payload_not_available: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
const Device = Type.Object(
  {
    identifiers: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    name: Type.String({ minLength: 1 }),
    manufacturer: Type.String(),
    model: Type.String(),
    sw_version: Type.String(),
    hw_version: Type.String(),
  },
  { additionalProperties: false },
);
const SENSOR_DEVICE_CLASSES = ['energy', 'power', 'voltage', 'current', 'power_factor', 'frequency'] as const;
const MqttSensor = Type.Object(
  {
    name: Type.String(),
    // Needed for an entity that belongs to a device and can be edited in HA.
    unique_id: Type.String({ minLength: 1 }),
    state_topic: Type.String({ minLength: 1 }),
    value_template: Type.String(),
    device_class: Type.Union(SENSOR_DEVICE_CLASSES.map((c) => Type.Literal(c))),
    state_class: Type.Union([Type.Literal('measurement'), Type.Literal('total'), Type.Literal('total_increasing')]),
    unit_of_measurement: Type.Optional(Type.String()),
    suggested_display_precision: Type.Integer({ minimum: 0 }),
    // "Must not be used together with availability_topic".
    availability: Type.Array(Availability, { minItems: 1 }),
    availability_mode: Type.Union([Type.Literal('all'), Type.Literal('any'), Type.Literal('latest')]),
    payload_available: Type.String(),
    payload_not_available: Type.String(),
    device: Device,
  },
  { additionalProperties: false },
);

// https://www.home-assistant.io/integrations/sensor/#device-class: the units HA accepts per device class.
const UNITS: Record<(typeof SENSOR_DEVICE_CLASSES)[number], readonly (string | undefined)[]> = {
  energy: ['Wh', 'kWh', 'MWh', 'GWh', 'TWh', 'mWh', 'MJ', 'GJ', 'cal', 'kcal', 'Mcal', 'Gcal'],
  power: ['mW', 'W', 'kW', 'MW', 'GW', 'TW'],
  voltage: ['V', 'mV', 'µV', 'kV', 'MV'],
  current: ['A', 'mA'],
  power_factor: [undefined, '%'],
  frequency: ['Hz', 'kHz', 'MHz', 'GHz'],
};

function check(schema: TSchema, value: unknown): string[] {
  return [...Value.Errors(schema, value)].map((e) => `${e.path}: ${e.message}`);
}

const identify = { device_id: 0x0123456789abcdefn, board: BOARD.ORANGECRAB_R0_2, firmware_version: 0x010203, gateware_version: 0x000401 };

describe('Home Assistant discovery payloads', () => {
  const configs = discoveryConfigs(identify, 'host-a').map(([topic, payload]) => ({ topic, config: JSON.parse(payload) as Record<string, unknown> }));

  it('match the documented MQTT sensor schema, one per sensor, under homeassistant/sensor/<node>/<object>/config', () => {
    expect(configs.map((c) => c.config['device_class'])).toEqual([...SENSOR_DEVICE_CLASSES]);
    for (const { topic, config } of configs) {
      expect(check(MqttSensor, config), topic).toEqual([]);
      expect(topic).toMatch(/^homeassistant\/sensor\/[a-zA-Z0-9_-]+\/[a-zA-Z0-9_-]+\/config$/);
      expect(UNITS[config['device_class'] as keyof typeof UNITS]).toContain(config['unit_of_measurement']);
    }
    expect(new Set(configs.map((c) => c.config['unique_id'])).size).toBe(SENSORS.length);
  });

  it('give one HA device per board, with the board, firmware and gateware versions', () => {
    for (const { config } of configs) {
      expect(config['device']).toEqual({
        identifiers: ['crabwatt_0123456789abcdef'], name: 'crabwatt 0123456789abcdef', manufacturer: 'crabwatt',
        model: 'crabwatt orangecrab r0.2', sw_version: '1.2.3', hw_version: '0.4.1',
      });
    }
  });

  it('make an energy sensor the Energy dashboard takes: energy, total_increasing, kWh', () => {
    const energy = configs.find((c) => c.config['device_class'] === 'energy')!.config;
    expect(['total', 'total_increasing']).toContain(energy['state_class']);
    expect(['Wh', 'kWh', 'MWh']).toContain(energy['unit_of_measurement']);
    expect(energy['state_class']).toBe('total_increasing');
  });

  it('write energy as the exact decimal of the nWh ledger', () => {
    expect(nwhToKwhString(123_456_789_012_345_678n)).toBe('123456.789012345678');
    expect(nwhToKwhString(1n)).toBe('0.000000000001');
    expect(nwhToKwhString(-2_500_000_000_000n)).toBe('-2.500000000000');
  });
});

describe('serve --mqtt against a real mosquitto', { timeout: 180_000 }, () => {
  let broker: Mosquitto;
  let watcher: MqttClient;
  const scratch = scratchDir('crabwatt-ha-');
  /** Every message seen, latest per topic, with its retain flag. */
  const seen = new Map<string, { payload: string; retain: boolean }>();

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await watcher?.endAsync(true);
    await broker?.stop();
    scratch.remove();
  });

  async function watch(): Promise<MqttClient> {
    const client = await mqtt.connectAsync(broker.url, { clientId: `watcher-${process.pid}-${Math.random()}`, reconnectPeriod: 200 });
    client.on('message', (topic, payload, packet) => seen.set(topic, { payload: payload.toString(), retain: packet.retain }));
    await client.subscribeAsync(['homeassistant/#', 'crabwatt/+/state', 'crabwatt/+/availability', 'crabwatt/hosts/#'], { qos: 1 });
    return client;
  }

  it('announces the board (retained), publishes states, and leaves the final counter equal to the ledger', async () => {
    const db = join(scratch.dir, 'ha.sqlite');
    const serve = await startServe({ args: ['--device', 'sim', '--db', db, '--mqtt', broker.url, '--mqtt-id', 'ha-host', '--mqtt-interval', '0.2', '--speed', '5'] });
    watcher = await watch();
    const stateTopic = await until(async () => [...seen.keys()].find((t) => /^crabwatt\/[0-9a-f]{16}\/state$/.test(t)));
    const hex = stateTopic.split('/')[1]!;
    await until(async () => (seen.get(`crabwatt/hosts/ha-host/availability`)?.payload === 'online' ? true : undefined));
    expect(seen.get(`crabwatt/${hex}/availability`)?.payload).toBe('online');
    expect(await serve.stop()).toBe(0);
    await until(async () => (seen.get(`crabwatt/hosts/ha-host/availability`)?.payload === 'offline' ? true : undefined));

    // A subscriber arriving now gets the configs, retained.
    seen.clear();
    await watcher.endAsync();
    watcher = await watch();
    await until(async () => (seen.get(`crabwatt/${hex}/state`) ? true : undefined));
    for (const s of SENSORS) {
      const config = seen.get(`homeassistant/sensor/crabwatt_${hex}/${s.key}/config`);
      expect(config?.retain, s.key).toBe(true);
      expect(check(MqttSensor, JSON.parse(config!.payload))).toEqual([]);
    }
    const reader = new Database(db, { readonly: true });
    const row = reader.prepare('SELECT total_nwh FROM devices WHERE device_id = ?').safeIntegers(true).get(hex) as { total_nwh: bigint };
    reader.close();
    expect(row.total_nwh).toBeGreaterThan(0n);
    const state = JSON.parse(seen.get(`crabwatt/${hex}/state`)!.payload) as Record<string, unknown>;
    expect(state['energy']).toBe(nwhToKwhString(row.total_nwh));
    expect(state['voltage']).toBeCloseTo(230, -1);
    expect(state['frequency']).toBeCloseTo(50, 0);
  });

  it('marks the host offline through its last will when serve is killed (-9)', async () => {
    const serve = await startServe({ args: ['--device', 'sim', '--db', join(scratch.dir, 'lwt.sqlite'), '--mqtt', broker.url, '--mqtt-id', 'lwt-host'] });
    await until(async () => (seen.get('crabwatt/hosts/lwt-host/availability')?.payload === 'online' ? true : undefined));
    await serve.kill9();
    await until(async () => (seen.get('crabwatt/hosts/lwt-host/availability')?.payload === 'offline' ? true : undefined));
  });
});
