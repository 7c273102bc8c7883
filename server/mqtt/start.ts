// serve's one call into MQTT: the host connection (Home Assistant, the fleet stream) and the collector, as
// the flags ask.

import type { Ingest } from '../ingest/ingest.ts';
import type { Store } from '../store/store.ts';
import type { MqttFlags } from './cli.ts';
import { startMqttHost } from './host.ts';

export interface MqttRuntime {
  close(): Promise<void>;
}

export function startMqtt(flags: MqttFlags, store: Store, ingests: readonly Ingest[], log: (message: string) => void): MqttRuntime | undefined {
  if (!flags.publish) return undefined;
  void store;
  const host = startMqttHost({ broker: flags.publish, hostId: flags.hostId, stateIntervalMs: flags.stateIntervalMs, log });
  for (const ingest of ingests) host.attach(ingest);
  return { close: () => host.close() };
}
