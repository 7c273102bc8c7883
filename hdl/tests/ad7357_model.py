"""Behavioural model of the AD7357 serial interface that enforces the datasheet timing.

The model is told the FPGA's clock edges that drive CS and SCLK (in ns) and answers what the FPGA's
input register holds on SDATA_A/SDATA_B when it samples at a given time. Any violation raises
`TimingViolation`:

- tQUIET: CS high for at least T_QUIET_NS between the end of one read and the next CS fall;
- t2: CS falling edge to the first SCLK falling edge at least T2_NS;
- tCONVERT: a conversion needs 16 SCLK falling edges with CS low (CS rising earlier aborts it: a
  violation, or counted in `aborted` with `allow_abort`, which a reset may do);
- tACQ: the track-and-hold acquires from the 16th SCLK falling edge to the next CS falling edge, at
  least `t_acq_ns`;
- fSCLK: SCLK period at least 1/80 MHz, high and low each at least 0.4 tSCLK;
- data: the first leading zero appears T3_NS after CS falls, then each SCLK falling edge shifts the
  next bit out; the old bit is held T7_NS, the new one valid `t4_ns` after the edge. With CS held low
  past the 16th edge the part goes on with the other converter's 16 bits (SDATA_A carries B's, SDATA_B
  A's, as the AD735x family does) and goes three-state on the 32nd edge or when CS rises (T8_NS);
- a read is legal only where the line is valid over the register's aperture (`aperture_ns` around the
  sampling instant): reading inside a change window, before t3 or while three-state is a violation.
  With `rng`, such a read returns random bits instead (what a register does there), so a test can
  check that wrong capture points are caught rather than stop at the first one.

Delays (ns): `out_delay_ns` (FPGA output register clock to CS/SCLK at the ADC, trace included),
`in_delay_ns` (SDATA at the ADC to the FPGA input register, trace included). Both move the ADC's
change windows later as the FPGA sees them. `t4_ns` and `t7_ns` bound when a bit changes after its
SCLK edge: the datasheet's limits by default (the worst case); a real part changes somewhere inside.

Limits: AD7357 datasheet (Rev. E), timing specifications, VDRIVE 2.25 V to 3.6 V. T_ACQ_NS is not
from the datasheet: the part's acquisition time must be checked against the revision in use.
"""
F_SCLK_MAX_HZ = 80e6
T_QUIET_NS = 10.0
T2_NS = 5.0        # CS to SCLK setup
T3_NS = 6.0        # CS to SDATA leaving three-state (max)
T4_NS = 11.0       # data access after SCLK falling edge (max)
T7_NS = 3.5        # SCLK to data valid hold (min)
T8_NS = 9.5        # SCLK falling edge to three-state after the 16th edge (max)
T_ACQ_NS = 20.0    # acquisition, last SCLK falling edge to the next CS fall (assumed: check Rev. E)
APERTURE_NS = 1.0  # the FPGA input register's setup + hold window (assumed)
SCLK_EDGES = 16
DUTY_MIN = 0.4


class TimingViolation(AssertionError):
    pass


class AD7357:
    def __init__(self, codes, *, out_delay_ns=1.0, in_delay_ns=1.0, t4_ns=T4_NS, t7_ns=T7_NS, t_acq_ns=T_ACQ_NS,
                 aperture_ns=APERTURE_NS, allow_abort=False, rng=None):
        """codes: iterable of (code_a, code_b), 14-bit straight binary, one per conversion."""
        self._codes = iter(codes)
        self._out = out_delay_ns
        self._in = in_delay_ns
        self._t4 = t4_ns
        self._t7 = t7_ns
        self._t_acq = t_acq_ns
        self._aperture = aperture_ns
        self._allow_abort = allow_abort
        self._rng = rng
        self.conversions = 0        # conversions read whole (16 SCLK falling edges, then CS high)
        self.aborted = 0
        self.completed = []         # their codes, in order
        self.violations = 0         # reads that returned random bits (with rng)
        self._codes_now = None
        self._cs_low = False
        self._cs_rise_ns = None
        self._cs_fall_ns = None
        self._falls = 0
        self._last_fall_ns = None
        self._last_rise_ns = None
        self._track_from_ns = None
        self._sclk_high = False
        self._bits = None
        # Line as the FPGA's input register sees it: (unknown_from_ns, valid_from_ns, bits or None=Z).
        self._line = [(float("-inf"), float("-inf"), None)]

    @property
    def falls(self):
        """SCLK falling edges since CS fell."""
        return self._falls

    def _drive(self, edge_ns, t_min, t_max, value):
        # edge_ns is already at the ADC (output delay added); the input delay brings it to the register.
        self._line.append((edge_ns + t_min + self._in, edge_ns + t_max + self._in, value))

    def cs(self, t_ns, level):
        """The FPGA's output register changes CS at t_ns (it reaches the ADC out_delay_ns later)."""
        t = t_ns + self._out
        if not level and not self._cs_low:
            if self._cs_rise_ns is not None and t - self._cs_rise_ns < T_QUIET_NS - 1e-9:
                raise TimingViolation(f"tQUIET: CS high {t - self._cs_rise_ns:.2f} ns at {t:.1f} ns")
            if self._track_from_ns is not None and t - self._track_from_ns < self._t_acq - 1e-9:
                raise TimingViolation(f"tACQ: {t - self._track_from_ns:.2f} ns of acquisition at {t:.1f} ns")
            try:
                a, b = next(self._codes)
            except StopIteration:
                raise TimingViolation("more conversions than the stimulus holds") from None
            self._codes_now = (a, b)
            word = lambda code: [0, 0] + [(code >> k) & 1 for k in range(13, -1, -1)]
            # Past the 16th edge each line goes on with the other converter's word.
            self._bits = list(zip(word(a) + word(b), word(b) + word(a)))
            self._cs_low, self._cs_fall_ns, self._falls = True, t, 0
            self._drive(t, 0.0, T3_NS, self._bits[0])
        elif level and self._cs_low:
            if self._falls < SCLK_EDGES:
                if not self._allow_abort:
                    raise TimingViolation(
                        f"tCONVERT: CS rose after {self._falls} SCLK falling edges at {t:.1f} ns")
                self.aborted += 1
            else:
                self.conversions += 1
                self.completed.append(self._codes_now)
            self._cs_low, self._cs_rise_ns = False, t
            self._drive(t, 0.0, T8_NS, None)

    def sclk(self, t_ns, level):
        """The FPGA's output register changes SCLK at t_ns (it reaches the ADC out_delay_ns later)."""
        t = t_ns + self._out
        if level == self._sclk_high:
            return
        self._sclk_high = level
        if level:
            if self._last_fall_ns is not None and t - self._last_fall_ns < 0.4 / F_SCLK_MAX_HZ * 1e9 - 1e-9:
                raise TimingViolation(f"SCLK low only {t - self._last_fall_ns:.2f} ns")
            self._last_rise_ns = t
            return
        if self._last_fall_ns is not None and t - self._last_fall_ns < 1e9 / F_SCLK_MAX_HZ - 1e-9:
            raise TimingViolation(f"fSCLK above 80 MHz at {t:.1f} ns")
        if self._last_rise_ns is not None:
            period = t - self._last_fall_ns if self._last_fall_ns is not None else None
            high = t - self._last_rise_ns
            if period is not None and high < DUTY_MIN * min(period, 2 * high) - 1e-9:
                raise TimingViolation(f"SCLK high only {high:.2f} ns")
        self._last_fall_ns = t
        if not self._cs_low:
            return
        if self._falls == 0 and t - self._cs_fall_ns < T2_NS - 1e-9:
            raise TimingViolation(f"t2: first SCLK fall {t - self._cs_fall_ns:.2f} ns after CS")
        self._falls += 1
        if self._falls == SCLK_EDGES:
            self._track_from_ns = t
        if self._falls < 2 * SCLK_EDGES:
            self._drive(t, self._t7, self._t4, self._bits[self._falls])
        elif self._falls == 2 * SCLK_EDGES:
            self._drive(t, self._t7, T8_NS, None)

    def read(self, t_ns, used=True):
        """What the FPGA's input register takes on (SDATA_A, SDATA_B) when it samples at t_ns.
        `used`: the capture keeps this sample; the register samples every period, and the others
        are free to be anything (0 where the line is not valid)."""
        lo, hi = t_ns - self._aperture / 2, t_ns + self._aperture / 2
        for k in range(len(self._line) - 1, -1, -1):
            unknown_from, valid_from, value = self._line[k]
            if unknown_from <= hi:
                break
        problem = None
        if valid_from > lo:
            problem = (f"SDATA read at {t_ns:.2f} ns inside its change window "
                       f"[{unknown_from:.2f}, {valid_from:.2f}] ns")
        elif value is None:
            problem = f"SDATA read at {t_ns:.2f} ns while three-state"
        if problem is None:
            return value
        if not used:
            return (0, 0)
        if self._rng is None:
            raise TimingViolation(problem)
        self.violations += 1
        return (self._rng.randrange(2), self._rng.randrange(2))

    def prune(self, before_ns):
        """Forget line changes older than the last one before `before_ns` (long runs)."""
        k = len(self._line) - 1
        while k > 0 and self._line[k][0] > before_ns:
            k -= 1
        del self._line[:k]
