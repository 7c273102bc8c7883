"""Start the long place-and-route runs of `npm test` early, so they overlap the host suite.

    python -m crabwatt.prebuild

builds what the gateware tests check (the full SoC for both boards into build/gateware-soc/ and the
standalone DSP top for r0.1 into build/gateware-dsp/) with `reuse`: an up-to-date report is kept,
and every build holds its output directory's lock. test/run-all.sh starts this in the background
right after setup; when the gateware suite reaches tests/test_soc_build.py and tests/test_build.py,
their own `build(..., reuse=True)` calls wait on the same locks and take these results (or the
recorded failure, so a failing build is not run twice). Run alone, it is simply a build of all three.

The order is the critical path first: r0.1's SoC routes slowest (~17 min alone), so it starts at once
on one core; the other core builds the DSP top (~4 min), then r0.2's SoC (~12 min). The gateware
suite runs its place-and-route tests last (tests/conftest.py), so its other tests overlap them too. Exit status 0 even when a build fails: the
tests report failures, with the build's message."""
import concurrent.futures
import pathlib
import sys

from .build import BOARDS, build
from .soc.flow import firmware_image

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOC_OUT = ROOT / "build" / "gateware-soc"
DSP_OUT = ROOT / "build" / "gateware-dsp"
DSP_BOARD = "r0.1"


def _builds(board, dsp_first):
    outcome = [_attempt(DSP_BOARD, DSP_OUT, "dsp")] if dsp_first else []
    return outcome + [_attempt(board, SOC_OUT, "soc")]


def _attempt(board, out, design):
    try:
        report = build(board, out, design, reuse=True)
    except Exception as e:  # reported by the tests; here only summarised
        return f"{design} {board}: FAILED: {e}"
    return f"{design} {board}: built in {report['build_seconds']} s, timing met: {report['timing_met']}"


def main():
    firmware_image()  # built once here, so the two builds below don't both run make
    boards = sorted(BOARDS)
    with concurrent.futures.ProcessPoolExecutor(max_workers=len(boards)) as pool:
        jobs = [pool.submit(_builds, board, dsp_first=(board != "r0.1")) for board in boards]
        for job in jobs:
            for line in job.result():
                print(f"prebuild: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
