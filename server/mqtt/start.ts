// serve's one call into MQTT: the host connection (Home Assistant and the fleet outbox) and the collector, as
// the flags ask.

import type { Ingest } from '../ingest/ingest.ts';
import type { Store } from '../store/store.ts';
import type { MqttFlags } from './cli.ts';
import { Collector } from './collector.ts';
import { startMqttHost, type MqttHost } from './host.ts';
import { FleetOutbox } from './outbox.ts';

export interface MqttRuntime {
  host: MqttHost | undefined;
  outbox: FleetOutbox | undefined;
  collector: Collector | undefined;
  close(): Promise<void>;
}

export function startMqtt(flags: MqttFlags, store: Store, ingests: readonly Ingest[], log: (message: string) => void): MqttRuntime | undefined {
  if (!flags.publish && !flags.collect) return undefined;
  let host: MqttHost | undefined;
  let outbox: FleetOutbox | undefined;
  if (flags.publish) {
    host = startMqttHost({ broker: flags.publish, hostId: flags.hostId, stateIntervalMs: flags.stateIntervalMs, log });
    const o = new FleetOutbox(store, host.client, log);
    host.client.on('connect', () => o.onConnect());
    for (const ingest of ingests) {
      host.attach(ingest);
      o.attach(ingest);
    }
    outbox = o;
  }
  const collector = flags.collect ? new Collector(store, flags.collect, `crabwatt-collector-${flags.hostId}`, log) : undefined;
  return {
    host,
    outbox,
    collector,
    close: async () => {
      if (outbox) {
        // The device has stopped: what it sent last goes into the outbox and, if a collector is there, to it.
        try {
          store.flush();
        } catch (err) {
          log(`mqtt: ${(err as Error).message}`);
        }
        const left = await outbox.drain();
        if (left > 0) log(`mqtt: ${left} message(s) wait in the outbox for a collector; they are sent after the next start`);
        outbox.close();
      }
      await host?.close();
      await collector?.close();
    },
  };
}
