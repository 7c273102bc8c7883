"""Choosing the ADC capture point at bring-up: judge each `read_delay` from what it reads with the
inputs at a known level, and take the middle of the widest run of good settings.

A setting is judged on a few hundred conversions read with both inputs shorted (mid-scale, code
8192, give or take the front end's offset and noise) and on the leading-zero errors counted
meanwhile. What each wrong capture point looks like (crabwatt.adc):

- inside a bit's change window: the register takes whatever it finds, codes jump around and the
  leading zeros fail: `unstable` or `leading zeros`;
- one bit late (data early): LZ2, D13 ... read as the leading zeros: `leading zeros` when D13 is 1
  (8192 and above), else codes near full scale: `off mid-scale`;
- one bit early (data late): LZ1, LZ1, LZ2, D13..D1: codes halved (~4096) with no frame error, the
  fault this check exists for: `off mid-scale`. Two bits early: ~2048, and so on.

So a setting passes only when it reads mid-scale steadily with every leading zero right; a wrong
one is caught, never silently wrong. This is the reference for the firmware's and the host's scan
(`crabwatt bringup`): it has no hardware dependency.
"""
from dataclasses import dataclass

MID_SCALE = 8192
#: Offset the inputs may show when shorted (the front end's and the ADC's midscale error), LSB.
#: Far below a one-bit shift's 4096.
OFFSET_TOLERANCE_LSB = 64
#: Peak-to-peak noise a steady reading may show with shorted inputs, LSB.
NOISE_TOLERANCE_LSB = 32


@dataclass(frozen=True)
class Verdict:
    read_delay: int
    ok: bool
    reason: str = ""


def judge(read_delay, codes, adc_errors, *, expect=(MID_SCALE, MID_SCALE)):
    """codes: [(cv, ci), ...] read at `read_delay` with the inputs at `expect`; adc_errors: the
    leading-zero errors counted while reading them."""
    if not codes:
        return Verdict(read_delay, False, "no samples")
    if adc_errors:
        return Verdict(read_delay, False, f"leading zeros: {adc_errors} bad frames")
    for channel, name in ((0, "voltage"), (1, "current")):
        values = [c[channel] for c in codes]
        spread = max(values) - min(values)
        if spread > NOISE_TOLERANCE_LSB:
            return Verdict(read_delay, False, f"unstable: {name} codes span {spread} LSB")
        mean = sum(values) / len(values)
        if abs(mean - expect[channel]) > OFFSET_TOLERANCE_LSB:
            return Verdict(read_delay, False, f"off mid-scale: {name} reads {mean:.0f}, "
                                              f"expected {expect[channel]}")
    return Verdict(read_delay, True)


def choose(verdicts):
    """The middle of the widest run of consecutive passing settings: (read_delay, run length), or
    (None, 0) when nothing passed. `verdicts` in read_delay order, one step apart."""
    best, run_start, best_len = None, None, 0
    for k, v in enumerate(list(verdicts) + [Verdict(-1, False)]):
        if v.ok and run_start is None:
            run_start = k
        elif not v.ok and run_start is not None:
            if k - run_start > best_len:
                best, best_len = (run_start, k - 1), k - run_start
            run_start = None
    if best is None:
        return None, 0
    verdicts = list(verdicts)
    return verdicts[(best[0] + best[1]) // 2].read_delay, best_len
