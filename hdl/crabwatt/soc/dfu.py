"""The DFU file suffix (USB DFU 1.1, appendix B): the 16-byte trailer that tells dfu-util which
device a file is for, so a bitstream cannot be flashed onto the wrong board by accident.

    bcdDevice u16, idProduct u16, idVendor u16, bcdDFU u16 (0x0100), "UFD", bLength u8 (16),
    dwCRC u32 — all little-endian; dwCRC is the CRC-32 of everything before it (file and suffix),
    without the final inversion (what dfu-util checks).
"""

import argparse
import pathlib
import struct
import sys
import zlib

__all__ = ['add_suffix', 'parse_suffix', 'DfuSuffixError', 'FOBOOT_VID', 'FOBOOT_PID']

FOBOOT_VID = 0x1209
FOBOOT_PID = 0x5AF0
SUFFIX_BYTES = 16


class DfuSuffixError(ValueError):
    pass


def _crc(data: bytes) -> int:
    return zlib.crc32(data) ^ 0xFFFF_FFFF


def add_suffix(image: bytes, *, vid: int = FOBOOT_VID, pid: int = FOBOOT_PID, device: int = 0xFFFF) -> bytes:
    for name, value in (('vid', vid), ('pid', pid), ('device', device)):
        if not 0 <= value <= 0xFFFF:
            raise DfuSuffixError(f'{name} {value:#x} does not fit 16 bits')
    if not image:
        raise DfuSuffixError('refusing to wrap an empty image')
    body = image + struct.pack('<HHHH3sB', device, pid, vid, 0x0100, b'UFD', SUFFIX_BYTES)
    return body + struct.pack('<I', _crc(body))


def parse_suffix(data: bytes) -> dict:
    """Checks a suffixed file; returns {vid, pid, device, image_bytes}."""
    if len(data) < SUFFIX_BYTES:
        raise DfuSuffixError('shorter than a DFU suffix')
    device, pid, vid, bcd, sig, length, crc = struct.unpack('<HHHH3sBI', data[-SUFFIX_BYTES:])
    if sig != b'UFD' or length != SUFFIX_BYTES:
        raise DfuSuffixError('no DFU suffix (signature "UFD" with length 16 missing)')
    if bcd != 0x0100:
        raise DfuSuffixError(f'bcdDFU {bcd:#06x} is not DFU 1.0/1.1 (0x0100)')
    if _crc(data[:-4]) != crc:
        raise DfuSuffixError('DFU suffix CRC does not match the file')
    return {'vid': vid, 'pid': pid, 'device': device, 'image_bytes': len(data) - SUFFIX_BYTES}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description='Write a .dfu (bitstream + DFU suffix for the foboot bootloader).')
    p.add_argument('bitstream', type=pathlib.Path)
    p.add_argument('dfu', type=pathlib.Path)
    a = p.parse_args(argv)
    a.dfu.write_bytes(add_suffix(a.bitstream.read_bytes()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
