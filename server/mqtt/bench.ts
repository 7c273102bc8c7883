// Fleet figures (docs/fleet.md), through a real local mosquitto:
//   npx tsx server/mqtt/bench.ts collector [--boards 250,500,1000,2000] [--seconds 20]
//     a publisher child process plays N boards at 5 windows/s (one message per board per 500 ms, as a host's
//     outbox sends them: its flush interval), this process runs the Collector on a fresh database; reported:
//     windows offered and booked per second, the loss (offered − booked once the queue has drained) and the
//     collector's CPU share. The board count a collector sustains is the largest with 0 loss that keeps up.
//   npx tsx server/mqtt/bench.ts overhead [--seconds 30]
//     CPU share of a real `crabwatt serve --device sim` with and without --mqtt (one board), from /proc.
// It measures; it asserts nothing (the tests do).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { encodeFrameBytes } from '../protocol/codec.ts';
import { simTemplates } from '../ingest/bench.ts';
import { Store } from '../store/store.ts';
import { startMosquitto } from '../../test/mqtt/mosquitto.ts';
import { startServe } from '../../test/faults/serve-process.ts';
import { resolveBroker } from './connection.ts';
import { Collector } from './collector.ts';
import { encodeBody, encodeMessage, framesTopic } from './fleet-format.ts';

const HERE = fileURLToPath(import.meta.url);
const WINDOWS_PER_MESSAGE = 2.5; // 5 windows/s, a message per 500 ms

function arg(name: string, fallback: string): string {
  const k = process.argv.indexOf(`--${name}`);
  return k > 0 ? process.argv[k + 1]! : fallback;
}

/** The publisher child: `boards` boards, a message per board per 500 ms, for `seconds`; prints windows sent. */
async function publish(url: string, boards: number, seconds: number): Promise<void> {
  const { identify, windows } = simTemplates(50);
  const client = await mqtt.connectAsync(url, { clientId: `bench-publisher-${process.pid}` });
  const state = Array.from({ length: boards }, (_, b) => ({
    hex: (0xbe00000000000000n + BigInt(b)).toString(16),
    id: encodeFrameBytes('identify', 0, { ...identify, device_id: 0xbe00000000000000n + BigInt(b) }),
    seq: 0, end: 0n, energy: 0n, frameSeq: 1, half: b % 2,
  }));
  let sent = 0;
  const ticks = seconds * 2;
  const start = performance.now();
  for (let t = 0; t < ticks; t++) {
    for (const s of state) {
      const frames = [];
      if (s.seq === 0) frames.push({ hostMs: Date.now(), bytes: s.id });
      // 2 and 3 windows in turn: 5 per second.
      const n = (t + s.half) % 2 === 0 ? 2 : 3;
      for (let k = 0; k < n; k++) {
        const w = windows[(s.frameSeq + k) % windows.length]!;
        s.end += BigInt(w.samples);
        s.energy += w.sum_vi;
        frames.push({ hostMs: Date.now(), bytes: encodeFrameBytes('window', s.frameSeq++, { ...w, end_index: s.end }) });
      }
      frames.push({ hostMs: Date.now(), bytes: encodeFrameBytes('energy', s.frameSeq++, { end_index: s.end, energy: s.energy, boot_id: identify.boot_id }) });
      sent += n;
      s.seq++;
      const body = encodeBody({ kind: 'simulated', kv: 1e-3, ki: 1e-4, identify: s.id, frames });
      client.publish(framesTopic(s.hex), encodeMessage(1, s.seq, s.seq, body), { qos: 1 });
    }
    const due = start + (t + 1) * 500;
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
  }
  await client.endAsync();
  process.stdout.write(`${JSON.stringify({ sent, lateMs: Math.round(performance.now() - start - seconds * 1000) })}\n`);
}

async function collectorRun(url: string, boards: number, seconds: number) {
  const dir = mkdtempSync(join(tmpdir(), 'crabwatt-fleet-bench-'));
  const store = Store.open(join(dir, 'collector.sqlite'));
  const collector = new Collector(store, resolveBroker({ url }, {}), `bench-collector-${boards}`, () => undefined);
  await new Promise((r) => collector.client.once('connect', r));
  await new Promise((r) => setTimeout(r, 300)); // the subscription reaches the broker
  const child = spawn('npx', ['tsx', HERE, 'publish', '--url', url, '--boards', String(boards), '--seconds', String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  let exited = false;
  let code: number | null = null;
  child.on('close', (c) => {
    // close, not exit: stdout is read to its end
    exited = true;
    code = c;
  });
  // From the first window booked (the publisher's start-up is not the collector's time) to the last.
  while (store.counters.windows === 0 && !exited) await new Promise((r) => setTimeout(r, 20));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // A publisher that cannot hand its QoS-1 backlog to the broker never ends: give it its run plus 2 min,
  // then stop it and report that instead of waiting for ever.
  const giveUpAt = performance.now() + (seconds + 120) * 1000;
  while (!exited && performance.now() < giveUpAt) await new Promise((r) => setTimeout(r, 100));
  if (!exited) {
    child.kill('SIGKILL');
    throw new Error(`bench: the publisher of ${boards} boards had not finished ${seconds + 120} s after it started ` +
      `(${store.counters.windows} windows booked by then): the broker did not take its backlog`);
  }
  if (!out.trim()) throw new Error(`bench: the publisher of ${boards} boards ended (exit code ${code}) without its count`);
  const { sent, lateMs } = JSON.parse(out) as { sent: number; lateMs: number };
  // Drain: wait for the collector to book what was sent, at most 30 s after the publisher ended.
  const drainFrom = performance.now();
  while (store.counters.windows < sent && performance.now() - drainFrom < 30_000) await new Promise((r) => setTimeout(r, 20));
  store.flush();
  const cpu = process.cpuUsage(cpu0);
  const wallS = (performance.now() - t0) / 1000;
  const booked = store.counters.windows;
  await collector.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    boards, windows_sent: sent, windows_booked: booked, loss: sent - booked,
    offered_windows_per_s: Math.round(sent / (seconds + lateMs / 1000)), publisher_late_ms: lateMs,
    booked_windows_per_wall_s: Math.round(booked / wallS),
    drain_s: Number(((performance.now() - drainFrom) / 1000).toFixed(1)),
    collector_cpu_share: Number(((cpu.user + cpu.system) / 1e6 / wallS).toFixed(3)),
    windows_per_collector_cpu_s: Math.round(booked / ((cpu.user + cpu.system) / 1e6)),
  };
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

async function overheadRun(url: string | undefined, seconds: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'crabwatt-overhead-'));
  const serve = await startServe({ args: ['--device', 'sim', '--db', join(dir, 'o.sqlite'), ...(url ? ['--mqtt', url, '--mqtt-id', 'overhead'] : [])] });
  await new Promise((r) => setTimeout(r, 3000)); // past the start
  const c0 = cpuSeconds(serve.pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const share = (cpuSeconds(serve.pid) - c0) / ((performance.now() - t0) / 1000);
  await serve.stop();
  rmSync(dir, { recursive: true, force: true });
  return Number(share.toFixed(4));
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  if (mode === 'publish') return publish(arg('url', ''), Number(arg('boards', '100')), Number(arg('seconds', '10')));
  const broker = await startMosquitto();
  try {
    if (mode === 'collector') {
      for (const boards of arg('boards', '250,500,1000,2000').split(',').map(Number)) {
        process.stdout.write(`${JSON.stringify(await collectorRun(broker.url, boards, Number(arg('seconds', '20'))))}\n`);
      }
    } else if (mode === 'overhead') {
      const seconds = Number(arg('seconds', '30'));
      const off = await overheadRun(undefined, seconds);
      const on = await overheadRun(broker.url, seconds);
      process.stdout.write(`${JSON.stringify({ seconds, cpu_share_mqtt_off: off, cpu_share_mqtt_on: on, overhead: Number((on - off).toFixed(4)) })}\n`);
    } else {
      process.stderr.write('usage: npx tsx server/mqtt/bench.ts collector|overhead [--boards A,B,…] [--seconds S]\n');
      process.exitCode = 2;
    }
  } finally {
    await broker.stop();
  }
}

await main();
