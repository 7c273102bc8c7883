"""Shared simulation helpers for the gateware tests (Amaranth 0.5 async testbenches).

Waveforms are written only when CRABWATT_VCD names a folder: CRABWATT_VCD=build/vcd pytest ...
"""
import os
import random

from amaranth.sim import Simulator

SYS_PERIOD_S = 1 / 48e6


async def stream_put(ctx, stream, payload):
    """Offer one payload and wait until the stream takes it."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Take one payload."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def stream_get_lazy(ctx, stream, rng, busy=0.5):
    """Take one payload from a consumer that is busy (not ready) a random `busy` fraction of cycles."""
    while True:
        ready = rng.random() >= busy
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if ready and valid:
            ctx.set(stream.ready, 0)
            return payload


def simulate(dut, testbenches, name, clocks=None, processes=()):
    """Run `testbenches` (async functions of ctx) to completion.

    clocks: {domain: period_s or (period_s, phase_s)}; default is only `sync` at 48 MHz.
    processes: background testbenches (monitors) that run until the others finish.
    """
    sim = Simulator(dut)
    for domain, period in (clocks or {"sync": SYS_PERIOD_S}).items():
        period, phase = period if isinstance(period, tuple) else (period, None)
        sim.add_clock(period, phase=phase, domain=domain)
    for tb in testbenches:
        sim.add_testbench(tb)
    for proc in processes:
        sim.add_testbench(proc, background=True)
    folder = os.environ.get("CRABWATT_VCD")
    if folder:
        os.makedirs(folder, exist_ok=True)
        with sim.write_vcd(os.path.join(folder, f"{name}.vcd")):
            sim.run()
    else:
        sim.run()


def rng_for(name):
    """A seeded generator per test, so a failure reproduces."""
    return random.Random(name)
