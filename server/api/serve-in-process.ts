// `crabwatt serve` (by default --device sim) inside this process, for the browser tests and the latency figure: the real
// entry point (store, DeviceLink over the simulated device's MockBinding port, ingest, wireApi, buildApp),
// on a free loopback port with a scratch database.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveCommand, type ServeRuntime } from '../cli/serve.ts';

export interface ServedSim {
  url: string;
  runtime: ServeRuntime;
  /** Everything serve printed to stderr. */
  log: () => string;
  close(): Promise<void>;
}

export function serveSimulated(extraArgs: string[] = []): Promise<ServedSim> {
  return serveInProcess('sim', extraArgs);
}

/** `crabwatt serve --device DEVICE` in this process (sim, rtl or a port path), on a scratch database. */
export async function serveInProcess(device: string, extraArgs: string[] = []): Promise<ServedSim> {
  const dir = mkdtempSync(join(tmpdir(), 'crabwatt-serve-'));
  let stop!: () => void;
  const until = new Promise<void>((resolve) => (stop = resolve));
  let output = '';
  const io = { out: (s: string) => void (output += s), err: (s: string) => void (output += s) };
  let exited: Promise<number> | undefined;
  const runtime = await new Promise<ServeRuntime>((resolve, reject) => {
    exited = serveCommand(['--device', device, '--db', join(dir, 'crabwatt.sqlite'), '--listen', '127.0.0.1:0', ...extraArgs], io, {
      until,
      onReady: resolve,
    });
    exited.then(
      (code) => reject(new Error(`serve exited with ${code} before it was ready:\n${output}`)),
      (err: Error) => reject(new Error(`serve failed: ${err.message}\n${output}`)),
    );
  });
  return {
    url: runtime.address,
    runtime,
    log: () => output,
    async close() {
      stop();
      await exited?.catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
