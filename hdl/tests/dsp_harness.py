"""Drive PowerDsp in Amaranth's simulator: samples in (random gaps), commits at chosen boundaries,
window records out (random back-pressure), calibrated pairs and the energy accumulator observed."""
from crabwatt.dsp import PowerDsp
from simhelpers import simulate, stream_put, stream_get_lazy

WINDOW_FIELDS = ("end_index", "samples", "sum_v", "sum_i", "sum_vv", "sum_ii", "sum_vi",
                 "min_v", "max_v", "min_i", "max_i", "zc_count", "zc_first_offset",
                 "zc_first_prev", "zc_first_cur", "zc_last_offset", "zc_last_prev",
                 "zc_last_cur", "flags", "config_seq", "energy")


def run_dut(codes, commits=(), *, rng, expected_windows, reset_config=None, gap=0.3, busy=0.5):
    """Feed `codes` [(cv, ci)] with `commits` [(b, config)] (b may repeat, and may equal len(codes):
    such commits are applied after the last sample and one extra sample makes the boundary).

    Returns (windows, pairs, energy): `energy` is E after the last real sample left the pipeline.
    """
    dut = PowerDsp(reset_config=reset_config)
    by_b = {}
    for b, c in commits:
        by_b.setdefault(b, []).append(c)
    windows, pairs = [], []
    state = {"fed": False, "energy": None}

    async def commit_all(ctx, configs):
        for c in configs:
            ctx.set(dut.staging, c)
            ctx.set(dut.commit, 1)
            await ctx.tick()
            ctx.set(dut.commit, 0)

    async def feed(ctx):
        for n, (cv, ci) in enumerate(codes):
            await commit_all(ctx, by_b.get(n, ()))
            while rng.random() < gap:
                await ctx.tick()
            await stream_put(ctx, dut.samples, {"cv": cv, "ci": ci, "index": n})
        await ctx.tick().repeat(PowerDsp.LATENCY + 4)
        state["energy"] = ctx.get(dut.energy)
        tail = by_b.get(len(codes), ())
        if tail:
            await commit_all(ctx, tail)
            # The boundary needs a sample to enter; its own results are not compared.
            await stream_put(ctx, dut.samples, {"cv": 8192, "ci": 8192, "index": len(codes)})
        state["fed"] = True

    async def drain(ctx):
        while len(windows) < expected_windows:
            rec = await stream_get_lazy(ctx, dut.windows, rng, busy)
            windows.append({f: getattr(rec, f) for f in WINDOW_FIELDS})
        while not state["fed"]:
            await ctx.tick()
        await ctx.tick().repeat(PowerDsp.LATENCY + 4)
        # Nothing beyond the expected records may come out.
        assert not ctx.get(dut.windows.valid), "more windows than expected"

    async def monitor(ctx):
        async for _, _, valid, pair in ctx.tick().sample(dut.calibrated_valid, dut.calibrated):
            if valid and pair.index < len(codes):
                pairs.append((pair.v, pair.i, pair.config_seq))

    simulate(dut, [feed, drain], "power", processes=[monitor])
    return windows, pairs, state["energy"]
