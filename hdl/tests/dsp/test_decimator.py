"""The decimator (docs/dsp.md, Decimated waveform) bit-exact against test/vectors/decimator/*.json,
with random gaps between samples and runs of back-to-back samples."""
import json
import pathlib

import pytest

from crabwatt.dsp.decimator import (Decimator, FIR_HALF_TAPS, DECIMATION, DECIMATED_FIRST_INDEX,
                                    INTEGRATOR_LAG)
from simhelpers import simulate, rng_for

VECTORS = pathlib.Path(__file__).resolve().parents[3] / "test" / "vectors" / "decimator"
FILES = sorted(VECTORS.glob("*.json")) if VECTORS.is_dir() else []


def test_vectors_are_present():
    assert FILES, f"no decimator vectors in {VECTORS}: generate them with `crabwatt vectors`"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path):
    vec = json.loads(path.read_text())
    assert vec["kind"] == "decimator" and vec["format"] == 1
    assert tuple(vec["fir_half_taps"]) == FIR_HALF_TAPS
    assert vec["decimation"] == DECIMATION
    assert vec["expected"]["first_index"] == DECIMATED_FIRST_INDEX
    # The registered integrator chain emits the last output INTEGRATOR_LAG samples late: pad with zeros.
    pairs = list(zip(vec["stimulus"]["v"], vec["stimulus"]["i"])) + [(0, 0)] * INTEGRATOR_LAG
    rng = rng_for(path.stem)
    dut = Decimator()
    got = []

    async def feed(ctx):
        for v, i in pairs:
            # Mostly back to back (the hardest case for the time-multiplexed stages), sometimes gaps.
            while rng.random() < 0.1:
                ctx.set(dut.valid, 0)
                await ctx.tick()
            ctx.set(dut.valid, 1)
            ctx.set(dut.v, v)
            ctx.set(dut.i, i)
            await ctx.tick()
        ctx.set(dut.valid, 0)
        for _ in range(400):      # let the last FIR finish
            await ctx.tick()

    async def collect(ctx):
        async for _, _, valid, v, i, j in ctx.tick().sample(dut.out_valid, dut.out_v, dut.out_i, dut.out_count):
            if valid:
                assert j == len(got)
                got.append((v, i))

    simulate(dut, [feed], f"decimator_{path.stem}", processes=[collect])
    want = list(zip(vec["expected"]["v"], vec["expected"]["i"]))
    assert got == want
