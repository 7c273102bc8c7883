// A pretend device behind serialport's MockBinding, for the link tests: it can emit bytes, see the
// host's commands (decoded), answer them, and be unplugged. The unplug fails the pending read with
// an I/O error, which is what the native binding reports when a USB device vanishes, so the stream
// goes through its real disconnect path.

import { createRequire } from 'node:module';
import type { MockBindingInterface, MockPortBinding } from '@serialport/binding-mock' with { 'resolution-mode': 'require' };
import { FrameDecoder, encodeFrame, type Frame, type FrameFields, type TailRecordInput } from '../../server/protocol/codec.ts';
import type { FrameName } from '../../server/protocol/definition.ts';
import type { SerialBinding } from '../../server/device/link.ts';

// The package's ESM entry ships no types; its CommonJS entry does.
const { MockBinding } = createRequire(import.meta.url)('@serialport/binding-mock') as { MockBinding: MockBindingInterface };
type OpenOptions = Parameters<typeof MockBinding.open>[0];

export class MockDevice {
  /** Ports opened through `binding`, newest last. */
  readonly opened: MockPortBinding[] = [];
  /** Commands the host wrote, decoded. */
  readonly commands: Frame[] = [];
  private readonly unplugs = new Map<MockPortBinding, (error: Error) => void>();
  private readonly hostDecoder = new FrameDecoder();
  private seq = 0;
  /** Answer every command with an ack (status OK) unless set to false. */
  autoAck = true;
  onCommand: ((frame: Frame) => void) | undefined;

  constructor(readonly path: string) {
    MockBinding.reset();
    this.plugIn();
  }

  plugIn(): void {
    MockBinding.createPort(this.path, { echo: false, record: false });
  }

  readonly binding: SerialBinding = {
    list: () => MockBinding.list(),
    open: async (options: OpenOptions) => {
      const port = await MockBinding.open(options);
      const read = port.read.bind(port);
      const write = port.write.bind(port);
      let unplug!: (error: Error) => void;
      const unplugged = new Promise<never>((_, reject) => (unplug = reject));
      unplugged.catch(() => {});
      this.unplugs.set(port, unplug);
      port.read = (buffer: Buffer, offset: number, length: number) => Promise.race([read(buffer, offset, length), unplugged]);
      port.write = async (buffer: Buffer) => {
        await write(buffer);
        this.fromHost(buffer);
      };
      this.opened.push(port);
      return port;
    },
  };

  get port(): MockPortBinding {
    const port = this.opened.at(-1);
    if (!port?.isOpen) throw new Error('mock device: no open port');
    return port;
  }

  emit(bytes: Uint8Array): void {
    this.port.emitData(Buffer.from(bytes));
  }

  /** Encode and emit a device frame with the device's own running seq. */
  send<N extends FrameName>(name: N, seq: number, fields: FrameFields<N>, pairs?: readonly TailRecordInput[]): void {
    this.emit(encodeFrame(name, seq, fields, pairs));
  }

  nextSeq(): number {
    return this.seq++;
  }

  /** The device vanishes: reads fail and the port is gone until plugIn(). */
  unplug(): void {
    const port = this.opened.at(-1)!;
    MockBinding.reset();
    this.unplugs.get(port)?.(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
  }

  private fromHost(bytes: Buffer): void {
    for (const frame of this.hostDecoder.push(bytes)) {
      this.commands.push(frame);
      this.onCommand?.(frame);
      if (this.autoAck) {
        this.send('ack', this.nextSeq(), { command_seq: frame.seq, command_type: frame.type, status: 0, value: 42 });
      }
    }
  }
}
