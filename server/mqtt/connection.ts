// How serve reaches an MQTT broker: the URL, TLS files and credentials of `--mqtt`/`--collect`, checked before
// anything opens, and turned into MQTT.js client options.
//
// Credentials never go on the command line (every user of the machine reads it with ps): they come from a file
// only its owner may read (`user:password`, as --token-file) or from the environment.

import { readFileSync, statSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';

export const MQTT_USERNAME_ENV = 'CRABWATT_MQTT_USERNAME';
export const MQTT_PASSWORD_ENV = 'CRABWATT_MQTT_PASSWORD';

/** A broker setting that cannot work; the message says what to give instead. */
export class MqttConfigError extends Error {
  override readonly name = 'MqttConfigError';
}

export interface BrokerFlags {
  url: string;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  credentials?: string | undefined;
}

export interface Broker {
  /** The URL without any user or password, safe to print. */
  url: string;
  options: IClientOptions;
  warnings: string[];
}

function readFile(flag: string, path: string, secret: boolean, warnings: string[]): Buffer {
  let mode: number;
  let data: Buffer;
  try {
    mode = statSync(path).mode;
    data = readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a folder' : e.message;
    throw new MqttConfigError(`${flag} ${path}: ${why}`);
  }
  if (secret && mode & 0o004) {
    throw new MqttConfigError(`${flag} ${path} can be read by every user of this machine: \`chmod 600 ${path}\` (or 640 for a group)`);
  }
  if (secret && mode & 0o040) warnings.push(`${flag} ${path} can be read by its group; \`chmod 600 ${path}\` keeps it to its owner`);
  return data;
}

/** `--mqtt`/`--collect` and their companions → client options; throws MqttConfigError for what cannot work. */
export function resolveBroker(flags: BrokerFlags, env: NodeJS.ProcessEnv, flagName = '--mqtt'): Broker {
  let url: URL;
  try {
    url = new URL(flags.url);
  } catch {
    throw new MqttConfigError(`${flagName} '${flags.url}': give mqtt://HOST:PORT or mqtts://HOST:PORT`);
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') {
    throw new MqttConfigError(`${flagName} '${flags.url}': the scheme must be mqtt:// or mqtts:// (TLS)`);
  }
  if (url.username || url.password) {
    throw new MqttConfigError(`${flagName}: no user or password in the URL (ps shows it to everyone): use --mqtt-credentials FILE or ${MQTT_USERNAME_ENV}/${MQTT_PASSWORD_ENV}`);
  }
  if (!url.hostname) throw new MqttConfigError(`${flagName} '${flags.url}': the host is missing`);
  const tls = url.protocol === 'mqtts:';
  if (!tls && (flags.ca || flags.cert || flags.key)) {
    throw new MqttConfigError(`--mqtt-ca/--mqtt-cert/--mqtt-key need an mqtts:// URL, not ${url.protocol}//`);
  }
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new MqttConfigError('a client certificate needs both --mqtt-cert FILE and --mqtt-key FILE');
  }
  const warnings: string[] = [];
  const options: IClientOptions = {
    protocol: tls ? 'mqtts' : 'mqtt',
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : tls ? 8883 : 1883,
  };
  if (flags.ca) options.ca = readFile('--mqtt-ca', flags.ca, false, warnings);
  if (flags.cert) options.cert = readFile('--mqtt-cert', flags.cert, false, warnings);
  if (flags.key) options.key = readFile('--mqtt-key', flags.key, true, warnings);
  if (flags.credentials !== undefined) {
    const text = readFile('--mqtt-credentials', flags.credentials, true, warnings).toString('utf8').replace(/\r?\n$/, '');
    const colon = text.indexOf(':');
    if (colon <= 0) throw new MqttConfigError(`--mqtt-credentials ${flags.credentials}: write one line USER:PASSWORD`);
    options.username = text.slice(0, colon);
    options.password = text.slice(colon + 1);
  } else if (env[MQTT_USERNAME_ENV] !== undefined) {
    options.username = env[MQTT_USERNAME_ENV];
    if (env[MQTT_PASSWORD_ENV] !== undefined) options.password = env[MQTT_PASSWORD_ENV];
  } else if (env[MQTT_PASSWORD_ENV] !== undefined) {
    throw new MqttConfigError(`${MQTT_PASSWORD_ENV} is set without ${MQTT_USERNAME_ENV}`);
  }
  return { url: `${url.protocol}//${url.host}`, options, warnings };
}
