// Against a real board, only when one is named: CRABWATT_TEST_PORT=/dev/ttyACM0 (or 'auto')
// npx vitest run test/device/hardware.test.ts. Skipped everywhere else, CI included.

import { describe, expect, it } from 'vitest';
import { DeviceLink } from '../../server/device/link.ts';
import { PROTOCOL_VERSION } from '../../server/protocol/definition.ts';
import type { Frame } from '../../server/protocol/codec.ts';

const port = process.env.CRABWATT_TEST_PORT;

describe.skipIf(!port)(`a real crabwatt board on ${port}`, () => {
  it('identifies itself, acknowledges commands and streams clean frames', async () => {
    const link = new DeviceLink({ path: port!, identifyOnConnect: false, reconnect: false });
    const frames: Frame[] = [];
    link.on('frame', (f) => frames.push(f));
    await link.open();
    try {
      const ack = await link.request('cmd_identify', {}, { timeoutMs: 2000 });
      expect(ack.fields.status).toBe(0);
      const identify = frames.find((f) => f.name === 'identify');
      expect(identify?.name === 'identify' && identify.fields.protocol_version).toBe(PROTOCOL_VERSION);
      const status = await link.request('cmd_status', {}, { timeoutMs: 2000 });
      expect(status.fields.status).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(frames.some((f) => f.name === 'window')).toBe(true);
      expect(link.counters).toMatchObject({ crcErrors: 0, protocolErrors: 0, oversize: 0 });
    } finally {
      await link.close();
    }
  });
});
