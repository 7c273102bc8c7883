// What the Linux guest's usbmon saw of the USB twin (server/twin/linux-usb.ts), as a pcap file Wireshark
// opens. The guest copies its binary usbmon device (/dev/usbmon0, every bus) to a virtio port; each read()
// of it gives one event as Linux's 48-byte `struct usbmon_packet` header (Documentation/usb/usbmon.rst,
// "binary API") followed by the `len_cap` bytes of data it captured. pcap's LINKTYPE_USB_LINUX (189) is that
// same header, so each event becomes one record unchanged. x86 guests: the header is little-endian.

export const USBMON_HEADER_BYTES = 48;
export const LINKTYPE_USB_LINUX = 189;

const XFER_TYPES = ['iso', 'interrupt', 'control', 'bulk'] as const;

export interface UsbmonEvent {
  /** 'S' submission, 'C' completion, 'E' error */
  type: string;
  xfer: (typeof XFER_TYPES)[number];
  /** endpoint address: number, | 0x80 for IN */
  endpoint: number;
  device: number;
  bus: number;
  /** the SETUP packet of a control submission, else null */
  setup: Buffer | null;
  tsSec: number;
  tsUsec: number;
  /** URB status (0, or a negative errno) */
  status: number;
  /** bytes the URB carries, and those captured (the data below) */
  length: number;
  data: Buffer;
  /** the event as read: header then data */
  raw: Buffer;
}

export class UsbmonFormatError extends Error {
  override name = 'UsbmonFormatError';
}

/** Splits the byte stream of the guest's capture into events; a chunk may end anywhere. */
export class UsbmonStream {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): UsbmonEvent[] {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const events: UsbmonEvent[] = [];
    let at = 0;
    while (this.buffer.length - at >= USBMON_HEADER_BYTES) {
      const h = this.buffer.subarray(at, at + USBMON_HEADER_BYTES);
      const captured = h.readUInt32LE(36);
      if (captured > h.readUInt32LE(32)) {
        throw new UsbmonFormatError(`usbmon event at byte ${at}: captured ${captured} of a ${h.readUInt32LE(32)}-byte URB (not a usbmon header)`);
      }
      if (this.buffer.length - at < USBMON_HEADER_BYTES + captured) break;
      events.push(parseEvent(this.buffer.subarray(at, at + USBMON_HEADER_BYTES + captured)));
      at += USBMON_HEADER_BYTES + captured;
    }
    this.buffer = Buffer.from(this.buffer.subarray(at));
    return events;
  }

  /** Bytes of an event not complete yet (non-zero at the end: the capture was cut). */
  get pendingBytes(): number {
    return this.buffer.length;
  }
}

function parseEvent(raw: Buffer): UsbmonEvent {
  const type = String.fromCharCode(raw[8]!);
  const xfer = XFER_TYPES[raw[9]!];
  if (!'SCE'.includes(type) || xfer === undefined) {
    throw new UsbmonFormatError(`usbmon event of type ${raw[8]} transfer ${raw[9]}: not a usbmon header`);
  }
  return {
    type,
    xfer,
    endpoint: raw[10]!,
    device: raw[11]!,
    bus: raw.readUInt16LE(12),
    setup: raw[14] === 0 ? Buffer.from(raw.subarray(40, 48)) : null,
    tsSec: Number(raw.readBigInt64LE(16)),
    tsUsec: raw.readInt32LE(24),
    status: raw.readInt32LE(28),
    length: raw.readUInt32LE(32),
    data: raw.subarray(USBMON_HEADER_BYTES),
    raw,
  };
}

/** A pcap file (microsecond timestamps) of the events, one record each. */
export function pcapFile(events: readonly UsbmonEvent[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(0x40000, 16);          // snaplen: more than any event here
  header.writeUInt32LE(LINKTYPE_USB_LINUX, 20);
  const parts: Buffer[] = [header];
  for (const e of events) {
    const record = Buffer.alloc(16);
    record.writeUInt32LE(e.tsSec >>> 0, 0);
    record.writeUInt32LE(e.tsUsec, 4);
    record.writeUInt32LE(e.raw.length, 8);
    record.writeUInt32LE(USBMON_HEADER_BYTES + e.length, 12);
    parts.push(record, e.raw);
  }
  return Buffer.concat(parts);
}

/** Reads a pcap file written by pcapFile back into events (the test reads its own artifact). */
export function readPcap(file: Buffer): UsbmonEvent[] {
  if (file.length < 24 || file.readUInt32LE(0) !== 0xa1b2c3d4 || file.readUInt32LE(20) !== LINKTYPE_USB_LINUX) {
    throw new UsbmonFormatError('not a little-endian pcap of LINKTYPE_USB_LINUX');
  }
  const events: UsbmonEvent[] = [];
  for (let at = 24; at < file.length;) {
    const length = file.readUInt32LE(at + 8);
    events.push(parseEvent(file.subarray(at + 16, at + 16 + length)));
    at += 16 + length;
  }
  return events;
}
