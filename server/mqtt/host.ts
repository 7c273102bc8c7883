// The host's one MQTT connection (`serve --mqtt`): its last will marks the host offline when serve dies,
// its birth message marks it online; Home Assistant discovery and the fleet stream share it.

import mqtt, { type MqttClient } from 'mqtt';
import type { Ingest } from '../ingest/ingest.ts';
import type { Broker } from './connection.ts';
import { hostAvailabilityTopic, PAYLOAD_OFFLINE, PAYLOAD_ONLINE } from './ha-discovery.ts';
import { HomeAssistantPublisher } from './home-assistant.ts';

export interface MqttHostOptions {
  broker: Broker;
  /** Names this host in topics and the client id (topicId'd). */
  hostId: string;
  /** Least time between two state messages of a board. */
  stateIntervalMs: number;
  log: (message: string) => void;
}

export interface MqttHost {
  client: MqttClient;
  homeAssistant: HomeAssistantPublisher;
  attach(ingest: Ingest): void;
  /** Marks the host offline (retained) and disconnects. */
  close(): Promise<void>;
}

export function startMqttHost(options: MqttHostOptions): MqttHost {
  const availability = hostAvailabilityTopic(options.hostId);
  const client = mqtt.connect({
    ...options.broker.options,
    clientId: `crabwatt-${options.hostId}`,
    will: { topic: availability, payload: Buffer.from(PAYLOAD_OFFLINE), qos: 1, retain: true },
    reconnectPeriod: 1000,
  });
  const homeAssistant = new HomeAssistantPublisher(client, options.hostId, options.stateIntervalMs, options.log);
  let down = false;
  client.on('connect', () => {
    if (down) options.log(`mqtt: connected to ${options.broker.url} again`);
    down = false;
    client.publish(availability, PAYLOAD_ONLINE, { qos: 1, retain: true });
    homeAssistant.onConnect();
  });
  client.on('error', (err) => {
    if (!down) options.log(`mqtt: ${options.broker.url}: ${err.message} (retrying every second)`);
    down = true;
  });
  client.on('offline', () => {
    if (!down) options.log(`mqtt: lost ${options.broker.url} (retrying every second)`);
    down = true;
  });
  return {
    client,
    homeAssistant,
    attach: (ingest) => homeAssistant.attach(ingest),
    close: async () => {
      homeAssistant.close();
      if (client.connected) await client.publishAsync(availability, PAYLOAD_OFFLINE, { qos: 1, retain: true }).catch(() => undefined);
      await client.endAsync(!client.connected);
    },
  };
}
