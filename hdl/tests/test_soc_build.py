"""The full design (SoC, DSP, USB, firmware in ROM) builds for both boards with the PyPI tools, meets
timing with the system clock at 48 MHz or more, and leaves a .bit and a .dfu for the bootloader.
This is what `npm run gateware -- --board r0.1|r0.2` does (about 8 minutes a board on 2 cores)."""

import json
import pathlib

import pytest

from crabwatt.build import BOARDS, build
from crabwatt.soc.dfu import FOBOOT_PID, FOBOOT_VID, parse_suffix

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / 'build' / 'gateware-soc'


@pytest.mark.parametrize('board', sorted(BOARDS))
def test_soc_place_and_route(board):
    report = build(board, OUT, design='soc')
    assert json.loads((OUT / board / 'report.json').read_text()) == report
    assert report['timing_problems'] == [], report
    assert report['fmax_mhz']['sync'] >= 48.0, report
    assert report['timing_met'], report
    bit = (OUT / board / 'crabwatt.bit').read_bytes()
    dfu = (OUT / board / 'crabwatt.dfu').read_bytes()
    assert len(bit) > 100_000 and dfu[:len(bit)] == bit
    assert parse_suffix(dfu) == {'vid': FOBOOT_VID, 'pid': FOBOOT_PID, 'device': 0xFFFF, 'image_bytes': len(bit)}
