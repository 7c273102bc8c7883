"""docs/soc.md: the SoC's description (below) followed by the generated memory and register map."""

from . import regmap

NARRATIVE = '''\
## Structure

```
48 MHz osc --> EHXPLLL --> adc    72 MHz   AD7357 SCLK and serial capture (crabwatt.adc)
                      |--> sync   48 MHz   power-on domain: the reset controller only
                      |           (soc     same clock, also reset by the watchdog)
                      |           (usb_io  same clock: LUNA's pin-level PHY)
                      `--> usb    12 MHz   LUNA's USB protocol engine

AD7357 --> AdcFrontEnd --> DspLink: PowerDsp --> windows --> result FIFO --+
                                    `--> calibrated --> CaptureBuffer ------+--> CSR bank <--> VexRiscv
                                                                                  |  UART  --> Feather TX/RX
                                                                                  `  USB   --> LUNA CDC-ACM
```

| module (`hdl/crabwatt/soc/`) | role |
| --- | --- |
| `regmap.py` | this map, defined once; generates `firmware/include/crabwatt_csr.h` and this page |
| `cpu.py` | VexRiscv from `pythondata-cpu-vexriscv` (`VexRiscv.v`: rv32im, 4 KiB I and D caches) |
| `wishbone.py`, `memory.py`, `csr.py` | the bus, boot ROM (two read ports) and RAM in block RAM, the CSR decoder |
| `channel.py`, `uart.py` | byte FIFOs between the CPU and a link; the 8N1 UART |
| `result.py` | window records into 32-bit FIFO words, written whole or dropped and counted |
| `sysctl.py` | uptime and cycle counters, watchdog, the reset controller that survives watchdog resets |
| `spiflash.py` | the configuration flash's SPI master (USRMCLK on the board), the r0.2 button's reboot |
| `dsp_link.py` | joins `PowerDsp`, `CaptureBuffer` and `Decimator` to the CSRs |
| `top.py` | `SocTop`: clocks, pins, LUNA, the whole board design |
| `twin.py` | the top of the Verilator twin |
| `dfu.py` | the DFU file suffix |

The DSP never waits: its window stream is always accepted, and a record that finds the FIFO without
room for all of it is dropped and counted in `RESULT.OVERFLOWS`. The firmware polls; there are no
interrupts. A watchdog reset restarts the CPU and the measurement path together (a new boot starts a
new energy epoch at sample 0, which the new `boot_id` tells the host); `SYS.WDT_RESETS` and
`SYS.RESET_CAUSE` live in the power-on domain and survive it. Block RAM that the firmware places in
`.noinit` keeps its contents across a watchdog reset.

USB: LUNA's `USBSerialDevice` (CDC-ACM, VID:PID 1209:5af1) in the `usb`/`usb_io` domains, with async
FIFOs to the CPU. Its iSerialNumber is a string descriptor made at run time from `USB.SERIAL_LO/HI`,
which the firmware sets at boot to the flash's unique ID (16 hex digits), so two boards are two devices
to a host; the pull-up waits for it (a few ms after configuration), and the value lives in the
power-on domain, so a watchdog reset does not detach the board. LUNA sends only full 64-byte packets unless a transfer ends, so every 0x00 byte (the
protocol's frame delimiter) ends one: each frame leaves as soon as it is complete. `USB.STATUS.CONFIGURED`
means a host is driving the bus (start-of-frame packets within 3 ms, not suspended); the firmware then
sends on USB, otherwise on the UART. Of the CDC class requests, SET_LINE_CODING and SET_CONTROL_LINE_STATE
(DTR/RTS) are acknowledged and GET_LINE_CODING (which Windows' usbser.sys sends when it opens the port)
reads back the last line coding set: 115200 8N1 until one is, and again after a bus reset. The rate
changes nothing, bytes move at USB speed; vendor and other class requests are refused with STALL.

## The RTL digital twin

The same SoC, DSP and capture RTL with the real firmware (`firmware/build/firmware.bin`), compiled by
Verilator (`hdl/twin/build.sh`, cached in `build/twin/rtl`). The C++ harness (`hdl/twin/harness.cpp`)
is the ADC: it feeds the 14-bit code pairs of a test vector (`test/vectors/*.json`, converted by
`server/twin/stimulus.ts`) into the DSP, one pair every 2 cycles of the twin's 8 MHz clock (4 Msps).
The serial link is the **UART taken at its byte FIFOs** (no bit timing): bytes go to a pseudo-terminal
(`openpty`; the harness prints `pty: /dev/pts/N`), so the host opens it like `/dev/ttyACM0`.

- `crabwatt serve --device rtl` starts it through `startRtlTwin()` (`server/twin/rtl.ts`): it builds
  the firmware and the twin when they are stale and resolves with `{ path, close() }`.
- `npx vitest run test/twin` is the end-to-end test: vector → gateware → firmware → bytes → pty →
  serialport → `FrameDecoder`; the windows and energy snapshots must equal the model's exactly.
- The configuration flash is `firmware/test/flash_model.c` (the native tests' model too: a
  W25Q128JV, 16 MiB) on the SoC's SPI pins, driven bit by bit in mode 0 by the harness.
  `--flash-file` keeps its contents between runs and `--flash-uid` sets its unique ID, so
  `test/twin/flash.test.ts` (the SoC without the DSP, `build/twin/flash`) shows a board's device id,
  a calibration saved before `cmd_reboot` (which ends the run) applied at the next boot, the host's
  push winning over it, and a damaged record flagged.
- `npx tsx server/twin/bench.ts [--seconds S]` reports the speed as a fraction of real time.

The twin's clock is 8 MHz rather than the board's 48 MHz only because Verilator simulates this SoC at
about 1 MHz of clock per CPU second on this machine (`hdl/twin/build.sh`: `-O2 -march=native`, one
`eval()` per clock, compiled twice guided by a profile of a mains-like run); at 8 MHz that is about 0.12
of real time per CPU second (`npx tsx server/twin/bench.ts --seconds 0.5`), above the goal of 1/10. The
firmware reads the clock from `IDENT.SYS_CLK_HZ`, so its timers stay right, and it gets 2 cycles per
sample where the board's CPU gets 12, a harder case. Host bytes reach the UART at the line's pace (160
twin cycles a byte), and the pseudo-terminal receives whole frames only, so a host that opens it
mid-stream never reads a torn frame. Not in the twin: the AD7357 serial interface (tested in
`hdl/tests/test_adc.py`), the UART's bit timing (tested in `hdl/tests/test_soc.py`) and USB, which is
proven separately against a line-level full-speed host model (`hdl/tests/test_usb_cdc.py`: enumeration,
CDC class requests, bulk transfers both ways with back-pressure, data toggles across re-enumeration).
LUNA's gateware PHY answers 10 to 14 bit times after the host's packet where USB 2.0 allows 7.5: a
board plugged straight into a host port is within the host's 16-bit timeout, one behind several hubs
may not be.

## Bitstream and flashing

`npm run gateware -- --board r0.1|r0.2` builds the firmware and the full design with YoWASP (yosys,
nextpnr-ecp5, ecppack from PyPI), and writes `crabwatt.bit`, `crabwatt.dfu` (bitstream plus the DFU
suffix for the foboot bootloader, 1209:5af0, written by `dfu.py`) and `report.json` (with
`bitstream_bytes` against `flash_slot_bytes`; a bitstream larger than the slot fails the build).
`crabwatt flash crabwatt.dfu` writes it (`dfu-util -a 0 -D`, then `dfu-util -a 0 -e` to start it) once
the board is in foboot's DFU mode, and says how to get there:

- **r0.2**: hold the button about 1 s: the gateware (`spiflash.ButtonReboot`) pulls PROGRAMN low, the
  FPGA reloads foboot, which stays in DFU because the button is still held. Holding it while plugging
  the board in does the same.
- **r0.1**: the button is wired to PROGRAMN on the board (no FPGA pin): a press reloads foboot, which
  on r0.1 stays in DFU after every power-up or reload until `dfu-util -e` starts the user image.
- Either board: `crabwatt reboot` (the protocol's `cmd_reboot`) makes the firmware write `SYS.REBOOT`,
  which drives PROGRAMN low: a restart on r0.2 (into DFU only with the button held), DFU on r0.1.

Flash map (`regmap.py`): foboot from 0; the user bitstream at `0x80000` (DFU alt 0), at most
`FLASH_BITSTREAM_SLOT_BYTES` = 516 096 bytes (504 KiB); foboot's alt 1 (RISC-V code, unused) at
`0x100000`; the user area, the last 8 KiB of the flash (two 4 KiB sectors, `0xFFE000` on the r0.2's
16 MiB W25Q128JV), holds the calibration record (firmware/src/calstore.c). The firmware reads the
flash's 64-bit unique ID (command 0x4B) at boot for the device id.
'''


def page() -> str:
    head, _, rest = regmap.markdown().partition('\n## Memory map\n')
    return head + '\n' + NARRATIVE + '\n## Memory map\n' + rest
