"""The decimator (docs/dsp.md, Decimated waveform) bit-exact against test/vectors/decimator/*.json,
with pairs every 2 cycles (as in the RTL twin) and irregularly further apart; its input guard (a pair on
the cycle after another is refused and flagged); and that PowerDsp never offers such a pair."""
import json
import pathlib

import pytest

from crabwatt.dsp import PowerDsp, CONFIG_RESET, MODE_FIXED
from crabwatt.dsp.decimator import (Decimator, FIR_HALF_TAPS, DECIMATION, DECIMATED_FIRST_INDEX,
                                    INTEGRATOR_LAG)
from simhelpers import simulate, rng_for

VECTORS = pathlib.Path(__file__).resolve().parents[3] / "test" / "vectors" / "decimator"
FILES = sorted(VECTORS.glob("*.json")) if VECTORS.is_dir() else []


def load(path):
    vec = json.loads(path.read_text())
    assert vec["kind"] == "decimator" and vec["format"] == 1
    assert tuple(vec["fir_half_taps"]) == FIR_HALF_TAPS
    assert vec["decimation"] == DECIMATION
    assert vec["expected"]["first_index"] == DECIMATED_FIRST_INDEX
    # The registered integrator chain emits the last output INTEGRATOR_LAG samples late: pad with zeros.
    pairs = list(zip(vec["stimulus"]["v"], vec["stimulus"]["i"])) + [(0, 0)] * INTEGRATOR_LAG
    want = list(zip(vec["expected"]["v"], vec["expected"]["i"]))
    return pairs, want


def run(name, pairs, idle_after, intruders=()):
    """Feed `pairs`, each followed by `idle_after(k)` >= 1 cycles without `valid`; `intruders[k]`, when
    present, is a pair offered on the cycle right after pair k. Returns the stream and `overrun`."""
    dut = Decimator()
    got = []
    flag = []

    async def feed(ctx):
        for k, (v, i) in enumerate(pairs):
            ctx.set(dut.valid, 1)
            ctx.set(dut.v, v)
            ctx.set(dut.i, i)
            await ctx.tick()
            idle = idle_after(k)
            assert idle >= 1
            if k in intruders:
                ctx.set(dut.v, intruders[k][0])
                ctx.set(dut.i, intruders[k][1])
                await ctx.tick()
                idle -= 1
            ctx.set(dut.valid, 0)
            for _ in range(idle):
                await ctx.tick()
        for _ in range(600):      # let the last FIR finish
            await ctx.tick()
        flag.append(ctx.get(dut.overrun))

    async def collect(ctx):
        async for _, _, valid, v, i, j in ctx.tick().sample(dut.out_valid, dut.out_v, dut.out_i, dut.out_count):
            if valid:
                assert j == len(got)
                got.append((v, i))

    simulate(dut, [feed], name, processes=[collect])
    return got, flag[0]


def spacing(rng, regular_until):
    """Exactly every 2 cycles for the first `regular_until` pairs (the twin's rate, the closest the
    input may come), then 2 or more at random."""
    return lambda k: 1 if k < regular_until or rng.random() < 0.6 else rng.randint(2, 12)


def test_vectors_are_present():
    assert FILES, f"no decimator vectors in {VECTORS}: generate them with `crabwatt vectors`"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path):
    pairs, want = load(path)
    got, overrun = run(f"decimator_{path.stem}", pairs, spacing(rng_for(path.stem), len(pairs) // 2))
    assert got == want
    assert overrun == 0


def test_a_pair_on_the_cycle_after_another_is_refused_and_flagged():
    # The first 4 outputs of a vector, with junk pairs offered right after some of its pairs: the
    # stream must be the vector's (the junk not added, the next pair not mis-added) and `overrun` set.
    path = FILES[0]
    pairs, want = load(path)
    n = 128 * (67 + 4 * 3) + 127 + 1 + INTEGRATOR_LAG
    rng = rng_for("overrun")
    intruders = {k: (rng.randint(-2**17, 2**17 - 1), rng.randint(-2**17, 2**17 - 1))
                 for k in rng.sample(range(n), 40)}
    got, overrun = run("decimator_overrun", pairs[:n], lambda k: 1 if k in intruders else 2, intruders)
    assert got == want[:4]
    assert overrun == 1


def test_power_dsp_never_offers_pairs_on_adjacent_cycles():
    # What the decimator relies on (the module docstring): an always-valid source and a window
    # consumer that stalls the pipeline at random still give calibrated pairs >= 2 cycles apart.
    dut = PowerDsp(reset_config=dict(CONFIG_RESET, mode=MODE_FIXED, fixed_samples=1))
    rng = rng_for("spacing")
    seen = []

    async def tb(ctx):
        ctx.set(dut.samples.valid, 1)
        last = False
        for k in range(600):
            ctx.set(dut.samples.payload, {"cv": 8192 + k, "ci": 8000, "index": k})
            ctx.set(dut.windows.ready, rng.random() < 0.5)
            now = bool(ctx.get(dut.calibrated_valid))
            assert not (now and last), f"calibrated pairs on adjacent cycles at cycle {k}"
            seen.append(now)
            last = now
            await ctx.tick()

    simulate(dut, [tb], "decimator_input_spacing")
    assert sum(seen) > 100
