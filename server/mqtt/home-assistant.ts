// Publishes each board to Home Assistant: discovery configs (retained) when the board identifies and whenever
// HA announces itself (its birth message on homeassistant/status), the board's availability from its link,
// and its state at most once per interval (retained, so HA shows the last value after its own restart).

import type { MqttClient } from 'mqtt';
import type { FrameFields } from '../protocol/codec.ts';
import type { Ingest, LinkEvent, LiveWindow } from '../ingest/ingest.ts';
import type { BookedGap } from '../store/store.ts';
import {
  DISCOVERY_PREFIX, deviceTopics, discoveryConfigs, PAYLOAD_OFFLINE, PAYLOAD_ONLINE, statePayload,
} from './ha-discovery.ts';

/** HA publishes `online` here when it starts: every integration then announces its devices again. */
export const HA_STATUS_TOPIC = `${DISCOVERY_PREFIX}/status`;

interface Board {
  identify: FrameFields<'identify'> | undefined;
  online: boolean;
  latest: LiveWindow | undefined;
  /** The device's counter: the latest window's, or a gap's booked after it. */
  totalNwh: bigint;
  /** The latest state was published already. */
  sent: boolean;
}

export class HomeAssistantPublisher {
  private readonly boards = new Map<Ingest, Board>();
  private readonly timer: NodeJS.Timeout;
  /** States published (tests, figures). */
  statesPublished = 0;

  constructor(
    private readonly client: MqttClient,
    private readonly hostId: string,
    intervalMs: number,
    private readonly log: (message: string) => void,
  ) {
    this.timer = setInterval(() => this.publishStates(), intervalMs);
    this.timer.unref();
    client.on('message', (topic, payload) => {
      if (topic === HA_STATUS_TOPIC && payload.toString() === PAYLOAD_ONLINE) this.announceAll();
    });
  }

  /** Called on every (re)connection: subscriptions and retained messages are set again. */
  onConnect(): void {
    this.client.subscribe(HA_STATUS_TOPIC, { qos: 1 }, (err) => {
      if (err) this.log(`mqtt: cannot subscribe to ${HA_STATUS_TOPIC}: ${err.message}`);
    });
    this.announceAll();
  }

  attach(ingest: Ingest): void {
    const board: Board = { identify: undefined, online: false, latest: undefined, totalNwh: 0n, sent: true };
    this.boards.set(ingest, board);
    ingest.on('identify', (e: { frame: FrameFields<'identify'> }) => {
      board.identify = e.frame;
      board.online = true;
      this.announce(board);
    });
    ingest.on('link', (e: LinkEvent) => {
      const online = e.state === 'connected';
      if (online === board.online) return;
      board.online = online;
      if (board.identify) this.publishAvailability(board);
    });
    ingest.on('window', (w: LiveWindow) => {
      board.latest = w;
      board.totalNwh = w.total_nwh;
      board.sent = false;
    });
    ingest.on('gap', (g: BookedGap) => {
      board.totalNwh = g.total_nwh;
      board.sent = false;
    });
  }

  /** Stops the timer after publishing the boards' latest states, so HA keeps the final counter. */
  close(): void {
    clearInterval(this.timer);
    this.publishStates();
  }

  private announceAll(): void {
    for (const board of this.boards.values()) if (board.identify) this.announce(board);
  }

  private announce(board: Board): void {
    for (const [topic, payload] of discoveryConfigs(board.identify!, this.hostId)) this.publish(topic, payload);
    this.publishAvailability(board);
    if (board.latest) this.publish(deviceTopics(hexOf(board)).state, statePayload(board.latest, board.totalNwh));
  }

  private publishAvailability(board: Board): void {
    this.publish(deviceTopics(hexOf(board)).availability, board.online ? PAYLOAD_ONLINE : PAYLOAD_OFFLINE);
  }

  private publishStates(): void {
    if (!this.client.connected) return;
    for (const board of this.boards.values()) {
      if (board.sent || !board.latest || !board.identify) continue;
      board.sent = true;
      this.statesPublished++;
      this.publish(deviceTopics(hexOf(board)).state, statePayload(board.latest, board.totalNwh));
    }
  }

  private publish(topic: string, payload: string): void {
    // Retained and QoS 1: what HA must know survives a restart of HA or of the broker's subscribers.
    this.client.publish(topic, payload, { qos: 1, retain: true }, (err) => {
      if (err) this.log(`mqtt: publish ${topic}: ${err.message}`);
    });
  }
}

function hexOf(board: Board): string {
  return board.identify!.device_id.toString(16).padStart(16, '0');
}
