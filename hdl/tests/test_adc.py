"""AdcCapture against the AD7357 timing model, through the async FIFO into the system domain."""
import pytest

from amaranth import *

from crabwatt.adc import FRAME_SCLK
from ad7357_model import AD7357, TimingViolation, T4_NS
from adc_harness import run_capture, ADC_PERIOD_NS
from simhelpers import rng_for

def ramp_codes(n, rng):
    edge = [(0, 16383), (16383, 0), (8192, 8191), (0x2AAA, 0x1555)]
    return edge + [(rng.randrange(16384), rng.randrange(16384)) for _ in range(n - len(edge))]


def test_codes_indices_and_timing_through_the_fifo():
    codes = ramp_codes(60, rng_for("codes"))
    got, cap, model = run_capture(codes)
    assert [(cv, ci) for cv, ci, _ in got] == codes
    assert [idx for _, _, idx in got] == list(range(len(codes)))
    assert model.conversions >= len(codes)


def test_conversion_rate_is_4_msps():
    # 18 SCLK at 72 MHz: one conversion every 250 ns.
    assert FRAME_SCLK / 72e6 == pytest.approx(250e-9)


def test_model_rejects_reading_inside_the_change_window():
    # The fixed capture point of earlier builds (32: the falling edge one period after the bit was
    # shifted out) with a 4 ns round trip reads while the bit changes: the model must refuse it.
    codes = ramp_codes(4, rng_for("late"))
    with pytest.raises(TimingViolation, match="change window"):
        run_capture(codes, read_delay=32, out_delay_ns=2.0, in_delay_ns=2.0)


def test_model_rejects_short_quiet_time_and_aborted_conversion():
    m = AD7357([(1, 2), (3, 4)])
    m.cs(0.0, False)
    for k in range(16):
        m.sclk(10 + 13.9 * k, True)
        m.sclk(17 + 13.9 * k, False)
    m.cs(240.0, True)
    with pytest.raises(TimingViolation, match="tQUIET"):
        m.cs(245.0, False)
    m2 = AD7357([(1, 2)])
    m2.cs(0.0, False)
    m2.sclk(10.0, True)
    m2.sclk(17.0, False)
    with pytest.raises(TimingViolation, match="tCONVERT"):
        m2.cs(30.0, True)


def test_slow_consumer_drops_whole_samples_and_counts_them():
    codes = ramp_codes(60, rng_for("drop"))
    # The consumer starts late: the 16-deep FIFO overflows, later samples arrive with true indices.
    got, cap, _ = run_capture(codes, consumer_busy=0.0, stall_cycles=48 * 8, n_read=20)
    indices = [idx for _, _, idx in got]
    assert indices == sorted(indices) and indices[-1] > len(got) - 1
    for cv, ci, idx in got:
        assert (cv, ci) == codes[idx]
    assert cap["dropped"] == indices[-1] + 1 - len(got)
    assert cap["errors"] == 0


def test_no_sample_is_numbered_before_the_read_phase_first_settles():
    # Power-up: the read clock's phase walks from the PLL's configured phase for a while; conversions
    # read meanwhile are not samples at all. Sample 0 is the first conversion read wholly after it.
    codes = ramp_codes(40, rng_for("power-up"))
    walk_cycles = 5 * FRAME_SCLK + 7
    got, cap, model = run_capture(codes, n_read=20, settled=lambda cycle: cycle >= walk_cycles)
    assert [idx for _, _, idx in got] == list(range(20))
    offset = next(k for k in range(len(codes)) if codes[k] == (got[0][0], got[0][1]))
    # The conversions whose bits overlap the walk (or the frame before its end) are skipped, no more.
    assert walk_cycles // FRAME_SCLK <= offset <= walk_cycles // FRAME_SCLK + 2
    assert [(cv, ci) for cv, ci, _ in got] == codes[offset:offset + 20]
    assert (cap["dropped"], cap["errors"]) == (0, 0)


def test_a_read_phase_change_drops_the_conversions_it_garbles_and_counts_them():
    # Mid-run the phase moves (a new READ_DELAY) for 30 cycles: the conversions read during it, and in
    # the frame after (the PLL lags the stepper), are dropped with their indices used up.
    codes = ramp_codes(40, rng_for("re-phase"))
    moving = range(12 * FRAME_SCLK + 5, 12 * FRAME_SCLK + 35)
    got, cap, _ = run_capture(codes, n_read=30, settled=lambda cycle: cycle not in moving)
    indices = [idx for _, _, idx in got]
    missing = sorted(set(range(indices[-1] + 1)) - set(indices))
    assert 2 <= len(missing) <= 4 and missing == list(range(missing[0], missing[-1] + 1))
    assert 10 <= missing[0] <= 12
    for cv, ci, idx in got:
        assert (cv, ci) == codes[idx]
    assert (cap["dropped"], cap["errors"]) == (len(missing), 0)


def test_bad_leading_zeros_are_counted():
    codes = ramp_codes(12, rng_for("lz"))
    got, counters, _ = run_capture(codes, corrupt={3, 7})
    assert (counters["dropped"], counters["errors"]) == (0, 2)
    assert [idx for _, _, idx in got] == list(range(12))


def test_reset_mid_conversion_raises_cs_and_the_new_epoch_starts_clean():
    # A watchdog reset in the middle of conversion 3: CS must go high (and SCLK idle) during the
    # reset, so the ADC ends that conversion (aborted) and sees a clean CS fall afterwards; the first
    # sample of the new epoch (index 0) is the next conversion's codes, not a frame of 16+ SCLKs.
    codes = ramp_codes(12, rng_for("reset"))
    got, counters, model = run_capture(codes, consumer_busy=0.0, n_read=8, reset_at=3 * FRAME_SCLK + 9,
                                       allow_abort=True)
    assert model.aborted == 1
    # The reset is synchronous: from its second edge the controls show their reset values.
    assert all(cs_n and not sclk_en for _, cs_n, sclk_en in counters["controls_in_reset"][2:])
    assert [(cv, ci) for cv, ci, _ in got] == model.completed[:len(got)]
    indices = [idx for _, _, idx in got]
    restart = indices.index(0, 1)
    assert indices == list(range(restart)) + list(range(len(got) - restart))
    assert counters["errors"] == 0
