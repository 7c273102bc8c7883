// A live device's captures (POST/GET /api/devices/:id/captures): the command a request becomes, and each
// capture assembled from its capture_chunk frames, or failed when they stop coming. wire.ts's LiveDevice
// holds one LiveCaptures per device and feeds it the device's frames.

import type { Frame, FrameFields } from '../protocol/codec.ts';
import { CAPTURE_TRIGGER } from '../protocol/definition.ts';
import { DeviceCommandError, MAX_DECIMATION, type Capture, type CaptureRequest } from './deps.ts';

/**
 * A capture whose chunks have not all arrived this long after the samples it needs can have been
 * taken is marked failed (a lost chunk is never resent).
 */
const CAPTURE_TIMEOUT_MS = 15_000;
/** The firmware's auto-trigger: a level trigger not fired a second after the pretrigger filled. */
const AUTO_TRIGGER_MS = 1000;
const CAPTURES_KEPT = 16;

const TRIGGERS: Record<CaptureRequest['trigger'], number> = {
  immediate: CAPTURE_TRIGGER.IMMEDIATE,
  v_rising: CAPTURE_TRIGGER.V_RISING,
  v_falling: CAPTURE_TRIGGER.V_FALLING,
  i_rising: CAPTURE_TRIGGER.I_RISING,
  i_falling: CAPTURE_TRIGGER.I_FALLING,
};

/**
 * D for a capture request: as given, or the smallest D whose `pairs` pairs cover the requested
 * duration (or cycles at the measured frequency), so the capture spans at least what was asked.
 * Throws DeviceCommandError 422 when the span cannot be had (no sample rate or frequency known yet,
 * or more than D = 65535 would be needed).
 */
export function captureDecimation(req: CaptureRequest, sampleRateHz: number, freqHz: number | null): number {
  if (req.decimation !== undefined) return req.decimation;
  let spanS: number;
  if (req.durationMs !== undefined) spanS = req.durationMs / 1000;
  else if (req.cycles !== undefined) {
    if (!(freqHz !== null && freqHz > 0)) {
      throw new DeviceCommandError('no mains frequency measured on this device yet: ask for duration_ms or decimation instead', 422);
    }
    spanS = req.cycles / freqHz;
  } else return 1;
  if (!(sampleRateHz > 0)) {
    throw new DeviceCommandError("the device's sample rate is not known yet (no identify): ask for decimation instead", 422);
  }
  const d = Math.max(1, Math.ceil((spanS * sampleRateHz) / req.pairs));
  if (d > MAX_DECIMATION) {
    const longestMs = ((MAX_DECIMATION * req.pairs) / sampleRateHz) * 1000;
    throw new DeviceCommandError(
      `${req.pairs} pairs over ${(spanS * 1000).toFixed(1)} ms need decimation ${d}, more than ${MAX_DECIMATION}: ` +
        `at most ${longestMs.toFixed(0)} ms with ${req.pairs} pairs`,
      422,
    );
  }
  return d;
}

/** What the device says of itself that a capture request needs. */
export interface CaptureDeviceFacts {
  /** identify.capture_depth; 0 before the first identify */
  depth: number;
  sampleRateHz: number;
  /** the last measured mains frequency, for requests in cycles */
  freqHz: number | null;
}

/** The cmd_capture fields for a request, and the longest its samples can take (ms, auto-trigger included). */
export function captureCommand(req: CaptureRequest, device: CaptureDeviceFacts): { fields: Record<string, number>; decimation: number; takesMs: number } {
  if (device.depth > 0 && req.pairs > device.depth) {
    throw new DeviceCommandError(`the device captures at most ${device.depth} pairs; asked for ${req.pairs}`, 422);
  }
  const fs = device.sampleRateHz;
  const decimation = captureDecimation(req, fs, device.freqHz);
  const fields = {
    pairs: req.pairs,
    trigger: TRIGGERS[req.trigger],
    level: req.level,
    pretrigger: req.pretrigger,
    decimation,
    hysteresis: req.hysteresis,
  };
  // Worst case for a level trigger: the pretrigger fills, the trigger waits for the auto-trigger,
  // the re-armed capture fills its pretrigger again and then the rest (docs/protocol.md "Captures").
  const level = req.trigger !== 'immediate';
  const samples = ((level ? 2 : 1) * req.pretrigger + req.pairs) * decimation;
  return { fields, decimation, takesMs: (level ? AUTO_TRIGGER_MS : 0) + (fs > 0 ? (samples / fs) * 1000 : 0) };
}

interface CaptureState extends Capture {
  chunks: (FrameFields<'capture_chunk'> & { pairs: { v: number; i: number }[] })[];
  received: number;
  timer: NodeJS.Timeout;
}

/** The captures of one device, the newest CAPTURES_KEPT of them. */
export class LiveCaptures {
  private readonly captures = new Map<number, CaptureState>();

  /** `describe`: the device's id, scale and sample rate as of now (a capture keeps those of its start). */
  constructor(private readonly describe: () => Pick<Capture, 'device' | 'kv' | 'ki' | 'sampleRateHz'>) {}

  /** Track capture `id`; `takesMs` is the longest its samples can take (pretrigger refill included). */
  start(id: number, decimation: number, takesMs: number): void {
    const previous = this.captures.get(id);
    if (previous) clearTimeout(previous.timer);
    const timeoutMs = CAPTURE_TIMEOUT_MS + Math.ceil(takesMs);
    const facts = this.describe();
    const c: CaptureState = {
      id,
      device: facts.device,
      state: 'pending',
      detail: 'waiting for the trigger',
      requestedAtMs: Date.now(),
      v: [],
      i: [],
      kv: facts.kv,
      ki: facts.ki,
      sampleRateHz: facts.sampleRateHz,
      decimation,
      firstIndex: 0,
      triggerIndex: 0,
      triggerOffset: 0,
      chunks: [],
      received: 0,
      timer: setTimeout(() => {
        if (c.state === 'pending') {
          c.state = 'failed';
          c.detail = `only ${c.received} chunk(s) arrived within ${Math.round(timeoutMs / 1000)} s`;
          c.chunks = [];
        }
      }, timeoutMs),
    };
    c.timer.unref();
    this.captures.set(id, c);
    // Keep a bounded history: the oldest captures go first.
    while (this.captures.size > CAPTURES_KEPT) {
      const oldest = this.captures.keys().next().value as number;
      clearTimeout(this.captures.get(oldest)!.timer);
      this.captures.delete(oldest);
    }
  }

  /** A capture as the API shows it, or undefined for one not (or no longer) tracked. */
  get(id: number): Capture | undefined {
    const c = this.captures.get(id);
    if (!c) return undefined;
    const { chunks: _chunks, received: _received, timer: _timer, ...capture } = c;
    return capture;
  }

  onChunk(f: Frame<'capture_chunk'>): void {
    const c = this.captures.get(f.fields.capture_id);
    if (!c || c.state !== 'pending') return;
    const { chunk_index: k, chunk_count: n } = f.fields;
    if (k >= n) return;
    if (c.chunks[k] === undefined) c.received++;
    c.chunks[k] = { ...f.fields, pairs: f.pairs ?? [] };
    c.detail = `${c.received} of ${n} chunks`;
    if (c.received < n) return;
    const pairs = c.chunks.flatMap((ch) => ch.pairs);
    c.v = pairs.map((p) => p.v);
    c.i = pairs.map((p) => p.i);
    const first = c.chunks[0]!;
    // The device's word on the spacing, not the request's: pair k is sample first_index + k·D.
    c.decimation = first.decimation;
    c.firstIndex = Number(first.first_index);
    c.triggerIndex = Number(first.trigger_index);
    c.triggerOffset = Number(first.trigger_index - first.first_index) / Math.max(1, first.decimation);
    c.state = 'complete';
    c.detail = '';
    c.chunks = [];
    clearTimeout(c.timer);
  }

  close(): void {
    for (const c of this.captures.values()) clearTimeout(c.timer);
  }
}
