"""``python -m bench.lanes``: what wide PEs (``V`` lanes) buy per dataflow, and what must feed them.

A design study on the golden model (``golden.lanes``), made before the wide array's RTL so that the
RTL is built to a loader and drain that can keep ``V`` lanes busy; the chosen feed is the RTL's
(``golden.lanes.WIDE_FEED``). The study leaves out the adder tree's pipeline registers (2 cycles per
run at ``V = 9``); the exact contract, which the Verilator runs of ``bench.granularity --lanes V``
match to the cycle, includes them. The layer is the headline layer of
``bench.granularity`` (C = M = 32, 16x16, 3x3, pad 1, 4x4 array), pruned at each dataflow's own
granularity; ``balanced`` (3 of 9 weights per kernel) runs on the element dataflow.

Prints four Markdown tables (and with ``--plot`` the fourth as a figure):

1. **feed**: speedups at ``V = 9`` for each loader x drain design (which one meets the targets);
2. **speedup vs V**: every dataflow at ``V = 1, 3, 9`` with the chosen design, with lane utilization;
3. **structured vs unstructured**: kernel over element speedup at equal sparsity per ``V``, next to
   SSL's ~2x (Wen et al., Table 4);
4. **speedup vs sparsity**: every dataflow at its own granularity (and ``balanced`` on element) at
   50, 75 and 90 % sparsity, at each ``V``, with the chosen feed.

The other feeds are model predictions of designs the RTL does not build (``golden.timing.Loader``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from golden.cli import OutputFile, Parser
from golden.config import ArrayConfig
from golden.encode import encode
from golden.lanes import WIDE_FEED, predict
from golden.layer import Layer
from golden.prune import prune
from golden.timing import Loader

from .granularity import headline_layer

LANES = (1, 3, 9)


@dataclass(frozen=True)
class Feed:
    """A loader and drain design: window rows and words per cycle, buffers, drain outputs per cycle."""

    name: str
    loader: Loader
    drain_width: int


FEEDS = (
    Feed("2 words/cycle, drain 1 (the V = 1 feed up to issue 24)", Loader(words=2), 1),
    Feed("a window row/cycle, drain 1", Loader(words=6), 1),
    Feed("a window row/cycle, drain 4", Loader(words=6), 4),
    Feed("2 window rows/cycle, drain 2", Loader(words=6, rows=2), 2),
    Feed("2 window rows/cycle, drain 4 (the RTL's WIDE_FEED)",
         Loader.of(ArrayConfig(**WIDE_FEED)), WIDE_FEED["drain_lanes"]),
    Feed("2 rows/cycle, 4 buffers, 1-cycle overhead, drain 4", Loader(words=6, rows=2, overhead=1, buffers=4), 4),
)
CHOSEN = 4
"""The design the RTL is built to (``golden.lanes.WIDE_FEED``, ``docs/architecture.md``, "Wide PEs"):
the cheapest of :data:`FEEDS` that meets issue 13's targets at ``V = 9``."""

CASES = (  # (label, dataflow, granularity, sparsity, prune keywords)
    ("kernel 75 %", "kernel", "kernel", 0.75, {}),
    ("kernel 90 %", "kernel", "kernel", 0.90, {}),
    ("vector 75 %", "vector", "vector", 0.75, {}),
    ("strided 75 % (sigma 4)", "strided", "strided", 0.75, {"sigma": 4}),
    ("element 75 %", "element", "element", 0.75, {}),
    ("element 90 %", "element", "element", 0.90, {}),
    ("balanced 3 of 9 on element", "element", "balanced", 2 / 3, {"keep": 3}),
)


def _cfg(dataflow: str) -> ArrayConfig:
    return ArrayConfig(dataflow=dataflow, index_depth=16384)  # the unpruned element index needs > 4096 words


def measure(seed: int = 0) -> list[dict]:
    """One row per (feed, V, case): cycles, speedup over dense at the same V and feed, lane utilization."""
    base = headline_layer(seed)
    layers = {label: Layer(prune(base.weights, gran, sp, **kw).weights, base.activations, 1, 1)
              for label, _, gran, sp, kw in CASES}
    rows = []
    for fi, feed in enumerate(FEEDS):
        for v in LANES:
            dense = predict(encode(base, _cfg("dense")), v, feed.loader, feed.drain_width)
            for label, df, _, _, _ in CASES:
                p = predict(encode(layers[label], _cfg(df)), v, feed.loader, feed.drain_width)
                rows.append({"feed": fi, "feed_name": feed.name, "lanes": v, "case": label, "dataflow": df,
                             "cycles": p.cycles, "dense_cycles": dense.cycles, "speedup": dense.cycles / p.cycles,
                             "lane_utilization": p.lane_utilization, "utilization": p.utilization,
                             "dense_v1_cycles": None})
    v1 = {r["feed"]: r["dense_cycles"] for r in rows if r["lanes"] == 1}
    for r in rows:
        r["dense_v1_cycles"] = v1[r["feed"]]
    return rows


def tables(rows: list[dict]) -> str:
    def pick(feed: int, v: int, case: str) -> dict:
        return next(r for r in rows if r["feed"] == feed and r["lanes"] == v and r["case"] == case)

    labels = [c[0] for c in CASES]
    out = ["Speedup over dense at V = 9 (same feed), per loader x drain design:", "",
           "| design | dense V=9 cycles (V=1: x fewer) | " + " | ".join(labels) + " |",
           "|---" * (len(labels) + 2) + "|"]
    for fi, feed in enumerate(FEEDS):
        d = pick(fi, 9, labels[0])
        mark = " **(chosen)**" if fi == CHOSEN else ""
        out.append(f"| {feed.name}{mark} | {d['dense_cycles']} ({d['dense_v1_cycles'] / d['dense_cycles']:.2f}x) | "
                   + " | ".join(f"{pick(fi, 9, lab)['speedup']:.2f}x" for lab in labels) + " |")
    out += ["", f"Speedup over dense at the same V, lane utilization in brackets ({FEEDS[CHOSEN].name}):", "",
            "| case | " + " | ".join(f"V = {v}" for v in LANES) + " |", "|---" * (len(LANES) + 1) + "|"]
    for lab in labels:
        out.append(f"| {lab} | " + " | ".join(
            f"{pick(CHOSEN, v, lab)['speedup']:.2f}x ({pick(CHOSEN, v, lab)['lane_utilization']:.2f})"
            for v in LANES) + " |")
    out += ["", "Structured (kernel) over unstructured (element) speedup at equal sparsity; SSL reports ~2x:", "",
            "| sparsity | " + " | ".join(f"V = {v}" for v in LANES) + " |", "|---" * (len(LANES) + 1) + "|"]
    for sp in ("75 %", "90 %"):
        out.append(f"| {sp} | " + " | ".join(
            f"{pick(CHOSEN, v, 'kernel ' + sp)['speedup'] / pick(CHOSEN, v, 'element ' + sp)['speedup']:.2f}x"
            for v in LANES) + " |")
    return "\n".join(out)


SWEEP_SPARSITIES = (0.5, 0.75, 0.9)
SWEEP = (  # (label, dataflow, granularity, prune keywords at sparsity sp)
    ("kernel", "kernel", "kernel", lambda sp: {}),
    ("vector", "vector", "vector", lambda sp: {}),
    ("strided", "strided", "strided", lambda sp: {}),
    ("element", "element", "element", lambda sp: {}),
    ("balanced (element)", "element", "balanced", lambda sp: {"keep": max(1, round((1 - sp) * 9))}),
)


def sweep(seed: int = 0) -> list[dict]:
    """Speedup over dense at the same V vs sparsity, per dataflow at its own granularity, with the
    RTL's wide feed (``WIDE_FEED``) at every V: the model is the RTL's exact contract."""
    base = headline_layer(seed)
    feed = FEEDS[CHOSEN]
    rows = []
    for v in LANES:
        dense = predict(encode(base, _cfg("dense")), v, feed.loader, feed.drain_width).cycles
        for label, df, gran, kw in SWEEP:
            for sp in SWEEP_SPARSITIES:
                ly = Layer(prune(base.weights, gran, sp, **kw(sp)).weights, base.activations, 1, 1)
                p = predict(encode(ly, _cfg(df)), v, feed.loader, feed.drain_width)
                rows.append({"lanes": v, "case": label, "dataflow": df, "sparsity": sp, "cycles": p.cycles,
                             "dense_cycles": dense, "speedup": dense / p.cycles,
                             "lane_utilization": p.lane_utilization})
    return rows


def sweep_table(rows: list[dict]) -> str:
    out = [f"Speedup over dense at the same V vs sparsity ({FEEDS[CHOSEN].name}; lane utilization in brackets):",
           "", "| dataflow | sparsity | " + " | ".join(f"V = {v}" for v in LANES) + " |",
           "|---" * (len(LANES) + 2) + "|"]
    for label, *_ in SWEEP:
        for sp in SWEEP_SPARSITIES:
            cells = [next(r for r in rows if r["case"] == label and r["sparsity"] == sp and r["lanes"] == v)
                     for v in LANES]
            out.append(f"| {label} | {sp:.0%} | "
                       + " | ".join(f"{c['speedup']:.2f}x ({c['lane_utilization']:.2f})" for c in cells) + " |")
    return "\n".join(out)


def plot(rows: list[dict], path) -> None:
    """Speedup vs sparsity per dataflow, one panel per V (matplotlib, the optional ``bench`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LANES), figsize=(4 * len(LANES), 3.4), sharey=True)
    for ax, v in zip(axes, LANES, strict=True):
        for label, *_ in SWEEP:
            pts = [(r["sparsity"], r["speedup"]) for r in rows if r["case"] == label and r["lanes"] == v]
            ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        ax.plot(SWEEP_SPARSITIES, [1 / (1 - sp) for sp in SWEEP_SPARSITIES], "k:", label="1 / density")
        ax.set_title(f"V = {v}")
        ax.set_xlabel("sparsity")
    axes[0].set_ylabel("speedup over dense (same V)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m bench.lanes", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0, help="seed of the headline layer's weights (default: %(default)s)")
    p.add_argument("--json", metavar="ROWS.json", action=OutputFile,
                   help="also write every row as JSON (its directory must exist)")
    p.add_argument("--plot", metavar="FILE.png", action=OutputFile,
                   help="also plot speedup vs sparsity per dataflow at each V (needs matplotlib, in the dev extra)")
    args = p.parse_args(argv)
    rows = measure(args.seed)
    swept = sweep(args.seed)
    print(tables(rows))
    print()
    print(sweep_table(swept))
    if args.json:
        args.json.write_text(json.dumps({"feeds": rows, "sweep": swept}, indent=1) + "\n")
    if args.plot:
        try:
            plot(swept, args.plot)
        except ImportError:
            p.error("--plot needs matplotlib: pip install -e '.[dev]'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
