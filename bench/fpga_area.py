"""``python -m bench.fpga_area``: what the sparse control costs on an FPGA, dataflow by dataflow.

Synthesizes, places and routes the same array (a board's defaults, or ``--rows/--cols`` and any array
flag) once per dataflow through :func:`hdl.synth.synthesize`, and prints one Markdown table: resources
(LUT or LC, FF, DSP, block RAM, LUT RAM), each dataflow's LUT/LC overhead over ``dense``, Fmax and
whether the clock asked for was met. The seeds' argument is that regular sparsity is cheap to exploit;
this table is the RTL's answer for this design. Results (the full ``synth_report.json`` of each build)
go to ``bench/results/fpga_area-<board>-<rows>x<cols>[-v<lanes>].json``; a dataflow already there for the same
array, clock, RTL commit and tool versions is not rebuilt (``--force`` rebuilds). Under the table, the tool
versions the builds record.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import sys
from dataclasses import replace
from pathlib import Path

from golden.cli import Parser, add_array_arguments, array_config_from_args
from golden.config import DATAFLOWS, ArrayConfig
from golden.paths import cache_dir, records_root
from hdl.boards import BoardSpec, board_names
from hdl.synth import SynthError, source_state, synthesize, tool_versions, versions_note

RESOURCES = ("LC", "LUT", "FF", "DSP", "BRAM", "LUTRAM")


def results_path(board: str, cfg: ArrayConfig, place_only: bool = False) -> Path:
    return records_root() / "bench" / "results" / f"fpga_area-{board}-{cfg.shape}{'-placed' if place_only else ''}.json"


def _build(board: str, cfg_dict: dict, clock_mhz: float, seed: int | None, place_only: bool = False,
           router: str | None = None) -> dict:
    """One build (in a worker process): the ``synth_report.json`` dict, or ``{"error": ...}``."""
    spec = BoardSpec.load(board)
    cfg = ArrayConfig.from_dict(cfg_dict)
    out = cache_dir("synth") / f"area-{board}-{cfg.dataflow}-{cfg.shape}"
    try:
        return synthesize(spec, cfg, out, clock_mhz=clock_mhz, baud=spec.baud, seed=seed, place_only=place_only,
                          router=router)
    except SynthError as e:
        return {"error": str(e), "array": cfg.to_dict()}


def table(reports: dict[str, dict]) -> str:
    """The Markdown table of ``{dataflow: report}`` (dataflows in ``DATAFLOWS`` order), and under it the
    tool versions the builds record (:func:`hdl.synth.versions_note`)."""
    order = [df for df in DATAFLOWS if df in reports]
    present = [k for k in RESOURCES if any(k in r.get("utilization", {}) for r in reports.values())]
    logic = "LC" if "LC" in present else "LUT"
    base = reports.get("dense", {}).get("utilization", {}).get(logic, {}).get("used")
    head = ["dataflow", *present, f"{logic} vs dense", "Fmax (MHz)", "clock (MHz)", "timing"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for df in order:
        r = reports[df]
        if "error" in r:
            lines.append(f"| {df} | " + " | ".join(["–"] * (len(head) - 2)) + f" | {r['error']} |")
            continue
        util = r["utilization"]
        cells = [str(util[k]["used"]) + (f" ({util[k]['percent']:g}%)" if "percent" in util[k] else "")
                 if k in util else "–" for k in present]
        used = util.get(logic, {}).get("used")
        over = f"{100 * (used - base) / base:+.1f}%" if base and used is not None else "–"
        verdict = "placed only (estimate)" if r.get("placed_only") else "met" if r["timing_passed"] else "failed"
        lines.append(f"| {df} | " + " | ".join(cells) + f" | {over} | {r['fmax_mhz']} | "
                     f"{r['clock']['generated_mhz']:g} | {verdict} |")
    return "\n".join([*lines, "", versions_note([reports[df] for df in order])])


def main(argv: list[str] | None = None) -> int:
    pre = Parser(prog="python -m bench.fpga_area", add_help=False)
    pre.add_argument("--board")
    pre.add_argument("--preset")
    known, _ = pre.parse_known_args(argv)
    parser = Parser(prog="python -m bench.fpga_area", description=__doc__.splitlines()[0])
    parser.add_argument("--board", required=True, choices=board_names())
    parser.add_argument("--preset", metavar="NAME", help="a board preset (array flags and router, as in hdl.synth)")
    add_array_arguments(parser)
    parser.add_argument("--dataflows", default=",".join(DATAFLOWS),
                        help="comma-separated dataflows to build (default: all)")
    parser.add_argument("--clock", type=float, metavar="MHZ", help="requested clock (default: the board's)")
    parser.add_argument("--seed", type=int, help="nextpnr placement seed (default: the board's)")
    parser.add_argument("--router", choices=("router1", "router2"), help="nextpnr router (default: the board's)")
    parser.add_argument("--workers", type=int, default=1,
                        help="builds in parallel (each is one process; default: %(default)s)")
    parser.add_argument("--place-only", action="store_true",
                        help="stop each build after placement: final resources, Fmax estimated from unrouted "
                             "nets (results in ...-placed.json)")
    parser.add_argument("--force", action="store_true", help="rebuild dataflows already in the results file")
    parser.add_argument("-o", "--output", type=Path, help="results JSON (default: bench/results/fpga_area-...)")
    spec = BoardSpec.load(known.board) if known.board in board_names() else None
    if spec:
        try:
            parser.set_defaults(**spec.build_defaults(known.preset))
        except ValueError as e:
            parser.error(str(e))
    args = parser.parse_args(argv)
    dataflows = [d.strip() for d in args.dataflows.split(",") if d.strip()]
    unknown = [d for d in dataflows if d not in DATAFLOWS]
    if unknown:
        parser.error(f"unknown dataflow(s) {', '.join(unknown)}; choose from {', '.join(DATAFLOWS)}")
    base = array_config_from_args(parser, args)
    clock = args.clock if args.clock is not None else spec.clock_mhz
    out = args.output or results_path(args.board, base, args.place_only)
    old = json.loads(out.read_text()) if out.exists() else {}
    commit = source_state()
    tools = tool_versions(spec.platform_class()().family)
    reports: dict[str, dict] = {}
    todo = {}
    for df in dataflows:
        cfg = replace(base, dataflow=df)
        prev = old.get(df)
        same = (prev and prev.get("array") == cfg.to_dict() and prev.get("clock", {}).get("requested_mhz") == clock
                and prev.get("source") == commit and prev.get("tools") == tools and "error" not in prev)
        if same and not args.force:
            reports[df] = prev
        else:
            todo[df] = cfg.to_dict()
    print(f"{args.board}: {len(todo)} builds of {base.rows}x{base.cols} at {clock:g} MHz "
          f"({len(reports)} already in {out})", file=sys.stderr, flush=True)
    with cf.ProcessPoolExecutor(max_workers=max(1, args.workers)) as ex:
        futs = {ex.submit(_build, args.board, c, clock, args.seed, args.place_only, args.router): df
                for df, c in todo.items()}
        for fut in cf.as_completed(futs):
            df = futs[fut]
            reports[df] = fut.result()
            r = reports[df]
            verdict = "estimated after placement" if r.get("placed_only") else \
                f"timing {'met' if r.get('timing_passed') else 'failed'}"  # a failed build's report has none
            state = r.get("error") or f"Fmax {r['fmax_mhz']} MHz, {verdict}"
            print(f"  {df}: {state}", file=sys.stderr, flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({**old, **reports}, indent=1) + "\n")
    print(table({df: reports[df] for df in dataflows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
