"""The ADC capture-phase eye in the model: every read_delay (crabwatt.adc) simulated against the
AD7357 model with worst-case t4 (11 ns) and t7 (3.5 ns), the FPGA's I/O delays as given, and the
bring-up check's verdict for each (crabwatt.adc_timing).

    cd hdl && nice ../build/venv/bin/python adc_eye.py [--out-delay-ns 1.0] [--in-delay-ns 1.0] [--to 128]

Prints each setting (PASS, or CAUGHT and why), the eye (settings whose every read was valid) and its
width in ns, and the setting the scan chooses. Minutes of CPU on a busy machine.
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "tests"))

from crabwatt.adc import READ_STEPS  # noqa: E402
from crabwatt.adc_timing import judge, choose, MID_SCALE  # noqa: E402
from adc_harness import run_capture, STEP_NS  # noqa: E402
from simhelpers import rng_for  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-delay-ns", type=float, default=1.0, help="FPGA output register to the ADC pin")
    ap.add_argument("--in-delay-ns", type=float, default=1.0, help="ADC pin to the FPGA input register")
    ap.add_argument("--to", type=int, default=2 * READ_STEPS, help="scan read_delay 0 .. TO-1")
    ap.add_argument("--conversions", type=int, default=8)
    a = ap.parse_args(argv)
    verdicts, valid = [], []
    for r in range(a.to):
        rng = rng_for(f"eye{r}")
        codes = [(MID_SCALE + rng.randint(-3, 3), MID_SCALE + rng.randint(-3, 3)) for _ in range(a.conversions)]
        got, counters, model = run_capture(codes, read_delay=r, consumer_busy=0.0, model_rng=rng_for(f"line{r}"),
                                           out_delay_ns=a.out_delay_ns, in_delay_ns=a.in_delay_ns)
        read = [(cv, ci) for cv, ci, _ in got]
        v = judge(r, read, counters["errors"])
        verdicts.append(v)
        if model.violations == 0 and read == model.completed[:len(read)]:
            valid.append(r)
        print(f"{r:3d} {r * STEP_NS:6.2f} ns  {'PASS' if v.ok else 'CAUGHT'} {v.reason}", flush=True)
    chosen, width = choose(verdicts)
    print(f"round trip {a.out_delay_ns + a.in_delay_ns} ns, t4 11 ns, t7 3.5 ns, register aperture 1 ns:")
    if valid:
        print(f"eye: read_delay {valid[0]}..{valid[-1]}, {len(valid)} steps of {STEP_NS * 1000:.0f} ps = "
              f"{len(valid) * STEP_NS:.2f} ns")
    print(f"chosen: {chosen} (passing run of {width} settings)")
    return 0 if valid and chosen is not None else 1


if __name__ == "__main__":
    sys.exit(main())
