// The API speaks snake_case JSON; these map the camelCase interfaces of deps.ts onto it, in one place
// for both the REST routes and the WebSocket stream.

import type { Capture, DeviceInfo, LinkEvent, LiveWindow } from './deps.ts';

export function deviceJson(d: DeviceInfo) {
  return {
    id: d.id,
    name: d.name,
    kind: d.kind,
    path: d.path,
    state: d.state,
    detail: d.detail,
    health: { state: d.health.state, detail: d.health.detail },
    sample_rate_hz: d.sampleRateHz,
    counters: {
      bytes: d.counters.bytes,
      rejected: d.counters.rejected,
      dropped: d.counters.dropped,
      frames: d.counters.frames,
      crc_errors: d.counters.crcErrors,
      seq_gaps: d.counters.seqGaps,
      resets: d.counters.resets,
      reconnects: d.counters.reconnects,
      frames_per_s: d.counters.framesPerS,
      windows: d.counters.windows,
      duplicates: d.counters.duplicates,
    },
    warning: d.warning,
    device_health: d.deviceHealth && {
      frames_dropped: d.deviceHealth.framesDropped,
      fifo_overflows: d.deviceHealth.fifoOverflows,
      samples_dropped: d.deviceHealth.samplesDropped,
      adc_errors: d.deviceHealth.adcErrors,
      watchdog_resets: d.deviceHealth.watchdogResets,
      link_stalls: d.deviceHealth.linkStalls,
      uart_rx_overruns: d.deviceHealth.uartRxOverruns,
    },
    pq: d.pq
      ? {
          waveform_frames: d.pq.waveformFrames,
          waveform_lost_samples: d.pq.waveformLostSamples,
          waveform_gaps: d.pq.waveformGaps,
          windows: d.pq.pqWindows,
          gap_windows: d.pq.pqGapWindows,
          events: d.pq.pqEvents,
          declared_v: d.pq.declaredV,
          nominal_hz: d.pq.nominalHz,
          error: d.pq.error,
        }
      : null,
  };
}

export function windowJson(w: LiveWindow) {
  return {
    type: 'window' as const,
    device: w.device,
    t_ms: w.tMs,
    samples: w.samples,
    vrms: w.vrms,
    irms: w.irms,
    p: w.p,
    s: w.s,
    pf: w.pf,
    n: w.n,
    freq_hz: w.freq_hz,
    energy_nwh: w.energy_nwh.toString(),
    flags: w.flags,
    config_seq: w.config_seq,
    received_at_ms: w.receivedAtMs,
    v_dc: w.v_dc,
    i_dc: w.i_dc,
  };
}

export function linkJson(e: LinkEvent) {
  return { type: 'link' as const, device: e.device, state: e.state, detail: e.detail };
}

export function captureJson(c: Capture) {
  return {
    id: c.id,
    device: c.device,
    state: c.state,
    detail: c.detail,
    requested_at: c.requestedAtMs,
    sample_rate_hz: c.sampleRateHz,
    kv: c.kv,
    ki: c.ki,
    decimation: c.decimation,
    first_index: c.firstIndex,
    trigger_index: c.triggerIndex,
    trigger_offset: c.triggerOffset,
    v: c.v,
    i: c.i,
  };
}
