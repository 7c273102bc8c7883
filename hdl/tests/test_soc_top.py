"""SocTop elaborates for both boards with the real pins: USB (LUNA), the Feather UART, PROGRAMN,
the configuration flash (its clock through USRMCLK), the r0.2's button, the AD7357 wing, the CPU's Verilog, and the clock constraints on the named PLL nets.
(Place and route with timing is the bitstream build's job: `npm run gateware -- --board ...`.)"""

import pytest

from crabwatt.build import BOARDS
from crabwatt.soc.top import SocTop

IMAGE = b'\x6f\x00\x00\x00'    # `j .`: the image's content does not matter here

FLASH_PINS = {'U17', 'U18', 'T18', 'R18', 'N18'}     # CS#, COPI, CIPO, WP#, HOLD#; not U16 (MCLK)
PINS = {   # USB, UART, PROGRAMN, RGB LED (r0.2: and the button), the configuration flash
    'r0.1': {'N1', 'M2', 'N2', 'M18', 'N17', 'R16', 'V17', 'T17', 'J3'} | FLASH_PINS,
    'r0.2': {'N1', 'M2', 'N2', 'M18', 'N17', 'V17', 'K4', 'M3', 'J3', 'J17'} | FLASH_PINS,
}


@pytest.mark.parametrize('board', sorted(PINS))
def test_soc_top_prepares(board):
    plan = BOARDS[board]().prepare(SocTop(board=board, image=IMAGE), name='crabwatt')
    assert 'VexRiscv.v' in plan.files
    lpf = plan.files['crabwatt.lpf']
    for ball in PINS[board]:
        assert f'SITE "{ball}"' in lpf, f'{ball} missing from the constraints'
    assert 'SITE "U16"' not in lpf, 'the flash clock is the MCLK pin: only USRMCLK may drive it'
    design = ''.join(v for k, v in plan.files.items() if k.endswith('.il'))
    assert 'USRMCLK' in design
    sdc = ''.join(v for k, v in plan.files.items() if k.endswith(('.sdc', '.lpf')))
    for net in ('clk_sys', 'clk_adc', 'clk_usb', 'clk_adc_rd'):
        assert net in sdc, f'no clock constraint on {net}'


def test_unknown_board_is_rejected():
    with pytest.raises(ValueError, match='unknown board'):
        SocTop(board='r9', image=b'')
