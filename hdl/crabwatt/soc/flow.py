"""The SoC's part of the bitstream flow (`crabwatt.build` calls it): the firmware image for the boot
ROM, the .dfu next to the .bit, and the timing gate.

    image = firmware_image()                  # make -C firmware; firmware/build/firmware.bin
    top = SocTop(board=board, image=image)
    ... platform.build(top, ...) ...
    write_dfu(out / 'crabwatt.bit')           # -> crabwatt.dfu for dfu-util -a 0 -D (if it fits the slot)
    problems = timing_problems(report)        # [] when sys >= 48 MHz and every clock meets its constraint
"""

import pathlib
import shutil
import subprocess

from . import regmap
from .dfu import add_suffix

__all__ = ['firmware_image', 'write_dfu', 'timing_problems', 'SYS_FMAX_REQUIRED_MHZ', 'CLOCK_NETS']

ROOT = pathlib.Path(__file__).resolve().parents[3]
SYS_FMAX_REQUIRED_MHZ = 48.0
#: nextpnr clock nets of SocTop -> clock domains (the adc/sync nets as in crabwatt.top).
CLOCK_NETS = {'clk_sys': 'sync', 'clk_adc': 'adc', 'clk_usb': 'usb'}


class FlowError(RuntimeError):
    pass


def firmware_image(root: pathlib.Path = ROOT) -> bytes:
    """Builds the firmware (make -C firmware) and returns firmware.bin for the boot ROM."""
    if not shutil.which('riscv64-unknown-elf-gcc'):
        raise FlowError('riscv64-unknown-elf-gcc not found: apt-get install gcc-riscv64-unknown-elf '
                        'picolibc-riscv64-unknown-elf (see test/debian-packages.txt)')
    run = subprocess.run(['make', '-C', str(root / 'firmware'), '--no-print-directory'],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise FlowError(f'the firmware did not build:\n{run.stdout}{run.stderr}')
    image = (root / 'firmware/build/firmware.bin').read_bytes()
    if len(image) > regmap.ROM_SIZE_BYTES:
        raise FlowError(f'firmware.bin is {len(image)} bytes; the boot ROM holds {regmap.ROM_SIZE_BYTES}')
    return image


def write_dfu(bitstream: pathlib.Path) -> pathlib.Path:
    """Writes the .dfu next to the bitstream, which must fit foboot's slot (regmap's flash map): a
    larger one would run into the user area, or be cut short by the bootloader."""
    size = bitstream.stat().st_size
    if size > regmap.FLASH_BITSTREAM_SLOT_BYTES:
        raise FlowError(f'{bitstream} is {size} bytes; the flash slot from {regmap.FLASH_BITSTREAM_BASE:#x} '
                        f'holds {regmap.FLASH_BITSTREAM_SLOT_BYTES} (is ecppack run with --compress?)')
    dfu = bitstream.with_suffix('.dfu')
    dfu.write_bytes(add_suffix(bitstream.read_bytes()))
    return dfu


def timing_problems(report: dict) -> list[str]:
    """Why the build must fail, from a crabwatt.build report (fmax_mhz, constraint_mhz per domain)."""
    fmax, constraint = report.get('fmax_mhz', {}), report.get('constraint_mhz', {})
    problems = []
    if fmax.get('sync', 0) < SYS_FMAX_REQUIRED_MHZ:
        problems.append(f"system clock reaches {fmax.get('sync', 0)} MHz, {SYS_FMAX_REQUIRED_MHZ} MHz required")
    for domain, mhz in fmax.items():
        if mhz < constraint.get(domain, 0):
            problems.append(f'{domain} reaches {mhz} MHz of its {constraint[domain]} MHz constraint')
    for net in report.get('clock_constraints', {}).get('ignored', []):
        problems.append(f'nextpnr ignored the clock constraint on {net}: no net of that name (keep it in synthesis)')
    return problems
