// serve's MQTT flags: parsed and checked (files read, URL checked) before anything opens, like --token-file.

import { hostname } from 'node:os';
import { parseNumber, str, UsageError, type ArgValues } from '../cli/common.ts';
import { MQTT_PASSWORD_ENV, MQTT_USERNAME_ENV, MqttConfigError, resolveBroker, type Broker } from './connection.ts';
import { topicId } from './ha-discovery.ts';

export const MQTT_OPTIONS = {
  mqtt: { type: 'string' },
  collect: { type: 'string' },
  'mqtt-ca': { type: 'string' },
  'mqtt-cert': { type: 'string' },
  'mqtt-key': { type: 'string' },
  'mqtt-credentials': { type: 'string' },
  'mqtt-id': { type: 'string' },
  'mqtt-interval': { type: 'string' },
} as const;

export const MQTT_HELP = `  --mqtt mqtt://HOST:PORT  publish to an MQTT broker (mqtts:// for TLS): Home Assistant discovery and state
             under homeassistant/ and crabwatt/, and every window and energy snapshot for a fleet collector
             (QoS 1; what no collector has acknowledged waits in the database and is sent again after an outage)
  --collect mqtt://HOST:PORT  also store the windows every publishing host sends through that broker (docs/fleet.md)
  --mqtt-credentials FILE  USER:PASSWORD for the broker, in a file only you may read (chmod 600); or set
             ${MQTT_USERNAME_ENV} and ${MQTT_PASSWORD_ENV}
  --mqtt-ca FILE, --mqtt-cert FILE, --mqtt-key FILE  TLS: the broker's CA, this client's certificate and key
  --mqtt-id NAME  this host in topics and client ids (default: the machine's name); unique per serve
  --mqtt-interval S  least seconds between two Home Assistant states of a board (default 5)
`;

export interface MqttFlags {
  publish: Broker | undefined;
  collect: Broker | undefined;
  hostId: string;
  stateIntervalMs: number;
  warnings: string[];
}

export function parseMqttFlags(values: ArgValues, env: NodeJS.ProcessEnv): MqttFlags {
  const tls = { ca: str(values, 'mqtt-ca'), cert: str(values, 'mqtt-cert'), key: str(values, 'mqtt-key'), credentials: str(values, 'mqtt-credentials') };
  const url = str(values, 'mqtt');
  const collectUrl = str(values, 'collect');
  if (url === undefined && collectUrl === undefined) {
    const given = Object.keys(MQTT_OPTIONS).find((k) => k !== 'mqtt' && k !== 'collect' && values[k] !== undefined);
    if (given) throw new UsageError(`--${given} needs --mqtt URL or --collect URL`);
  }
  const stateIntervalMs =
    1000 * parseNumber('mqtt-interval', str(values, 'mqtt-interval'), 5, (n) => n >= 0.1 && n <= 3600, 'seconds from 0.1 to 3600');
  try {
    const publish = url === undefined ? undefined : resolveBroker({ url, ...tls }, env, '--mqtt');
    const collect = collectUrl === undefined ? undefined : resolveBroker({ url: collectUrl, ...tls }, env, '--collect');
    return {
      publish,
      collect,
      hostId: topicId(str(values, 'mqtt-id') ?? hostname()),
      stateIntervalMs,
      warnings: [...new Set([...(publish?.warnings ?? []), ...(collect?.warnings ?? [])])],
    };
  } catch (err) {
    if (err instanceof MqttConfigError) throw new UsageError(err.message);
    throw err;
  }
}
