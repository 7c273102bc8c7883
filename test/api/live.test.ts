import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { LiveHub } from '../../server/api/live.ts';
import { DEVICE, FakeDevices, T0, liveWindow } from './fakes.ts';

/** A socket whose unsent backlog the test controls, like a browser that stopped reading. */
class StuckSocket extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  sent: string[] = [];
  terminated = false;
  send(text: string): void {
    this.sent.push(text);
    this.bufferedAmount += text.length;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.emit('close');
  }
  close(): void {
    this.terminate();
  }
}

describe('LiveHub', () => {
  it('drops messages for a slow client and terminates a stalled one, without stalling the emitter', () => {
    const source = new EventEmitter();
    const hub = new LiveHub(source, new FakeDevices(), { softLimitBytes: 2_000, hardLimitBytes: 20_000, devicesIntervalMs: 60_000 });
    const slow = new StuckSocket();
    const fast = new StuckSocket();
    hub.add(slow as unknown as WebSocket, undefined);
    hub.add(fast as unknown as WebSocket, undefined);
    for (let k = 0; k < 2000; k++) {
      source.emit('window', liveWindow(T0 + k * 200));
      fast.bufferedAmount = 0; // this one keeps up
      if (k === 1500) slow.bufferedAmount = 25_000; // and this one has stopped reading entirely
    }
    expect(fast.sent).toHaveLength(2001); // devices + every window
    expect(fast.terminated).toBe(false);
    // The slow one got what fit under the soft limit, then nothing until the hard limit cut it off.
    expect(slow.sent.length).toBeLessThan(20);
    expect(slow.terminated).toBe(true);
    expect(hub.clientCount).toBe(1);
    expect(hub.stats.dropped).toBeGreaterThan(1000);
    expect(hub.stats.terminated).toBe(1);
    hub.close();
  });

  it('filters by device and forgets closed sockets', () => {
    const source = new EventEmitter();
    const hub = new LiveHub(source, new FakeDevices(), { devicesIntervalMs: 60_000 });
    const other = new StuckSocket();
    const mine = new StuckSocket();
    hub.add(other as unknown as WebSocket, 'someoneelse');
    hub.add(mine as unknown as WebSocket, DEVICE);
    source.emit('window', liveWindow(T0));
    expect(other.sent).toHaveLength(1); // only the device list
    expect(mine.sent).toHaveLength(2);
    mine.emit('close');
    expect(hub.clientCount).toBe(1);
    hub.close();
    expect(source.listenerCount('window')).toBe(0);
  });
});
