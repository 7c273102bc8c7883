"""SoC building blocks in the Amaranth simulator: CSR bank, bus decoder, result FIFO, UART, watchdog."""

import random

import pytest
from amaranth import *
from amaranth.lib import wiring

from crabwatt.soc import regmap, wishbone
from crabwatt.soc.csr import CsrBank
from crabwatt.soc.result import ResultFifo, WindowRecord
from crabwatt.soc.sysctl import ResetController, Watchdog
from crabwatt.soc.uart import UartPhy
from simhelpers import simulate

CSR_WORD = lambda block, reg: (regmap.address(block, reg) - regmap.CSR_BASE) // 4


async def wb_access(ctx, bus, adr, data=None):
    """One Wishbone access; returns (dat_r, err)."""
    ctx.set(bus.cyc, 1)
    ctx.set(bus.stb, 1)
    ctx.set(bus.adr, adr)
    ctx.set(bus.sel, 0xF)
    ctx.set(bus.we, data is not None)
    ctx.set(bus.dat_w, data or 0)
    for _ in range(8):
        await ctx.tick()
        if ctx.get(bus.ack) or ctx.get(bus.err):
            break
    else:
        raise AssertionError('no ack within 8 cycles')
    result = ctx.get(bus.dat_r), ctx.get(bus.err)
    ctx.set(bus.cyc, 0)
    ctx.set(bus.stb, 0)
    await ctx.tick()
    return result


def test_csr_bank_access_kinds():
    bank = CsrBank(values={('IDENT', 'BOARD'): 2})
    kick = bank['SYS', 'WDT_KICK']
    uptime = bank['SYS', 'UPTIME_MS']
    strobes = []

    async def monitor(ctx):
        async for _, _, stb, value in ctx.tick().sample(kick.w_stb, kick.value):
            if stb:
                strobes.append(value)

    async def tb(ctx):
        bus = bank.bus
        assert (await wb_access(ctx, bus, CSR_WORD('IDENT', 'BOARD')))[0] == 2
        assert (await wb_access(ctx, bus, CSR_WORD('IDENT', 'GATEWARE_VERSION')))[0] == \
            regmap.version_word(regmap.GATEWARE_VERSION)
        assert (await wb_access(ctx, bus, CSR_WORD('DSP', 'V_GAIN')))[0] == 16384      # reset value
        await wb_access(ctx, bus, CSR_WORD('DSP', 'V_GAIN'), 0x1_2345)                 # 16-bit register
        assert (await wb_access(ctx, bus, CSR_WORD('DSP', 'V_GAIN')))[0] == 0x2345
        await wb_access(ctx, bus, CSR_WORD('DSP', 'V_OFFSET'), 0xFFFF)                 # signed 16
        assert (await wb_access(ctx, bus, CSR_WORD('DSP', 'V_OFFSET')))[0] == 0xFFFF_FFFF
        ctx.set(uptime.value, 1234)
        assert (await wb_access(ctx, bus, CSR_WORD('SYS', 'UPTIME_MS')))[0] == 1234
        await wb_access(ctx, bus, CSR_WORD('SYS', 'UPTIME_MS'), 99)                    # ro: ignored
        assert ctx.get(uptime.value) == 1234
        await wb_access(ctx, bus, CSR_WORD('SYS', 'WDT_KICK'), 0xABCD)
        assert (await wb_access(ctx, bus, CSR_WORD('SYS', 'WDT_KICK')))[0] == 0        # wo reads 0
        assert (await wb_access(ctx, bus, 0x3FF))[0] == 0                              # hole reads 0

    simulate(bank, [tb], 'csr_bank', processes=[monitor])
    assert strobes == [0xABCD]      # exactly one strobe, for the one write


def test_decoder_routes_and_faults_unmapped():
    class Dut(wiring.Component):
        bus: wiring.In(wishbone.Signature())

        def elaborate(self, platform):
            m = Module()
            m.submodules.bank = self.bank = bank = CsrBank()
            m.submodules.dec = dec = wishbone.Decoder([(0xF, bank.bus)])
            wiring.connect(m, wiring.flipped(self.bus), dec.bus)
            return m

    dut = Dut()

    async def tb(ctx):
        csr = regmap.CSR_BASE >> 2
        _, err = await wb_access(ctx, dut.bus, csr + CSR_WORD('SYS', 'SCRATCH'), 0xDEAD_BEEF)
        assert not err
        data, err = await wb_access(ctx, dut.bus, csr + CSR_WORD('SYS', 'SCRATCH'))
        assert (data, err) == (0xDEAD_BEEF, 0)
        _, err = await wb_access(ctx, dut.bus, 0x2000_0000 >> 2)        # nothing at 0x2000_0000
        assert err

    simulate(dut, [tb], 'decoder')


def _record(k):
    r = {name: 0 for name in WindowRecord.members}
    r.update(end_index=1000 * (k + 1) + (1 << 40), samples=1000, sum_v=-5 - k, sum_vi=-(1 << 50) - k,
             sum_vv=(1 << 60) + k, min_v=-300, max_v=301, zc_count=k, flags=0x41, config_seq=7,
             energy=-(1 << 90) + k, zc_first_prev=-2, zc_first_cur=3)
    return r


def _expected_words(r):
    u = lambda v, bits: v & ((1 << bits) - 1)
    words = {
        'HEADER': regmap.RECORD_KIND_WINDOW | regmap.WINDOW_RECORD_WORD_COUNT << 8 | r['config_seq'] << 16,
        'END_INDEX_LO': u(r['end_index'], 32), 'END_INDEX_HI': r['end_index'] >> 32,
        'SAMPLES': r['samples'],
        'MIN_MAX_V': u(r['min_v'], 16) | u(r['max_v'], 16) << 16,
        'MIN_MAX_I': u(r['min_i'], 16) | u(r['max_i'], 16) << 16,
        'ZC_COUNT_FLAGS': r['zc_count'] | r['flags'] << 16,
        'ZC_FIRST_OFFSET': r['zc_first_offset'],
        'ZC_FIRST_PREV_CUR': u(r['zc_first_prev'], 16) | u(r['zc_first_cur'], 16) << 16,
        'ZC_LAST_OFFSET': r['zc_last_offset'],
        'ZC_LAST_PREV_CUR': u(r['zc_last_prev'], 16) | u(r['zc_last_cur'], 16) << 16,
        'ENERGY_0': u(r['energy'], 32), 'ENERGY_1': u(r['energy'] >> 32, 32), 'ENERGY_2': u(r['energy'] >> 64, 32),
    }
    for name in ('sum_v', 'sum_i', 'sum_vv', 'sum_ii', 'sum_vi'):
        words[f'{name.upper()}_LO'] = u(r[name], 32)
        words[f'{name.upper()}_HI'] = u(r[name] >> 32, 32)
    return [words[n] for n, _ in regmap.WINDOW_RECORD_WORDS]


def test_result_fifo_layout_and_whole_record_drops():
    n = regmap.WINDOW_RECORD_WORD_COUNT
    dut = ResultFifo(depth_words=2 * n + 5)     # room for two records, not three
    got = []

    async def tb(ctx):
        for k in range(3):                       # the third finds no room: dropped whole
            ctx.set(dut.record, _record(k))
            ctx.set(dut.valid, 1)
            await ctx.tick()
            ctx.set(dut.valid, 0)
            await ctx.tick().repeat(n + 2)
        assert ctx.get(dut.overflows) == 1
        assert ctx.get(dut.level) == 2 * n
        # Back-to-back records: the second arrives while the first is being written.
        while ctx.get(dut.level):
            got.append(ctx.get(dut.data))
            ctx.set(dut.pop, 1)
            await ctx.tick()
            ctx.set(dut.pop, 0)
            await ctx.tick()
        ctx.set(dut.record, _record(5))
        ctx.set(dut.valid, 1)
        await ctx.tick()
        await ctx.tick()
        ctx.set(dut.valid, 0)
        await ctx.tick().repeat(n + 2)
        assert ctx.get(dut.overflows) == 2
        assert ctx.get(dut.level) == n

    simulate(dut, [tb], 'result_fifo')
    assert got == _expected_words(_record(0)) + _expected_words(_record(1))


@pytest.mark.parametrize('divisor', [4, 7])
def test_uart_loopback(divisor):
    dut = UartPhy()
    rng = random.Random(divisor)
    sent = [rng.randrange(256) for _ in range(12)] + [0x00, 0xFF]
    received = []

    async def tb(ctx):
        ctx.set(dut.divisor, divisor)
        for b in sent:
            ctx.set(dut.tx.payload, b)
            ctx.set(dut.tx.valid, 1)
            await ctx.tick().until(dut.tx.ready)
            ctx.set(dut.tx.valid, 0)
        await ctx.tick().repeat(12 * divisor)
        assert ctx.get(dut.framing_errors) == 0

    async def wire(ctx):
        async for _, _, pin in ctx.tick().sample(dut.tx_pin):
            ctx.set(dut.rx_pin, pin)

    async def sink(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.rx.valid, dut.rx.payload):
            if valid:
                received.append(payload)

    simulate(dut, [tb], f'uart_{divisor}', processes=[wire, sink])
    assert received == sent


def test_uart_framing_error_drops_byte():
    dut = UartPhy()

    async def tb(ctx):
        ctx.set(dut.divisor, 4)
        ctx.set(dut.rx_pin, 1)
        await ctx.tick().repeat(8)
        for bit in [0] + [1, 0, 1, 0, 1, 0, 1, 0] + [0] * 3:    # stop bit low: a break, not a byte
            ctx.set(dut.rx_pin, bit)
            await ctx.tick().repeat(4)
        ctx.set(dut.rx_pin, 1)
        await ctx.tick().repeat(20)
        assert ctx.get(dut.framing_errors) == 1

    seen = []

    async def sink(ctx):
        async for _, _, valid in ctx.tick().sample(dut.rx.valid):
            if valid:
                seen.append(1)

    simulate(dut, [tb], 'uart_framing', processes=[sink])
    assert seen == []


def test_watchdog_fires_without_key_kicks_only():
    dut = Watchdog()
    fired_at = []

    async def tb(ctx):
        ctx.set(dut.timeout_ms, 5)
        ctx.set(dut.timeout_written, 1)
        await ctx.tick()
        ctx.set(dut.timeout_written, 0)
        for ms in range(1, 30):
            ctx.set(dut.tick_ms, 1)
            if ms in (3, 6):                     # good kicks
                ctx.set(dut.kick_stb, 1)
                ctx.set(dut.kick_data, regmap.WDT_KICK_KEY)
            elif ms == 9:                        # a stray store: not a kick
                ctx.set(dut.kick_stb, 1)
                ctx.set(dut.kick_data, 0x1234)
            await ctx.tick()
            ctx.set(dut.kick_stb, 0)
            ctx.set(dut.tick_ms, 0)
            await ctx.tick()
            if ctx.get(dut.fire):
                fired_at.append(ms)
                break

    simulate(dut, [tb], 'watchdog')
    assert fired_at == [11]      # last good kick at 6 ms, timeout 5 ms


def test_watchdog_disabled_by_zero_timeout():
    dut = Watchdog()

    async def tb(ctx):
        for _ in range(100):
            ctx.set(dut.tick_ms, 1)
            await ctx.tick()
            assert not ctx.get(dut.fire)

    simulate(dut, [tb], 'watchdog_off')


def test_reset_controller_counts_and_stretches():
    dut = ResetController(stretch=4)

    async def tb(ctx):
        assert ctx.get(dut.cause_watchdog) == 0
        ctx.set(dut.fire, 1)
        await ctx.tick()
        ctx.set(dut.fire, 0)
        held = 0
        while ctx.get(dut.soc_reset):
            held += 1
            await ctx.tick()
        assert held == 4
        assert ctx.get(dut.wdt_resets) == 1 and ctx.get(dut.cause_watchdog) == 1

    simulate(dut, [tb], 'reset_controller')
