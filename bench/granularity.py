"""``python -m bench.granularity``: one layer, pruned at each granularity, run on every dataflow's RTL.

The headline experiment of the project: C = M = 32, 16x16 input, 3x3 kernels, padding 1, pruned to
the same sparsity (default 75 %) at element, vector, kernel and strided (sigma = 4) granularity,
each pruned layer run on the Verilator RTL of every dataflow (plus the unpruned layer on dense).
Prints Markdown tables: the diagonal (each dataflow on its own granularity) and the full matrix of
speedups, which shows what a dataflow cannot skip. ``--lanes V`` runs arrays of ``V``-lane PEs
(``golden.lanes``; with ``V > 1`` fed by the wide loader and drain, ``golden.lanes.WIDE_FEED``) and
adds ``balanced`` pruning (the ``round((1 - sparsity) * R * S)`` largest weights of every kernel,
topped up with whole kernels) to the layers, for the element dataflow's lanes; the
speedups are then over the dense array with the same ``V``, and the lane utilization (useful MACs /
(MAC cycles x V x PEs)) is measured from the RTL's counters.

Each dataflow compiles its own Verilator model (a minute or more the first time) before its runs; on a
terminal a line per dataflow says which one is under way and how long the whole has taken so far.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from golden import metrics
from golden.cli import OutputFile, Parser
from golden.config import DATAFLOWS, ArrayConfig
from golden.dataflow import DATAFLOW_TABLE
from golden.encode import encode
from golden.lanes import WIDE_FEED
from golden.layer import Layer
from golden.progress import StageLog
from golden.prune import prune
from sim.verilator import HARNESS_HELP, HARNESSES, run_layers

GRANULARITY_OF = {name: d.pruning for name, d in DATAFLOW_TABLE.items() if d.pruning}
"""The pruned dataflows and the granularity each is measured on (``golden.dataflow``)."""


def headline_layer(seed: int = 0) -> Layer:
    """C = M = 32, 16x16, 3x3, pad 1; Gaussian int8 weights so that magnitude pruning has a choice."""
    rng = np.random.default_rng(seed)
    w = np.clip(np.round(rng.normal(0, 40, (32, 32, 3, 3))), -128, 127).astype(np.int64)
    a = rng.integers(-128, 128, (32, 16, 16)).astype(np.int64)
    return Layer(w, a, 1, 1)


def pruned_layers(base: Layer, sparsity: float, sigma: int, balanced: bool = False) -> dict[str, Layer]:
    """The unpruned layer and one per pruned dataflow's granularity (plus ``balanced`` if asked)."""
    layers = {"none": base}
    grans = list(GRANULARITY_OF.values()) + (["balanced"] if balanced else [])
    for gran in grans:
        kw = {"sigma": sigma} if gran == "strided" else {}
        if gran == "balanced":
            kw = {"keep": max(1, round((1 - sparsity) * base.r * base.s))}
        layers[gran] = Layer(prune(base.weights, gran, sparsity, **kw).weights, base.activations, 1, 1)
    return layers


def measure(sparsity: float = 0.75, sigma: int = 4, seed: int = 0, lanes: int = 1,
            progress: StageLog | None = None, harness: str = "cocotb") -> list[dict]:
    """One row per (dataflow, pruned layer) run on the RTL through ``harness`` (``sim.verilator.HARNESSES``);
    ``progress`` hears of each dataflow's start."""
    progress = progress or StageLog(enabled=False)
    layers = pruned_layers(headline_layer(seed), sparsity, sigma, balanced=lanes > 1)
    names = list(layers)
    rows = []
    for k, df in enumerate(DATAFLOWS, 1):
        cfg = ArrayConfig(dataflow=df, lanes=lanes, **(WIDE_FEED if lanes > 1 else {}))
        fits = []
        for n in names:  # e.g. the unpruned layer needs more element-index words than the buffer has
            try:
                encode(layers[n], cfg)
                fits.append(n)
            except ValueError as e:
                print(f"skipped: {n} on {df}: {e}", file=sys.stderr)
        progress(f"{df} ({k}/{len(DATAFLOWS)}): {len(fits)} layers on its Verilator model (compiled first if new)")
        results = run_layers(cfg, [layers[n] for n in fits], name=f"granularity-v{lanes}", check=True, harness=harness)
        for name, res in zip(fits, results, strict=True):
            enc = encode(layers[name], cfg)
            mr = metrics.memory_references(enc, res["perf"])
            st = metrics.storage_bits(enc)
            rows.append({
                "dataflow": df, "pruning": name, "sparsity": metrics.sparsity(layers[name].weights),
                "cycles": res["cycles"], "predicted_cycles": res["predicted_cycles"],
                "outputs_match": res["outputs_match"],
                "utilization": metrics.utilization(layers[name], cfg.multipliers, res["cycles"]),
                "compression_ratio": metrics.compression_ratio(enc), "index_bits": st["index_bits"],
                "memory_words": mr["words"], "memory_bits": mr["bits"],
                "useful_macs": metrics.useful_macs(layers[name]), "lanes": lanes,
                "lane_utilization": metrics.lane_utilization(layers[name], cfg, res["perf"]),
            })
    progress(f"all {len(DATAFLOWS)} dataflows run")
    dense = {r["pruning"]: r["cycles"] for r in rows if r["dataflow"] == "dense"}
    for r in rows:
        r["speedup"] = dense[r["pruning"]] / r["cycles"]
    return rows


def _diagonal(r: dict) -> bool:
    """Each dataflow on its own granularity (and the unpruned layer on dense; balanced on element)."""
    own = GRANULARITY_OF.get(r["dataflow"])
    return (r["dataflow"] == "dense" and r["pruning"] == "none") or own == r["pruning"] or \
        (r["dataflow"] == "element" and r["pruning"] == "balanced")


def tables(rows: list[dict]) -> str:
    lanes = rows[0].get("lanes", 1) if rows else 1
    out = [f"Lanes per PE: {lanes}", "",
           "| dataflow | pruning | sparsity | cycles (RTL) | = model | speedup | utilization | lane util. | "
           "compression | index bits | mem. refs (words) | mem. refs (bits) | bits / useful MAC |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if _diagonal(r):
            out.append(f"| {r['dataflow']} | {r['pruning']} | {r['sparsity']:.3f} | {r['cycles']} | "
                       f"{'yes' if r['cycles'] == r['predicted_cycles'] else 'NO'} | {r['speedup']:.2f}x | "
                       f"{r['utilization']:.3f} | {r.get('lane_utilization', r['utilization']):.3f} | "
                       f"{r['compression_ratio']:.2f} | {r['index_bits']} | "
                       f"{r['memory_words']} | {r['memory_bits']} | {r['memory_bits'] / r['useful_macs']:.2f} |")
    prunings = list(dict.fromkeys(r["pruning"] for r in rows))
    out += ["", "Speedup over dense, every pruned layer on every dataflow:", "",
            "| dataflow \\ pruning | " + " | ".join(prunings) + " |", "|---" * (len(prunings) + 1) + "|"]
    for df in dict.fromkeys(r["dataflow"] for r in rows):
        cells = {r["pruning"]: r["speedup"] for r in rows if r["dataflow"] == df}
        out.append(f"| {df} | " + " | ".join(f"{cells[p]:.2f}x" if p in cells else "does not fit" for p in prunings)
                   + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m bench.granularity", description=__doc__.splitlines()[0])
    p.add_argument("--sparsity", type=float, default=0.75, help="target sparsity (default: %(default)s)")
    p.add_argument("--sigma", type=int, default=4, help="strided period sigma (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lanes", type=int, default=1, metavar="V",
                   help="multiply lanes per PE of every array (default: %(default)s)")
    p.add_argument("--json", action=OutputFile, help="also write the rows as JSON (its directory must exist)")
    p.add_argument("--harness", choices=HARNESSES, default="cocotb", help=HARNESS_HELP + " (default: %(default)s)")
    args = p.parse_args(argv)
    if not 0 <= args.sparsity < 1:
        p.error(f"--sparsity must be in [0, 1), not {args.sparsity}")
    try:
        ArrayConfig(lanes=args.lanes)
    except ValueError as e:
        p.error(f"--{e}")
    rows = measure(args.sparsity, args.sigma, args.seed, args.lanes, StageLog(), args.harness)
    print(tables(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
