"""UartTx and UartRx: bytes survive the line, at the bit timing the divisor sets."""
import pytest

from amaranth import *
from amaranth.lib import wiring

from crabwatt.uart import UartTx, UartRx
from simhelpers import simulate, stream_put, rng_for

DIVISOR = 16


class Loop(Elaboratable):
    def __init__(self):
        self.tx = UartTx(DIVISOR)
        self.rx = UartRx(DIVISOR)

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx, m.submodules.rx = self.tx, self.rx
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        return m


def test_loopback_bytes():
    dut = Loop()
    data = [0x00, 0xFF, 0x55, 0xAA, 0xC0, 0x01, 0x80] + list(range(0, 256, 37))
    got = []

    async def send(ctx):
        for b in data:
            await stream_put(ctx, dut.tx.bytes, b)

    async def receive(ctx):
        ctx.set(dut.rx.bytes.ready, 1)
        while len(got) < len(data):
            _, _, valid, payload = await ctx.tick().sample(dut.rx.bytes.valid, dut.rx.bytes.payload)
            if valid:
                got.append(payload)

    simulate(dut, [send, receive], "uart")
    assert got == data


def test_tx_bit_timing():
    dut = UartTx(DIVISOR)
    line = []

    async def tb(ctx):
        await stream_put(ctx, dut.bytes, 0b1011_0010)
        for _ in range(DIVISOR * 11):
            line.append(ctx.get(dut.tx))
            await ctx.tick()

    simulate(dut, [tb], "uart_tx")
    bits = [line[k * DIVISOR + DIVISOR // 2] for k in range(10)]
    assert bits == [0] + [(0b1011_0010 >> k) & 1 for k in range(8)] + [1]


def test_divisor_is_checked():
    with pytest.raises(ValueError, match="divisor"):
        UartTx(1)
    with pytest.raises(ValueError, match="divisor"):
        UartRx(3)
