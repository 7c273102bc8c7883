// Hardware smoke test, for the day a board is attached:
//
//   npm run hw-test -- --port /dev/ttyACM0 [--seconds 10] [--kv 1] [--ki 1] [--baud 3000000]
//
// Identifies the device, asks for its status, listens for --seconds (10), then judges what arrived
// (test/hw/checks.ts: link errors, sequence continuity, window tiling, exact energy bookkeeping,
// sample rate against the host clock, status counters, plausible values) and exits 0 when every
// check passed, 1 when one failed, 2 when it could not run. It changes no setting on the device.
// --kv/--ki are the front end's volts and amperes per LSB (docs/hardware-setup.md); with the default 1
// the values are printed in ADC LSB.

import { parseArgs } from 'node:util';

import { DeviceLink } from '../../server/device/link.ts';
import { judge, type Observation } from './checks.ts';

const USAGE = 'usage: npm run hw-test -- --port /dev/ttyACM0 [--seconds 10] [--kv 1] [--ki 1] [--baud 3000000]';

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

function positive(name: string, text: string): number {
  const x = Number(text);
  if (!Number.isFinite(x) || x <= 0) fail(`--${name} must be a number > 0, got ${text}\n${USAGE}`);
  return x;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        seconds: { type: 'string', default: '10' },
        kv: { type: 'string', default: '1' },
        ki: { type: 'string', default: '1' },
        baud: { type: 'string', default: '3000000' },
      },
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (!values.port) {
    fail(
      'hw-test needs a board: name its serial port with --port (USB: /dev/ttyACM0; Feather UART through a ' +
        `USB-serial cable: /dev/ttyUSB0; 'auto' finds a crabwatt by its USB id). Nothing was tested.\n${USAGE}`,
    );
  }
  const seconds = positive('seconds', values.seconds);
  const scale = { kv: positive('kv', values.kv), ki: positive('ki', values.ki) };

  // The test sends its own cmd_identify and waits for the ack, so the link's automatic one is off.
  const link = new DeviceLink({
    path: values.port, reconnect: false, identifyOnConnect: false, baudRate: positive('baud', values.baud),
  });
  const observations: Observation[] = [];
  link.on('frame', (frame) => observations.push({ atMs: performance.now(), frame }));
  link.on('error', (error) => console.error(`link: ${error.message}`));
  link.on('disconnected', ({ reason }) => console.error(`link: disconnected (${reason})`));

  try {
    await link.open();
  } catch (error) {
    fail(`cannot open ${values.port}: ${(error as Error).message}`);
  }
  try {
    console.log(`connected to ${link.path}; identifying`);
    const ack = await link.request('cmd_identify', {}, { timeoutMs: 2000 });
    if (ack.fields.status !== 0) fail(`cmd_identify answered with status ${ack.fields.status}`);
    await link.request('cmd_status', {}, { timeoutMs: 2000 });
    console.log(`streaming for ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  } catch (error) {
    await link.close();
    fail(`the device did not answer: ${(error as Error).message}`);
  }
  const counters = { ...link.counters };
  await link.close();

  const results = judge(observations, counters, scale);
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name.padEnd(12)} ${r.detail}`);
  const failed = results.filter((r) => !r.ok).length;
  console.log(`hw-test: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

await main();
