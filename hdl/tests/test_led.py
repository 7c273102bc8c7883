"""StatusLed: green heartbeat with a host, blue without, red fast blinking after ADC frame errors."""
from crabwatt.soc.led import StatusLed, HEARTBEAT_MS, ERROR_HOLD_MS
from simhelpers import simulate

CYCLES_PER_MS = 4


def record(ms, *, host=False, errors_at_ms=()):
    """The LED colour per millisecond: a string of 'r', 'g', 'b' or '.' (dark)."""
    dut = StatusLed(CYCLES_PER_MS)
    out = []

    async def bench(ctx):
        ctx.set(dut.host_active, host)
        errors = 0
        for t in range(ms):
            if t in errors_at_ms:
                errors += 1
                ctx.set(dut.adc_errors, errors)
            r, g, b = (ctx.get(dut.rgb) >> k & 1 for k in range(3))
            out.append('r' if r else 'g' if g else 'b' if b else '.')
            assert r + g + b <= 1, 'one colour at a time'
            await ctx.tick().repeat(CYCLES_PER_MS)

    simulate(dut, [bench], "led")
    return ''.join(out)


def blinks(trace, colour):
    """Number of separate lit stretches of `colour`."""
    return sum(1 for k, c in enumerate(trace) if c == colour and (k == 0 or trace[k - 1] != colour))


def test_heartbeat_is_green_with_a_host_and_blue_without():
    with_host = record(2 * HEARTBEAT_MS, host=True)
    without = record(2 * HEARTBEAT_MS, host=False)
    assert set(with_host) == {'g', '.'} and blinks(with_host, 'g') == 4      # a double blink a second
    assert set(without) == {'b', '.'} and blinks(without, 'b') == 4
    assert with_host.count('.') > with_host.count('g')                       # mostly dark: a blink


def test_adc_errors_blink_red_fast_for_a_second_then_the_heartbeat_returns():
    trace = record(3 * HEARTBEAT_MS, host=True, errors_at_ms={500})
    red = trace[502:500 + ERROR_HOLD_MS]
    assert set(red) == {'r', '.'} and blinks(red, 'r') == 4                   # 4 a second: not the heartbeat's 2
    assert 'r' not in trace[:500] and 'r' not in trace[500 + ERROR_HOLD_MS + 2:]
    assert blinks(trace[500 + ERROR_HOLD_MS + 2:], 'g') >= 2
