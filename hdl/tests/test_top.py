"""The standalone top's pieces: configuration over the RX byte stream, the result dump format,
and that the whole design elaborates for both boards with the wing on Feather digital pins."""
import pytest

from amaranth import *
from amaranth.lib import wiring

from crabwatt.build import BOARDS
from crabwatt.capture import CaptureBuffer
from crabwatt.dsp import ConfigLayout, WindowLayout, CONFIG_RESET
from crabwatt.top import ConfigLoader, ResultDump, CrabwattTop, ADC_WING_PINS
from simhelpers import simulate, stream_put, stream_get, rng_for


def config_bytes(cfg):
    layout = ConfigLayout()
    value = 0
    for name, field in layout:
        value |= (cfg[name] & ((1 << field.width) - 1)) << field.offset
    return list(value.to_bytes(ConfigLoader.CONFIG_BYTES, "little"))


def test_config_loader_stages_and_commits():
    dut = ConfigLoader()
    want = dict(CONFIG_RESET, mode=1, cycles=12, fixed_samples=1000, phase=-123456, v_offset=-5,
                i_gain=20000)
    seen = {}

    async def tb(ctx):
        for b in [0x13, 0x00]:                       # noise before the start byte is ignored
            await stream_put(ctx, dut.bytes, b)
        await stream_put(ctx, dut.bytes, 0xC0)
        for b in config_bytes(want):
            assert not ctx.get(dut.commit)
            await stream_put(ctx, dut.bytes, b)
        seen["commit"] = ctx.get(dut.commit)
        cfg = ctx.get(dut.staging)
        seen["cfg"] = {name: getattr(cfg, name) for name, _ in ConfigLayout()}
        await ctx.tick()
        seen["commit_after"] = ctx.get(dut.commit)

    simulate(dut, [tb], "config_loader")
    assert seen == {"commit": 1, "cfg": want, "commit_after": 0}


class DumpBench(Elaboratable):
    def __init__(self):
        self.capture = CaptureBuffer(depth=8)
        self.dump = ResultDump(self.capture)

    def elaborate(self, platform):
        m = Module()
        m.submodules.capture, m.submodules.dump = self.capture, self.dump
        return m


def test_result_dump_frames_windows_and_captures():
    bench = DumpBench()
    dump, cap = bench.dump, bench.capture
    rec = {name: 0 for name, _ in WindowLayout()}
    rec.update(end_index=0x0102030405060708, samples=77, sum_vi=-5, flags=0x41, energy=-1)
    out = []

    async def feed(ctx):
        # Capture pairs: the dump arms an IMMEDIATE capture of the whole depth at start.
        for n in range(12):
            ctx.set(cap.sample, {"v": n, "i": -n, "index": n, "config_seq": 0})
            ctx.set(cap.sample_valid, 1)
            await ctx.tick()
        ctx.set(cap.sample_valid, 0)

    async def take(ctx):
        while len(out) < 2 + 4 * 8:
            out.append(await stream_get(ctx, dump.bytes))
        await ctx.tick().repeat(2)          # the dump re-arms the capture, then idles
        await stream_put(ctx, dump.windows, rec)
        assert ctx.get(dump.overflows) == 0
        while len(out) < 2 + 4 * 8 + 2 + ResultDump.RECORD_BYTES:
            out.append(await stream_get(ctx, dump.bytes))

    simulate(bench, [feed, take], "dump")
    assert out[:2] == [0xC5, 0x5C]
    pairs = [(int.from_bytes(bytes(out[2 + 4 * k:4 + 4 * k]), "little", signed=True),
              int.from_bytes(bytes(out[4 + 4 * k:6 + 4 * k]), "little", signed=True)) for k in range(8)]
    first = pairs[0][0]
    assert pairs == [(first + k, -(first + k)) for k in range(8)]
    w = out[34:]
    assert w[:2] == [0xA5, 0x5A]
    value = int.from_bytes(bytes(w[2:]), "little")
    layout = WindowLayout()
    assert (value >> layout["end_index"].offset) & (2**64 - 1) == 0x0102030405060708
    assert (value >> layout["samples"].offset) & (2**32 - 1) == 77
    assert (value >> layout["flags"].offset) & 0xFFFF == 0x41


def test_result_dump_drops_records_while_busy():
    bench = DumpBench()
    dump = bench.dump
    rec = {name: 0 for name, _ in WindowLayout()}
    seen = {}

    async def tb(ctx):
        await ctx.tick().repeat(2)          # out of reset the dump arms the capture first
        await stream_put(ctx, dump.windows, dict(rec, samples=1))
        # The dump is now sending; two more records are taken at once and dropped.
        for k in (2, 3):
            await stream_put(ctx, dump.windows, dict(rec, samples=k))
        seen["overflows"] = ctx.get(dump.overflows)
        out = [await stream_get(ctx, dump.bytes) for _ in range(2 + ResultDump.RECORD_BYTES)]
        seen["samples"] = out[2 + 8]

    simulate(bench, [tb], "dump_drop")
    assert seen == {"overflows": 2, "samples": 1}


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_top_elaborates_with_wing_on_digital_pins(board):
    platform = BOARDS[board]()
    plan = platform.prepare(CrabwattTop(), name="crabwatt")
    lpf = plan.files["crabwatt.lpf"]
    digital = {"io": {"5": "B10", "6": "B9", "sck": "R17", "cipo": "N15", "0": "N17", "1": "M18"}}
    for pin in ADC_WING_PINS.values():
        assert f'SITE "{digital["io"][pin]}"' in lpf, (pin, lpf)
    assert "EHXPLLL" in plan.files["crabwatt.il"]
