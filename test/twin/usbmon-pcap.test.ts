// The usbmon stream the Linux guest sends (server/twin/usbmon-pcap.ts): split into events wherever the
// chunks end, written as pcap records and read back unchanged; a stream that is not usbmon is refused.

import { describe, expect, it } from 'vitest';
import { pcapFile, readPcap, USBMON_HEADER_BYTES, UsbmonFormatError, UsbmonStream } from '../../server/twin/usbmon-pcap.ts';

/** One usbmon_packet header (Linux's binary API, little-endian) with its data. */
function event(type: string, xfer: number, endpoint: number, data: Buffer, setup?: Buffer): Buffer {
  const h = Buffer.alloc(USBMON_HEADER_BYTES);
  h.writeBigUInt64LE(0xffff88810badcafen, 0);
  h[8] = type.charCodeAt(0);
  h[9] = xfer;
  h[10] = endpoint;
  h[11] = 2;
  h.writeUInt16LE(1, 12);
  h[14] = setup ? 0 : 0x2d;
  h[15] = data.length ? 0 : 0x3c;
  h.writeBigInt64LE(1700000000n, 16);
  h.writeInt32LE(123456, 24);
  h.writeInt32LE(type === 'C' ? 0 : -115, 28);
  h.writeUInt32LE(data.length + 3, 32);      // the URB is longer than what was captured
  h.writeUInt32LE(data.length, 36);
  setup?.copy(h, 40);
  return Buffer.concat([h, data]);
}

const EVENTS = [
  event('S', 2, 0x80, Buffer.alloc(0), Buffer.from([0x80, 6, 0, 1, 0, 0, 18, 0])),
  event('C', 2, 0x80, Buffer.from('12010002ef020140', 'hex')),
  event('C', 3, 0x84, Buffer.from([1, 2, 3, 0])),
];
const STREAM = Buffer.concat(EVENTS);

describe('the usbmon capture', () => {
  it('splits the stream into the same events wherever the chunks end', () => {
    for (const size of [1, 7, 48, 49, 1000]) {
      const s = new UsbmonStream();
      const got = [];
      for (let at = 0; at < STREAM.length; at += size) got.push(...s.push(STREAM.subarray(at, at + size)));
      expect(got.map((e) => e.raw.toString('hex'))).toEqual(EVENTS.map((e) => e.toString('hex')));
      expect(s.pendingBytes).toBe(0);
      expect(got[0]).toMatchObject({ type: 'S', xfer: 'control', endpoint: 0x80, device: 2, bus: 1, status: -115, length: 3 });
      expect(got[0]!.setup!.toString('hex')).toBe('8006000100001200');
      expect(got[2]).toMatchObject({ type: 'C', xfer: 'bulk', endpoint: 0x84, setup: null });
      expect([...got[2]!.data]).toEqual([1, 2, 3, 0]);
    }
  });

  it('writes a pcap of LINKTYPE_USB_LINUX whose records are the events', () => {
    const file = pcapFile(new UsbmonStream().push(STREAM));
    expect(file.readUInt32LE(20)).toBe(189);
    const back = readPcap(file);
    expect(back.map((e) => e.raw.toString('hex'))).toEqual(EVENTS.map((e) => e.toString('hex')));
    // incl_len is what was captured, orig_len what the URB carried
    expect(file.readUInt32LE(24 + 8)).toBe(USBMON_HEADER_BYTES);
    expect(file.readUInt32LE(24 + 12)).toBe(USBMON_HEADER_BYTES + 3);
  });

  it('refuses bytes that are not usbmon events', () => {
    expect(() => new UsbmonStream().push(Buffer.from('cw done enumerated\n'.repeat(4)))).toThrow(UsbmonFormatError);
    expect(() => readPcap(Buffer.alloc(24))).toThrow(UsbmonFormatError);
  });
});
