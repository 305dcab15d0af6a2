"""``python -m sim.regress``: randomized regression over the whole legal layer space of one array.

Draws ``--count`` cases (``sim.space``: random layers from 1x1 to the buffer limits, every dataflow,
each boundary of :data:`sim.space.BOUNDARIES` forced at least once per dataflow in a run of
``D * len(BOUNDARIES)`` cases or more), runs them on the Verilator RTL under each case's own load gaps
and output backpressure, and checks outputs (bit-exact), cycles and every performance counter
(exact) against the golden model (``golden.check``).

Prints one line per failure as it happens, with the command that reproduces that case alone, saves the
failing layer as ``.npz``, then the coverage table and a closing ``N passed, N failed`` line. Exit
status 0 when every case passed, 1 otherwise, 2 on bad arguments.

Example::

    python -m sim.regress --count 1000 --seed 1 --workers 2
    python -m sim.regress --seed 1 --case 417          # one case again, alone
    python -m sim.regress --seed 1 --case 417 --waves case417.vcd   # and its waveform
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import sys
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from golden.cli import OutputDir, OutputFile, Parser, add_array_arguments, array_config_from_args
from golden.config import DATAFLOWS, ArrayConfig, feed_for
from golden.layerio import save_layer
from golden.passes import plan
from golden.paths import cache_dir

from .native import build_native
from .parallel import Progress, chunks, completed, hms, make_executor
from .space import (
    BOUNDARIES,
    DEFAULT_MAX_CYCLES,
    Case,
    covered,
    draw_case,
    needs_passes,
    reachable_boundaries,
    variant_label,
    variants,
)
from .verilator import (
    DEFAULT_BUILD_ROOT,
    HARNESS_HELP,
    HARNESSES,
    WAVES_HELP,
    WavesFile,
    build,
    run_layers,
    trace_format,
)

DEFAULT_OUT = cache_dir("regress")


@dataclass
class Outcome:
    """What one case did on the RTL."""

    index: int
    ok: bool
    problems: list[str]
    cycles: int | None = None


@dataclass
class Summary:
    """A whole run: outcomes by case, coverage by dataflow and boundary."""

    cfg: ArrayConfig
    seed: int
    dataflows: list[str]
    cases: list[Case]
    lanes: list[int] = field(default_factory=lambda: [1])
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    harness: str = "cocotb"
    wall_s: float = 0.0

    @property
    def passed(self) -> int:
        return sum(o.ok for o in self.outcomes.values())

    @property
    def failed(self) -> int:
        return sum(not o.ok for o in self.outcomes.values())

    def coverage(self) -> dict[str, dict[str, int]]:
        """Cases on each boundary, per variant (measured on the drawn layers); -1 = unreachable."""
        table: dict[str, dict[str, int]] = {}
        for df, v in variants(self.dataflows, self.lanes):
            reach = reachable_boundaries(self.cfg.with_lanes(v, dataflow=df))
            table[variant_label(df, v)] = {b: (0 if b in reach else -1) for b in list(BOUNDARIES)}
        for case in self.cases:
            for b in covered(case, self.cfg):
                table[case.variant][b] += 1
        return table

    def missing(self) -> list[tuple[str, str]]:
        """(dataflow, boundary) pairs the array admits but no case of this run was on."""
        return [(df, b) for df, row in self.coverage().items() for b, n in row.items() if n == 0]

    def to_dict(self) -> dict:
        return {"seed": self.seed, "dataflows": self.dataflows, "lanes": self.lanes, "harness": self.harness,
                "array": self.cfg.to_dict(),
                "cases": len(self.cases), "passed": self.passed, "failed": self.failed,
                "simulated_cycles": sum(o.cycles or 0 for o in self.outcomes.values()),
                "wall_s": round(self.wall_s, 1), "coverage": self.coverage(),
                "failures": [{"index": o.index, "variant": self.cases_by_index[o.index].variant,
                              "problems": o.problems} for o in self.outcomes.values() if not o.ok]}

    def __post_init__(self) -> None:
        self.cases_by_index: dict[int, Case] = {c.index: c for c in self.cases}


# --------------------------------------------------------------------------------------------------
# worker side (module-level: pickled by reference for the process pool)


def build_array(cfg_dict: dict, build_root: str, harness: str = "cocotb", trace: str | None = None) -> str:
    cfg = ArrayConfig.from_dict(cfg_dict)
    if harness == "native":
        return str(build_native(cfg, Path(build_root), trace=trace).directory)
    return str(build(cfg, Path(build_root), trace=trace).directory)


def run_chunk(cfg_dict: dict, cases: list[Case], build_root: str, harness: str = "cocotb",
              waves: Path | None = None) -> list[Outcome]:
    """Run ``cases`` (one dataflow) in one cocotb job; never raises: a crash fails every case of the chunk.

    A case larger than the buffers runs as its passes (``golden.passes``), each under the case's stalls:
    it passes when every pass is exact and the assembled outputs are the layer's. ``waves``: the job's
    waveform (all of a case's passes in order).
    """
    cfg = ArrayConfig.from_dict(cfg_dict)
    runs = [plan(c.layer, cfg) if needs_passes(c.layer, cfg) else None for c in cases]
    layers, stalls = [], []
    for c, pl in zip(cases, runs, strict=True):
        parts = [c.layer] if pl is None else [q.layer for q in pl.passes]
        layers += parts
        stalls += [{"seed": c.stall_seed, "load_gap": c.load_gap, "backpressure": c.backpressure}] * len(parts)
    try:
        results = run_layers(cfg, layers, name=f"regress-{uuid.uuid4().hex[:12]}", check=False,
                             root=Path(build_root), stalls=stalls, harness=harness, waves=waves)
    except Exception as e:  # noqa: BLE001 - reported per case, the run goes on
        return [Outcome(c.index, False, [f"{type(e).__name__}: {e}"]) for c in cases]
    out, k = [], 0
    for case, pl in zip(cases, runs, strict=True):
        n = 1 if pl is None else len(pl.passes)
        mine, k = results[k:k + n], k + n
        problems = [(f"pass {i}: " if pl else "") + q for i, r in enumerate(mine) for q in r["problems"]]
        cycles = None if any(r["cycles"] is None for r in mine) else sum(r["cycles"] for r in mine)
        if pl is not None and not problems:
            assembled = pl.assemble([np.load(r["outputs"]) for r in mine])
            if not np.array_equal(assembled, case.layer.expected(cfg)):
                problems.append("the assembled passes differ from the layer's golden outputs")
        out.append(Outcome(case.index, not problems, problems, cycles))
    return out


# --------------------------------------------------------------------------------------------------
# driver


def array_flags(cfg: ArrayConfig, skip: tuple[str, ...] = ("dataflow",)) -> str:
    """The command-line flags that build ``cfg`` (those that differ from the defaults), ``skip`` aside.
    The feed's defaults follow ``--lanes`` and ``--cols`` (``golden.config.feed_for``), so its flags are
    compared with the default at ``cfg``'s lanes and columns: the command then rebuilds ``cfg``'s feed."""
    default = ArrayConfig()
    feed = feed_for(cfg.lanes, cfg.cols)
    return " ".join(f"--{f.name.replace('_', '-')} {getattr(cfg, f.name)}" for f in fields(ArrayConfig)
                    if f.name not in skip and getattr(cfg, f.name) != feed.get(f.name, getattr(default, f.name)))


def reproduce_commands(summary: Summary, case: Case, npz: Path) -> list[str]:
    def spaced(flags: str) -> str:
        return " " + flags if flags else ""

    dfs = ",".join(summary.dataflows)
    lanes = "" if summary.lanes == [1] else " --lanes " + ",".join(map(str, summary.lanes))
    harness = "" if summary.harness == "cocotb" else f" --harness {summary.harness}"  # its own stall pattern
    return [f"python -m sim.regress --seed {summary.seed} --dataflows {dfs}{lanes}{harness} --case {case.index}"
            + spaced(array_flags(summary.cfg, ("dataflow", "lanes"))),
            f"python -m sim.run --sparsity {case.dataflow} --layer {npz}{harness} --seed {case.stall_seed} "
            f"--load-gap {case.load_gap!r} --backpressure {case.backpressure!r}"
            + spaced(array_flags(case.config(summary.cfg)))]


def regress(cfg: ArrayConfig, seed: int, count: int, dataflows: list[str], *, lanes: list[int] | None = None,
            indices: list[int] | None = None,
            workers: int = 2, chunk_size: int = 10, max_cycles: int = DEFAULT_MAX_CYCLES,
            build_root: Path = DEFAULT_BUILD_ROOT, out_dir: Path = DEFAULT_OUT, progress: bool = True,
            log=None, harness: str = "cocotb", waves: Path | None = None) -> Summary:
    """Draw and run the cases; report failures on ``log`` as they come (see the module docstring).
    ``waves`` dumps the waveform of the run, which must then be one case (``indices`` of one)."""
    log = log or sys.stderr
    t0 = time.monotonic()
    wanted = indices if indices is not None else list(range(count))
    if waves is not None and (indices is None or len(set(indices)) != 1):
        raise ValueError("--waves traces one case: give exactly one --case I (run each case apart for more)")
    trace = trace_format(waves) if waves is not None else None
    lanes = list(lanes or [cfg.lanes])
    print(f"regress: drawing {len(wanted)} cases (seed {seed}, dataflows {','.join(dataflows)}, "
          f"lanes {','.join(map(str, lanes))}, {cfg.rows}x{cfg.cols} array)", file=log)
    cases = [draw_case(cfg, seed, i, dataflows, max_cycles, lanes) for i in wanted]
    summary = Summary(cfg, seed, list(dataflows), cases, lanes, harness=harness)
    by_df: dict[str, list[Case]] = {}  # by variant
    arrays: dict[str, ArrayConfig] = {}
    for c in cases:
        by_df.setdefault(c.variant, []).append(c)
        arrays[c.variant] = c.config(cfg)
    bar = Progress(len(cases), log) if progress and cases else None
    fail_dir = out_dir / f"seed-{seed}"

    def record(outcomes: list[Outcome]) -> None:
        for o in outcomes:
            summary.outcomes[o.index] = o
            if o.ok:
                continue
            case = summary.cases_by_index[o.index]
            fail_dir.mkdir(parents=True, exist_ok=True)
            npz = fail_dir / f"case-{case.index}-{case.variant.replace('/', '-')}.npz"
            save_layer(npz, case.layer)
            lines = [f"FAIL case {case.index} ({case.variant}, {case.goal or 'free draw'}; {case.describe()}): "
                     + "; ".join(o.problems)]
            lines += ["  reproduce: " + cmd for cmd in reproduce_commands(summary, case, npz)]
            print("\n".join(lines), file=log, flush=True)

    print(f"regress: building {len(by_df)} arrays (cached under {build_root})", file=log, flush=True)
    with make_executor(workers, None) as ex:
        pending: dict[cf.Future, tuple[str, object]] = {
            ex.submit(build_array, arrays[v].to_dict(), str(build_root), harness, trace): ("build", v) for v in by_df}
        for fut, (what, item) in completed(ex, pending):
            if what == "build":
                exc = fut.exception()
                if exc is not None:
                    outs = [Outcome(c.index, False, [f"build failed: {exc}"]) for c in by_df[item]]
                    record(outs)
                    if bar:
                        bar.update(len(outs), f"{item}: BUILD FAILED")
                    continue
                for chunk in chunks(by_df[item], chunk_size):
                    pending[ex.submit(run_chunk, arrays[item].to_dict(), chunk, str(build_root), harness, waves)] = \
                        ("chunk", item)
            else:
                outs = fut.result()
                record(outs)
                if bar:
                    bar.update(len(outs), f"{item}: {summary.failed} failed so far")
    if bar:
        bar.close()
    summary.wall_s = time.monotonic() - t0
    return summary


def coverage_table(summary: Summary) -> str:
    """Cases per boundary and variant (dataflow, lanes), as a plain-text table (``-`` = the array cannot reach it)."""
    cov = summary.coverage()
    dfs = list(cov)
    names = list(BOUNDARIES)
    width = max(len(n) for n in names)
    cols = {d: max(7, len(d)) for d in dfs}
    lines = [f"{'boundary':<{width}}  " + "  ".join(f"{d:>{cols[d]}}" for d in dfs)]
    for n in names:
        lines.append(f"{n:<{width}}  " + "  ".join(f"{('-' if cov[d][n] < 0 else cov[d][n]):>{cols[d]}}"
                                                   for d in dfs))
    free = sum(1 for c in summary.cases if c.goal is None)
    lines.append(f"({len(summary.cases)} cases: {len(summary.cases) - free} drawn for a boundary, {free} free draws)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m sim.regress",
        description="Randomized regression: random layers over the array's whole legal space, on the Verilator "
                    "RTL, checked bit- and cycle-exact against the golden model.",
        epilog="Prints one line per failure (with a command reproducing it alone), a coverage table and a "
               "closing 'N passed, N failed' line; exit status 1 if any case failed.")
    parser.add_argument("--count", type=int, default=100, metavar="N", help="cases to draw (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the draw (default: %(default)s)")
    parser.add_argument("--dataflows", default=",".join(DATAFLOWS), metavar="D,D",
                        help="dataflows, case i runs on the (i mod D)-th (default: %(default)s)")
    parser.add_argument("--case", type=int, action="append", metavar="I",
                        help="run only case I of this seed and dataflow list (repeatable); --count is then ignored")
    add_array_arguments(parser, dataflow=False, lanes=False)
    parser.add_argument("--lanes", default="1", metavar="V,V",
                        help="multiply lanes per PE; with several, case i runs on the (i mod D*L)-th of every "
                             "dataflow at every lane count (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, metavar="W", help="parallel jobs (default: %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=10, metavar="K",
                        help="cases per simulator process (default: %(default)s)")
    parser.add_argument("--max-cycles", type=int, default=DEFAULT_MAX_CYCLES, metavar="N",
                        help="largest predicted run of a drawn layer, in cycles (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", action=OutputDir,
                        help="failing layers go to DIR/seed-S/, created if missing (default: %(default)s)")
    parser.add_argument("--json", metavar="SUMMARY.json", action=OutputFile,
                        help="also write the summary and coverage here (its directory must exist)")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_ROOT, metavar="DIR",
                        help="Verilator build cache (default: %(default)s)")
    parser.add_argument("--harness", choices=HARNESSES, default="cocotb", help=HARNESS_HELP + " (default: %(default)s)")
    parser.add_argument("--waves", metavar="FILE.vcd|FILE.fst", action=WavesFile,
                        help=WAVES_HELP + "; only with one --case I")
    args = parser.parse_args(argv)
    dataflows = [d.strip() for d in args.dataflows.split(",") if d.strip()]
    bad = [d for d in dataflows if d not in DATAFLOWS]
    if bad or not dataflows:
        parser.error(f"--dataflows: unknown {', '.join(bad) or '(none given)'}; choose from {', '.join(DATAFLOWS)}")
    for name, lo in (("count", 1), ("workers", 1), ("chunk_size", 1), ("max_cycles", 1)):
        if getattr(args, name) < lo:
            parser.error(f"--{name.replace('_', '-')} must be >= {lo}, not {getattr(args, name)}")
    if args.case and min(args.case) < 0:
        parser.error(f"--case must be >= 0, not {min(args.case)}")
    try:
        lanes = [int(v) for v in args.lanes.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--lanes: expected comma-separated integers, not {args.lanes!r}")
    if not lanes:
        parser.error("--lanes: give at least one lane count")
    lanes = sorted(set(lanes), key=lanes.index)
    args.dataflow = dataflows[0]
    for args.lanes in reversed(lanes):  # each must make a valid array; cfg is the first
        cfg = array_config_from_args(parser, args)
    try:
        summary = regress(cfg, args.seed, args.count, dataflows, lanes=lanes, indices=args.case, workers=args.workers,
                          chunk_size=args.chunk_size, max_cycles=args.max_cycles, build_root=args.build_dir,
                          out_dir=args.out, harness=args.harness, waves=args.waves)
    except ValueError as e:  # an array too small for some boundary
        parser.error(str(e))
    if args.waves and args.waves.exists():  # a case whose build or run crashed wrote none
        print(f"waveform of case {args.case[0]} in {args.waves}", file=sys.stderr)
    print(coverage_table(summary))
    missing = summary.missing()
    if missing and not args.case:
        print(f"not covered ({len(missing)}): " + ", ".join(f"{d}/{b}" for d, b in missing))
    if args.json:
        args.json.write_text(json.dumps(summary.to_dict(), indent=1) + "\n")
    print(f"seed {args.seed}, {len(summary.cases)} cases, {hms(summary.wall_s)} wall")
    print(f"{summary.passed} passed, {summary.failed} failed")
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
