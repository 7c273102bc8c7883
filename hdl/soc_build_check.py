"""The full design (SoC, DSP, USB, firmware in ROM) builds for both boards with the PyPI tools, meets
timing with the system clock at 48 MHz or more, and leaves a .bit and a .dfu for the bootloader.
This is what `npm run gateware -- --board r0.1|r0.2` does.

Not in `npm test` for now: yowasp-nextpnr's router takes from ~20 CPU-minutes to well over an hour a board
depending on the netlist (the SoC fills 63-66 % of the LUTs and 48 of 56 EBR), which CI's 90 minutes cannot
absorb. Run it by hand (both boards in parallel, ~1 h):
    cd hdl && ../build/venv/bin/python -m pytest soc_build_check.py"""

import concurrent.futures
import functools
import json
import pathlib

import pytest

from crabwatt.build import BOARDS, build
from crabwatt.soc.dfu import FOBOOT_PID, FOBOOT_VID, parse_suffix

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / 'build' / 'gateware-soc'


@functools.cache
def built_reports():
    """Both boards at once, each in its own process: yowasp-nextpnr is single-threaded and a board's
    place and route takes most of CI's time, so two cores halve it. A board's failure is returned,
    not raised, so the other board's test still reports."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=len(BOARDS)) as pool:
        jobs = {board: pool.submit(build, board, OUT, design='soc') for board in sorted(BOARDS)}
        return {board: job.exception() or job.result() for board, job in jobs.items()}


@pytest.mark.parametrize('board', sorted(BOARDS))
def test_soc_place_and_route(board):
    report = built_reports()[board]
    if isinstance(report, BaseException):
        raise report
    assert json.loads((OUT / board / 'report.json').read_text()) == report
    assert report['timing_problems'] == [], report
    assert report['fmax_mhz']['sync'] >= 48.0, report
    assert report['timing_met'], report
    bit = (OUT / board / 'crabwatt.bit').read_bytes()
    dfu = (OUT / board / 'crabwatt.dfu').read_bytes()
    assert len(bit) > 100_000 and dfu[:len(bit)] == bit
    assert parse_suffix(dfu) == {'vid': FOBOOT_VID, 'pid': FOBOOT_PID, 'device': 0xFFFF, 'image_bytes': len(bit)}
