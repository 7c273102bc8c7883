"""The netlist handed to Yosys and nextpnr is the same, byte for byte, for the same sources: in any
run and any checkout. nextpnr's placement for a given seed depends on every cell and net name, and
its router either finishes in minutes or crawls for an hour depending on that placement; a seed that
routes is known to route again only if the netlist is the same one.

Two ways it was not (issue 13): LUNA names a second endpoint whose class name is taken after the
object's id() (`TransformedElaboratable_140018170374224`, our endpoints under ResetInserter), and
Amaranth's src attributes hold the checkout's absolute path."""

import pathlib

import pytest

from crabwatt.build import BOARDS, build_plan
from crabwatt.soc.flow import firmware_image

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize('board', sorted(BOARDS))
def test_soc_netlist_is_reproducible(board):
    image = firmware_image()
    first = build_plan(board, 'soc', image).files['crabwatt.il']
    second = build_plan(board, 'soc', image).files['crabwatt.il']   # new objects, new id()s
    assert first == second
    assert str(ROOT) not in first
    assert 'TransformedElaboratable_' not in first
    # The data endpoints, restarted at a bus reset, are named by their number.
    assert '.usb.Endpoint1' in first and '.usb.Endpoint2' in first
