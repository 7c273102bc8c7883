"""SpiFlashMaster speaks SPI mode 0 to a bit-level device; ButtonReboot needs a long press."""

import pytest

from crabwatt.soc.spiflash import ButtonReboot, SpiFlashMaster

from simhelpers import simulate


def spi_device(dut, answers, heard):
    """A mode-0 SPI device: samples COPI on SCK rising edges (into `heard`, a byte per 8 bits) and
    puts the next bit of `answers` on CIPO after each falling edge, the first one at selection. It
    checks that the master holds COPI steady while SCK is high."""
    async def run(ctx):
        bits_out = [(b >> (7 - k)) & 1 for b in answers for k in range(8)]
        bits_in = []
        prev_sck = prev_cs = 0
        copi_at_rise = None
        async for _, _, sck, cs, copi in ctx.tick().sample(dut.sck, dut.cs, dut.copi):
            if cs and not prev_cs and bits_out:
                ctx.set(dut.cipo, bits_out.pop(0))
            if cs and sck and not prev_sck:
                bits_in.append(copi)
                copi_at_rise = copi
            if cs and sck:
                assert copi == copi_at_rise, 'COPI changed while SCK was high'
            if cs and prev_sck and not sck and bits_out:
                ctx.set(dut.cipo, bits_out.pop(0))
            while len(bits_in) >= 8:
                heard.append(int(''.join(map(str, bits_in[:8])), 2))
                del bits_in[:8]
            prev_sck, prev_cs = sck, cs
    return run


@pytest.mark.parametrize('half', [1, 2, 3])
def test_master_exchanges_bytes_msb_first(half):
    dut = SpiFlashMaster(half_period_cycles=half)
    sent = [0x4B, 0x00, 0xFF, 0x81, 0x5A]
    answers = [0xFF, 0xA5, 0x3C, 0x01, 0x80]
    heard, got = [], []

    async def tb(ctx):
        assert not ctx.get(dut.cs) and not ctx.get(dut.sck)
        ctx.set(dut.select, 1)
        await ctx.tick().repeat(2)
        for byte in sent:
            ctx.set(dut.tx_data, byte)
            ctx.set(dut.tx_stb, 1)
            await ctx.tick()
            ctx.set(dut.tx_stb, 0)
            ctx.set(dut.tx_data, 0)     # a write during the transfer would be ignored anyway
            cycles = 0
            while ctx.get(dut.busy):
                ctx.set(dut.tx_stb, 1)  # ignored while busy
                await ctx.tick()
                ctx.set(dut.tx_stb, 0)
                cycles += 1
            assert cycles == 16 * half
            assert not ctx.get(dut.sck)
            got.append(ctx.get(dut.rx_data))
        ctx.set(dut.select, 0)
        await ctx.tick().repeat(2)
        assert not ctx.get(dut.cs)

    simulate(dut, [tb], f'spiflash_{half}', processes=[spi_device(dut, answers, heard)])
    assert heard == sent
    assert got == answers


def test_button_reboots_only_after_a_long_press():
    dut = ButtonReboot(hold_cycles=50)

    async def tb(ctx):
        for _ in range(3):                  # short presses: nothing
            ctx.set(dut.pressed, 1)
            await ctx.tick().repeat(40)
            ctx.set(dut.pressed, 0)
            await ctx.tick().repeat(5)
            assert not ctx.get(dut.reboot)
        ctx.set(dut.pressed, 1)
        held = 0
        while not ctx.get(dut.reboot):
            await ctx.tick()
            held += 1
            assert held < 100
        assert held >= 50
        ctx.set(dut.pressed, 0)             # released: the reconfiguration is already asked for
        await ctx.tick().repeat(10)
        assert ctx.get(dut.reboot)

    simulate(dut, [tb], 'button_reboot')
