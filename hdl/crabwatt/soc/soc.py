"""The SoC core: VexRiscv, boot ROM, RAM and the CSR bank with its peripherals, and ports towards the
DSP, the capture buffer and the links. Clocking, pins, the DSP itself and the watchdog's reset are
the business of the top that instantiates it (`crabwatt.soc.top` for boards, `crabwatt.soc.twin`
for the Verilator twin)."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..dsp.decimator import W_BITS
from ..dsp.layouts import ConfigLayout
from . import regmap, wishbone
from .channel import ByteChannel
from .cpu import VexRiscv
from .csr import CsrBank
from .memory import Ram, Rom
from .result import ResultFifo, WindowRecord
from .waveform import WaveformFifo
from .spiflash import SpiFlashMaster
from .sysctl import Timer, Watchdog

__all__ = ['SoC', 'DspConfig', 'CaptureConfig']

#: The staged DSP configuration (docs/dsp.md), as the CSRs hold it: the DSP core's own layout.
DspConfig = ConfigLayout()

CaptureConfig = data.StructLayout({
    'pairs': unsigned(16), 'trigger': unsigned(3), 'level': signed(16), 'pretrigger': unsigned(16),
    'decimation': unsigned(16), 'hysteresis': unsigned(16),
})

_DSP_REGS = {'mode': 'MODE', 'cycles': 'CYCLES', 'fixed_samples': 'FIXED_SAMPLES', 'max_samples': 'MAX_SAMPLES',
             'zc_hysteresis': 'ZC_HYSTERESIS', 'v_offset': 'V_OFFSET', 'i_offset': 'I_OFFSET',
             'v_gain': 'V_GAIN', 'i_gain': 'I_GAIN', 'phase': 'PHASE'}


class SoC(wiring.Component):
    """Parameters:
    - `image`: the firmware (bytes of firmware.bin) for the boot ROM;
    - `sys_clk_hz`: the `sync` clock; `uart_baud`: the UART's reset baud rate;
    - `board`, `adc_part`, `capture_depth`, `device_id`, `sample_rate`: identify constants;
    - `usb`: whether a USB link (in the `usb` domain) is attached.
    """

    def __init__(self, *, image: bytes, sys_clk_hz: int, board: int, adc_part: int, capture_depth: int,
                 device_id: int = 0, sample_rate: tuple[int, int] = (4_000_000, 1), uart_baud: int = 115_200,
                 usb: bool = False, result_fifo_words: int = 512):
        self._image, self._sys_clk_hz, self._usb = image, sys_clk_hz, usb
        self._result_fifo_words = result_fifo_words
        divisor = round(sys_clk_hz / uart_baud)
        if not 4 <= divisor < 1 << 16:
            raise ValueError(f'UART divisor {divisor} for {uart_baud} baud is outside 4..65535')
        self._csr_values = {
            ('IDENT', 'BOARD'): board, ('IDENT', 'ADC_PART'): adc_part,
            ('IDENT', 'SAMPLE_RATE_NUM'): sample_rate[0], ('IDENT', 'SAMPLE_RATE_DEN'): sample_rate[1],
            ('IDENT', 'SYS_CLK_HZ'): sys_clk_hz, ('IDENT', 'CAPTURE_DEPTH'): capture_depth,
            ('IDENT', 'RESULT_FIFO_WORDS'): result_fifo_words,
            ('IDENT', 'DEVICE_ID_LO'): device_id & 0xFFFF_FFFF, ('IDENT', 'DEVICE_ID_HI'): device_id >> 32,
            ('UART', 'DIVISOR'): divisor,
        }
        ports = {
            # DSP
            'dsp_config': Out(DspConfig), 'dsp_commit': Out(1),
            'dsp_config_seq': In(16), 'dsp_commit_pending': In(1), 'sample_index': In(64),
            'window': In(WindowRecord), 'window_valid': In(1),
            # decimated waveform stream (crabwatt.dsp.Decimator)
            'wave_valid': In(1), 'wave_v': In(signed(W_BITS)), 'wave_i': In(signed(W_BITS)), 'wave_count': In(48),
            # capture buffer
            'capture_config': Out(CaptureConfig), 'capture_arm': Out(1),
            'capture_status': In(3), 'capture_trigger_index': In(64), 'capture_first_index': In(64),
            'capture_config_seq': In(16), 'capture_read_addr': Out(16), 'capture_read_data': In(32),
            # health
            'samples_dropped': In(32), 'adc_errors': In(32),
            # links
            'uart_tx': Out(stream.Signature(8)), 'uart_rx': In(stream.Signature(8)), 'uart_divisor': Out(16),
            # system
            'wdt_fire': Out(1), 'reset_cause_watchdog': In(1), 'wdt_resets': In(16), 'reboot': Out(1),
            # ADC read timing
            'adc_read_delay': Out(8), 'adc_phase_settled': In(1),
            # configuration flash pins (registered; `flash_cs` 1 = selected)
            'flash_sck': Out(1), 'flash_copi': Out(1), 'flash_cs': Out(1), 'flash_cipo': In(1),
        }
        if usb:
            ports.update({'usb_tx': Out(stream.Signature(8)), 'usb_rx': In(stream.Signature(8)),
                          'usb_configured': In(1),
                          # USB.SERIAL_LO/HI, with a strobe when SERIAL_HI is written
                          'usb_serial': Out(64), 'usb_serial_stb': Out(1)})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.cpu = cpu = VexRiscv(reset_vector=regmap.RESET_VECTOR)
        m.submodules.rom = rom = Rom(regmap.ROM_SIZE_BYTES, self._image)
        m.submodules.ram = ram = Ram(regmap.RAM_SIZE_BYTES)
        m.submodules.csr = bank = CsrBank(values=self._csr_values)
        region = lambda base: base >> 28
        m.submodules.ibus_decoder = ibus_dec = wishbone.Decoder([(region(regmap.ROM_BASE), rom.ibus)])
        m.submodules.dbus_decoder = dbus_dec = wishbone.Decoder([
            (region(regmap.ROM_BASE), rom.dbus), (region(regmap.RAM_BASE), ram.bus),
            (region(regmap.CSR_BASE), bank.bus)])
        wiring.connect(m, cpu.ibus, ibus_dec.bus)
        wiring.connect(m, cpu.dbus, dbus_dec.bus)

        # SYS
        m.submodules.timer = timer = Timer(self._sys_clk_hz)
        m.submodules.watchdog = wdt = Watchdog()
        cycles_hi = Signal(32)
        with m.If(bank['SYS', 'CYCLES_LO'].r_stb):
            m.d.sync += cycles_hi.eq(timer.cycles[32:])
        prev_ms = Signal(32)
        m.d.sync += prev_ms.eq(timer.uptime_ms)
        m.d.comb += [
            bank['SYS', 'UPTIME_MS'].value.eq(timer.uptime_ms),
            bank['SYS', 'CYCLES_LO'].value.eq(timer.cycles[:32]),
            bank['SYS', 'CYCLES_HI'].value.eq(cycles_hi),
            wdt.timeout_ms.eq(bank['SYS', 'WDT_TIMEOUT_MS'].value),
            wdt.timeout_written.eq(bank['SYS', 'WDT_TIMEOUT_MS'].w_stb),
            wdt.kick_stb.eq(bank['SYS', 'WDT_KICK'].w_stb), wdt.kick_data.eq(bank['SYS', 'WDT_KICK'].value),
            wdt.tick_ms.eq(prev_ms != timer.uptime_ms),
            self.wdt_fire.eq(wdt.fire),
            bank['SYS', 'RESET_CAUSE'].value.eq(Cat(~self.reset_cause_watchdog, self.reset_cause_watchdog)),
            bank['SYS', 'WDT_RESETS'].value.eq(self.wdt_resets),
        ]
        with m.If(bank['SYS', 'REBOOT'].w_stb & (bank['SYS', 'REBOOT'].value == regmap.REBOOT_KEY)):
            m.d.sync += self.reboot.eq(1)     # held until the FPGA reconfigures

        # UART
        m.submodules.uart = uart = ByteChannel(tx_depth=256, rx_depth=64)
        self._hook_channel(m, bank, 'UART', uart)
        wiring.connect(m, uart.tx, wiring.flipped(self.uart_tx))
        wiring.connect(m, wiring.flipped(self.uart_rx), uart.rx)
        m.d.comb += self.uart_divisor.eq(bank['UART', 'DIVISOR'].value)

        # USB
        if self._usb:
            m.submodules.usb = usb = ByteChannel(tx_depth=512, rx_depth=64, link_domain='usb',
                                                 drop_when_full=False)
            self._hook_channel(m, bank, 'USB', usb)
            wiring.connect(m, usb.tx, wiring.flipped(self.usb_tx))
            wiring.connect(m, wiring.flipped(self.usb_rx), usb.rx)
            configured = Signal()
            m.submodules.usb_configured_sync = FFSynchronizer(self.usb_configured, configured)
            m.d.comb += bank['USB', 'STATUS'].value.eq(Cat(C(1, 1), configured))
            # The strobe comes a cycle after the write, when SERIAL_HI holds the written value.
            m.d.comb += self.usb_serial.eq(Cat(bank['USB', 'SERIAL_LO'].value, bank['USB', 'SERIAL_HI'].value))
            m.d.sync += self.usb_serial_stb.eq(bank['USB', 'SERIAL_HI'].w_stb)

        # DSP configuration
        for fieldname, reg in _DSP_REGS.items():
            m.d.comb += getattr(self.dsp_config, fieldname).eq(bank['DSP', reg].value)
        sample_index_hi = Signal(32)
        with m.If(bank['DSP', 'SAMPLE_INDEX_LO'].r_stb):
            m.d.sync += sample_index_hi.eq(self.sample_index[32:])
        m.d.comb += [
            self.dsp_commit.eq(bank['DSP', 'COMMIT'].w_stb),
            bank['DSP', 'CONFIG_SEQ'].value.eq(self.dsp_config_seq),
            bank['DSP', 'STATUS'].value.eq(self.dsp_commit_pending),
            bank['DSP', 'SAMPLE_INDEX_LO'].value.eq(self.sample_index[:32]),
            bank['DSP', 'SAMPLE_INDEX_HI'].value.eq(sample_index_hi),
        ]

        # Result FIFO
        m.submodules.result = result = ResultFifo(self._result_fifo_words)
        m.d.comb += [
            result.record.eq(self.window), result.valid.eq(self.window_valid),
            bank['RESULT', 'DATA'].value.eq(result.data), bank['RESULT', 'LEVEL'].value.eq(result.level),
            result.pop.eq(bank['RESULT', 'POP'].w_stb),
            bank['RESULT', 'OVERFLOWS'].value.eq(result.overflows),
        ]

        # Decimated waveform
        m.submodules.waveform = wave = WaveformFifo()
        wave_count_hi = Signal(16)
        with m.If(bank['WAVEFORM', 'COUNT_LO'].r_stb):
            m.d.sync += wave_count_hi.eq(self.wave_count[32:])
        m.d.comb += [
            wave.valid.eq(self.wave_valid), wave.v.eq(self.wave_v), wave.i.eq(self.wave_i),
            wave.count.eq(self.wave_count), wave.pop.eq(bank['WAVEFORM', 'POP'].w_stb),
            bank['WAVEFORM', 'V'].value.eq(wave.head_v), bank['WAVEFORM', 'I'].value.eq(wave.head_i),
            bank['WAVEFORM', 'J'].value.eq(wave.head_j), bank['WAVEFORM', 'LEVEL'].value.eq(wave.level),
            bank['WAVEFORM', 'DROPS'].value.eq(wave.drops),
            bank['WAVEFORM', 'COUNT_LO'].value.eq(self.wave_count[:32]),
            bank['WAVEFORM', 'COUNT_HI'].value.eq(wave_count_hi),
        ]

        # Capture
        m.d.comb += [
            self.capture_config.pairs.eq(bank['CAPTURE', 'PAIRS'].value),
            self.capture_config.trigger.eq(bank['CAPTURE', 'TRIGGER'].value),
            self.capture_config.level.eq(bank['CAPTURE', 'LEVEL'].value),
            self.capture_config.pretrigger.eq(bank['CAPTURE', 'PRETRIGGER'].value),
            self.capture_config.decimation.eq(bank['CAPTURE', 'DECIMATION'].value),
            self.capture_config.hysteresis.eq(bank['CAPTURE', 'HYSTERESIS'].value),
            self.capture_arm.eq(bank['CAPTURE', 'ARM'].w_stb),
            bank['CAPTURE', 'STATUS'].value.eq(self.capture_status),
            bank['CAPTURE', 'TRIGGER_INDEX_LO'].value.eq(self.capture_trigger_index[:32]),
            bank['CAPTURE', 'TRIGGER_INDEX_HI'].value.eq(self.capture_trigger_index[32:]),
            bank['CAPTURE', 'FIRST_INDEX_LO'].value.eq(self.capture_first_index[:32]),
            bank['CAPTURE', 'FIRST_INDEX_HI'].value.eq(self.capture_first_index[32:]),
            bank['CAPTURE', 'CONFIG_SEQ'].value.eq(self.capture_config_seq),
            self.capture_read_addr.eq(bank['CAPTURE', 'READ_ADDR'].value),
            bank['CAPTURE', 'READ_DATA'].value.eq(self.capture_read_data),
        ]

        # Counters
        m.d.comb += [
            bank['COUNTERS', 'SAMPLES_DROPPED'].value.eq(self.samples_dropped),
            bank['COUNTERS', 'ADC_ERRORS'].value.eq(self.adc_errors),
        ]

        # ADC read timing
        m.d.comb += [
            self.adc_read_delay.eq(bank['ADC', 'READ_DELAY'].value),
            bank['ADC', 'STATUS'].value.eq(self.adc_phase_settled),
        ]
        # Configuration flash
        m.submodules.flash = flash = SpiFlashMaster()
        m.d.comb += [
            flash.select.eq(bank['FLASH', 'CONTROL'].value[0]),
            flash.tx_data.eq(bank['FLASH', 'DATA'].value[:8]), flash.tx_stb.eq(bank['FLASH', 'DATA'].w_stb),
            bank['FLASH', 'STATUS'].value.eq(flash.busy), bank['FLASH', 'RX'].value.eq(flash.rx_data),
            self.flash_sck.eq(flash.sck), self.flash_copi.eq(flash.copi), self.flash_cs.eq(flash.cs),
            flash.cipo.eq(self.flash_cipo),
        ]
        return m

    @staticmethod
    def _hook_channel(m, bank, block, ch):
        m.d.comb += [
            ch.tx_data.eq(bank[block, 'TX'].value), ch.tx_stb.eq(bank[block, 'TX'].w_stb),
            bank[block, 'TX_FREE'].value.eq(ch.tx_free),
            bank[block, 'RX'].value.eq(Cat(ch.rx_data, ch.rx_valid)),
            ch.rx_pop.eq(bank[block, 'RX_POP'].w_stb),
            bank[block, 'RX_OVERRUNS'].value.eq(ch.rx_overruns),
        ]
