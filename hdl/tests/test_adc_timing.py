"""The capture point: which read_delay settings read right, and that every other one is caught by
the bring-up check (crabwatt.adc_timing) rather than giving wrong codes silently."""
import json
import pathlib

import pytest

from crabwatt.adc import DEFAULT_READ_DELAY, READ_STEPS, read_latency
from crabwatt.adc_timing import judge, choose, MID_SCALE, Verdict
from adc_harness import run_capture, STEP_NS
from simhelpers import rng_for

CONVERSIONS = 8


def shorted_inputs(n, rng):
    """Both inputs shorted: mid-scale with a few LSB of noise."""
    return [(MID_SCALE + rng.randint(-3, 3), MID_SCALE + rng.randint(-3, 3)) for _ in range(n)]


def scan(read_delays, **model_args):
    """[(verdict, codes exact, reads inside a change window)] per setting, with random bits for
    every read the model finds invalid (what the register would take)."""
    table = []
    for r in read_delays:
        codes = shorted_inputs(CONVERSIONS, rng_for(f"codes{r}"))
        got, counters, model = run_capture(codes, read_delay=r, consumer_busy=0.0,
                                           model_rng=rng_for(f"line{r}"), **model_args)
        read = [(cv, ci) for cv, ci, _ in got]
        table.append((judge(r, read, counters["errors"]), read == model.completed[:len(read)],
                      model.violations))
    return table


def test_read_latency_counts_whole_periods_and_late_phases():
    assert [read_latency(r) for r in (0, 31, 32, 63, 64, 95, 96, 112, 255)] == [2, 2, 3, 3, 3, 3, 4, 4, 6]


@pytest.mark.parametrize("out_delay_ns, in_delay_ns", [(1.0, 1.0), (3.0, 3.5)])
def test_every_capture_point_reads_right_or_is_caught(out_delay_ns, in_delay_ns):
    # Worst-case t4 (11 ns) and t7 (3.5 ns): the widest window in which a bit may change.
    table = scan(range(0, 3 * READ_STEPS, 4), out_delay_ns=out_delay_ns, in_delay_ns=in_delay_ns)
    for verdict, exact, violations in table:
        assert not verdict.ok or exact, f"read_delay {verdict.read_delay} passed with wrong codes"
        # A setting reading inside a change window is never the one that passes.
        assert not verdict.ok or violations == 0
    passing = [v.read_delay for v, _, _ in table if v.ok]
    assert passing and passing == list(range(passing[0], passing[-1] + 1, 4)), "one eye"
    reasons = {v.reason.split(":")[0] for v, _, _ in table if not v.ok}
    assert "leading zeros" in reasons           # one bit late, and inside the change windows
    if out_delay_ns + in_delay_ns > 5:
        # The round trip is long enough for settings that read one bit early, cleanly (halved
        # codes, no frame error): caught too.
        assert "off mid-scale" in reasons
    chosen, width = choose([v for v, _, _ in table])
    assert chosen in passing and width == len(passing)
    if (out_delay_ns, in_delay_ns) == (1.0, 1.0):
        assert passing[0] <= DEFAULT_READ_DELAY <= passing[-1]
    print(f"\nround trip {out_delay_ns + in_delay_ns} ns: eye {passing[0]}..{passing[-1]} "
          f"(~{(passing[-1] - passing[0] + 4) * STEP_NS:.1f} ns), chosen {chosen}")
    for verdict, exact, violations in table:
        print(f"  {verdict.read_delay:3d} {'PASS' if verdict.ok else 'CAUGHT'} {verdict.reason}")


def test_the_original_fault_is_caught():
    # A slow part (data changes 9.5..11 ns after SCLK falls) behind a 5 ns round trip: the fixed
    # capture point of earlier builds (32) reads each bit one period early, cleanly: LZ1, LZ1, LZ2,
    # D13..D1. Codes come out halved and no leading-zero check fires.
    slow = dict(out_delay_ns=2.5, in_delay_ns=2.5, t7_ns=9.5, t4_ns=11.0)
    codes = shorted_inputs(CONVERSIONS, rng_for("fault"))
    got, counters, _ = run_capture(codes, read_delay=32, consumer_busy=0.0, **slow)
    assert [(cv, ci) for cv, ci, _ in got] == [(a >> 1, b >> 1) for a, b in codes]
    assert counters["errors"] == 0
    verdict = judge(32, [(cv, ci) for cv, ci, _ in got], counters["errors"])
    assert not verdict.ok and verdict.reason.startswith("off mid-scale")
    # The scan finds the capture point that reads them right.
    table = scan(range(0, 2 * READ_STEPS, 4), **slow)
    chosen, _ = choose([v for v, _, _ in table])
    got, counters, model = run_capture(codes, read_delay=chosen, consumer_busy=0.0, **slow)
    assert [(cv, ci) for cv, ci, _ in got] == codes and counters["errors"] == 0


#: The judge's table shared with the host's port (server/device/adc-judge.ts): both sides must give
#: exactly these verdicts, reasons and choices.
JUDGE_TABLE = json.loads((pathlib.Path(__file__).resolve().parents[2] / "test/vectors/adc/judge.json").read_text())


@pytest.mark.parametrize("case", JUDGE_TABLE["judge"], ids=lambda c: c["name"])
def test_judge_agrees_with_the_shared_table(case):
    expect = tuple(case.get("expect", (MID_SCALE, MID_SCALE)))
    v = judge(case["read_delay"], [tuple(c) for c in case["codes"]], case["adc_errors"], expect=expect)
    assert (v.ok, v.reason) == (case["ok"], case["reason"])


@pytest.mark.parametrize("case", JUDGE_TABLE["choose"], ids=lambda c: c["name"])
def test_choose_agrees_with_the_shared_table(case):
    row = [Verdict(case["first_read_delay"] + k, bit == "1") for k, bit in enumerate(case["passes"])]
    assert choose(row) == (case["chosen"], case["width"])
