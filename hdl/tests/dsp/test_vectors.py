"""The whole DSP path bit-exact against every shared vector in test/vectors/*.json.

The vectors are written by the host's reference model (test/vectors/README.md). A missing or
empty folder fails: the gateware is only as trusted as its agreement with them.
"""
import json
import pathlib

import pytest

from crabwatt.dsp import PowerDsp
from dsp_harness import run_dut, WINDOW_FIELDS
from simhelpers import rng_for

VECTORS = pathlib.Path(__file__).resolve().parents[3] / "test" / "vectors"
FILES = sorted(VECTORS.glob("*.json")) if VECTORS.is_dir() else []
INT64_FIELDS = {"end_index", "sum_v", "sum_i", "sum_vv", "sum_ii", "sum_vi"}


def test_vectors_are_present():
    assert VECTORS.is_dir(), f"{VECTORS} is missing: generate it with `crabwatt vectors`"
    assert FILES, f"no *.json vectors in {VECTORS}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path):
    vec = json.loads(path.read_text())
    assert vec["format"] == 1, f"{path.name}: unknown vector format {vec['format']}"
    codes = list(zip(vec["stimulus"]["cv"], vec["stimulus"]["ci"]))
    exp = vec["expected"]
    assert exp["sample_count"] == len(codes)
    want = []
    for w, e in zip(exp["windows"], exp["energies"], strict=True):
        rec = {f: (int(w[f]) if f in INT64_FIELDS else w[f]) for f in WINDOW_FIELDS if f != "energy"}
        rec["energy"] = int(e)
        want.append(rec)
    commits = [(c["at_sample"], c["config"]) for c in vec["commits"]]
    got, pairs, energy = run_dut(codes, commits, rng=rng_for(path.stem), expected_windows=len(want),
                                 reset_config=vec["config"], gap=0.1, busy=0.3)
    assert len(pairs) == len(codes)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"{path.name}: window {k} differs"
    assert len(got) == len(want)
    assert energy == int(exp["energy_final"])
