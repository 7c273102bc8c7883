"""The DFU suffix writer agrees with dfu-util's own tools and rejects damaged files."""

import shutil
import subprocess

import pytest

from crabwatt.soc.dfu import DfuSuffixError, add_suffix, parse_suffix

IMAGE = bytes(range(256)) * 37 + b'\xff\x00'


def test_round_trip():
    data = add_suffix(IMAGE)
    assert data[:len(IMAGE)] == IMAGE and len(data) == len(IMAGE) + 16
    assert parse_suffix(data) == {'vid': 0x1209, 'pid': 0x5AF0, 'device': 0xFFFF, 'image_bytes': len(IMAGE)}


def test_damage_is_detected():
    data = bytearray(add_suffix(IMAGE))
    data[100] ^= 1
    with pytest.raises(DfuSuffixError, match='CRC'):
        parse_suffix(bytes(data))
    with pytest.raises(DfuSuffixError, match='no DFU suffix'):
        parse_suffix(IMAGE)
    with pytest.raises(DfuSuffixError):
        add_suffix(b'')
    with pytest.raises(DfuSuffixError):
        add_suffix(IMAGE, vid=0x10000)


@pytest.mark.skipif(not shutil.which('dfu-suffix'), reason="needs Debian's dfu-util (dfu-suffix)")
def test_matches_dfu_suffix_tool(tmp_path):
    theirs = tmp_path / 'theirs.dfu'
    theirs.write_bytes(IMAGE)
    subprocess.run(['dfu-suffix', '-v', '1209', '-p', '5af0', '-a', str(theirs)], check=True, capture_output=True)
    assert add_suffix(IMAGE) == theirs.read_bytes()
    ours = tmp_path / 'ours.dfu'
    ours.write_bytes(add_suffix(IMAGE))
    check = subprocess.run(['dfu-suffix', '-c', str(ours)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_write_dfu_refuses_a_bitstream_larger_than_the_flash_slot(tmp_path):
    from crabwatt.soc import regmap
    from crabwatt.soc.flow import FlowError, write_dfu
    fits = tmp_path / 'fits.bit'
    fits.write_bytes(b'\xff' * regmap.FLASH_BITSTREAM_SLOT_BYTES)
    assert parse_suffix(write_dfu(fits).read_bytes())['image_bytes'] == regmap.FLASH_BITSTREAM_SLOT_BYTES
    big = tmp_path / 'big.bit'
    big.write_bytes(b'\xff' * (regmap.FLASH_BITSTREAM_SLOT_BYTES + 1))
    with pytest.raises(FlowError, match='flash slot'):
        write_dfu(big)
    assert not big.with_suffix('.dfu').exists()
    # The user area (the calibration record) ends the first MiB, above the slot.
    assert regmap.FLASH_BITSTREAM_BASE + regmap.FLASH_BITSTREAM_SLOT_BYTES + regmap.FLASH_USER_BYTES == 0x10_0000
