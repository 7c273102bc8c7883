// The broker flags: credentials never from a file every user can read or from the URL, TLS files only with
// mqtts://, and a fleet message that is not one refused with a clear error.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MqttConfigError, resolveBroker } from '../../server/mqtt/connection.ts';
import { decodeMessage, encodeBody, encodeMessage, FleetFormatError } from '../../server/mqtt/fleet-format.ts';
import { encodeFrameBytes } from '../../server/protocol/codec.ts';

const dir = mkdtempSync(join(tmpdir(), 'crabwatt-mqtt-conf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

describe('resolveBroker', () => {
  it('reads USER:PASSWORD from a private file', () => {
    const b = resolveBroker({ url: 'mqtt://127.0.0.1:1884', credentials: file('ok', 'crab:s3cret:with:colons\n', 0o600) }, {});
    expect(b.options).toMatchObject({ host: '127.0.0.1', port: 1884, protocol: 'mqtt', username: 'crab', password: 's3cret:with:colons' });
    expect(b.warnings).toEqual([]);
  });

  it('refuses a credentials file every user can read, and warns for one the group can', () => {
    expect(() => resolveBroker({ url: 'mqtt://h', credentials: file('open', 'a:b', 0o644) }, {})).toThrow(/every user.*chmod 600/);
    expect(resolveBroker({ url: 'mqtt://h', credentials: file('group', 'a:b', 0o640) }, {}).warnings[0]).toMatch(/group/);
  });

  it('takes the environment, and refuses a password in the URL', () => {
    expect(resolveBroker({ url: 'mqtts://h' }, { CRABWATT_MQTT_USERNAME: 'u', CRABWATT_MQTT_PASSWORD: 'p' }).options).toMatchObject({ username: 'u', password: 'p', port: 8883 });
    expect(() => resolveBroker({ url: 'mqtt://u:p@h' }, {})).toThrow(MqttConfigError);
    expect(() => resolveBroker({ url: 'http://h' }, {})).toThrow(/mqtt:\/\/ or mqtts:\/\//);
    expect(() => resolveBroker({ url: 'mqtt://h', ca: '/nonexistent' }, {})).toThrow(/need an mqtts:\/\/ URL/);
    expect(() => resolveBroker({ url: 'mqtts://h', cert: '/x' }, {})).toThrow(/both --mqtt-cert FILE and --mqtt-key FILE/);
  });
});

describe('fleet messages', () => {
  const energy = encodeFrameBytes('energy', 7, { end_index: 1000n, energy: -(2n ** 90n), boot_id: 3 });
  const message = encodeMessage(42, 5, 2, encodeBody({ kind: 'simulated', kv: 0.01, ki: 0.001, identify: undefined, frames: [{ hostMs: 1.5e12, bytes: energy }] }));

  it('round-trip every bit of a 96-bit accumulator', () => {
    const m = decodeMessage(message);
    expect(m).toMatchObject({ stream: 42, seq: 5, first: 2, kind: 'simulated', kv: 0.01, ki: 0.001, identify: undefined });
    expect(m.frames[0]).toMatchObject({ hostMs: 1.5e12, frame: { name: 'energy', fields: { end_index: 1000n, energy: -(2n ** 90n), boot_id: 3 } } });
  });

  it('are refused whole when cut, padded or corrupted', () => {
    expect(() => decodeMessage(message.subarray(0, message.length - 1))).toThrow(FleetFormatError);
    expect(() => decodeMessage(Buffer.concat([message, Buffer.from([0])]))).toThrow(/after the last frame/);
    const bad = Buffer.from(message);
    bad[bad.length - 3]! ^= 1;
    expect(() => decodeMessage(bad)).toThrow(/does not decode/);
    expect(() => decodeMessage(Buffer.from('hello world, this is not a fleet message'))).toThrow(/not a crabwatt fleet message/);
  });
});
