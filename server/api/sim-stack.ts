// The whole host in one process, for the browser tests and the latency figure (bench.ts): the simulated device's
// bytes go through the real FrameDecoder (COBS, CRC, seq) into the real Ingest and Store, and buildApp
// serves them. The link is a minimal in-process one (the serial DeviceLink adds ports and reconnects,
// which these tests do not exercise); commands are encoded with the real codec and acks matched by seq.

import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.ts';
import { wireApi, type LinkLike } from './wire.ts';
import { Ingest } from '../ingest/ingest.ts';
import { encodeFrame, FrameDecoder, type Frame } from '../protocol/codec.ts';
import type { DspConfig } from '../dsp/model.ts';
import { SimulatedDevice } from '../sim/device.ts';
import { StoreReader } from '../store/query.ts';
import { Store } from '../store/store.ts';

class InProcessLink implements LinkLike {
  private seq = 0;
  private readonly decoder = new FrameDecoder();
  private readonly waiting = new Map<number, (f: Frame<'ack'>) => void>();
  readonly frames = new EventEmitter();

  constructor(private readonly sim: SimulatedDevice) {
    sim.setOutput((bytes) => {
      for (const f of this.decoder.push(bytes)) {
        if (f.name === 'ack') this.waiting.get(f.fields.command_seq)?.(f as Frame<'ack'>);
        this.frames.emit('frame', f);
      }
      return true;
    });
  }

  get counters() {
    const c = this.decoder.counters;
    return { frames: c.frames, crcErrors: c.crcErrors, seqGaps: c.seqGaps, resets: c.resets, reconnects: 0 };
  }

  request(name: 'cmd_calibrate' | 'cmd_capture' | 'cmd_identify', fields: Record<string, number>, opts: { timeoutMs?: number } = {}): Promise<Frame<'ack'>> {
    const seq = this.seq++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        reject(new Error(`no ack to ${name} within ${opts.timeoutMs ?? 2000} ms (timeout)`));
      }, opts.timeoutMs ?? 2000);
      this.waiting.set(seq, (f) => {
        clearTimeout(timer);
        this.waiting.delete(seq);
        resolve(f);
      });
      this.sim.receive(encodeFrame(name, seq, fields as never));
    });
  }
}

export interface SimStack {
  app: FastifyInstance;
  url: string;
  sim: SimulatedDevice;
  store: Store;
  ingest: Ingest;
  close(): Promise<void>;
}

export async function startSimStack(
  opts: { speed?: number; token?: string; port?: number; bootConfig?: Partial<DspConfig> } = {},
): Promise<SimStack> {
  const dir = mkdtempSync(join(tmpdir(), 'crabwatt-web-'));
  const store = Store.open(join(dir, 'crabwatt.sqlite'), { flushIntervalMs: 200 });
  const sim = new SimulatedDevice({ scenario: 'mains-230-50', seed: 7, speed: opts.speed ?? 1, ...(opts.bootConfig ? { bootConfig: opts.bootConfig } : {}) });
  const link = new InProcessLink(sim);
  const ingest = new Ingest({
    store,
    kind: 'simulated',
    defaultScale: { kv: sim.kv, ki: sim.ki },
    name: 'simulated device',
    requestIdentify: () => void link.request('cmd_identify', {}).catch(() => undefined),
  });
  link.frames.on('frame', (f: Frame) => ingest.handleFrame(f));
  const wired = wireApi({ reader: new StoreReader(store.db), devices: [{ ingest, link, kind: 'simulated', path: null, name: 'simulated device' }] });
  const app = await buildApp({ ...wired, token: opts.token });
  sim.start();
  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    sim,
    store,
    ingest,
    async close() {
      sim.stop();
      await app.close();
      wired.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// `npx tsx server/api/sim-stack.ts [port]`: the dashboard on the simulated device, for looking at by hand.
if (import.meta.url === `file://${process.argv[1]}`) {
  const stack = await startSimStack({ port: Number(process.argv[2] ?? 8080) });
  console.log(`dashboard at ${stack.url}`);
}
