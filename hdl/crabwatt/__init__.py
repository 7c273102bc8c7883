"""crabwatt gateware: AD7357 capture, the power/energy DSP of docs/dsp.md, raw capture, SoC.

Data flow (one module per stage):
  adc.AdcCapture (SCLK domain) -> async FIFO -> dsp.PowerDsp (sync) -> window records
                                                  `-> calibrated pairs -> capture.CaptureBuffer
top.CrabwattTop wires them to the OrangeCrab pins; soc/ grows it into the full SoC.
"""
