"""The DSP pipeline of docs/dsp.md: calibration (phase, offset, gain), products, windows, energy."""
from .layouts import *            # noqa: F401,F403  (the shapes are part of the package's interface)
from .calibrate import ChannelCalibrator  # noqa: F401
from .power import PowerDsp      # noqa: F401
from .decimator import Decimator  # noqa: F401
