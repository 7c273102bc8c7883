"""Behavioural model of the AD7357 serial interface that enforces the datasheet timing.

The model is told the pin events (CS, SCLK edges, in ns) and answers what the FPGA reads on
SDATA_A/SDATA_B at each SCLK falling edge. Any violation raises `TimingViolation`:

- tQUIET: CS high for at least T_QUIET_NS between the end of one read and the next CS fall;
- t2: CS falling edge to the first SCLK falling edge at least T2_NS;
- tCONVERT: a conversion needs 16 SCLK falling edges with CS low (CS rising earlier aborts it);
- fSCLK: SCLK period at least 1/80 MHz, high and low each at least 0.4 tSCLK;
- leading zeros: the first bit appears T3_NS after CS falls, then each SCLK falling edge shifts
  the next bit out; the old bit is held T7_NS, the new one valid T4_NS after the edge;
- a read is legal only where the line is valid: reading inside the [t7, t4] change window,
  before t3 or after three-state is a violation.

`board_delay_ns` is the round trip of the board (FPGA SCLK pin -> ADC -> FPGA SDATA pin), which
moves the change window later as seen from the FPGA.

Limits (AD7357 datasheet, timing specifications, VDRIVE 2.25 V to 3.6 V).
"""
F_SCLK_MAX_HZ = 80e6
T_QUIET_NS = 10.0
T2_NS = 5.0        # CS to SCLK setup
T3_NS = 6.0        # CS to SDATA leaving three-state (max)
T4_NS = 11.0       # data access after SCLK falling edge (max)
T7_NS = 3.5        # SCLK to data valid hold (min)
T8_NS = 9.5        # SCLK falling edge to three-state after the 16th edge (max)
SCLK_EDGES = 16
DUTY_MIN = 0.4


class TimingViolation(AssertionError):
    pass


class AD7357:
    def __init__(self, codes, *, board_delay_ns=0.0):
        """codes: iterable of (code_a, code_b), 14-bit straight binary, one per conversion."""
        self._codes = iter(codes)
        self._delay = board_delay_ns
        self.conversions = 0
        self._cs_low = False
        self._cs_rise_ns = None
        self._cs_fall_ns = None
        self._falls = 0
        self._last_fall_ns = None
        self._last_rise_ns = None
        self._sclk_high = False
        self._bits = None
        # Line as seen at the FPGA: list of (unknown_from_ns, valid_from_ns, bits or None=Z).
        self._line = [(float("-inf"), float("-inf"), None)]

    def _drive(self, event_ns, t_min, t_max, value):
        self._line.append((event_ns + t_min + self._delay, event_ns + t_max + self._delay, value))

    def cs(self, t_ns, level):
        if not level and not self._cs_low:
            if self._cs_rise_ns is not None and t_ns - self._cs_rise_ns < T_QUIET_NS - 1e-9:
                raise TimingViolation(f"tQUIET: CS high {t_ns - self._cs_rise_ns:.2f} ns at {t_ns:.1f} ns")
            try:
                a, b = next(self._codes)
            except StopIteration:
                raise TimingViolation("more conversions than the stimulus holds") from None
            bits_a = [0, 0] + [(a >> k) & 1 for k in range(13, -1, -1)]
            bits_b = [0, 0] + [(b >> k) & 1 for k in range(13, -1, -1)]
            self._bits = list(zip(bits_a, bits_b))
            self._cs_low, self._cs_fall_ns, self._falls = True, t_ns, 0
            self._drive(t_ns, 0.0, T3_NS, self._bits[0])
        elif level and self._cs_low:
            if self._falls < SCLK_EDGES:
                raise TimingViolation(
                    f"tCONVERT: CS rose after {self._falls} SCLK falling edges at {t_ns:.1f} ns")
            self._cs_low, self._cs_rise_ns = False, t_ns
            self.conversions += 1
            self._drive(t_ns, 0.0, T8_NS, None)

    def sclk(self, t_ns, level):
        if level == self._sclk_high:
            return
        self._sclk_high = level
        if level:
            if self._last_fall_ns is not None and t_ns - self._last_fall_ns < 0.4 / F_SCLK_MAX_HZ * 1e9 - 1e-9:
                raise TimingViolation(f"SCLK low only {t_ns - self._last_fall_ns:.2f} ns")
            self._last_rise_ns = t_ns
            return
        if self._last_fall_ns is not None and t_ns - self._last_fall_ns < 1e9 / F_SCLK_MAX_HZ - 1e-9:
            raise TimingViolation(f"fSCLK above 80 MHz at {t_ns:.1f} ns")
        if self._last_rise_ns is not None:
            period = t_ns - self._last_fall_ns if self._last_fall_ns is not None else None
            high = t_ns - self._last_rise_ns
            if period is not None and high < DUTY_MIN * min(period, 2 * high) - 1e-9:
                raise TimingViolation(f"SCLK high only {high:.2f} ns")
        self._last_fall_ns = t_ns
        if not self._cs_low:
            return
        if self._falls == 0 and t_ns - self._cs_fall_ns < T2_NS - 1e-9:
            raise TimingViolation(f"t2: first SCLK fall {t_ns - self._cs_fall_ns:.2f} ns after CS")
        self._falls += 1
        if self._falls < SCLK_EDGES:
            self._drive(t_ns, T7_NS, T4_NS, self._bits[self._falls])
        elif self._falls == SCLK_EDGES:
            self._drive(t_ns, T7_NS, T8_NS, None)

    def read(self, t_ns):
        """What the FPGA reads on (SDATA_A, SDATA_B) at t_ns; raises if the line is not valid."""
        for unknown_from, valid_from, value in reversed(self._line):
            if unknown_from <= t_ns:
                if t_ns < valid_from:
                    raise TimingViolation(f"SDATA read at {t_ns:.2f} ns inside its change window "
                                          f"[{unknown_from:.2f}, {valid_from:.2f}] ns")
                if value is None:
                    raise TimingViolation(f"SDATA read at {t_ns:.2f} ns while three-state")
                return value
        raise AssertionError("unreachable: the line starts three-state at -inf")
