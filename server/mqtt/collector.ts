// `serve --collect`: stores every device every host publishes through the broker, in this serve's database.
//
// Each device's messages go through an Ingest of its own, exactly as frames from a local link do, with the
// host's clock at each frame and the host's scale, so the collector books the host's ledger to the nWh. A
// message is applied only in sequence: an old one (sent again) is dropped, one after a hole waits for the host
// to send the hole again (it does, for everything not acknowledged). The position in each host's stream is
// written in the store's flush transaction (FlushParticipant), and only then acknowledged (retained), so a
// collector killed at any point has on disk exactly what it acknowledged: the hosts send the rest again.

import mqtt, { type MqttClient } from 'mqtt';
import { Ingest } from '../ingest/ingest.ts';
import type { FlushParticipant, Store } from '../store/store.ts';
import type { Broker } from './connection.ts';
import { ackTopic, decodeMessage, FleetFormatError, FRAMES_TOPIC, topicDevice, type FleetMessage } from './fleet-format.ts';

interface Remote {
  hex: string;
  ingest: Ingest | undefined;
  stream: number;
  last: number;
  /** The host clock of the frame being booked (the ingest's clock). */
  hostMs: number;
  dirty: boolean;
  written: boolean;
}

export interface CollectorCounters {
  messages: number;
  applied: number;
  duplicates: number;
  /** Messages that came after a hole and wait for the host to resend it. */
  early: number;
  /** Messages lost for good: the host dropped them from its outbox unacknowledged. */
  lost: number;
  malformed: number;
}

export class Collector implements FlushParticipant {
  readonly counters: CollectorCounters = { messages: 0, applied: 0, duplicates: 0, early: 0, lost: 0, malformed: 0 };
  readonly client: MqttClient;
  private readonly remotes = new Map<string, Remote>();
  private readonly stmts;

  constructor(
    private readonly store: Store,
    broker: Broker,
    clientId: string,
    private readonly log: (message: string) => void,
  ) {
    store.db.exec('CREATE TABLE IF NOT EXISTS mqtt_collected (device TEXT PRIMARY KEY, stream INTEGER NOT NULL, seq INTEGER NOT NULL)');
    this.stmts = {
      save: store.db.prepare('INSERT OR REPLACE INTO mqtt_collected (device, stream, seq) VALUES (?, ?, ?)'),
    };
    for (const row of store.db.prepare('SELECT device, stream, seq FROM mqtt_collected').all() as { device: string; stream: number; seq: number }[]) {
      this.remotes.set(row.device, { hex: row.device, ingest: undefined, stream: row.stream, last: row.seq, hostMs: 0, dirty: false, written: false });
    }
    store.addFlushParticipant(this);
    // A persistent session: the broker keeps what arrives for this collector while it is away.
    this.client = mqtt.connect({ ...broker.options, clientId, clean: false, reconnectPeriod: 1000 });
    let down = false;
    this.client.on('connect', () => {
      if (down) log(`mqtt: collector connected to ${broker.url} again`);
      down = false;
      this.client.subscribe(FRAMES_TOPIC, { qos: 1 }, (err) => {
        if (err) log(`mqtt: cannot subscribe to ${FRAMES_TOPIC}: ${err.message}`);
      });
      // An acknowledgement published while the broker was away is published now.
      for (const r of this.remotes.values()) if (!r.dirty) this.acknowledge(r);
    });
    this.client.on('offline', () => {
      if (!down) log(`mqtt: collector lost ${broker.url} (retrying every second)`);
      down = true;
    });
    this.client.on('error', (err) => {
      if (!down) log(`mqtt: collector: ${broker.url}: ${err.message} (retrying every second)`);
      down = true;
    });
    this.client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  /** The devices collected so far and the last message booked of each. */
  positions(): { device: string; stream: number; seq: number }[] {
    return [...this.remotes.values()].map((r) => ({ device: r.hex, stream: r.stream, seq: r.last }));
  }

  get pending(): boolean {
    for (const r of this.remotes.values()) if (r.dirty) return true;
    return false;
  }

  write(): void {
    for (const r of this.remotes.values()) {
      r.written = r.dirty;
      if (r.dirty) this.stmts.save.run(r.hex, r.stream, r.last);
    }
  }

  committed(): void {
    for (const r of this.remotes.values()) {
      if (!r.written) continue;
      r.written = false;
      r.dirty = false;
      this.acknowledge(r);
    }
  }

  /** Tells the host what is on disk here (retained: a host that starts later reads it at once). */
  private acknowledge(r: Remote): void {
    if (this.client.connected) this.client.publish(ackTopic(r.hex), `${r.stream}:${r.last}`, { qos: 1, retain: true });
  }

  async close(): Promise<void> {
    await this.client.endAsync(!this.client.connected);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const hex = topicDevice(topic);
    if (hex === undefined || !topic.endsWith('/frames')) return;
    this.counters.messages++;
    let m: FleetMessage;
    try {
      m = decodeMessage(payload);
    } catch (err) {
      if (!(err instanceof FleetFormatError)) throw err;
      this.counters.malformed++;
      this.log(`mqtt: collector: a message on ${topic} was refused: ${err.message}`);
      return;
    }
    let r = this.remotes.get(hex);
    if (!r) {
      r = { hex, ingest: undefined, stream: m.stream, last: m.first - 1, hostMs: 0, dirty: false, written: false };
      this.remotes.set(hex, r);
    }
    if (r.stream !== m.stream) {
      // Another host database for this device (a new host, or the host's database replaced): a new stream,
      // read from its oldest message.
      this.log(`mqtt: collector: device ${hex} comes from a new host stream (${m.stream}); reading it from message ${m.first}`);
      r.stream = m.stream;
      r.last = m.first - 1;
    }
    if (m.seq <= r.last) {
      // Sent again: the host may have missed the acknowledgement; what is booked and written is acknowledged.
      this.counters.duplicates++;
      if (!r.dirty) this.acknowledge(r);
      return;
    }
    if (m.first > r.last + 1) {
      this.counters.lost += m.first - r.last - 1;
      this.log(`mqtt: collector: device ${hex}: messages ${r.last + 1} to ${m.first - 1} were dropped by the host unacknowledged; the energy they carried is booked as a gap at the device's next snapshot`);
      r.last = m.first - 1;
    }
    if (m.seq > r.last + 1) {
      // Tell the host where this collector stands: it sends the hole again.
      this.counters.early++;
      if (!r.dirty) this.acknowledge(r);
      return;
    }
    this.apply(r, m);
  }

  private apply(r: Remote, m: FleetMessage): void {
    let ingest = r.ingest;
    if (!ingest) {
      ingest = new Ingest({ store: this.store, kind: m.kind, defaultScale: { kv: m.kv, ki: m.ki }, now: () => r.hostMs });
      ingest.on('ingest-error', (err: Error) => this.log(`mqtt: collector: device ${r.hex}: ${err.message}`));
      r.ingest = ingest;
    }
    if (!ingest.deviceRef && m.identify && m.frames[0]?.frame.name !== 'identify') {
      r.hostMs = m.frames[0]?.hostMs ?? 0;
      ingest.handleFrame(m.identify, r.hostMs);
    }
    const ref = ingest.deviceRef;
    if (ref && (ref.kv !== m.kv || ref.ki !== m.ki)) {
      // The host's calibration changed: a new ledger segment here too, from the same point of the stream.
      if (ref.calibration) ingest.setCalibration(ref.calibration, m.kv, m.ki);
      else this.log(`mqtt: collector: device ${r.hex}: its scale changed but no calibration is known; keeping kv = ${ref.kv}, ki = ${ref.ki}`);
    }
    for (const f of m.frames) {
      r.hostMs = f.hostMs;
      ingest.handleFrame(f.frame, f.hostMs);
    }
    r.last = m.seq;
    r.dirty = true;
    this.counters.applied++;
    this.store.requestFlush();
  }
}
