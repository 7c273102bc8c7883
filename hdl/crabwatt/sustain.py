"""Sustained-rate benchmark: AdcCapture + PowerDsp for simulated seconds under Verilator.

    bash hdl/run.sh sustain [--seconds 1.0] [--out build/sustain]

The bench (SustainBench) runs the real capture and DSP with a cycle-level AD7357 emulator on the
pins (`adc` 72 MHz, `sync` 48 MHz: the clocks of the board). The emulator answers every frame
with codes that are a function of the conversion number; a checker on the DSP input recomputes
them from the sample index, so a lost, repeated or corrupted sample is counted. The run passes
when the DSP saw every conversion, in order, unchanged: dropped == errors == mismatches == 0.
Prints a JSON summary (the sustained rate in Msps among it).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

from amaranth import *
from amaranth.back import verilog
from amaranth.lib import wiring

from .adc import AdcCapture, FRAME_SCLK, BITS_PER_FRAME
from .dsp import PowerDsp

#: The emulator answers each SCLK pulse one register later, as the read register does for a capture
#: point in the first half-period (retimed on the next rising edge, no whole periods).
READ_DELAY = 16
ROUND_TRIP = 1


def code_for(conversion):
    """The emulator's codes (cv, ci) for a conversion number: a triangle that crosses mid-scale
    every 65536 samples, and a second one offset by a quarter period."""
    def tri(p):
        p = p & 0x1FFFF
        return (p if p < 65536 else 131071 - p) >> 4
    return 6144 + tri(conversion), 6144 + tri(conversion + 32768)


def _tri(m, phase):
    p = phase[:17]
    t = Mux(p[16], ~p[:16], p[:16])[4:16]
    return 6144 + t


class AdcEmulator(Elaboratable):
    """Cycle-level stand-in for the AD7357 on the capture's pin interface (adc domain)."""
    def __init__(self, capture):
        self.capture = capture
        self.conversions = Signal(64)

    def elaborate(self, platform):
        m = Module()
        cap = self.capture
        was_cs_n = Signal(init=1)
        shift_v = Signal(16)
        shift_i = Signal(16)
        m.d.adc += was_cs_n.eq(cap.cs_n)
        bit = Signal(2)
        with m.If(was_cs_n & ~cap.cs_n):
            # CS falls: sample. Two leading zeros, then the 14-bit codes, MSB first.
            m.d.adc += [shift_v.eq(_tri(m, self.conversions)),
                        shift_i.eq(_tri(m, self.conversions + 32768)),
                        self.conversions.eq(self.conversions + 1)]
        with m.Elif(~cap.cs_n & cap.sclk_en):
            # The bit read on this SCLK falling edge, then the next one is shifted out.
            m.d.comb += bit.eq(Cat(shift_v[15], shift_i[15]))
            m.d.adc += [shift_v.eq(shift_v << 1), shift_i.eq(shift_i << 1)]
        # The buffers' round trip, as on the board.
        line = bit
        for k in range(ROUND_TRIP):
            reg = Signal(2, name=f"line{k}")
            m.d.adc += reg.eq(line)
            line = reg
        m.d.comb += cap.sdata.eq(line)
        return m


class SustainBench(Elaboratable):
    def __init__(self):
        self.dsp_samples = Signal(64)
        self.mismatches = Signal(32)
        self.windows = Signal(32)
        self.samples_dropped = Signal(32)
        self.adc_errors = Signal(32)
        self.conversions = Signal(64)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.domains.adc = ClockDomain("adc")
        m.submodules.capture = cap = AdcCapture()
        m.d.comb += cap.read_delay.eq(READ_DELAY)
        m.submodules.emulator = emu = AdcEmulator(cap)
        m.submodules.dsp = dsp = PowerDsp()
        wiring.connect(m, cap.samples, dsp.samples)
        m.d.comb += dsp.windows.ready.eq(1)
        with m.If(dsp.windows.valid):
            m.d.sync += self.windows.eq(self.windows + 1)
        s = cap.samples
        with m.If(s.valid & s.ready):
            m.d.sync += self.dsp_samples.eq(self.dsp_samples + 1)
            good = ((s.payload.cv == _tri(m, s.payload.index))
                    & (s.payload.ci == _tri(m, s.payload.index + 32768)))
            with m.If(~good):
                m.d.sync += self.mismatches.eq(self.mismatches + 1)
        m.d.comb += [self.samples_dropped.eq(cap.samples_dropped), self.adc_errors.eq(cap.adc_errors),
                     self.conversions.eq(emu.conversions)]
        return m

    def ports(self):
        return [ClockSignal("sync"), ResetSignal("sync"), ClockSignal("adc"), ResetSignal("adc"),
                self.dsp_samples, self.mismatches, self.windows, self.samples_dropped,
                self.adc_errors, self.conversions]


HARNESS = r"""
#include "Vsustain.h"
#include "verilated.h"
#include <cstdio>
#include <cstdlib>
#include <chrono>

// Time unit: 1/288 MHz. adc (72 MHz) toggles every 2 units, sync (48 MHz) every 3.
int main(int argc, char **argv) {
    const double seconds = atof(argv[1]);
    const unsigned long long units = (unsigned long long)(seconds * 288e6);
    Verilated::commandArgs(argc, argv);
    Vsustain *top = new Vsustain;
    top->adc_rst = 1; top->rst = 1;
    top->adc_clk = 0; top->clk = 0;
    auto start = std::chrono::steady_clock::now();
    for (unsigned long long t = 0; t < units; t++) {
        if (t == 64) { top->adc_rst = 0; top->rst = 0; }
        bool edge = false;
        if (t % 2 == 0) { top->adc_clk = !top->adc_clk; edge = true; }
        if (t % 3 == 0) { top->clk = !top->clk; edge = true; }
        if (edge) top->eval();
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    printf("{\"simulated_seconds\": %.9f, \"conversions\": %llu, \"dsp_samples\": %llu, "
           "\"samples_dropped\": %u, \"adc_errors\": %u, \"mismatches\": %u, \"windows\": %u, "
           "\"wall_seconds\": %.2f}\n",
           units / 288e6, (unsigned long long)top->conversions, (unsigned long long)top->dsp_samples,
           top->samples_dropped, top->adc_errors, top->mismatches, top->windows, wall);
    delete top;
    return 0;
}
"""


def build_bench(out):
    out.mkdir(parents=True, exist_ok=True)
    bench = SustainBench()
    (out / "sustain.v").write_text(verilog.convert(bench, name="sustain", ports=bench.ports()))
    (out / "harness.cpp").write_text(HARNESS)
    subprocess.run(
        ["verilator", "--cc", "--exe", "--build", "-O2", "--x-assign", "fast", "--x-initial", "fast",
         "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", "sustain", "-j", "1",
         "--Mdir", str(out / "obj"), "sustain.v", "harness.cpp",
         "-CFLAGS", "-O1", "-o", "sustain"],
        cwd=out, check=True, stdout=subprocess.DEVNULL)
    return out / "obj" / "sustain"


def run(seconds, out):
    start = time.monotonic()
    exe = build_bench(out)
    build_s = time.monotonic() - start
    result = json.loads(subprocess.run([str(exe), str(seconds)], check=True, capture_output=True,
                                       text=True).stdout)
    result["build_seconds"] = round(build_s, 1)
    sim = result["simulated_seconds"]
    result["sustained_msps"] = round(result["dsp_samples"] / sim / 1e6, 4) if sim else 0.0
    # Conversions still in the FIFO or the frame in flight at the end are not lost.
    result["in_flight"] = result["conversions"] - result["dsp_samples"]
    result["ok"] = (result["samples_dropped"] == 0 and result["adc_errors"] == 0
                    and result["mismatches"] == 0 and 0 <= result["in_flight"] <= 4)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description="AdcCapture + PowerDsp at 4 Msps under Verilator")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--out", default="build/sustain")
    args = ap.parse_args(argv)
    result = run(args.seconds, pathlib.Path(args.out).resolve())
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
