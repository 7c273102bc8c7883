"""The register map is consistent, and the committed generated files match it."""

import pathlib
import re

import pytest

from crabwatt.soc import docs, regmap

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_map_is_consistent():
    regmap.check()


def test_regions_do_not_overlap():
    regions = sorted([(regmap.ROM_BASE, regmap.ROM_SIZE_BYTES), (regmap.RAM_BASE, regmap.RAM_SIZE_BYTES),
                      (regmap.CSR_BASE, regmap.CSR_SIZE_BYTES)])
    for (a, n), (b, _) in zip(regions, regions[1:]):
        assert a + n <= b
    # VexRiscv ("standard") treats addresses with bit 31 set as I/O: the CSRs must be there, memory not.
    assert regmap.CSR_BASE >> 31 == 1
    assert (regmap.RAM_BASE + regmap.RAM_SIZE_BYTES - 1) >> 31 == 0


def test_linker_script_memory_matches_the_map():
    """firmware/link.ld is hand-written: its MEMORY regions must be the map's ROM and RAM, or the
    firmware links for memory the SoC does not have (or leaves part of it unused)."""
    text = (ROOT / 'firmware/link.ld').read_text()
    units = {'': 1, 'K': 1024, 'M': 1024 * 1024}
    regions = {name: (int(origin, 0), int(length) * units[unit])
               for name, origin, length, unit in re.findall(
                   r'^\s*(\w+)\s*\([a-z]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+|\d+)\s*,'
                   r'\s*LENGTH\s*=\s*(\d+)([KM]?)\s*$', text, re.M)}
    assert regions == {'rom': (regmap.ROM_BASE, regmap.ROM_SIZE_BYTES),
                       'ram': (regmap.RAM_BASE, regmap.RAM_SIZE_BYTES)}


def test_dsp_resets_match_docs_dsp_md():
    dsp = next(b for b in regmap.BLOCKS if b.name == 'DSP')
    assert dsp.register('V_GAIN').reset == 16384
    assert dsp.register('MAX_SAMPLES').reset == 4_000_000
    assert dsp.register('ZC_HYSTERESIS').reset == 64
    assert dsp.register('PHASE').reset == 0


def test_address_lookup():
    assert regmap.address('SYS', 'SCRATCH') == 0xF000_0100
    with pytest.raises(KeyError):
        regmap.address('SYS', 'NOPE')


def test_overlap_is_rejected():
    with pytest.raises(ValueError):
        regmap.Register('X', 0x2, 'rw', 'misaligned')
    with pytest.raises(ValueError):
        regmap.Register('X', 0x0, 'rw', 'field too wide', width=8, fields=(regmap.Field('F', 4, 8, ''),))


@pytest.mark.parametrize('path, text', [
    ('firmware/include/crabwatt_csr.h', regmap.c_header),
    ('docs/soc.md', docs.page),
])
def test_generated_files_are_current(path, text):
    assert (ROOT / path).read_text() == text(), f'{path} is stale: run python -m crabwatt.soc.regmap'
