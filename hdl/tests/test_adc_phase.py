"""PhaseStepper: PHASESTEP pulses move the read clock to the target, one step each, always later."""
from crabwatt.adc_phase import PhaseStepper, GAP
from simhelpers import simulate


def run_targets(targets, cycles_each=64 * GAP + 8):
    dut = PhaseStepper()
    log = []

    async def bench(ctx):
        for target in targets:
            ctx.set(dut.target, target)
            pulses, settled_at, last_pulse, min_gap = 0, None, None, None
            for cycle in range(cycles_each):
                _, _, step, settled = await ctx.tick().sample(dut.phasestep, dut.settled)
                if step:
                    pulses += 1
                    if last_pulse is not None:
                        gap = cycle - last_pulse
                        min_gap = gap if min_gap is None else min(min_gap, gap)
                    last_pulse = cycle
                if settled and settled_at is None:
                    settled_at = cycle
            log.append((pulses, ctx.get(dut.phase), settled_at is not None, min_gap))

    simulate(dut, [bench], "phase_stepper")
    return log


def test_steps_to_each_target_later_only_and_wraps():
    log = run_targets([41, 41, 50, 3, 0])
    # From 0 to 41, none more, 9 more to 50, then 3 is reached by wrapping (17 steps), and 0 by 61.
    assert [(p, phase) for p, phase, _, _ in log] == [(41, 41), (0, 41), (9, 50), (17, 3), (61, 0)]
    assert all(settled for _, _, settled, _ in log)
    assert all(g is None or g >= GAP for _, _, _, g in log)


def test_not_settled_while_stepping():
    dut = PhaseStepper()

    async def bench(ctx):
        ctx.set(dut.target, 5)
        await ctx.tick()
        seen = []
        for _ in range(5 * GAP):
            _, _, settled, phase = await ctx.tick().sample(dut.settled, dut.phase)
            seen.append((settled, phase))
        assert not any(s for s, p in seen if p != 5)
        assert seen[-1] == (1, 5)

    simulate(dut, [bench], "phase_stepper_settled")
