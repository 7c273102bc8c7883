"""The bitstream flow's SoC steps: timing gate and .dfu packaging."""

from crabwatt.soc.dfu import parse_suffix
from crabwatt.soc.flow import timing_problems, write_dfu


def test_timing_gate():
    ok = {'fmax_mhz': {'sync': 61.2, 'adc': 80.1, 'usb': 120.0},
          'constraint_mhz': {'sync': 48.0, 'adc': 72.0, 'usb': 12.0}}
    assert timing_problems(ok) == []
    slow = {'fmax_mhz': {'sync': 45.0, 'adc': 80.1}, 'constraint_mhz': {'sync': 48.0, 'adc': 72.0}}
    assert len(timing_problems(slow)) == 2          # below 48 MHz, and below its own constraint
    adc_slow = {'fmax_mhz': {'sync': 50.0, 'adc': 70.0}, 'constraint_mhz': {'sync': 48.0, 'adc': 72.0}}
    assert timing_problems(adc_slow) == ['adc reaches 70.0 MHz of its 72.0 MHz constraint']
    assert timing_problems({}) != []                 # no timing at all is a failure, not a pass


def test_write_dfu(tmp_path):
    bit = tmp_path / 'crabwatt.bit'
    bit.write_bytes(b'\xff' * 1000)
    dfu = write_dfu(bit)
    assert dfu.name == 'crabwatt.dfu'
    assert parse_suffix(dfu.read_bytes())['image_bytes'] == 1000
