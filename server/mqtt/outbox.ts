// The host's side of the fleet stream: the local database is the outbox. Frames the ingest handled are
// numbered per device and written as messages in the store's own flush transaction (FlushParticipant), so the
// outbox holds exactly what the host stored; a message leaves the outbox only when the collector acknowledges
// it (its retained ack says the message is on the collector's disk), not when the broker PUBACKs it: a broker
// that crashes with messages in its queue loses nothing. After a reconnect, and when acknowledgements stop
// coming while messages are out, everything unacknowledged is sent again (the collector drops what it has).

import { randomInt } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { Frame } from '../protocol/codec.ts';
import { encodeFrameBytes } from '../protocol/codec.ts';
import type { Ingest } from '../ingest/ingest.ts';
import type { FlushParticipant, Store } from '../store/store.ts';
import { ACK_TOPIC, encodeBody, encodeMessage, framesTopic, topicDevice, type StampedFrame } from './fleet-format.ts';

/** Messages out and not acknowledged, per device, before the host waits for the collector. */
export const MAX_UNACKED = 256;
/** Frames in one message at most (the count is 16 bits; a flush after a long write failure can hold more). */
const FRAMES_PER_MESSAGE = 4096;
/** No acknowledgement for this long while messages are out: send them again. */
export const RETRANSMIT_MS = 5000;
/** Messages kept for a collector that never acknowledges (about a week of one board): older ones are dropped. */
export const MAX_KEPT = 1_000_000;

const BOOKED = new Set(['identify', 'window', 'energy', 'status']);

interface Stream {
  hex: string;
  ingest: Ingest;
  frames: StampedFrame[];
  identify: Uint8Array | undefined;
  nextSeq: number;
  acked: number;
  /** Highest seq published since the last (re)start of sending. */
  sentUpTo: number;
  /** `acked` at the last retransmit check. */
  ackedAtCheck: number;
  /** Messages written in the current transaction, counted in on commit. */
  writing: number;
}

export class FleetOutbox implements FlushParticipant {
  private readonly streams = new Map<string, Stream>();
  /** This database's stream id (a collector tells a new host database from an old one by it). */
  readonly streamId: number;
  private readonly stmts;
  private readonly timer: NodeJS.Timeout;
  private pumping = false;
  /** A collector acknowledged something in this run (there is one to wait for at shutdown). */
  private collectorSeen = false;
  published = 0;

  constructor(
    private readonly store: Store,
    private readonly client: MqttClient,
    private readonly log: (message: string) => void,
  ) {
    const db = store.db;
    db.exec(`
      CREATE TABLE IF NOT EXISTS mqtt_outbox (
        device TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (device, seq)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS mqtt_outbox_streams (device TEXT PRIMARY KEY, next_seq INTEGER NOT NULL, acked INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS mqtt_outbox_id (id INTEGER NOT NULL);
    `);
    const id = db.prepare('SELECT id FROM mqtt_outbox_id').get() as { id: number } | undefined;
    this.streamId = id?.id ?? randomInt(1, 2 ** 32);
    if (!id) db.prepare('INSERT INTO mqtt_outbox_id (id) VALUES (?)').run(this.streamId);
    this.stmts = {
      insert: db.prepare('INSERT OR REPLACE INTO mqtt_outbox (device, seq, payload) VALUES (?, ?, ?)'),
      stream: db.prepare('INSERT OR REPLACE INTO mqtt_outbox_streams (device, next_seq, acked) VALUES (?, ?, ?)'),
      load: db.prepare('SELECT next_seq, acked FROM mqtt_outbox_streams WHERE device = ?'),
      row: db.prepare('SELECT payload FROM mqtt_outbox WHERE device = ? AND seq = ?'),
      drop: db.prepare('DELETE FROM mqtt_outbox WHERE device = ? AND seq <= ?'),
      ack: db.prepare('UPDATE mqtt_outbox_streams SET acked = ? WHERE device = ?'),
      unacked: db.prepare('SELECT count(*) AS n FROM mqtt_outbox'),
    };
    store.addFlushParticipant(this);
    client.on('message', (topic, payload) => this.onAck(topic, payload.toString()));
    this.timer = setInterval(() => this.retransmitStalled(), RETRANSMIT_MS);
    this.timer.unref();
  }

  /** Messages in the outbox not acknowledged by a collector yet. */
  get unacknowledged(): number {
    return (this.stmts.unacked.get() as { n: number }).n;
  }

  attach(ingest: Ingest): void {
    ingest.on('frame', (frame: Frame) => {
      const hex = ingest.deviceId;
      if (hex === undefined || !BOOKED.has(frame.name)) return;
      const stream = this.stream(hex, ingest);
      const bytes = encodeFrameBytes(frame.name, frame.seq, frame.fields as never);
      if (frame.name === 'identify') stream.identify = bytes;
      stream.frames.push({ hostMs: Date.now(), bytes });
      this.store.requestFlush();
    });
  }

  /** Subscriptions are set again and every unacknowledged message is sent again on each (re)connection. */
  onConnect(): void {
    this.client.subscribe(ACK_TOPIC, { qos: 1 }, (err) => {
      if (err) this.log(`mqtt: cannot subscribe to ${ACK_TOPIC}: ${err.message}`);
    });
    for (const s of this.streams.values()) s.sentUpTo = s.acked;
    this.pump();
  }

  get pending(): boolean {
    for (const s of this.streams.values()) if (s.frames.length > 0) return true;
    return false;
  }

  write(): void {
    for (const s of this.streams.values()) {
      s.writing = 0;
      const ref = s.ingest.deviceRef;
      if (s.frames.length === 0 || !ref) continue;
      for (let k = 0; k < s.frames.length; k += FRAMES_PER_MESSAGE) {
        const body = encodeBody({ kind: s.ingest.kind, kv: ref.kv, ki: ref.ki, identify: s.identify, frames: s.frames.slice(k, k + FRAMES_PER_MESSAGE) });
        this.stmts.insert.run(s.hex, s.nextSeq + s.writing, body);
        s.writing++;
      }
      this.stmts.stream.run(s.hex, s.nextSeq + s.writing, s.acked);
    }
  }

  committed(): void {
    for (const s of this.streams.values()) {
      if (s.writing === 0) continue;
      s.nextSeq += s.writing;
      s.writing = 0;
      s.frames.length = 0;
      if (s.nextSeq - 1 - s.acked > MAX_KEPT) {
        const upTo = s.nextSeq - 1 - MAX_KEPT;
        this.log(`mqtt: no collector acknowledged device ${s.hex}'s messages up to ${upTo}: dropped from the outbox (the collector will mark the gap)`);
        this.acknowledge(s, upTo);
      }
    }
    this.pump();
  }

  /**
   * At shutdown: waits while the collector acknowledges what is out, and stops waiting once everything is
   * acknowledged, the broker is gone, no collector acknowledged anything in this run, or acknowledgements stop
   * coming for `stallMs`. What is left
   * stays in the outbox for the next start.
   */
  async drain(stallMs = 2 * RETRANSMIT_MS): Promise<number> {
    let acked = -1;
    let since = Date.now();
    for (;;) {
      const left = this.unacknowledged;
      if (left === 0 || !this.client.connected || !this.collectorSeen) return left;
      const now = Date.now();
      const total = [...this.streams.values()].reduce((n, s) => n + s.acked, 0);
      if (total !== acked) {
        acked = total;
        since = now;
      } else if (now - since >= stallMs) return left;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  private stream(hex: string, ingest: Ingest): Stream {
    let s = this.streams.get(hex);
    if (s && s.ingest === ingest) return s;
    const row = this.stmts.load.get(hex) as { next_seq: number; acked: number } | undefined;
    s = {
      hex, ingest, frames: s?.frames ?? [], identify: s?.identify, nextSeq: row?.next_seq ?? 1, acked: row?.acked ?? 0,
      sentUpTo: row?.acked ?? 0, ackedAtCheck: row?.acked ?? 0, writing: 0,
    };
    this.streams.set(hex, s);
    return s;
  }

  /** Publishes, in order, what is written and not out yet, up to MAX_UNACKED per device. */
  private pump(): void {
    if (this.pumping || !this.client.connected) return;
    this.pumping = true;
    try {
      for (const s of this.streams.values()) {
        while (s.sentUpTo < s.nextSeq - 1 && s.sentUpTo - s.acked < MAX_UNACKED) {
          const seq = s.sentUpTo + 1;
          const row = this.stmts.row.get(s.hex, seq) as { payload: Buffer } | undefined;
          s.sentUpTo = seq;
          if (!row) continue; // acknowledged meanwhile
          this.client.publish(framesTopic(s.hex), encodeMessage(this.streamId, seq, s.acked + 1, row.payload), { qos: 1 });
          this.published++;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private onAck(topic: string, text: string): void {
    const hex = topicDevice(topic);
    if (hex === undefined || !topic.endsWith('/ack')) return;
    const s = this.streams.get(hex);
    const m = /^(\d+):(\d+)$/.exec(text);
    if (!s || !m || Number(m[1]) !== this.streamId) return;
    this.collectorSeen = true;
    const seq = Math.min(Number(m[2]), s.nextSeq - 1);
    if (seq <= s.acked) return;
    this.acknowledge(s, seq);
    this.pump();
  }

  private acknowledge(s: Stream, seq: number): void {
    try {
      this.stmts.drop.run(s.hex, seq);
      this.stmts.ack.run(seq, s.hex);
    } catch (err) {
      // The rows stay (a full disk): the collector drops the copies it is sent again.
      this.log(`mqtt: could not drop acknowledged messages from the outbox: ${(err as Error).message}`);
      return;
    }
    s.acked = seq;
    if (s.sentUpTo < seq) s.sentUpTo = seq;
  }

  /**
   * Acknowledgements stopped while messages are out (one lost, a collector that restarted): send them again.
   * Not before a collector has shown itself (an acknowledgement, if only of nothing yet): with none, every
   * resend would go to nobody.
   */
  private retransmitStalled(): void {
    if (!this.collectorSeen) return;
    for (const s of this.streams.values()) {
      if (s.sentUpTo > s.acked && s.acked === s.ackedAtCheck) s.sentUpTo = s.acked;
      s.ackedAtCheck = s.acked;
    }
    this.pump();
  }
}
