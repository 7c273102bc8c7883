"""Shapes shared by the DSP stages and their users (CSR block, capture, tests).

Field widths follow docs/dsp.md; where the document gives a register a wider protocol type
(u16 for `zc_hysteresis`, u32 for `fixed_samples`) the gateware keeps only the bits the
document allows.
"""
from amaranth import signed, unsigned
from amaranth.lib import data

CODE_BITS = 14
CODE_MAX = (1 << CODE_BITS) - 1
CODE_MID = 1 << (CODE_BITS - 1)
HISTORY_DEPTH = 1024            # delay-line entries per channel (docs/dsp.md: |d| <= 1022)
WINDOW_MAX_SAMPLES = 1 << 24    # largest N or M
ENERGY_BITS = 96
# Calibrated samples y: quarter-LSB, sat18 (docs/dsp.md "Offset and gain").
Y_BITS = 18
Y_MAX = (1 << (Y_BITS - 1)) - 1
Y_MIN = -(1 << (Y_BITS - 1))
# y >> 2: the whole-LSB form that min/max, the crossing samples and the capture buffer keep.
Y_LSB_SHIFT = 2

MODE_CYCLES = 0
MODE_FIXED = 1

FLAG_CLIP_V = 1 << 0
FLAG_CLIP_I = 1 << 1
FLAG_SAT_V = 1 << 2
FLAG_SAT_I = 1 << 3
FLAG_PARTIAL = 1 << 4
FLAG_TIMEOUT = 1 << 5
FLAG_CONFIG = 1 << 6
FLAG_ZC_OVERFLOW = 1 << 7


class SampleLayout(data.StructLayout):
    """One simultaneous conversion: raw straight-binary codes and the 64-bit sample index."""
    def __init__(self):
        super().__init__({
            "cv": unsigned(CODE_BITS),
            "ci": unsigned(CODE_BITS),
            "index": unsigned(64),
        })


class ConfigLayout(data.StructLayout):
    """Calibration, hysteresis and window registers, committed together (docs/dsp.md)."""
    def __init__(self):
        super().__init__({
            "mode": unsigned(1),
            "cycles": unsigned(10),            # K, 1..1000
            "fixed_samples": unsigned(25),     # N, 1..2^24
            "max_samples": unsigned(25),       # M, 1..2^24
            "zc_hysteresis": unsigned(15),     # ADC LSB (compared with y as 4*h)
            "v_offset": signed(16),            # quarter-LSB of x0
            "i_offset": signed(16),
            "v_gain": unsigned(16),            # Q2.14
            "i_gain": unsigned(16),
            "phase": signed(32),               # 1/65536 sample, current delayed when > 0
        })


CONFIG_RESET = {
    "mode": MODE_CYCLES, "cycles": 10, "fixed_samples": 400_000, "max_samples": 4_000_000,
    "zc_hysteresis": 64, "v_offset": 0, "i_offset": 0, "v_gain": 16384, "i_gain": 16384, "phase": 0,
}


class CalibratedLayout(data.StructLayout):
    """A calibrated pair (v, i) in whole ADC LSB (y >> 2, floor), as the capture buffer stores it."""
    def __init__(self):
        super().__init__({
            "v": signed(16),
            "i": signed(16),
            "index": unsigned(64),
            "config_seq": unsigned(16),
        })


class WindowLayout(data.StructLayout):
    """One closed window (docs/dsp.md "Windows") plus the energy accumulator at its end.

    `energy` is E summed over every sample before `end_index`, so that the difference of two
    records' energies equals the sum of `sum_vi` of the windows between them.
    """
    def __init__(self):
        super().__init__({
            "end_index": unsigned(64),
            "samples": unsigned(32),
            "sum_v": signed(64),
            "sum_i": signed(64),
            "sum_vv": unsigned(64),
            "sum_ii": unsigned(64),
            "sum_vi": signed(64),
            "min_v": signed(16),
            "max_v": signed(16),
            "min_i": signed(16),
            "max_i": signed(16),
            "zc_count": unsigned(16),
            "zc_first_offset": unsigned(32),
            "zc_first_prev": signed(16),
            "zc_first_cur": signed(16),
            "zc_last_offset": unsigned(32),
            "zc_last_prev": signed(16),
            "zc_last_cur": signed(16),
            "flags": unsigned(16),
            "config_seq": unsigned(16),
            "energy": signed(ENERGY_BITS),
        })
