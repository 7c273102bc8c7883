"""The SoC runs a program in Verilator: VexRiscv boots from the ROM, copies .data, clears .bss, uses
the multiplier/divider, reads and writes CSRs (sign extension included) and talks over the UART.

Builds hdl/twin/selftest (rv32im gcc) and the twin without the DSP (about half a minute, cached)."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / 'build/twin/selftest'

pytestmark = pytest.mark.skipif(
    not (shutil.which('verilator') and shutil.which('riscv64-unknown-elf-gcc')),
    reason='needs Debian verilator and gcc-riscv64-unknown-elf (test/debian-packages.txt)')


@pytest.fixture(scope='module')
def twin():
    subprocess.run(['make', '-s', '-C', str(ROOT / 'hdl/twin/selftest'), f'OUT={OUT}'], check=True)
    env = dict(os.environ, CRABWATT_PYTHON=sys.executable)
    subprocess.run(['bash', str(ROOT / 'hdl/twin/build.sh'), str(OUT / 'selftest.bin'), str(OUT), '--no-dsp'],
                   check=True, env=env)
    return OUT / 'crabwatt-twin'


def test_selftest_passes_and_uart_echoes(twin, tmp_path):
    stim = tmp_path / 'stim.bin'
    stim.write_bytes(bytes([0x00, 0x20, 0x00, 0x20]) * 64)      # mid-scale pairs: the DSP is absent
    rx = tmp_path / 'rx.bin'
    rx.write_bytes(b'crab watt!')
    tx = tmp_path / 'tx.bin'
    run = subprocess.run([str(twin), '--stimulus', str(stim), '--no-pty', '--tx-file', str(tx),
                          '--rx-file', str(rx), '--drain-ms', '20'], capture_output=True, text=True, check=True)
    out = tx.read_bytes().decode()
    lines = out.split('\n')
    assert 'selftest: PASS' in lines, out
    assert not [l for l in lines if 'FAIL' in l], out
    assert lines[-1] == 'CRAB WATT!'          # echoed, upper-cased by the program
    assert 'of real time' in run.stderr


def test_harness_rejects_bad_stimulus(twin, tmp_path):
    bad = tmp_path / 'bad.bin'
    bad.write_bytes(bytes([0xFF, 0xFF, 0x00, 0x00]))            # 65535 is not a 14-bit code
    run = subprocess.run([str(twin), '--stimulus', str(bad), '--no-pty'], capture_output=True, text=True)
    assert run.returncode == 1 and 'above 14 bits' in run.stderr
    run = subprocess.run([str(twin)], capture_output=True, text=True)
    assert run.returncode == 2 and '--stimulus is required' in run.stderr
