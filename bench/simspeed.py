"""``python -m bench.simspeed``: simulated cycles per wall-clock second, Verilator vs Amaranth's simulator.

The same encoded layer runs on the default array (``ArrayConfig()``: kernel dataflow, 4x4 PEs) in

* **Verilator** through cocotb (:func:`sim.verilator.run_layers`). The build is made (or found in the
  cache) *before* the clock starts; the timed wall time then includes everything else: starting the
  cocotb simulator process (Python, cocotb, NumPy imports), writing/reading the layer file, encoding,
  reset, loading every word (one per cycle, one awaited clock edge each), the compute (one edge
  trigger on ``done``), reading every output, and the testbench's golden checks (``golden.conv`` and
  ``golden.timing``). A second Verilator row runs ``--repeat`` copies of the layer in one cocotb job,
  which amortises the process start over several layers.
* **Amaranth's Python simulator** (:func:`sim.pysim.run_pysim`). The timed wall time includes
  elaborating the design, compiling the simulation, loading, the compute (one awaited tick per cycle)
  and reading the outputs.

Nothing is subtracted. Two cycle counts are shown: *busy* (``start`` to ``done``, measured by both
testbenches) and *clocked* (~ load words + busy + outputs read: every cycle the simulator steps
through); the rates use each of them. The default layer (AlexNet conv3 scaled, kernel-pruned to 50 %:
~112 k busy cycles) takes about a minute in the Python simulator.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

DEFAULT_LAYER = "alexnet.conv3"
DEFAULT_SPARSITY = 0.5


def measure(layer_name: str = DEFAULT_LAYER, sparsity: float = DEFAULT_SPARSITY, repeat: int = 10,
            pysim: bool = True, log=sys.stderr) -> list[dict]:
    """Time the layer in both simulators; one row per measurement."""
    from bench.layers import layer_specs, make_layer
    from golden.config import ArrayConfig
    from golden.dataflow import dataflow_of
    from golden.encode import encode
    from sim.verilator import build, run_layers

    cfg = ArrayConfig()
    spec = layer_specs([layer_name])[0]
    layer, _ = make_layer(spec, dataflow_of(cfg.dataflow).pruning, sparsity)
    enc = encode(layer, cfg)
    n_load = sum(len(v) for v in enc.images().values())
    n_out = layer.m * layer.e * layer.f
    what = f"{spec.name} ({spec.describe()}), {cfg.dataflow} sparsity {sparsity:g}, {cfg.rows}x{cfg.cols} array"
    rows = []

    print(f"building (or finding cached) Verilator model for {cfg.dataflow} {cfg.rows}x{cfg.cols} ...", file=log)
    build(cfg)
    for n in (1, repeat) if repeat > 1 else (1,):
        print(f"Verilator: {n} x {what} ...", file=log)
        t0 = time.perf_counter()
        res = run_layers(cfg, [layer] * n, name=f"simspeed-{n}", check=True)
        wall = time.perf_counter() - t0
        busy = sum(r["cycles"] for r in res)
        rows.append(dict(simulator=f"Verilator + cocotb, {n} layer{'s' if n > 1 else ''}/job", layers=n,
                         busy_cycles=busy, clocked_cycles=n * (n_load + n_out) + busy, wall_s=wall,
                         exact=all(r["outputs_match"] and r["cycles"] == r["predicted_cycles"] for r in res)))
    if pysim:
        from golden.conv import conv2d
        from sim.pysim import run_pysim

        print(f"Amaranth pysim: {what} (about a minute) ...", file=log)
        t0 = time.perf_counter()
        r = run_pysim(enc)
        wall = time.perf_counter() - t0
        golden = conv2d(layer.weights, layer.activations, layer.stride, layer.padding, cfg.acc_bits)
        from golden.timing import cycles as predicted

        rows.append(dict(simulator="Amaranth Python simulator, 1 layer", layers=1, busy_cycles=r.cycles,
                         clocked_cycles=n_load + n_out + r.cycles, wall_s=wall,
                         exact=bool((r.outputs == golden).all()) and r.cycles == predicted(enc)))
    for row in rows:
        row["busy_per_s"] = row["busy_cycles"] / row["wall_s"]
        row["clocked_per_s"] = row["clocked_cycles"] / row["wall_s"]
        row["layer"] = what
    return rows


def table(rows: list[dict]) -> str:
    base = next((r for r in rows if r["simulator"].startswith("Amaranth")), None)
    head = ["simulator", "busy cycles", "≈ clocked cycles", "wall s", "busy cycles/s", "clocked cycles/s",
            "× pysim (busy/s)", "exact"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for r in rows:
        ratio = f"{r['busy_per_s'] / base['busy_per_s']:.1f}×" if base else "–"
        exact = "yes" if r["exact"] else "NO"
        lines.append(f"| {r['simulator']} | {r['busy_cycles']:,} | {r['clocked_cycles']:,} | {r['wall_s']:.1f} | "
                     f"{r['busy_per_s']:,.0f} | {r['clocked_per_s']:,.0f} | {ratio} | {exact} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from golden.cli import Parser

    p = Parser(prog="python -m bench.simspeed",
               description="Simulated cycles per wall-second: Verilator (cocotb) vs Amaranth pysim.")
    p.add_argument("--layer", default=DEFAULT_LAYER, help="layer from bench.layers (default: %(default)s)")
    p.add_argument("--sparsity", type=float, default=DEFAULT_SPARSITY,
                   help="kernel-pruning sparsity of the layer (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=10, help="layers in the second Verilator job (default: %(default)s)")
    p.add_argument("--no-pysim", action="store_true", help="skip the (slow) Python simulator")
    args = p.parse_args(argv)
    if not 0 <= args.sparsity < 1:
        p.error(f"--sparsity must be in [0, 1), not {args.sparsity}")
    try:
        rows = measure(args.layer, args.sparsity, args.repeat, not args.no_pysim)
    except ValueError as e:
        p.error(str(e))
    print(f"layer: {rows[0]['layer']}")
    print(table(rows))
    return 0 if all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
