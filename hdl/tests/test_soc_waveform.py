"""The waveform FIFO: stream samples kept whole with their j, dropped (and counted) when full."""
from crabwatt.soc.waveform import WaveformFifo, WAVEFORM_FIFO_SAMPLES, J_BITS
from simhelpers import simulate


def _sample(j):
    return (-(1 << 18) + 977 * j) % (1 << 19) - (1 << 18), (1 << 18) - 1 - 3 * j, (1 << J_BITS) - 5 + j


def test_keeps_samples_with_their_j_and_counts_drops():
    dut = WaveformFifo()
    extra = 3
    got = []

    async def tb(ctx):
        for k in range(WAVEFORM_FIFO_SAMPLES + extra):
            v, i, j = _sample(k)
            ctx.set(dut.v, v)
            ctx.set(dut.i, i)
            ctx.set(dut.count, j)
            ctx.set(dut.valid, 1)
            await ctx.tick()
        ctx.set(dut.valid, 0)
        await ctx.tick().repeat(2)
        assert ctx.get(dut.drops) == extra
        assert ctx.get(dut.level) == WAVEFORM_FIFO_SAMPLES
        while ctx.get(dut.level):
            got.append((ctx.get(dut.head_v), ctx.get(dut.head_i), ctx.get(dut.head_j)))
            ctx.set(dut.pop, 1)
            await ctx.tick()
            ctx.set(dut.pop, 0)
            await ctx.tick()

    simulate(dut, [tb], 'waveform_fifo')
    want = [_sample(k) for k in range(WAVEFORM_FIFO_SAMPLES)]
    assert got == [(v, i, j % (1 << J_BITS)) for v, i, j in want]
