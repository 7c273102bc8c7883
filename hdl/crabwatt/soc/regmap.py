"""The SoC's memory and register map, defined once.

Everything the CPU can address is described here: the memory regions, every control/status register
(address, width, access, fields, reset value, meaning) and the word layout of the DSP result FIFO.
The gateware decodes its registers from these tables (`crabwatt.soc.csr`), the firmware's header
`firmware/include/crabwatt_csr.h` and the reference page `docs/soc.md` are generated from them
(`python -m crabwatt.soc.regmap --header ... --doc ...`), and a test fails when either generated file
differs from what this module produces.

Conventions:
- every register is one 32-bit word at a word-aligned address; byte and half-word writes are not
  supported (the bus ignores the byte-select lines), so firmware always uses 32-bit accesses;
- `rw` registers hold what was written and read it back; `ro` registers show live hardware state;
  `const` registers are fixed at build time; `wo` registers act at the write (a strobe with data)
  and read as 0. Reads never have side effects, so a debugger may read anything;
- multi-word values are little-endian word order (`_LO` holds bits 31..0). Where a value can change
  between the two reads, reading `_LO` latches the rest into the `_HI` words, as documented per
  register;
- the CSR window is at and above 0x8000_0000, which VexRiscv treats as I/O (uncached, in order).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from dataclasses import dataclass, field as dc_field
from typing import Literal

from ..adc import DEFAULT_READ_DELAY

Access = Literal['rw', 'ro', 'wo', 'const']

# --- Memory map ------------------------------------------------------------------------------------

#: Boot ROM: the firmware image (code, read-only data and the initial values of .data), in block RAM
#: initialised from firmware/build/firmware.bin at build time. The CPU starts at ROM_BASE.
#: 16 KiB is 8 EBRs of 4096 x 4 bits: no output mux, and room for twice today's ~7 KiB image. At
#: 32 KiB (16 EBRs, three quarters of them zeros) the SoC held 48 of the 56 EBRs and its place and
#: route swung from ~20 min to over an hour with the image's contents.
ROM_BASE = 0x0000_0000
ROM_SIZE_BYTES = 16 * 1024
#: Working RAM (.data, .bss, stack). Not initialised: the start-up code copies .data from the ROM,
#: so a watchdog reset restarts the firmware from a clean state.
RAM_BASE = 0x1000_0000
RAM_SIZE_BYTES = 16 * 1024
#: Control and status registers (bit 31 set: I/O for VexRiscv, never cached).
CSR_BASE = 0xF000_0000
CSR_SIZE_BYTES = 0x1000
#: The CPU's reset vector.
RESET_VECTOR = ROM_BASE

GATEWARE_VERSION = (0, 1, 0)

# --- Configuration flash map (foboot's, plus our user area) ----------------------------------------
#: foboot occupies the flash from 0 and loads the user image from FLASH_BITSTREAM_BASE (its DFU alt 0);
#: its alt 1, RISC-V code we do not use, starts at 0x100000. The user area, where the firmware keeps
#: its calibration record, is the last FLASH_USER_BYTES of the flash, two 4 KiB erase sectors; the
#: firmware finds the flash's size from its JEDEC ID (the r0.2's W25Q128JV: 16 MiB, user area at
#: 0xFFE000). On a 1 MiB flash the user area ends the bitstream slot, so a bitstream may take at most
#: FLASH_BITSTREAM_SLOT_BYTES on either board (`crabwatt flash` and the bitstream build check it).
FLASH_BITSTREAM_BASE = 0x08_0000
FLASH_USER_BYTES = 0x2000
FLASH_SECTOR_BYTES = 0x1000
FLASH_BITSTREAM_SLOT_BYTES = 0x10_0000 - FLASH_BITSTREAM_BASE - FLASH_USER_BYTES


def version_word(v: tuple[int, int, int]) -> int:
    """major << 16 | minor << 8 | patch, as the identify frame carries it."""
    major, minor, patch = v
    return major << 16 | minor << 8 | patch


# --- Register descriptions -------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    doc: str
    signed: bool = False

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    name: str
    offset: int          # byte offset inside its block
    access: Access
    doc: str
    width: int = 32      # bits that are implemented (the rest read as 0, or sign-extend when signed)
    reset: int = 0       # value after reset (rw), or the value (const: may be overridden per build)
    signed: bool = False
    fields: tuple[Field, ...] = ()

    def __post_init__(self):
        if self.offset % 4:
            raise ValueError(f'{self.name}: offset {self.offset:#x} is not word-aligned')
        if not 1 <= self.width <= 32:
            raise ValueError(f'{self.name}: width {self.width} outside 1..32')
        for f in self.fields:
            if f.lsb + f.width > self.width:
                raise ValueError(f'{self.name}.{f.name}: field exceeds the register width')


@dataclass(frozen=True)
class Block:
    name: str
    base: int            # byte offset from CSR_BASE
    doc: str
    registers: tuple[Register, ...] = dc_field(default_factory=tuple)

    def register(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f'{self.name} has no register {name}')


R = Register
F = Field

#: Key that must be written to REBOOT to return to the bootloader (guards against a stray store).
REBOOT_KEY = 0xB007_10AD
#: Key that must be written to WDT_KICK; any other value is ignored.
WDT_KICK_KEY = 0x600D_D06E

BLOCKS: tuple[Block, ...] = (
    Block('IDENT', 0x000, 'Build-time constants: who this gateware is.', (
        R('GATEWARE_VERSION', 0x00, 'const', 'major << 16 | minor << 8 | patch',
          reset=version_word(GATEWARE_VERSION)),
        R('BOARD', 0x04, 'const', 'BOARD enum of the protocol: 1 OrangeCrab r0.1, 2 r0.2, 3 RTL twin', width=8),
        R('ADC_PART', 0x08, 'const', 'ADC_PART enum of the protocol: 0 simulated, 1 AD7357', width=8),
        R('SAMPLE_RATE_NUM', 0x0C, 'const', 'sample rate numerator, Hz', reset=4_000_000),
        R('SAMPLE_RATE_DEN', 0x10, 'const', 'sample rate denominator (rate = num / den)', reset=1),
        R('SYS_CLK_HZ', 0x14, 'const', 'frequency of the CPU and bus clock, Hz'),
        R('CAPTURE_DEPTH', 0x18, 'const', 'sample pairs the capture buffer holds', width=16),
        R('RESULT_FIFO_WORDS', 0x1C, 'const', 'capacity of the DSP result FIFO in 32-bit words', width=16),
        R('DEVICE_ID_LO', 0x20, 'const', 'device id bits 31..0 (build-time; the firmware may refine it)'),
        R('DEVICE_ID_HI', 0x24, 'const', 'device id bits 63..32'),
    )),
    Block('SYS', 0x100, 'Timer, watchdog, reset cause, reboot.', (
        R('SCRATCH', 0x00, 'rw', 'free for software; used by the bus tests'),
        R('UPTIME_MS', 0x04, 'ro', 'milliseconds since power-on or the last reset (wraps after 49.7 days)'),
        R('CYCLES_LO', 0x08, 'ro', 'sys clock cycles since reset, bits 31..0; reading it latches CYCLES_HI'),
        R('CYCLES_HI', 0x0C, 'ro', 'bits 63..32 of the cycle counter, as latched by the last CYCLES_LO read'),
        R('WDT_TIMEOUT_MS', 0x10, 'rw', 'watchdog timeout; 0 disables the watchdog (the reset value)',
          width=16),
        R('WDT_KICK', 0x14, 'wo', f'write {WDT_KICK_KEY:#010x} to restart the watchdog countdown'),
        R('RESET_CAUSE', 0x18, 'ro', 'why the CPU last started', width=2, fields=(
            F('POWER_ON', 0, 1, 'power-on or FPGA configuration'),
            F('WATCHDOG', 1, 1, 'the watchdog expired'),
        )),
        R('WDT_RESETS', 0x1C, 'ro', 'watchdog resets since power-on (survives watchdog resets)', width=16),
        R('REBOOT', 0x20, 'wo', f'write {REBOOT_KEY:#010x} to reload the FPGA into the DFU bootloader'),
    )),
    Block('UART', 0x200, 'UART on the Feather TX/RX pins (8N1). In the RTL twin the byte stream is taken '
          'at the FIFOs (no bit timing) and goes to a pseudo-terminal.', (
        R('TX', 0x00, 'wo', 'push one byte (bits 7..0) into the transmit FIFO; ignored when TX_FREE is 0',
          width=8),
        R('TX_FREE', 0x04, 'ro', 'free bytes in the transmit FIFO', width=16),
        R('RX', 0x08, 'ro', 'oldest received byte and whether there is one (read does not pop)', width=9,
          fields=(F('DATA', 0, 8, 'the byte'), F('VALID', 8, 1, 'DATA holds a received byte'))),
        R('RX_POP', 0x0C, 'wo', 'any write drops the byte shown in RX'),
        R('DIVISOR', 0x10, 'rw', 'sys clock cycles per bit (baud = SYS_CLK_HZ / DIVISOR), at least 4',
          width=16, reset=0),   # reset value is set per build from the SoC's clock (115200 baud)
        R('RX_OVERRUNS', 0x14, 'ro', 'bytes lost because the receive FIFO was full', width=16),
    )),
    Block('USB', 0x300, 'USB CDC-ACM on the OrangeCrab USB connector (LUNA). Same model as UART.', (
        R('TX', 0x00, 'wo', 'push one byte into the transmit FIFO; ignored when TX_FREE is 0', width=8),
        R('TX_FREE', 0x04, 'ro', 'free bytes in the transmit FIFO', width=16),
        R('RX', 0x08, 'ro', 'oldest received byte and whether there is one (read does not pop)', width=9,
          fields=(F('DATA', 0, 8, 'the byte'), F('VALID', 8, 1, 'DATA holds a received byte'))),
        R('RX_POP', 0x0C, 'wo', 'any write drops the byte shown in RX'),
        R('STATUS', 0x10, 'ro', 'link state', width=2, fields=(
            F('PRESENT', 0, 1, 'this build has a USB device (0 in the RTL twin)'),
            F('CONFIGURED', 1, 1, 'the host has configured the device'),
        )),
        R('RX_OVERRUNS', 0x14, 'ro', 'bytes lost because the receive FIFO was full', width=16),
        R('SERIAL_LO', 0x18, 'rw', 'USB serial number (iSerialNumber, 16 hex digits) bits 31..0'),
        R('SERIAL_HI', 0x1C, 'rw', 'bits 63..32; writing it sets the serial number and lets the device '
          'attach to the bus (pull-up on). Only the first write after power-on counts: a host keeps the '
          'serial it enumerated with'),
    )),
    Block('DSP', 0x400, 'DSP configuration (docs/dsp.md). Writes go to a staging copy; COMMIT makes all '
          'of them take effect together at a sample boundary and increments CONFIG_SEQ.', (
        R('MODE', 0x00, 'rw', 'WINDOW_MODE: 0 CYCLES, 1 FIXED', width=1, reset=0),
        R('CYCLES', 0x04, 'rw', 'K, cycles per window in CYCLES mode (1..1000)', width=10, reset=10),
        R('FIXED_SAMPLES', 0x08, 'rw', 'N, samples per window in FIXED mode (1..2^24)', width=25,
          reset=400_000),
        R('MAX_SAMPLES', 0x0C, 'rw', 'M, timeout of a CYCLES window in samples (1..2^24)', width=25,
          reset=4_000_000),
        R('ZC_HYSTERESIS', 0x10, 'rw', 'zero-crossing arming threshold, output LSB (0..32767)', width=15,
          reset=64),
        R('V_OFFSET', 0x14, 'rw', 'voltage offset, signed, quarter-LSB of the centred code', width=16,
          signed=True),
        R('I_OFFSET', 0x18, 'rw', 'current offset, signed, quarter-LSB of the centred code', width=16,
          signed=True),
        R('V_GAIN', 0x1C, 'rw', 'voltage gain, Q2.14 (16384 = 1.0)', width=16, reset=16384),
        R('I_GAIN', 0x20, 'rw', 'current gain, Q2.14 (16384 = 1.0)', width=16, reset=16384),
        R('PHASE', 0x24, 'rw', 'delay of current vs voltage in 1/65536 sample, signed, |phase| < 1023*65536',
          signed=True),
        R('COMMIT', 0x28, 'wo', 'any write: apply the staged configuration at the next sample boundary'),
        R('CONFIG_SEQ', 0x2C, 'ro', 'commits applied so far (the value windows carry)', width=16),
        R('STATUS', 0x30, 'ro', 'commit progress', width=1, fields=(
            F('COMMIT_PENDING', 0, 1, 'a commit was written and has not reached a sample boundary yet'),
        )),
        R('SAMPLE_INDEX_LO', 0x34, 'ro', 'index of the next sample to enter the DSP, bits 31..0; '
          'reading it latches SAMPLE_INDEX_HI'),
        R('SAMPLE_INDEX_HI', 0x38, 'ro', 'bits 63..32, as latched by the last SAMPLE_INDEX_LO read'),
    )),
    Block('RESULT', 0x500, 'DSP result FIFO: window records (see the record layout) as 32-bit words. '
          'A record is written whole or not at all: when the FIFO has no room for a whole record the '
          'record is dropped and OVERFLOWS counts it, so the DSP never stalls.', (
        R('DATA', 0x00, 'ro', 'oldest word in the FIFO (undefined when LEVEL is 0; read does not pop)'),
        R('LEVEL', 0x04, 'ro', 'words in the FIFO', width=16),
        R('POP', 0x08, 'wo', 'any write drops the word shown in DATA'),
        R('OVERFLOWS', 0x0C, 'ro', 'records dropped because the FIFO was full (fifo_overflows)'),
    )),
    Block('CAPTURE', 0x600, 'Raw capture of calibrated sample pairs. Configure, write ARM; when '
          'STATUS.DONE is set read PAIRS pairs from READ_DATA, oldest first, by writing READ_ADDR '
          '(0 = oldest) and reading READ_DATA.', (
        R('PAIRS', 0x00, 'rw', 'pairs to capture, 1..CAPTURE_DEPTH', width=16, reset=1),
        R('TRIGGER', 0x04, 'rw', 'CAPTURE_TRIGGER: 0 immediate, 1 v rising, 2 v falling, 3 i rising, 4 i falling',
          width=3),
        R('LEVEL', 0x08, 'rw', 'trigger level, signed, output LSB', width=16, signed=True),
        R('PRETRIGGER', 0x0C, 'rw', 'pairs kept from before the trigger (< PAIRS)', width=16),
        R('ARM', 0x10, 'wo', 'any write: start a capture with the settings above (aborts one in progress)'),
        R('STATUS', 0x14, 'ro', 'capture state', width=3, fields=(
            F('ARMED', 0, 1, 'waiting for the trigger'),
            F('TRIGGERED', 1, 1, 'triggered, filling the post-trigger pairs'),
            F('DONE', 2, 1, 'PAIRS pairs are ready to read'),
        )),
        R('TRIGGER_INDEX_LO', 0x18, 'ro', 'sample index of the trigger, bits 31..0 (valid when DONE)'),
        R('TRIGGER_INDEX_HI', 0x1C, 'ro', 'bits 63..32'),
        R('FIRST_INDEX_LO', 0x20, 'ro', 'sample index of the oldest captured pair, bits 31..0 (valid when DONE)'),
        R('FIRST_INDEX_HI', 0x24, 'ro', 'bits 63..32'),
        R('CONFIG_SEQ', 0x28, 'ro', 'configuration the captured samples were calibrated with', width=16),
        R('READ_ADDR', 0x2C, 'rw', 'pair to show in READ_DATA, 0 = oldest', width=16),
        R('READ_DATA', 0x30, 'ro', 'the pair at READ_ADDR (valid one cycle after writing READ_ADDR)', fields=(
            F('V', 0, 16, 'calibrated voltage sample', signed=True),
            F('I', 16, 16, 'calibrated current sample', signed=True),
        )),
        R('DECIMATION', 0x34, 'rw', 'record every D-th pair (1..65535; 0 acts as 1): pair k is sample '
          'FIRST_INDEX + k * D; PAIRS, PRETRIGGER and the trigger count recorded pairs', width=16, reset=1),
        R('HYSTERESIS', 0x38, 'rw', 'trigger hysteresis H, output LSB: a rising trigger needs the channel below '
          'LEVEL - H since it was last at or above LEVEL (falling: at or above LEVEL + H)', width=16),
    )),
    Block('COUNTERS', 0x700, 'Health counters since reset; they saturate instead of wrapping.', (
        R('SAMPLES_DROPPED', 0x00, 'ro', 'ADC samples lost between the ADC clock domain and the DSP'),
        R('ADC_ERRORS', 0x04, 'ro', 'ADC frames with a bad leading-zero pattern'),
    )),
    Block('ADC', 0x800, 'Where the AD7357\'s SDATA is read (hdl/crabwatt/adc.py): chosen at bring-up by a scan '
          'with the inputs shorted (hdl/crabwatt/adc_timing.py). A watchdog reset restores the default.', (
        R('READ_DELAY', 0x00, 'rw', 'capture point in 1/64 SCLK periods (217 ps) after the SCLK pulse that '
          'reads the bit is launched; bits 5..0 move the read clock\'s PLL phase, bits 7..6 add whole periods. '
          'Conversions read while the phase walks to it are no samples: dropped and counted in samples_dropped '
          '(before the first settle after a reset none is numbered)', width=8,
          reset=DEFAULT_READ_DELAY, fields=(F('PHASE', 0, 6, 'PLL phase steps'), F('PERIODS', 6, 2, 'whole periods'))),
        R('STATUS', 0x04, 'ro', 'read clock state', width=1, fields=(
            F('SETTLED', 0, 1, 'the read clock\'s phase is READ_DELAY.PHASE'),
        )),
    )),
    Block('FLASH', 0x900, 'The configuration SPI flash (mode 0, one data line; crabwatt.soc.spiflash): select '
          'the chip, write a byte to DATA, wait while STATUS.BUSY, read the byte that came back from RX. '
          'The firmware reads the flash\'s unique ID (the device id) and keeps the calibration record in '
          'its user area (firmware/src/flash.c).', (
        R('CONTROL', 0x00, 'rw', 'chip select', width=1, fields=(
            F('SELECT', 0, 1, 'CS# is driven low while set'),
        )),
        R('DATA', 0x04, 'wo', 'shift the byte in bits 7..0 out (MSB first) while one is shifted in; '
          'ignored while STATUS.BUSY'),
        R('STATUS', 0x08, 'ro', 'transfer state', width=1, fields=(
            F('BUSY', 0, 1, 'a byte is being shifted (8 SCK periods of 4 sys clock cycles)'),
        )),
        R('RX', 0x0C, 'ro', 'the byte shifted in by the last transfer', width=8),
    )),
    Block('WAVEFORM', 0xC00, 'The decimated waveform stream (docs/dsp.md, Decimated waveform): stream sample j '
          'represents 4 Msps sample 322 + 512*j. A FIFO of 256 samples (33 ms); when it is full an '
          'arriving sample is dropped and DROPS counts it, so the DSP never stalls. Read V, I, J of the oldest '
          'sample, then write POP.', (
        R('V', 0x00, 'ro', 'voltage of the oldest sample, q, signed (undefined when LEVEL is 0)', width=19,
          signed=True),
        R('I', 0x04, 'ro', 'current of the oldest sample, q, signed', width=19, signed=True),
        R('J', 0x08, 'ro', 'bits 25..0 of the oldest sample\'s j; the rest follow from COUNT (j <= COUNT, '
          'and the FIFO is far shorter than 2^26 samples)', width=26),
        R('LEVEL', 0x0C, 'ro', 'samples in the FIFO', width=16),
        R('POP', 0x10, 'wo', 'any write drops the oldest sample'),
        R('DROPS', 0x14, 'ro', 'samples dropped because the FIFO was full (saturates)'),
        R('COUNT_LO', 0x18, 'ro', 'stream samples produced so far (kept or dropped), bits 31..0; reading it '
          'latches COUNT_HI'),
        R('COUNT_HI', 0x1C, 'ro', 'bits 47..32, as latched by the last COUNT_LO read', width=16),
    )),
)

# --- DSP result record layout ----------------------------------------------------------------------
# Every record starts with a header word; the firmware reads the header, waits until LEVEL holds the
# whole record (it always does: records are written whole), then pops the words.

RECORD_KIND_WINDOW = 1

RECORD_HEADER_FIELDS = (
    F('KIND', 0, 8, 'record kind (1 = window)'),
    F('WORDS', 8, 8, 'words in the record including this header'),
    F('CONFIG_SEQ', 16, 16, 'configuration the window was computed with'),
)

#: (word name, doc) in FIFO order after the header. Pairs of 16-bit values are packed low half first.
WINDOW_RECORD_WORDS: tuple[tuple[str, str], ...] = (
    ('HEADER', 'KIND=1, WORDS, CONFIG_SEQ'),
    ('END_INDEX_LO', 'end_index bits 31..0 (first sample after the window)'),
    ('END_INDEX_HI', 'end_index bits 63..32'),
    ('SAMPLES', 'samples in the window'),
    ('SUM_V_LO', 'sum_v bits 31..0'), ('SUM_V_HI', 'sum_v bits 63..32 (sign-extended)'),
    ('SUM_I_LO', 'sum_i bits 31..0'), ('SUM_I_HI', 'sum_i bits 63..32 (sign-extended)'),
    ('SUM_VV_LO', 'sum_vv bits 31..0'), ('SUM_VV_HI', 'sum_vv bits 63..32'),
    ('SUM_II_LO', 'sum_ii bits 31..0'), ('SUM_II_HI', 'sum_ii bits 63..32'),
    ('SUM_VI_LO', 'sum_vi bits 31..0'), ('SUM_VI_HI', 'sum_vi bits 63..32 (sign-extended)'),
    ('MIN_MAX_V', 'min_v (bits 15..0) and max_v (bits 31..16), signed'),
    ('MIN_MAX_I', 'min_i (bits 15..0) and max_i (bits 31..16), signed'),
    ('ZC_COUNT_FLAGS', 'zc_count (bits 15..0) and flags (bits 31..16)'),
    ('ZC_FIRST_OFFSET', 'zc_first_offset'),
    ('ZC_FIRST_PREV_CUR', 'zc_first_prev (bits 15..0) and zc_first_cur (bits 31..16), signed'),
    ('ZC_LAST_OFFSET', 'zc_last_offset'),
    ('ZC_LAST_PREV_CUR', 'zc_last_prev (bits 15..0) and zc_last_cur (bits 31..16), signed'),
    ('ENERGY_0', 'E at end_index (Σ v·i of every sample before it), bits 31..0'),
    ('ENERGY_1', 'E bits 63..32'),
    ('ENERGY_2', 'E bits 95..64 (the accumulator is 96-bit signed: sign-extend from bit 95)'),
)
WINDOW_RECORD_WORD_COUNT = len(WINDOW_RECORD_WORDS)


def word_index(name: str) -> int:
    return [n for n, _ in WINDOW_RECORD_WORDS].index(name)


# --- Checks ----------------------------------------------------------------------------------------

def check() -> None:
    """Raises ValueError when blocks or registers overlap or leave the CSR window."""
    bases = sorted(b.base for b in BLOCKS)
    if len(set(bases)) != len(bases):
        raise ValueError('two blocks share a base')
    for b in BLOCKS:
        if b.base % 0x100 or b.base >= CSR_SIZE_BYTES:
            raise ValueError(f'{b.name}: base {b.base:#x} must be 0x100-aligned inside the CSR window')
        offsets = [r.offset for r in b.registers]
        if len(set(offsets)) != len(offsets):
            raise ValueError(f'{b.name}: two registers share an offset')
        if max(offsets, default=0) >= 0x100:
            raise ValueError(f'{b.name}: a register lies outside its 0x100-byte block')
        names = [r.name for r in b.registers]
        if len(set(names)) != len(names):
            raise ValueError(f'{b.name}: duplicate register name')
    if WINDOW_RECORD_WORD_COUNT >= 256:
        raise ValueError('record too long for the 8-bit WORDS field')


def address(block: str, register: str) -> int:
    for b in BLOCKS:
        if b.name == block:
            return CSR_BASE + b.base + b.register(register).offset
    raise KeyError(block)


# --- Generators ------------------------------------------------------------------------------------

_GENERATED_NOTE = 'GENERATED by `python -m crabwatt.soc.regmap` from hdl/crabwatt/soc/regmap.py: do not edit.'


def c_header() -> str:
    check()
    out: list[str] = []
    w = out.append
    w(f'/* {_GENERATED_NOTE} */')
    w('/* The crabwatt SoC memory and register map. See docs/soc.md. All registers are 32-bit words:')
    w(' * access them with 32-bit loads and stores only. */')
    w('#ifndef CRABWATT_CSR_H')
    w('#define CRABWATT_CSR_H')
    w('')
    w('#include <stdint.h>')
    w('')
    w('/* Memory map */')
    w(f'#define CW_ROM_BASE 0x{ROM_BASE:08X}u')
    w(f'#define CW_ROM_SIZE_BYTES {ROM_SIZE_BYTES}u')
    w(f'#define CW_RAM_BASE 0x{RAM_BASE:08X}u')
    w(f'#define CW_RAM_SIZE_BYTES {RAM_SIZE_BYTES}u')
    w(f'#define CW_CSR_BASE 0x{CSR_BASE:08X}u')
    w(f'#define CW_RESET_VECTOR 0x{RESET_VECTOR:08X}u')
    w('')
    w(f'#define CW_GATEWARE_VERSION 0x{version_word(GATEWARE_VERSION):06X}u')
    w(f'#define CW_REBOOT_KEY 0x{REBOOT_KEY:08X}u')
    w(f'#define CW_WDT_KICK_KEY 0x{WDT_KICK_KEY:08X}u')
    w('')
    w('/* Configuration flash map: the user area is the last CW_FLASH_USER_BYTES of the flash. */')
    w(f'#define CW_FLASH_BITSTREAM_BASE 0x{FLASH_BITSTREAM_BASE:06X}u')
    w(f'#define CW_FLASH_BITSTREAM_SLOT_BYTES {FLASH_BITSTREAM_SLOT_BYTES}u')
    w(f'#define CW_FLASH_USER_BYTES {FLASH_USER_BYTES}u')
    w(f'#define CW_FLASH_SECTOR_BYTES {FLASH_SECTOR_BYTES}u')
    w('')
    w('#define CW_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))')
    for b in BLOCKS:
        w('')
        w(f'/* {b.name}: {b.doc} */')
        for r in b.registers:
            macro = f'CW_{b.name}_{r.name}'
            sign = ', signed' if r.signed else ''
            reset = f', reset {r.reset}' if r.access == 'rw' else ''
            w(f'/* {r.access}, {r.width} bit{sign}{reset}: {r.doc} */')
            w(f'#define {macro}_ADDR 0x{CSR_BASE + b.base + r.offset:08X}u')
            w(f'#define {macro} CW_REG({macro}_ADDR)')
            for f in r.fields:
                w(f'#define {macro}_{f.name}_SHIFT {f.lsb}u')
                w(f'#define {macro}_{f.name}_MASK 0x{f.mask:08X}u')
    w('')
    w('/* DSP result FIFO record layout (word indices; the header word is index 0). */')
    w(f'#define CW_RECORD_KIND_WINDOW {RECORD_KIND_WINDOW}u')
    for f in RECORD_HEADER_FIELDS:
        w(f'#define CW_RECORD_HEADER_{f.name}_SHIFT {f.lsb}u')
        w(f'#define CW_RECORD_HEADER_{f.name}_MASK 0x{f.mask:08X}u')
    w(f'#define CW_WINDOW_RECORD_WORDS {WINDOW_RECORD_WORD_COUNT}u')
    for i, (name, doc) in enumerate(WINDOW_RECORD_WORDS):
        w(f'#define CW_WINDOW_WORD_{name} {i}u /* {doc} */')
    w('')
    w('#endif /* CRABWATT_CSR_H */')
    return '\n'.join(out) + '\n'


def markdown() -> str:
    check()
    out: list[str] = []
    w = out.append
    w('# The crabwatt SoC')
    w('')
    w(f'<!-- {_GENERATED_NOTE} -->')
    w('')
    w('A VexRiscv CPU (rv32im, the LiteX "standard" configuration from `pythondata-cpu-vexriscv`) on a')
    w('small Wishbone bus of our own. The instruction bus reaches only the boot ROM; the data bus')
    w('reaches the ROM, the RAM and the control/status registers (CSRs). The firmware polls; there are')
    w('no interrupts. This page is generated from `hdl/crabwatt/soc/regmap.py`, as is')
    w('`firmware/include/crabwatt_csr.h`.')
    w('')
    w('## Memory map')
    w('')
    w('| region | base | size | notes |')
    w('| --- | --- | --- | --- |')
    w(f'| ROM | `0x{ROM_BASE:08X}` | {ROM_SIZE_BYTES // 1024} KiB | firmware image from '
      '`firmware/build/firmware.bin`, block RAM; reset vector |')
    w(f'| RAM | `0x{RAM_BASE:08X}` | {RAM_SIZE_BYTES // 1024} KiB | .data (copied from ROM at start-up), '
      '.bss, stack |')
    w(f'| CSR | `0x{CSR_BASE:08X}` | {CSR_SIZE_BYTES // 1024} KiB | registers below; I/O, uncached |')
    w('')
    w('The firmware links `.text`, `.rodata` and the load image of `.data` into the ROM and `.data`,')
    w('`.bss` and the stack into the RAM (`.data : { ... } > RAM AT > ROM`), so `objcopy -O binary`')
    w('gives the ROM image (at most the ROM size; the build fails otherwise). The CPU starts at the')
    w('reset vector with the caches empty; every reset, including a watchdog reset, restarts it there.')
    w('')
    w('Access kinds: `rw` holds what was written; `ro` shows hardware state; `const` is fixed at build')
    w('time; `wo` acts on the write and reads 0. Reads have no side effects. Use 32-bit accesses only.')
    for b in BLOCKS:
        w('')
        w(f'## {b.name} (`0x{CSR_BASE + b.base:08X}`)')
        w('')
        w(b.doc)
        w('')
        w('| address | register | access | bits | reset | meaning |')
        w('| --- | --- | --- | --- | --- | --- |')
        for r in b.registers:
            bits = f'{r.width}{" signed" if r.signed else ""}'
            reset = str(r.reset) if r.access in ('rw', 'const') else ''
            doc = r.doc
            if r.fields:
                doc += '; fields: ' + ', '.join(
                    f'`{f.name}` [{f.lsb + f.width - 1}:{f.lsb}] {f.doc}' if f.width > 1
                    else f'`{f.name}` [{f.lsb}] {f.doc}' for f in r.fields)
            w(f'| `0x{CSR_BASE + b.base + r.offset:08X}` | `{r.name}` | {r.access} | {bits} | {reset} | {doc} |')
    w('')
    w('## DSP result record')
    w('')
    w(f'A window record is {WINDOW_RECORD_WORD_COUNT} words. The header word holds ' + ', '.join(
        f'`{f.name}` [{f.lsb + f.width - 1}:{f.lsb}] ({f.doc})' for f in RECORD_HEADER_FIELDS) + '.')
    w('The energy words carry the snapshot of the 96-bit accumulator E at the window\'s end, so')
    w('`Σ sum_vi` between two records equals the difference of their energies (docs/dsp.md).')
    w('')
    w('| word | name | meaning |')
    w('| --- | --- | --- |')
    for i, (name, doc) in enumerate(WINDOW_RECORD_WORDS):
        w(f'| {i} | `{name}` | {doc} |')
    return '\n'.join(out) + '\n'


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description='Generate the firmware CSR header and docs/soc.md.')
    p.add_argument('--header', type=pathlib.Path, help='write the C header here')
    p.add_argument('--doc', type=pathlib.Path, help='write the Markdown reference here')
    p.add_argument('--check', action='store_true', help='fail if the files differ instead of writing them')
    a = p.parse_args(argv)
    stale = []
    from .docs import page
    for path, text in ((a.header, c_header()), (a.doc, page())):
        if path is None:
            continue
        if a.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print('stale generated files (run python -m crabwatt.soc.regmap):', ', '.join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
