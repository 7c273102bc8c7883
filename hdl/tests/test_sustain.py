"""A short version of `bash hdl/run.sh sustain`: the generated Verilog of AdcCapture + PowerDsp under
Verilator, every conversion reaching the DSP in order and unchanged at 4 Msps.

The benchmark runs one simulated second; CI runs 5 ms (20 000 conversions, several FIFO wraps)."""
import pytest

from crabwatt.sustain import run, code_for


def test_sustained_4_msps_without_loss(tmp_path):
    result = run(0.005, tmp_path)
    assert result["samples_dropped"] == 0
    assert result["adc_errors"] == 0
    assert result["mismatches"] == 0
    assert result["conversions"] == pytest.approx(20_000, abs=2)
    assert 0 <= result["in_flight"] <= 4
    assert result["ok"]


def test_emulator_codes_cross_mid_scale():
    # The stimulus must make the zero-crossing path work too: v goes both sides of 8192.
    codes = [code_for(n)[0] for n in range(0, 131072, 512)]
    assert min(codes) < 8192 < max(codes)
