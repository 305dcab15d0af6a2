"""``python -m bench.simspeed``: simulated cycles per wall-clock second, from the model's own limit to Python.

The same encoded layer runs on the default array (``ArrayConfig()``: kernel dataflow, 4x4 PEs) in

* **Verilator with the native driver** (:mod:`sim.native`): the limit row is the model's own rate, the
  clocked cycles over the seconds of the C++ driver's loop (loads, compute, read-back; no Python, no
  VPI). The end-to-end row is the whole Python call: encode and pack the layers, write the job, start
  the driver, simulate, read the results and check them against the golden model (``golden.conv``,
  ``golden.timing``); its last column is how far end to end is from the limit (issue 14: within 3x).
* **Verilator through cocotb** (:func:`sim.verilator.run_layers`): the wall time includes starting the
  cocotb simulator process (Python, cocotb, NumPy imports), writing/reading the layer file, encoding,
  reset, loading every word (one awaited clock edge each, in Python), the compute (one edge trigger on
  ``done``), reading every output and the golden checks.
* **Amaranth's Python simulator** (:func:`sim.pysim.run_pysim`), optionally: elaborating the design,
  compiling the simulation, loading, the compute (one awaited tick per cycle) and reading the outputs.

Every Verilator row runs ``--repeat`` copies of the layer in one job (and cocotb also one copy alone:
its process start dominates small jobs). Builds are made (or found in the cache) before the clock
starts; they are optimised builds unless ``SPARSE_PE_QUICK_BUILD`` is set. Nothing is subtracted. Two
cycle counts are shown: *busy* (``start`` to ``done``, measured by every harness) and *clocked*
(load words + busy + outputs read, ~ every cycle the simulator steps through); the rates use clocked
cycles.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

from bench.layers import layer_specs, make_layer
from golden.cli import OutputFile, Parser
from golden.config import ArrayConfig
from golden.conv import conv2d
from golden.dataflow import dataflow_of
from golden.encode import encode
from golden.timing import cycles as predicted
from sim.native import build_native, run_native
from sim.pysim import run_pysim
from sim.verilator import build, run_layers

DEFAULT_LAYER = "alexnet-s8.conv3"
DEFAULT_SPARSITY = 0.5


def _row(simulator: str, layers: int, busy: int, clocked: int, wall: float, exact: bool, **extra) -> dict:
    return dict(simulator=simulator, layers=layers, busy_cycles=busy, clocked_cycles=clocked, wall_s=wall,
                exact=exact, busy_per_s=busy / wall, clocked_per_s=clocked / wall, **extra)


def _exact(results: list[dict]) -> bool:
    return all(r["outputs_match"] and r["cycles"] == r["predicted_cycles"] and r["perf"] == r["predicted_perf"]
               for r in results)


def measure(layer_name: str = DEFAULT_LAYER, sparsity: float = DEFAULT_SPARSITY, repeat: int = 10,
            pysim: bool = False, cocotb: bool = True, log=sys.stderr) -> list[dict]:
    """Time the layer on each harness; one row per measurement."""
    cfg = ArrayConfig()
    spec = layer_specs([layer_name])[0]
    layer, _ = make_layer(spec, dataflow_of(cfg.dataflow).pruning, sparsity)
    enc = encode(layer, cfg)
    n_load = sum(len(v) for v in enc.images().values())
    n_out = layer.m * layer.e * layer.f
    what = f"{spec.name} ({spec.describe()}), {cfg.dataflow} sparsity {sparsity:g}, {cfg.rows}x{cfg.cols} array"
    rows = []

    print(f"building (or finding cached) the Verilator models for {cfg.dataflow} {cfg.rows}x{cfg.cols} ...",
          file=log)
    nb = build_native(cfg)
    print(f"native driver: {repeat} x {what} ...", file=log)
    t0 = time.perf_counter()
    res, rates = run_native(nb, [layer] * repeat, name="simspeed")
    wall = time.perf_counter() - t0
    busy = sum(r["cycles"] for r in res)
    rows.append(_row("Verilator, native driver: the model alone (limit)", repeat, busy, rates.clocked,
                     rates.seconds, _exact(res)))
    rows.append(_row("Verilator, native driver: end to end", repeat, busy, rates.clocked, wall, _exact(res),
                     prepare_s=rates.prepare, driver_s=rates.driver, check_s=rates.check))
    limit = rows[0]["clocked_per_s"]
    if cocotb:
        build(cfg)
        for n in (1, repeat) if repeat > 1 else (1,):
            print(f"cocotb: {n} x {what} ...", file=log)
            t0 = time.perf_counter()
            res = run_layers(cfg, [layer] * n, name=f"simspeed-{n}", check=True)
            wall = time.perf_counter() - t0
            rows.append(_row(f"Verilator + cocotb, {n} layer{'s' if n > 1 else ''}/job", n,
                             sum(r["cycles"] for r in res), n * (n_load + n_out) + sum(r["cycles"] for r in res),
                             wall, _exact(res)))
    if pysim:
        print(f"Amaranth pysim: {what} (about a minute) ...", file=log)
        t0 = time.perf_counter()
        r = run_pysim(enc)
        wall = time.perf_counter() - t0
        golden = conv2d(layer.weights, layer.activations, layer.stride, layer.padding, cfg.acc_bits)
        rows.append(_row("Amaranth Python simulator, 1 layer", 1, r.cycles, n_load + n_out + r.cycles, wall,
                         bool((r.outputs == golden).all()) and r.cycles == predicted(enc)))
    for row in rows:
        row["layer"] = what
        row["x_limit"] = limit / row["clocked_per_s"]
    return rows


def table(rows: list[dict]) -> str:
    head = ["simulator", "layers", "busy cycles", "clocked cycles", "wall s", "clocked cycles/s", "× the limit",
            "exact"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for r in rows:
        lines.append(f"| {r['simulator']} | {r['layers']} | {r['busy_cycles']:,} | {r['clocked_cycles']:,} | "
                     f"{r['wall_s']:.2f} | {r['clocked_per_s']:,.0f} | {r['x_limit']:.2f}× | "
                     f"{'yes' if r['exact'] else 'NO'} |")
    e2e = next((r for r in rows if "prepare_s" in r), None)
    if e2e:
        lines.append(f"\nnative end to end: prepare (encode, pack, write) {e2e['prepare_s']:.2f} s, driver process "
                     f"{e2e['driver_s']:.2f} s, check against golden {e2e['check_s']:.2f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = Parser(prog="python -m bench.simspeed",
               description="Simulated cycles per wall-second: the Verilated model alone, end to end through the "
                           "native driver and through cocotb, and (optionally) Amaranth's Python simulator.")
    p.add_argument("--layer", default=DEFAULT_LAYER, help="layer from bench.layers (default: %(default)s)")
    p.add_argument("--sparsity", type=float, default=DEFAULT_SPARSITY,
                   help="kernel-pruning sparsity of the layer (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=10, help="layers per Verilator job (default: %(default)s)")
    p.add_argument("--pysim", action="store_true", help="also time Amaranth's Python simulator (about a minute)")
    p.add_argument("--no-cocotb", action="store_true", help="skip the cocotb rows")
    p.add_argument("--json", metavar="ROWS.json", action=OutputFile, help="also write the rows as JSON")
    args = p.parse_args(argv)
    if not 0 <= args.sparsity < 1:
        p.error(f"--sparsity must be in [0, 1), not {args.sparsity}")
    if args.repeat < 1:
        p.error(f"--repeat must be at least 1, not {args.repeat}")
    try:
        rows = measure(args.layer, args.sparsity, args.repeat, args.pysim, not args.no_cocotb)
    except ValueError as e:
        p.error(str(e))
    print(f"layer: {rows[0]['layer']}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
