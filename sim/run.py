"""``python -m sim.run``: run one conv layer on the generated RTL (Verilator) and report.

The layer is checked against the hardware's limits and encoded before anything is built, so a layer
that cannot run fails with one line and no partial run. A layer larger than the buffers runs as
passes (``golden.passes``: filter chunks and bands of output rows, each pass a layer that fits) whose
outputs are put together on the host; the report then has one entry per pass and the layer's totals.
The report holds the RTL-measured cycles next to the golden prediction, the bit-exact comparison,
utilization and every counter.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from golden import metrics
from golden.cli import OutputFile, Parser
from golden.compact import compact, expand_outputs
from golden.encode import encode
from golden.layerio import load_layer
from golden.passes import Plan, fit_or_plan
from hdl.generate import add_array_arguments, array_config_from_args

from .verilator import DEFAULT_BUILD_ROOT, HARNESS_HELP, HARNESSES, run_layers


def _run_fields(ly, cfg, outputs_match: bool, cycles: int, predicted: int, counters_match: bool) -> dict:
    """The report fields of a run of ``ly`` on ``cfg`` (one layer, or the sum of its passes)."""
    return {
        "dataflow": cfg.dataflow,
        "array": {"rows": cfg.rows, "cols": cfg.cols, "acc_depth": cfg.acc_depth},
        "layer": {"M": ly.m, "C": ly.c, "H": ly.h, "W": ly.w, "R": ly.r, "S": ly.s, "stride": ly.stride,
                  "padding": ly.padding, "E": ly.e, "F": ly.f},
        "outputs_match": outputs_match,
        "cycles": cycles,
        "predicted_cycles": predicted,
        "cycles_match": cycles == predicted,
        "counters_match": counters_match,
        "useful_macs": metrics.useful_macs(ly),
        "ideal_cycles": metrics.ideal_cycles(ly, cfg.pes),
        "utilization": metrics.utilization(ly, cfg.pes, cycles),
        "sparsity": metrics.sparsity(ly.weights),
        "ops_saved": metrics.ops_saved(ly),
    }


def report(enc, result: dict) -> dict:
    return {
        **_run_fields(enc.layer, enc.cfg, result["outputs_match"], result["cycles"], result["predicted_cycles"],
                      result["perf"] == result["predicted_perf"]),
        "compression_ratio": metrics.compression_ratio(enc),
        "storage": metrics.storage_bits(enc),
        "memory_references": metrics.memory_references(enc, result["perf"]),
        "traffic": result["perf"],
    }


def _add_counters(results: list[dict], key: str) -> dict:
    return {k: sum(r[key][k] for r in results) for k in results[0][key]}


def run_passes(layer, pl: Plan, kw: dict, name: str) -> tuple[dict, np.ndarray | None]:
    """Run the passes of ``pl`` on the RTL: the layer's report (totals and one entry per pass) and its
    assembled outputs (``None`` if a pass hung)."""
    cfg = pl.cfg
    results = run_layers(cfg, [p.layer for p in pl.passes], name=name, **kw)
    hung = [r for r in results if r["outputs"] is None]
    passes = [{"filters": [p.m0, p.m1], "rows": [p.e0, p.e1], "channels": [p.c0, p.c1],
               **report(encode(p.layer, cfg), r)}
              for p, r in zip(pl.passes, results, strict=True) if r["outputs"] is not None]
    if hung:
        return {"passes": passes, "problems": [q for r in hung for q in r["problems"]]}, None
    outputs = pl.assemble([np.load(r["outputs"]) for r in results])
    golden = layer.expected(cfg)
    cycles, predicted = sum(r["cycles"] for r in results), sum(r["predicted_cycles"] for r in results)
    rep = {
        **_run_fields(layer, cfg, bool(np.array_equal(outputs, golden)) and all(r["outputs_match"] for r in results),
                      cycles, predicted, all(r["perf"] == r["predicted_perf"] for r in results)),
        "plan": {"passes": len(pl.passes), "filters_per_pass": pl.chunk, "rows_per_pass": pl.band,
                 "channels_per_pass": pl.channel_chunk, "transfer_words": pl.transfer_words},
        "traffic": _add_counters(results, "perf"),
        "passes": passes,
    }
    return rep, outputs


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m sim.run",
        description="Run a conv layer on the generated PE array in Verilator and check it against the golden model.")
    parser.add_argument("--layer", type=Path, required=True, metavar="LAYER.npz",
                        help="weights (M,C,R,S), activations (C,H,W), optional scalars stride, padding")
    add_array_arguments(parser)
    parser.add_argument("--json", metavar="REPORT.json", action=OutputFile,
                        help="write the report here (default: stdout); its directory must exist")
    parser.add_argument("--out-npz", metavar="OUT.npz", action=OutputFile,
                        help="save the RTL outputs (M,E,F) as 'outputs'; its directory must exist")
    parser.add_argument("--compare-dense", action="store_true",
                        help="also run the layer on the dense array; adds dense_cycles and speedup")
    parser.add_argument("--load-gap", type=float, default=0.0, metavar="P",
                        help="probability of an idle cycle between load words (default: %(default)s)")
    parser.add_argument("--backpressure", type=float, default=0.0, metavar="P",
                        help="probability that the output stream is not ready in a cycle (default: %(default)s)")
    parser.add_argument("--compact", action="store_true",
                        help="drop all-zero filters and unused input channels first (filter/channel pruning), "
                             "run the smaller layer and put its outputs back in place")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stall generators (default: %(default)s)")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_ROOT, metavar="DIR",
                        help="Verilator build cache (default: %(default)s)")
    parser.add_argument("--harness", choices=HARNESSES, default="cocotb", help=HARNESS_HELP + " (default: %(default)s)")
    args = parser.parse_args(argv)
    cfg = array_config_from_args(parser, args)
    for name in ("load_gap", "backpressure"):
        if not 0.0 <= getattr(args, name) < 1.0:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1), not {getattr(args, name)}")
    try:
        layer = original = load_layer(args.layer)
        compacted = compact(layer) if args.compact else None
        if compacted:
            layer = compacted.layer
        dense_cfg = replace(cfg, dataflow="dense")
        plans = {c.dataflow: fit_or_plan(layer, c) for c in [cfg] + ([dense_cfg] if args.compare_dense else [])}
    except ValueError as e:
        parser.error(str(e))
    kw = dict(seed=args.seed, load_gap=args.load_gap, backpressure=args.backpressure, check=False,
              root=args.build_dir, harness=args.harness)
    name = f"run-{args.layer.stem}"
    if plans[cfg.dataflow] is not None:
        pl = plans[cfg.dataflow]
        print(f"the layer does not fit the buffers in one run: {len(pl.passes)} passes of {pl.chunk} filters x "
              f"{pl.band} output rows x {pl.channel_chunk} input channels", file=sys.stderr)
        rep, outputs = run_passes(layer, pl, kw, name)
        if outputs is None:
            print(f"error: {'; '.join(rep['problems'])}", file=sys.stderr)
            return 1
    else:
        result = run_layers(cfg, [layer], name=name, **kw)[0]
        if result["outputs"] is None:  # the array never raised done (the testbench reset it)
            print(f"error: {'; '.join(result['problems'])}", file=sys.stderr)
            return 1
        rep = report(encode(layer, cfg), result)
        outputs = np.load(result["outputs"])
    if compacted:
        outputs = expand_outputs(compacted, outputs)
        rep["compacted"] = {"M": layer.m, "C": layer.c, "original_M": original.m, "original_C": original.c}
        rep["sparsity"] = metrics.sparsity(original.weights)  # of the user's layer; the compact one is denser
        rep["ops_saved"] = metrics.ops_saved(original)
        golden = original.expected(cfg)
        rep["outputs_match"] = rep["outputs_match"] and bool(np.array_equal(outputs, golden))
    if args.compare_dense:
        if plans["dense"] is not None:
            dense, _ = run_passes(layer, plans["dense"], kw, name)
        else:
            dense = run_layers(dense_cfg, [layer], name=name, **kw)[0]
        rep["dense_cycles"] = dense["cycles"]
        rep["dense_outputs_match"] = dense["outputs_match"]
        rep["speedup"] = dense["cycles"] / rep["cycles"]
    if args.out_npz:
        np.savez(args.out_npz, outputs=outputs)
    text = json.dumps(rep, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
        summary = (f"{cfg.dataflow}: outputs_match={rep['outputs_match']} cycles={rep['cycles']} "
                   f"(predicted {rep['predicted_cycles']}) utilization={rep['utilization']:.3f}")
        if "speedup" in rep:
            summary += f" speedup={rep['speedup']:.2f}x"
        print(summary)
    else:
        print(text)
    ok = rep["outputs_match"] and rep["cycles_match"] and rep["counters_match"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
