"""``python -m bench.throughput REPORT...``: peak and effective throughput per board, array and dataflow.

A researcher comparing dataflows on an FPGA compares cycles x clock, not cycles alone: a dataflow whose
control lengthens the critical path loses at the clock what its sparsity gains in cycles. This command
puts both in one table, every figure from a committed build report (``hdl.synth``'s
``synth_report.json``, or a ``bench.fpga_area`` results file holding one per dataflow) and the exact
golden cycle model:

* **Fmax, MACs, peak GMAC/s**: the build's achieved Fmax (nextpnr's, whether or not it met the
  constraint: the clock the routed design supports) times its multipliers (``rows * cols * lanes``).
* **Cycles on the headline layer** (``bench.granularity``: C = M = 32, 16x16, 3x3, pad 1) pruned to
  ``--sparsity`` (default 75 %) at the dataflow's own granularity (strided with sigma 4; dense runs the
  unpruned layer), on the report's array (its shape, lanes, feed, accumulators and output stage) with
  buffers that hold the layer whole (the defaults of ``golden.config.ArrayConfig``): the array's compute
  rate, which the RTL reproduces cycle for cycle. A board build's own buffers may be smaller (the wide
  preset's are, to meet the clock); the layer then runs in passes, which costs transfers, not compute.
* **Dense-equivalent GMAC/s**: the unpruned layer's MACs over the run's time (cycles / Fmax): how fast
  the array does the dense layer's work by skipping. **Speedup** is that over the same array's dense
  build, both at their own Fmax.
* **Logic per MAC** (LUT4s on the ECP5, logic cells on the iCE40) and **GMAC/s per DSP** (peak, and
  dense-equivalent).

Later reports supersede earlier ones for the same board, array and dataflow, so a build of a newer RTL
given after a results file replaces that dataflow's row. Under each board's table, which report each
row came from and the tool versions the builds record. ``--json`` writes the rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

from golden.cli import OutputFile, Parser
from golden.config import DATAFLOWS, ArrayConfig
from golden.dataflow import DATAFLOW_TABLE
from golden.encode import encode
from golden.layer import Layer
from golden.timing import cycles as golden_cycles
from hdl.synth import versions_note

from .granularity import headline_layer, pruned_layers

BUFFERS = ("act_depth", "weight_depth", "index_depth", "out_depth", "param_depth")
"""The buffer depths replaced by ``ArrayConfig``'s defaults for the cycle count (see the module doc)."""


@dataclass(frozen=True)
class Build:
    """One build report and the file it came from (``path``, or ``path:dataflow`` in a results file)."""
    report: dict
    source: str

    @property
    def key(self) -> tuple:
        a = self.report["array"]
        return (self.report.get("board"), a["rows"], a["cols"], a.get("lanes", 1), a.get("dsp_packing", 1),
                a["dataflow"])


def load_builds(paths: list[Path]) -> list[Build]:
    """Every finished build in ``paths``, later files superseding earlier ones for the same key; a
    results file's failed builds (``{"error": ...}``) are skipped with their reason on the row list."""
    chosen: dict[tuple, Build] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable JSON report ({e}); give hdl.synth's synth_report.json "
                             "or a bench.fpga_area results file") from None
        entries = [(str(path), data)] if "board" in data else \
            [(f"{path}:{df}", r) for df, r in data.items() if isinstance(r, dict)]
        if not entries or not all("array" in r for _, r in entries):
            raise ValueError(f"{path}: neither a synth_report.json (no 'board') nor a bench.fpga_area results "
                             "file (dataflow -> report)")
        for src, r in entries:
            if "error" in r or r.get("placed_only"):
                continue  # not a routed build: no Fmax to take
            b = Build(r, src)
            chosen[b.key] = b
    return list(chosen.values())


def cycle_config(array: dict) -> ArrayConfig:
    """The report's array with buffers deep enough for the headline layer (``BUFFERS`` at their defaults)."""
    known = {f.name for f in fields(ArrayConfig)}
    cfg = ArrayConfig.from_dict({k: v for k, v in array.items() if k in known})
    default = ArrayConfig()
    return replace(cfg, **{k: getattr(default, k) for k in BUFFERS})


def layer_for(dataflow: str, layers: dict[str, Layer]) -> Layer:
    """The dataflow's own granularity (``golden.dataflow``), or the unpruned layer for dense."""
    return layers[DATAFLOW_TABLE[dataflow].pruning or "none"]


def row(build: Build, layers: dict[str, Layer]) -> dict:
    r, base = build.report, layers["none"]
    cfg = cycle_config(r["array"])
    ly = layer_for(cfg.dataflow, layers)
    cyc = golden_cycles(encode(ly, cfg))
    macs = cfg.multipliers
    fmax = r["fmax_mhz"]
    dsps = r["utilization"]["DSP"]["used"]
    logic_key = "LC" if "LC" in r["utilization"] else "LUT"
    dense_macs = base.m * base.c * base.r * base.s * base.e * base.f
    seconds = cyc / (fmax * 1e6)
    return {
        "board": r["board"], "device": r.get("device"), "array": f"{cfg.rows}x{cfg.cols}", "lanes": cfg.lanes,
        "dsp_packing": cfg.dsp_packing,
        "dataflow": cfg.dataflow, "macs": macs, "dsps": dsps, "fmax_mhz": fmax,
        "clock_mhz": r["clock"]["generated_mhz"], "timing_passed": r["timing_passed"], "seed": r.get("seed"),
        "peak_gmacs": macs * fmax / 1e3, "cycles": cyc, "seconds": seconds,
        "dense_equivalent_gmacs": dense_macs / seconds / 1e9,
        "logic": r["utilization"][logic_key]["used"], "logic_bel": logic_key,
        "logic_per_mac": r["utilization"][logic_key]["used"] / macs,
        "source": build.source, "rtl": (r.get("source") or {}).get("commit"), "tools": r.get("tools"),
    }


def _group(r: dict) -> tuple:
    """The rows one array's builds share: board, shape, lanes and products per DSP."""
    return r["board"], r["array"], r["lanes"], r.get("dsp_packing", 1)


def measure(paths: list[Path], sparsity: float = 0.75, sigma: int = 4, seed: int = 0) -> list[dict]:
    """One row per build in ``paths`` (``load_builds``), with the speedup over the same array's dense build
    when one is given (time at each build's own Fmax)."""
    layers = pruned_layers(headline_layer(seed), sparsity, sigma)
    builds = load_builds(paths)
    order = {df: i for i, df in enumerate(DATAFLOWS)}
    builds.sort(key=lambda b: (b.key[:-1], order[b.key[-1]]))
    rows = [row(b, layers) for b in builds]
    for x in rows:
        dense = next((d for d in rows if d["dataflow"] == "dense" and
                      _group(d) == _group(x)), None)
        x["speedup"] = dense["seconds"] / x["seconds"] if dense else None
        x["sparsity"] = sparsity
    return rows


def tables(rows: list[dict]) -> str:
    """One Markdown table, a row per build, grouped by board and array; under it, per group, the report
    each row came from and the tool versions its builds record."""
    sp = f"{rows[0]['sparsity']:.0%}" if rows else ""
    out = [f"| board, array | MACs (DSPs) | dataflow | Fmax (MHz) | timing | peak GMAC/s | cycles, {sp} | "
           "dense-equiv. GMAC/s | speedup (time) | logic per MAC | GMAC/s per DSP: peak | dense-equiv. |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    groups = list(dict.fromkeys(_group(r) for r in rows))
    for board, array, lanes, packing in groups:
        g = [r for r in rows if _group(r) == (board, array, lanes, packing)]
        where = (f"{board} {array}" + (f" x {lanes} lanes" if lanes > 1 else "")
                 + (f", {packing} per DSP" if packing > 1 else ""))
        for k, r in enumerate(g):
            speed = f"{r['speedup']:.2f}x" if r["speedup"] is not None else "–"
            timing = f"{'met' if r['timing_passed'] else 'failed'} at {r['clock_mhz']:g}"
            head = (where, f"{r['macs']} ({r['dsps']})") if k == 0 else ("", "")
            out.append(f"| {head[0]} | {head[1]} | "
                       f"{r['dataflow']} | {r['fmax_mhz']:.2f} | {timing} | {r['peak_gmacs']:.2f} | {r['cycles']} | "
                       f"{r['dense_equivalent_gmacs']:.2f} | {speed} | {r['logic_per_mac']:.0f} {r['logic_bel']} | "
                       f"{r['peak_gmacs'] / r['dsps']:.3f} | {r['dense_equivalent_gmacs'] / r['dsps']:.3f} |")
        notes.append(f"* {where}: " + "; ".join(f"{r['dataflow']} `{Path(r['source']).name}`"
                                               + (f" (RTL {r['rtl']})" if r["rtl"] else "") for r in g)
                     + ". " + versions_note([{"tools": r["tools"]} for r in g]))
    return "\n".join([*out, "", "Reports:", "", *notes]) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m bench.throughput", description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", type=Path, metavar="REPORT",
                   help="synth_report.json files and bench.fpga_area results files (later ones supersede "
                        "earlier ones for the same board, array and dataflow)")
    p.add_argument("--sparsity", type=float, default=0.75,
                   help="sparsity of the headline layer at each dataflow's granularity (default: %(default)s)")
    p.add_argument("--sigma", type=int, default=4, help="strided pruning's stride (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the headline layer's weights (default: %(default)s)")
    p.add_argument("--json", metavar="ROWS.json", action=OutputFile, help="also write the rows as JSON")
    args = p.parse_args(argv)
    if not 0 <= args.sparsity < 1:
        p.error(f"--sparsity {args.sparsity} is outside [0, 1)")
    try:
        rows = measure(args.reports, args.sparsity, args.sigma, args.seed)
    except ValueError as e:
        p.error(str(e))
    if not rows:
        p.error("no routed build in the reports given (failed and place-only builds have no Fmax)")
    print(tables(rows), end="")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
